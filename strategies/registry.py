"""The strategy registry: one small factory per file under ``strategies/zoo/``.

Adding a strategy: write ``strategies/zoo/<name>.py`` with a factory
decorated ``@register_strategy("<name>", description=...)`` that takes a
:class:`~strategies.builder.BuildContext` and returns an Avalanche strategy,
then add its module to ``_MODULES`` below. Modules are imported on the first
``available()`` / ``entry()`` / ``build()`` call, not at import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Callable

_MODULES = (
    "cfer.strategies.zoo.naive",
    "cfer.strategies.zoo.joint",
    "cfer.strategies.zoo.cumulative",
    "cfer.strategies.zoo.replay",
    "cfer.strategies.zoo.lwf",
    "cfer.strategies.zoo.icarl",
    "cfer.strategies.zoo.ewc",
    "cfer.strategies.zoo.agem",
    "cfer.strategies.zoo.gem",
    "cfer.strategies.zoo.der",
    "cfer.strategies.zoo.er_ace",
    "cfer.strategies.zoo.bic",
    "cfer.strategies.zoo.gdumb",
    "cfer.strategies.zoo.kd_psmr",
    "cfer.strategies.zoo.kd_only",
    "cfer.strategies.zoo.psmr_only",
    "cfer.strategies.zoo.kd_random_replay",
    "cfer.strategies.zoo.kd_herding",
)


@dataclass(frozen=True)
class StrategyEntry:
    """A registered strategy. ``offline``: trained once on the whole stream (joint)."""

    name: str
    factory: Callable
    offline: bool = False
    description: str = ""


_ENTRIES: dict[str, StrategyEntry] = {}
_loaded = False


def register_strategy(name: str, *, offline: bool = False, description: str = ""):
    """Decorator registering ``factory(ctx: BuildContext) -> strategy`` under ``name``."""

    def decorate(factory):
        old = _ENTRIES.get(name)
        if old is not None and old.factory.__qualname__ != factory.__qualname__:
            raise ValueError(f"strategy {name!r} is already registered by {old.factory.__module__}")
        _ENTRIES[name] = StrategyEntry(name, factory, offline,
                                       description or (factory.__doc__ or "").strip().splitlines()[0])
        return factory

    return decorate


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in _MODULES:
            import_module(module)
        _loaded = True


def available() -> list[str]:
    """Names of the registered strategies, in registry order."""
    _load()
    return list(_ENTRIES)


def entry(name: str) -> StrategyEntry:
    """The registry entry of ``name``."""
    _load()
    if name not in _ENTRIES:
        raise ValueError(f"unknown strategy {name!r}; available: {', '.join(_ENTRIES)}")
    return _ENTRIES[name]
