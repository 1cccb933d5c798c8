"""Avalanche plugins: basic-model distillation, predictive-sorting replay, FER metrics, speed.

Importing this package imports its plugins, hence torch and Avalanche (about
6 s on 2 CPU cores). What must load without them lives outside it: the ``data``
config section is :class:`cfer.benchmarks.placement.FastDataConfig`.

The names below are the public API for users. Code inside the project imports
from the defining modules (``from cfer.plugins.method.psmr import ...``), not from here.
Note: ``fer_metrics`` here is the function; its module is reached as
``from cfer.plugins.metrics.fer import ...``.
"""

from cfer.benchmarks.placement import FastDataConfig
from cfer.plugins.method.distillation import (
    BasicDistillationPlugin,
    DistillationConfig,
    distillation_loss,
    gamma_at,
)
from cfer.plugins.method.memory import memory_sizes
from cfer.plugins.method.psmr import PredictiveSortingReplayPlugin, PSMRBuffer, PSMRConfig
from cfer.plugins.method.selection import (
    ClosestToCenterSelection,
    HerdingSelection,
    PredictiveSortingSelection,
    selection_names,
    selection_strategy,
)
from cfer.plugins.metrics.fer import (
    UAR,
    BasicAccuracy,
    ComponentConfusion,
    EvalPredictions,
    FERPredictionCollector,
    MacroF1,
    NewClassAccuracy,
    OldClassAccuracy,
    StepAccuracy,
    fer_metrics,
)
from cfer.plugins.metrics.stream_filter import OnlyStream
from cfer.plugins.speed.fast_data import FastDataPlugin
from cfer.plugins.speed.loader import FastLoader
from cfer.plugins.speed.precision import PrecisionConfig, PrecisionPlugin, compile_model
from cfer.plugins.speed.throughput import ThroughputPlugin

__all__ = [
    "UAR", "BasicAccuracy", "BasicDistillationPlugin", "ClosestToCenterSelection", "ComponentConfusion",
    "DistillationConfig", "EvalPredictions", "FERPredictionCollector", "FastDataConfig", "FastDataPlugin",
    "FastLoader", "HerdingSelection", "MacroF1", "NewClassAccuracy", "OldClassAccuracy", "OnlyStream",
    "PSMRBuffer", "PSMRConfig", "PrecisionConfig", "PrecisionPlugin", "PredictiveSortingReplayPlugin",
    "PredictiveSortingSelection", "StepAccuracy", "ThroughputPlugin", "compile_model", "distillation_loss",
    "fer_metrics", "gamma_at", "memory_sizes", "selection_names", "selection_strategy",
]
