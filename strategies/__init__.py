"""Models and the registry of continual-learning strategies (ours and Avalanche baselines).

Public names load lazily (PEP 562): ``import strategies`` stays cheap.
"""

from importlib import import_module

_EXPORTS = {
    "available": "cfer.strategies.registry",
    "entry": "cfer.strategies.registry",
    "register_strategy": "cfer.strategies.registry",
    "StrategyEntry": "cfer.strategies.registry",
    "build": "cfer.strategies.builder",
    "BuildContext": "cfer.strategies.builder",
    "StrategyConfig": "cfer.strategies.config",
    "ModelConfig": "cfer.strategies.models",
    "build_model": "cfer.strategies.models",
    "register_model": "cfer.strategies.models",
    "available_models": "cfer.strategies.models",
    "CLModel": "cfer.strategies.models.network",
    "GrowingClassifier": "cfer.strategies.models.classifier",
    "SeenClassMask": "cfer.strategies.masking",
    "TrainingSchedule": "cfer.strategies.schedule",
    "Phase": "cfer.strategies.schedule",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cfer.strategies' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
