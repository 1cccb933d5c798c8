"""``cfer bench``: the speed of our Avalanche path against a bare PyTorch loop.

- :mod:`~cfer.experiments.bench.cli`: ``cfer bench`` (the settings, the table, the
  spread warning, the JSON records);
- :mod:`~cfer.experiments.bench.config`: :class:`BenchConfig`, one invocation;
- :mod:`~cfer.experiments.bench.run_path`: ``--path run``, one kd_psmr continual step as
  ``cfer run`` runs it, against a bare loop of the same arithmetic;
- :mod:`~cfer.experiments.bench.train_path`: ``--path train``, plain training epochs of
  a bare loop, stock Avalanche and ours;
- :mod:`~cfer.experiments.bench.protocol`: one order of the paper protocol with its step
  times (tools/gpu_check.sh).
"""
