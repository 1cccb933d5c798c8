"""``cfer explain``: Grad-CAM of a run's saved models.

- :mod:`~cfer.experiments.explain.explain`: ``cfer explain RUN_DIR`` (and
  ``evaluation.gradcam`` at the end of ``cfer run``): which faces, which models, the
  scores, the files written;
- :mod:`~cfer.experiments.explain.nulls`: each score against its empirical nulls;
- :mod:`~cfer.experiments.explain.gradcam`: Captum's Grad-CAM on a model's layer (and the
  randomised-weights models of the nulls);
- :mod:`~cfer.experiments.explain.plots`: the grids of maps.

The Grad-CAM section of ``report.md`` reads results.json only, so it is a report:
:mod:`cfer.experiments.report.gradcam_section` (reports never import this room).
"""
