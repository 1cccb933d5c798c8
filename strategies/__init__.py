"""Models and the registry of continual-learning strategies (ours and Avalanche baselines).

The names below are light (no torch, no Avalanche at import time). The torch-backed
classes are imported from their modules: ``cfer.strategies.models.network.CLModel``,
``cfer.strategies.models.classifier.GrowingClassifier``,
``cfer.strategies.masking.SeenClassMask``,
``cfer.strategies.schedule.TrainingSchedule`` and ``Phase``.
"""

from cfer.strategies.builder import BuildContext, build
from cfer.strategies.models.config import ModelConfig
from cfer.strategies.models.registry import available_models, build_model, register_model
from cfer.strategies.params import NoParams, StrategyParams
from cfer.strategies.registry import StrategyEntry, available, entry, register_strategy
from cfer.strategies.training import TrainingConfig
from cfer.strategies.zoo._paper_method import MethodParams

__all__ = ["BuildContext", "MethodParams", "ModelConfig", "NoParams", "TrainingConfig", "StrategyEntry",
           "StrategyParams", "available", "available_models", "build", "build_model", "entry",
           "register_model", "register_strategy"]
