"""``cfer sweep``: a grid of config values, each point a run, the best chosen on the
validation subjects (:mod:`~cfer.experiments.sweep.sweep`)."""
