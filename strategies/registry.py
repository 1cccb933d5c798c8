"""The strategy registry: one file per strategy under ``strategies/zoo/``, and methods composed
of plugins in the zoo's YAML files, found without a list.

Adding a strategy is one new file, ``strategies/zoo/<name>.py``: its hyperparameters
(a frozen :class:`~cfer.strategies.params.StrategyParams` dataclass, defaults citing
their source) and a factory decorated
``@register_strategy("<name>", params=<Params>, description=...)`` that takes a
:class:`~cfer.strategies.builder.BuildContext` and returns an Avalanche strategy
(docs/strategies.md, "Adding a strategy"; docs/extending.md). Adding a method made of a base
strategy and registered plugins is a definition in a YAML file of the zoo
(``strategies/zoo/paper_methods.yaml`` holds the paper's method and its ablations;
:mod:`~cfer.strategies.compose`), or in a config's ``strategies.define``. Every module of the
``cfer.strategies.zoo`` package whose name does not start with ``_`` is imported, and every
``*.yaml`` file in it read, on the first ``available()`` / ``entry()`` call, in name order. Zoo
modules import torch and Avalanche inside their factories only, so discovery (and config
validation) stays light.

``available()`` lists by ``order`` (then name): the bounds first, the baselines,
then the paper's method and its ablations; a strategy without an ``order`` comes last.
"""

from __future__ import annotations

import dataclasses
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from cfer.core.extensions import load_entry_points
from cfer.core.typed import ConfigError, read_yaml, resolve
from cfer.strategies.compose import (
    MethodDefinition,
    MethodParams,
    composed_factory,
    method_params,
    parse_definition,
)
from cfer.strategies.params import NoParams, StrategyParams

ZOO = "cfer.strategies.zoo"
LAST = 1000  # the listing order of a strategy registered without one


@dataclass(frozen=True)
class StrategyEntry:
    """A registered strategy. ``offline``: trained once on the whole stream (joint).
    ``params``: its hyperparameter dataclass (:class:`~cfer.strategies.compose.MethodParams`
    for a method composed of plugins, whose ``definition`` says how)."""

    name: str
    factory: Callable
    offline: bool = False
    description: str = ""
    params: type = NoParams
    order: int = LAST
    definition: MethodDefinition | None = None

    def resolve_params(self, value=None, *, where: str = "config", prefix: str | None = None):
        """``value`` (None, a mapping or a params instance) as this strategy's hyperparameters;
        errors name ``strategies.params.<name>.<key>`` (or ``prefix``)."""
        if self.definition is not None:
            return method_params(self.definition, value, where=where)
        return resolve(self.params, value, where=where, prefix=prefix or self.params.prefix())

    def param_keys(self) -> list[str]:
        """The keys ``strategies.params.<name>`` takes."""
        if self.definition is not None:
            return sorted(self.resolve_params().keys())
        return [f.name for f in dataclasses.fields(self.params)]


_ENTRIES: dict[str, StrategyEntry] = {}
#: Name prefix -> the function giving the entry of a name with that prefix
#: (``avalanche:<Class>``, :mod:`cfer.strategies.stock`).
_RESOLVERS: dict[str, Callable] = {}
_loaded = False


def register_resolver(prefix: str, resolve_name: Callable) -> None:
    """Make ``resolve_name(name) -> StrategyEntry`` answer the lookups of names starting with
    ``prefix`` (a ValueError, in one line, for a name it refuses)."""
    _RESOLVERS[prefix] = resolve_name


def register_strategy(name: str, *, params: type | None = None, offline: bool = False,
                      description: str = "", order: int = LAST):
    """Decorator registering ``factory(ctx: BuildContext) -> strategy`` under ``name``.

    ``params``: the strategy's frozen hyperparameter dataclass (a ``StrategyParams``
    subclass); the factory gets an instance as ``ctx.params``. ``order``: its place
    in :func:`available`.
    """
    if params is None:  # its own empty dataclass, so that its errors name the strategy
        params = dataclass(frozen=True)(type(f"{name.title().replace('_', '')}Params", (NoParams,), {}))
    if not (isinstance(params, type) and issubclass(params, StrategyParams)
            and dataclasses.is_dataclass(params)):
        raise TypeError(f"strategy {name!r}: params must be a StrategyParams dataclass, got {params!r}")
    owner = params.__dict__.get("method")
    if owner and owner != name:
        raise ValueError(f"strategy {name!r}: {params.__name__} already holds the hyperparameters of "
                         f"{owner!r}; give {name!r} a subclass of its own")

    def decorate(factory):
        old = _ENTRIES.get(name)
        if old is not None and old.factory.__qualname__ != factory.__qualname__:
            raise ValueError(f"strategy {name!r} is already registered by {old.factory.__module__}")
        params.method = name  # its errors name strategies.params.<name>.<key>
        doc = (factory.__doc__ or "").strip().splitlines()
        _ENTRIES[name] = StrategyEntry(name, factory, offline, description or (doc[0] if doc else ""),
                                       params, order)
        return factory

    return decorate


def define(name: str, data, *, where: str, prefix: str) -> StrategyEntry:
    """The (unregistered) entry of a method defined by mapping ``data`` (a config's
    ``strategies.define.<name>``); errors name ``<prefix>.<key>``."""
    _load()
    if name in _ENTRIES:
        raise ConfigError(f"{where}: key '{prefix}': {name!r} is a registered strategy; give the "
                         "method another name")
    return method_entry(parse_definition(name, data, where=where, prefix=prefix, strategy=entry))


def method_entry(definition: MethodDefinition) -> StrategyEntry:
    """The entry of a composed method (registered or not: a config's own definitions are not)."""
    base = entry(definition.base)
    return StrategyEntry(definition.name, composed_factory(definition, base.factory), base.offline,
                         definition.description, MethodParams,
                         LAST if definition.order is None else definition.order, definition)


def register_method(definition: MethodDefinition) -> StrategyEntry:
    """Register a composed method (the zoo's YAML definitions)."""
    old = _ENTRIES.get(definition.name)
    if old is not None and old.definition != definition:
        where = old.definition.where if old.definition is not None else old.factory.__module__
        raise ValueError(f"strategy {definition.name!r} is already registered by {where}")
    _ENTRIES[definition.name] = method_entry(definition)
    return _ENTRIES[definition.name]


def _load() -> None:
    """Import every public module of the zoo package and read its YAML definitions (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import_module("cfer.strategies.entries")  # the plugins every strategy gets (schedule, mask)
    import_module("cfer.strategies.stock")  # avalanche:<Strategy> names
    load_entry_points()  # installed packages' cfer.extensions (cfer.core.extensions)
    package = import_module(ZOO)
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            import_module(f"{ZOO}.{module.name}")
    for file in sorted(p for folder in package.__path__ for p in Path(folder).glob("*.yaml")):
        for name, data in read_yaml(file).items():
            register_method(parse_definition(name, data, where=str(file), prefix=name, strategy=entry))


def available() -> list[str]:
    """Names of the registered strategies, by their ``order`` (then name)."""
    _load()
    return [e.name for e in sorted(_ENTRIES.values(), key=lambda e: (e.order, e.name))]


def entry(name: str) -> StrategyEntry:
    """The registry entry of ``name``: the one lookup by name."""
    _load()
    for prefix, resolve_name in _RESOLVERS.items():
        if name.startswith(prefix) and name not in _ENTRIES:
            return resolve_name(name)
    if name not in _ENTRIES:
        raise ValueError(f"unknown strategy {name!r}; available: {', '.join(available())}")
    return _ENTRIES[name]
