"""Every workaround for Avalanche 0.6.0 (on torch 2.14, numpy 2.x), in one room.

Each function or class here says what breaks in stock Avalanche and why the workaround
is needed, so an Avalanche upgrade is checked against this room: delete what the new
release fixes. Avalanche is imported inside the functions, so importing a module here
costs nothing. One module per topic:

- :mod:`~cfer.plugins.workarounds.baselines`: baselines that fail on this stack, made to
  run (a warning-free class-balanced buffer; DER, BiC and iCaRL with a growing head and
  the 0.6 benchmark API); used by :mod:`cfer.strategies` (builder and zoo);
- :mod:`~cfer.plugins.workarounds.templates`: the strategy templates' missing options
  and callbacks (default loader options, no initial evaluation, the SGD steps that mixed
  precision replaces, gradients flattened with ``.view(-1)``, a hook where an
  experience's training loop ends);
- :mod:`~cfer.plugins.workarounds.datasets`: the dataset and loader internals the fast
  data path (:mod:`cfer.plugins.speed`) reads in batches;
- :mod:`~cfer.plugins.workarounds.selection`: feature-based exemplar selection without
  the Avalanche constructor that binds a fixed model;
- :mod:`~cfer.plugins.workarounds.metrics`: the metric and evaluation internals the deferred
  metrics (:mod:`cfer.plugins.metrics.deferred`) swap and read, and one-pass evaluation
  (:mod:`cfer.plugins.speed.one_pass`) replays.

No module outside this room touches Avalanche's private attributes
(``tests/test_workarounds_room.py`` checks it).
"""
