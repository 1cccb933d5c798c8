"""Metrics as Avalanche plugin metrics.

- :mod:`~cfer.plugins.metrics.fer`: the FER metrics of docs/design.md (step accuracy,
  UAR, macro F1, basic, old- and new-class accuracy, component confusion), computed
  by :mod:`cfer.core.metric_definitions`;
- :mod:`~cfer.plugins.metrics.deferred`: Avalanche's loss, accuracy, forgetting, BWT and
  confusion-matrix metrics, read from the device once per phase instead of per batch;
- :mod:`~cfer.plugins.metrics.stream_filter`: :class:`OnlyStream`, a metric fed the
  evaluations of one stream only.
"""
