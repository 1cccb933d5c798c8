"""cfer: continual learning of compound facial expressions on Avalanche.

The installed package ``cfer`` holds four subpackages, kept as folders at the
top of the repository and mapped into ``cfer`` by ``setup.py``:

- :mod:`cfer.benchmarks`: data sets as Avalanche class-incremental benchmarks;
- :mod:`cfer.plugins`: Avalanche plugins (the paper's method, FER metrics, speed);
- :mod:`cfer.strategies`: models and the registry of continual-learning strategies;
- :mod:`cfer.experiments`: configs, the ``cfer`` command line, runners and reports.

Data flows one way: benchmarks -> plugins -> strategies -> experiments.
"""

__version__ = "0.1.0"
