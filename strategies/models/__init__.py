"""Networks for the strategies: a backbone registry and a growing classifier head.

The names below are light (no torch at import time). The torch-backed classes are
imported from their modules: ``cfer.strategies.models.network.CLModel``,
``cfer.strategies.models.classifier.GrowingClassifier``,
``cfer.strategies.models.backbones.Backbone``.
"""

from cfer.strategies.models.config import ModelConfig
from cfer.strategies.models.registry import (
    available_models,
    build_model,
    model_entry,
    register_model,
    resolve,
)

__all__ = ["ModelConfig", "available_models", "build_model", "model_entry", "register_model", "resolve"]
