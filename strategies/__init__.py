"""Models and the registry of continual-learning strategies (ours and Avalanche baselines).

- :mod:`~cfer.strategies.registry`, :mod:`~cfer.strategies.zoo`: one file per strategy,
  and the methods composed of plugins in the zoo's YAML files, found without a list
  (:func:`available`, :func:`entry`, :func:`register_strategy`);
- :mod:`~cfer.strategies.compose`: a method as a base strategy plus registered plugins
  (``strategies.define``, ``strategies/zoo/paper_methods.yaml``);
- :mod:`~cfer.strategies.builder`: :func:`build`, a registered strategy on a benchmark
  and model with the shared training knobs (:mod:`~cfer.strategies.training`, the
  ``training:`` section) and the strategy's own params (:mod:`~cfer.strategies.params`);
- :mod:`~cfer.strategies.schedule`, :mod:`~cfer.strategies.masking`: the reference's
  training schedule and early stopping, the seen-class output mask;
- :mod:`~cfer.strategies.models`: backbones, the growing head, the model registry.

The names below are imported from their modules when first used (:mod:`cfer.core.lazy`)
and are light (no torch, no Avalanche at import time). The torch-backed classes are
imported from their modules: ``cfer.strategies.models.network.CLModel``,
``cfer.strategies.models.classifier.GrowingClassifier``,
``cfer.strategies.masking.SeenClassMask``,
``cfer.strategies.schedule.TrainingSchedule`` and ``Phase``.
"""

from cfer.core.lazy import lazy_root

#: Public name -> the module (below ``cfer.strategies``) that defines it.
_MODULES = {
    'BuildContext':      "cfer.strategies.builder",
    'build':             "cfer.strategies.builder",
    'ModelConfig':       "cfer.strategies.models.config",
    'available_models':  "cfer.strategies.models.registry",
    'build_model':       "cfer.strategies.models.registry",
    'register_model':    "cfer.strategies.models.registry",
    'NoParams':          "cfer.strategies.params",
    'StrategyParams':    "cfer.strategies.params",
    'StrategyEntry':     "cfer.strategies.registry",
    'available':         "cfer.strategies.registry",
    'entry':             "cfer.strategies.registry",
    'register_strategy': "cfer.strategies.registry",
    'TrainingConfig':    "cfer.strategies.training",
    'MethodParams':      "cfer.strategies.compose",
}
__all__ = sorted(_MODULES)
__getattr__, __dir__ = lazy_root(__name__, _MODULES)
