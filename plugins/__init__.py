"""Avalanche plugins: basic-model distillation, predictive-sorting replay, FER metrics, speed.

Public names are imported lazily (PEP 562): ``import plugins`` does not load
torch or Avalanche until a plugin is used.
"""

from importlib import import_module

_EXPORTS = {
    "BasicDistillationPlugin": "plugins.distillation",
    "DistillationConfig": "plugins.distillation",
    "distillation_loss": "plugins.distillation",
    "gamma_at": "plugins.distillation",
    "PredictiveSortingReplayPlugin": "plugins.psmr",
    "PSMRConfig": "plugins.psmr",
    "PSMRBuffer": "plugins.psmr",
    "memory_sizes": "plugins.psmr",
    "PredictiveSortingSelection": "plugins.selection",
    "HerdingSelection": "plugins.selection",
    "ClosestToCenterSelection": "plugins.selection",
    "selection_strategy": "plugins.selection",
    "selection_names": "plugins.selection",
    "fer_metrics": "plugins.fer_metrics",
    "FERPredictionCollector": "plugins.fer_metrics",
    "EvalPredictions": "plugins.fer_metrics",
    "StepAccuracy": "plugins.fer_metrics",
    "UAR": "plugins.fer_metrics",
    "MacroF1": "plugins.fer_metrics",
    "OldClassAccuracy": "plugins.fer_metrics",
    "NewClassAccuracy": "plugins.fer_metrics",
    "BasicAccuracy": "plugins.fer_metrics",
    "ComponentConfusion": "plugins.fer_metrics",
    "ThroughputPlugin": "plugins.throughput",
    "OnlyStream": "plugins.stream_filter",
    "FastDataConfig": "plugins.fast_data",
    "FastDataPlugin": "plugins.fast_data",
    "FastLoader": "plugins.fast_data",
    "PrecisionConfig": "plugins.precision",
    "PrecisionPlugin": "plugins.precision",
    "compile_model": "plugins.precision",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'plugins' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
