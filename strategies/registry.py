"""The strategy registry: one file per strategy under ``strategies/zoo/``, found without a list.

Adding a strategy is one new file, ``strategies/zoo/<name>.py``: its hyperparameters
(a frozen :class:`~cfer.strategies.params.StrategyParams` dataclass, defaults citing
their source) and a factory decorated
``@register_strategy("<name>", params=<Params>, description=...)`` that takes a
:class:`~cfer.strategies.builder.BuildContext` and returns an Avalanche strategy
(docs/strategies.md, "Adding a strategy"). Every module of the ``cfer.strategies.zoo``
package whose name does not start with ``_`` is imported on the first
``available()`` / ``entry()`` call, in name order. Zoo modules import torch and
Avalanche inside their factories only, so discovery (and config validation) stays light.

``available()`` lists by ``order`` (then name): the bounds first, the baselines,
then the paper's method and its ablations; a strategy without an ``order`` comes last.
"""

from __future__ import annotations

import dataclasses
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from cfer.strategies.params import NoParams, StrategyParams

ZOO = "cfer.strategies.zoo"
LAST = 1000  # the listing order of a strategy registered without one


@dataclass(frozen=True)
class StrategyEntry:
    """A registered strategy. ``offline``: trained once on the whole stream (joint).
    ``params``: its hyperparameter dataclass (:class:`NoParams` if it has none)."""

    name: str
    factory: Callable
    offline: bool = False
    description: str = ""
    params: type = NoParams
    order: int = LAST


_ENTRIES: dict[str, StrategyEntry] = {}
_loaded = False


def register_strategy(name: str, *, params: type | None = None, offline: bool = False,
                      description: str = "", order: int = LAST):
    """Decorator registering ``factory(ctx: BuildContext) -> strategy`` under ``name``.

    ``params``: the strategy's frozen hyperparameter dataclass (a ``StrategyParams``
    subclass); the factory gets an instance as ``ctx.params``. ``order``: its place
    in :func:`available`.
    """
    params = NoParams if params is None else params
    if not (isinstance(params, type) and issubclass(params, StrategyParams)
            and dataclasses.is_dataclass(params)):
        raise TypeError(f"strategy {name!r}: params must be a StrategyParams dataclass, got {params!r}")
    owner = params.__dict__.get("method")
    if params is not NoParams and owner and owner != name:
        raise ValueError(f"strategy {name!r}: {params.__name__} already holds the hyperparameters of "
                         f"{owner!r}; give {name!r} a subclass of its own")

    def decorate(factory):
        old = _ENTRIES.get(name)
        if old is not None and old.factory.__qualname__ != factory.__qualname__:
            raise ValueError(f"strategy {name!r} is already registered by {old.factory.__module__}")
        if params is not NoParams:
            params.method = name  # its errors name strategies.params.<name>.<key>
        doc = (factory.__doc__ or "").strip().splitlines()
        _ENTRIES[name] = StrategyEntry(name, factory, offline, description or (doc[0] if doc else ""),
                                       params, order)
        return factory

    return decorate


def _load() -> None:
    """Import every public module of the zoo package (once)."""
    global _loaded
    if _loaded:
        return
    package = import_module(ZOO)
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            import_module(f"{ZOO}.{module.name}")
    _loaded = True


def available() -> list[str]:
    """Names of the registered strategies, by their ``order`` (then name)."""
    _load()
    return [e.name for e in sorted(_ENTRIES.values(), key=lambda e: (e.order, e.name))]


def entry(name: str) -> StrategyEntry:
    """The registry entry of ``name``."""
    _load()
    if name not in _ENTRIES:
        raise ValueError(f"unknown strategy {name!r}; available: {', '.join(available())}")
    return _ENTRIES[name]
