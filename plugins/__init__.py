"""Avalanche plugins: basic-model distillation, predictive-sorting replay, FER metrics, speed.

Public names are imported lazily (PEP 562): ``import plugins`` does not load
torch or Avalanche until a plugin is used.
"""

from importlib import import_module

_EXPORTS = {
    "BasicDistillationPlugin": "cfer.plugins.distillation",
    "DistillationConfig": "cfer.plugins.distillation",
    "distillation_loss": "cfer.plugins.distillation",
    "gamma_at": "cfer.plugins.distillation",
    "PredictiveSortingReplayPlugin": "cfer.plugins.psmr",
    "PSMRConfig": "cfer.plugins.psmr",
    "PSMRBuffer": "cfer.plugins.psmr",
    "memory_sizes": "cfer.plugins.psmr",
    "PredictiveSortingSelection": "cfer.plugins.selection",
    "HerdingSelection": "cfer.plugins.selection",
    "ClosestToCenterSelection": "cfer.plugins.selection",
    "selection_strategy": "cfer.plugins.selection",
    "selection_names": "cfer.plugins.selection",
    "fer_metrics": "cfer.plugins.fer_metrics",
    "FERPredictionCollector": "cfer.plugins.fer_metrics",
    "EvalPredictions": "cfer.plugins.fer_metrics",
    "StepAccuracy": "cfer.plugins.fer_metrics",
    "UAR": "cfer.plugins.fer_metrics",
    "MacroF1": "cfer.plugins.fer_metrics",
    "OldClassAccuracy": "cfer.plugins.fer_metrics",
    "NewClassAccuracy": "cfer.plugins.fer_metrics",
    "BasicAccuracy": "cfer.plugins.fer_metrics",
    "ComponentConfusion": "cfer.plugins.fer_metrics",
    "ThroughputPlugin": "cfer.plugins.throughput",
    "OnlyStream": "cfer.plugins.stream_filter",
    "FastDataConfig": "cfer.plugins.fast_data",
    "FastDataPlugin": "cfer.plugins.fast_data",
    "FastLoader": "cfer.plugins.fast_data",
    "PrecisionConfig": "cfer.plugins.precision",
    "PrecisionPlugin": "cfer.plugins.precision",
    "compile_model": "cfer.plugins.precision",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cfer.plugins' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
