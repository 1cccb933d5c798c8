"""Models and the registry of continual-learning strategies (ours and Avalanche baselines).

Public names load lazily (PEP 562): ``import strategies`` stays cheap.
"""

from importlib import import_module

_EXPORTS = {
    "available": "strategies.registry",
    "entry": "strategies.registry",
    "register_strategy": "strategies.registry",
    "StrategyEntry": "strategies.registry",
    "build": "strategies.builder",
    "BuildContext": "strategies.builder",
    "StrategyConfig": "strategies.config",
    "ModelConfig": "strategies.models",
    "build_model": "strategies.models",
    "register_model": "strategies.models",
    "available_models": "strategies.models",
    "CLModel": "strategies.models.network",
    "GrowingClassifier": "strategies.models.classifier",
    "SeenClassMask": "strategies.masking",
    "TrainingSchedule": "strategies.schedule",
    "Phase": "strategies.schedule",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'strategies' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
