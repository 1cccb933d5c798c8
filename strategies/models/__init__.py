"""Networks for the strategies: a backbone registry and a growing classifier head."""

from cfer.strategies.models.config import ModelConfig
from cfer.strategies.models.registry import (available_models, build_model, model_entry, register_model,
                                        resolve)

__all__ = ["ModelConfig", "available_models", "build_model", "model_entry", "register_model", "resolve",
           "CLModel", "GrowingClassifier", "Backbone"]


def __getattr__(name: str):
    # torch-backed classes load on first use, so that importing the config stays light.
    if name == "CLModel":
        from cfer.strategies.models.network import CLModel
        return CLModel
    if name == "GrowingClassifier":
        from cfer.strategies.models.classifier import GrowingClassifier
        return GrowingClassifier
    if name == "Backbone":
        from cfer.strategies.models.backbones import Backbone
        return Backbone
    raise AttributeError(f"module 'cfer.strategies.models' has no attribute {name!r}")
