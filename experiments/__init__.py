"""Experiments: the ``cfer`` command line (:mod:`~cfer.experiments.cli`) and its rooms.

- :mod:`~cfer.experiments.config`: the typed config, loaded and checked once;
- :mod:`~cfer.experiments.run`: ``cfer run``, one module per phase on a shared run
  context (data, sessions, basic models, results files, lock, progress);
- :mod:`~cfer.experiments.backends`: where the runs execute (local, processes, Ray);
- :mod:`~cfer.experiments.report`: tables, plots, statistics, LaTeX, ``cfer plot`` and
  ``cfer compare``;
- :mod:`~cfer.experiments.explain`: ``cfer explain`` (Grad-CAM);
- :mod:`~cfer.experiments.sweep`: ``cfer sweep``;
- :mod:`~cfer.experiments.bench`: ``cfer bench``.

The shipped configs are YAML files in ``experiments/configs/``. This package root imports
nothing, and each sub-command's module is imported only when it runs.
"""
