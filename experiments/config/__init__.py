"""The experiment config, checked once before any data is read.

- :mod:`~cfer.experiments.config.sections`: one typed dataclass per YAML section
  (:class:`ExperimentConfig` and its sections);
- :mod:`~cfer.experiments.config.load`: a YAML file (or a shipped config's name) and
  ``--set`` overrides over the defaults (:func:`load_config`), and saving a config;
- :mod:`~cfer.experiments.config.validate`: the checks that need more than one section
  (the model, paths, the phase, the data set's classes);
- :mod:`~cfer.experiments.config.resume`: which config changes ``--resume`` accepts.

The shipped configs themselves are YAML files in ``experiments/configs/``.
"""
