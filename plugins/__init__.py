"""Avalanche plugins: basic-model distillation, predictive-sorting replay, FER metrics, speed.

One room per job, and the registry (:mod:`~cfer.plugins.registry`: every plugin by name,
with its typed params, its phase and what it does to experience 0):

- :mod:`~cfer.plugins.method`: the paper's method (distillation, PSMR, exemplar
  selection, the memory rule);
- :mod:`~cfer.plugins.metrics`: FER metrics and Avalanche's, as plugin metrics;
- :mod:`~cfer.plugins.run`: what makes a run exact (experience seeds, starting from
  trained weights, the final validation score);
- :mod:`~cfer.plugins.speed`: the speed path (data on the device, mixed precision);
- :mod:`~cfer.plugins.workarounds`: every Avalanche 0.6 workaround.

The names below are the public API for users, imported from their modules when first
used (:mod:`cfer.core.lazy`): importing this package, or a torch-free module below it
such as :mod:`cfer.plugins.speed.config`, does not import torch or Avalanche. Code
inside the project imports from the defining modules (``from cfer.plugins.method.psmr
import ...``).
"""

from cfer.core.lazy import lazy_root

#: Public name -> the module (below ``cfer.plugins``) that defines it.
_MODULES = {
    'BasicDistillationPlugin':       "cfer.plugins.method.distillation",
    'DistillationParams':            "cfer.plugins.method.params",
    'PSMRParams':                    "cfer.plugins.method.params",
    'distillation_loss':             "cfer.plugins.method.distillation",
    'gamma_at':                      "cfer.plugins.method.distillation",
    'PredictiveSortingReplayPlugin': "cfer.plugins.method.psmr",
    'PSMRBuffer':                    "cfer.plugins.method.psmr",
    'PSMRConfig':                    "cfer.plugins.method.psmr",
    'PredictiveSortingSelection':    "cfer.plugins.method.selection",
    'HerdingSelection':              "cfer.plugins.method.selection",
    'ClosestToCenterSelection':      "cfer.plugins.method.selection",
    'selection_names':               "cfer.plugins.method.selection",
    'selection_strategy':            "cfer.plugins.method.selection",
    'memory_sizes':                  "cfer.plugins.method.memory",
    'MemoryRule':                    "cfer.plugins.method.memory",
    'register_plugin':               "cfer.plugins.registry",
    'plugin_entry':                  "cfer.plugins.registry",
    'available_plugins':             "cfer.plugins.registry",
    'PluginParams':                  "cfer.plugins.registry",
    'fer_metrics':                   "cfer.plugins.metrics.fer",
    'FERPredictionCollector':        "cfer.plugins.metrics.fer",
    'EvalPredictions':               "cfer.plugins.metrics.fer",
    'StepAccuracy':                  "cfer.plugins.metrics.fer",
    'UAR':                           "cfer.plugins.metrics.fer",
    'MacroF1':                       "cfer.plugins.metrics.fer",
    'BasicAccuracy':                 "cfer.plugins.metrics.fer",
    'OldClassAccuracy':              "cfer.plugins.metrics.fer",
    'NewClassAccuracy':              "cfer.plugins.metrics.fer",
    'ComponentConfusion':            "cfer.plugins.metrics.fer",
    'OnlyStream':                    "cfer.plugins.metrics.stream_filter",
    'FastDataConfig':                "cfer.plugins.speed.config",
    'FastDataPlugin':                "cfer.plugins.speed.fast_data",
    'FastLoader':                    "cfer.plugins.speed.loader",
    'PrecisionConfig':               "cfer.plugins.speed.config",
    'PrecisionPlugin':               "cfer.plugins.speed.precision",
    'compile_model':                 "cfer.plugins.speed.precision",
    'ThroughputPlugin':              "cfer.plugins.speed.throughput",
}
__all__ = sorted(_MODULES)
__getattr__, __dir__ = lazy_root(__name__, _MODULES)
