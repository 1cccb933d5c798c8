"""Any stock Avalanche 0.6 plugin or strategy by name (``avalanche:<Class>``): its params typed
from its constructor (:mod:`~cfer.plugins.stock.signature`), what cfer measured of it
(:mod:`~cfer.plugins.stock.table`), and the plugin registry's entries
(:mod:`~cfer.plugins.stock.entries`; the strategies' are :mod:`cfer.strategies.stock`).
The workarounds of the classes that break here are in :mod:`cfer.plugins.workarounds.stock`.
"""
