"""The foundation below every layer: pure Python and numpy, no torch, no other part of ``cfer``.

- :mod:`~cfer.core.atomic`: atomic file writes, the one implementation every layer uses;
- :mod:`~cfer.core.metric_definitions`: the metric definitions of docs/design.md, one
  function each;
- :mod:`~cfer.core.attribution_scores`: the scores of attribution maps (Grad-CAM);
- :mod:`~cfer.core.typed`: typed dataclass configs overlaid by YAML and ``--set key=value``
  (:class:`~cfer.core.typed.ConfigError`, ``overlay``, ``read_yaml``, ``to_dict``).
- :mod:`~cfer.core.lazy`: package roots that import their modules when a name is first
  used (PEP 562), so that no root imports torch.

Why a folder of its own: these modules are read by several layers (benchmarks write files
atomically, plugins and reports compute the same metrics), so they sit below all of them,
where the layer contract (.importlinter) checks that they import nothing of ``cfer``.
"""
