"""The paper's method (Maiden & Nakisa 2023, arXiv:2308.06197) as Avalanche plugins.

- :mod:`~cfer.plugins.method.distillation`: :class:`BasicDistillationPlugin`, knowledge
  distillation from the frozen basic-expression model;
- :mod:`~cfer.plugins.method.psmr`: :class:`PredictiveSortingReplayPlugin`, the
  Predictive Sorting Memory Replay (PSMR) memory;
- :mod:`~cfer.plugins.method.selection`: :class:`PredictiveSortingSelection` (ranking by
  the true class's logit or probability) and the other exemplar selection strategies;
- :mod:`~cfer.plugins.method.memory`: the memory rule (M and m), in one place.
"""
