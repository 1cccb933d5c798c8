"""cfer: continual learning of compound facial expressions on Avalanche.

This folder is the package's entry only (the version, ``python -m cfer``). The installed
package ``cfer`` holds five subpackages, kept as folders at the top of the repository and
mapped into ``cfer`` by ``setup.py``:

- :mod:`cfer.core`: the foundation (atomic writes, metric definitions, attribution
  scores, typed configs), pure Python and numpy;
- :mod:`cfer.benchmarks`: data sets as Avalanche class-incremental benchmarks;
- :mod:`cfer.plugins`: Avalanche plugins (the paper's method, FER metrics, speed);
- :mod:`cfer.strategies`: models and the registry of continual-learning strategies;
- :mod:`cfer.experiments`: configs, the ``cfer`` command line, runners and reports.

Data flows one way: core -> benchmarks -> plugins -> strategies -> experiments.
"""

__version__ = "0.1.0"
