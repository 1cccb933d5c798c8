"""``cfer run``: one module per phase on a shared run context, and the run's parts.

- phases: :mod:`~cfer.experiments.run.continual` (every method x class order x fold x
  seed), :mod:`~cfer.experiments.run.fewshot` (the paper's few-shot protocol),
  :mod:`~cfer.experiments.run.fscil` (few-shot class-incremental sessions);
- :mod:`~cfer.experiments.run.context`: :class:`RunContext`, composed of
  :mod:`~cfer.experiments.run.data` (the data set and its benchmarks),
  :mod:`~cfer.experiments.run.sessions` (a method's strategy on a fresh model),
  :mod:`~cfer.experiments.run.basic_store` (the shared basic models),
  :mod:`~cfer.experiments.run.results_store` (results.json and metrics.csv),
  :mod:`~cfer.experiments.run.lock` (one process per run directory) and
  :mod:`~cfer.experiments.run.progress` (the progress bars);
- :mod:`~cfer.experiments.run.evaluation` (the evaluator every run uses) and
  :mod:`~cfer.experiments.run.environment` (versions, commit, device and config digests
  recorded in results.json).
"""
