"""Reports of a run directory: tables, plots, statistics, LaTeX and comparisons.

- :mod:`~cfer.experiments.report.run_report`: ``cfer plot`` and ``report.md``, dispatched
  on the phase a results.json was written by, to
  :mod:`~cfer.experiments.report.continual`, :mod:`~cfer.experiments.report.fewshot` or
  :mod:`~cfer.experiments.report.fscil`;
- :mod:`~cfer.experiments.report.compare`: ``cfer compare``, runs side by side with
  paired statistics (:mod:`~cfer.experiments.report.stats`) and LaTeX tables
  (:mod:`~cfer.experiments.report.latex`);
- :mod:`~cfer.experiments.report.tables`, :mod:`~cfer.experiments.report.plots`: table
  cells and figures the reports share;
- :mod:`~cfer.experiments.report.dataset_notes`: what a report says about the data read;
- :mod:`~cfer.experiments.report.gradcam_section`: the Grad-CAM section (``cfer explain``'s
  scores in results.json).

No torch: reports read results.json only.
"""
