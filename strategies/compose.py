"""Methods composed in YAML: a base strategy and registered plugins with their params.

A definition (a config's ``strategies.define.<name>``, or a YAML file of the zoo such as
``strategies/zoo/paper_methods.yaml``)::

    my_method:
      base: naive                      # a registered strategy (or {lwf: {alpha: 2.0}})
      plugins: [distillation, {psmr: {selection: herding}}]   # names, or name: params
      description: distillation + herding memory                # optional
      order: 300                                                # optional: place in available()

The method trains as its base does, with the plugins added to the base's own and every
plugin ordered by its phase (:mod:`cfer.plugins.registry`). A base or a plugin may be any stock
Avalanche class by name, ``avalanche:<Class>`` (:mod:`cfer.strategies.stock`,
:mod:`cfer.plugins.stock`; docs/avalanche.md). Its hyperparameters
(:class:`MethodParams`) are the base's and the plugins' params, the definition's values
laid over the plugins' defaults; ``strategies.params.<method>.<key>`` sets a key of the one
plugin (or the base) that has it, and ``strategies.params.<method>.<plugin>.<key>`` a key two
of them share. Light: no torch (definitions are checked with the config).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cfer.core.typed import ConfigError, ConfigTypeError, overlay, record

#: The keys of a definition.
DEFINITION_KEYS = ("base", "plugins", "description", "order")


@dataclass(frozen=True)
class MethodDefinition:
    """A parsed, checked definition: ``base`` and its params, the plugins and their params
    (``(name, params)`` pairs, in the definition's order), and where it was defined."""

    name: str
    base: str
    base_params: object
    plugins: tuple[tuple[str, object], ...]
    description: str = ""
    order: int | None = None
    where: str = ""


@dataclass(frozen=True)
class MethodParams:
    """The hyperparameters of a composed method: its base's params and each plugin's, by name.

    A setting reads as an attribute when one owner has it (``params.gamma``);
    :meth:`record` is the flat dict results files and digests keep.
    """

    method: str
    base: object
    plugins: tuple[tuple[str, object], ...]

    def owners(self) -> list[tuple[str, object]]:
        """``(owner, params)``: the base (by its strategy's name) and the plugins."""
        base = [(type(self.base).method, self.base)] if dataclasses.fields(self.base) else []
        return [*base, *self.plugins]

    def keys(self) -> dict[str, list[str]]:
        """Setting -> the owners that have it."""
        out: dict[str, list[str]] = {}
        for owner, params in self.owners():
            for f in dataclasses.fields(params):
                out.setdefault(f.name, []).append(owner)
        return out

    def plugin(self, name: str):
        """The params of plugin ``name``."""
        return dict(self.plugins)[name]

    def __getattr__(self, key: str):
        if key.startswith("_") or key in ("method", "base", "plugins"):
            raise AttributeError(key)
        owners = self.keys().get(key)
        if not owners:
            raise AttributeError(f"{self.method} has no setting {key!r}")
        if len(owners) > 1:
            raise AttributeError(f"{self.method}: {key!r} is a setting of {', '.join(owners)}; "
                                 "read it from .plugin(name)")
        return getattr(dict(self.owners())[owners[0]], key)

    def record(self) -> dict:
        """Flat ``{key: value}`` (``owner.key`` for a key two owners share)."""
        shared = {k for k, owners in self.keys().items() if len(owners) > 1}
        return {(f"{owner}.{k}" if k in shared else k): v
                for owner, params in self.owners() for k, v in record(params).items()}


def _named(item, *, where: str, key: str) -> tuple[str, Mapping]:
    """``name`` or ``{name: params}`` -> ``(name, params mapping)``."""
    if isinstance(item, str):
        return item, {}
    if isinstance(item, Mapping) and len(item) == 1:
        (name, params), = item.items()
        if params is None:
            params = {}
        if isinstance(name, str) and isinstance(params, Mapping):
            return name, params
    raise ConfigTypeError(f"{where}: key '{key}': expected a name or name: {{params}}, got {item!r}")


def parse_definition(name: str, data, *, where: str, prefix: str, strategy: Callable) -> MethodDefinition:
    """Check definition ``data`` of method ``name`` (errors name ``<prefix>.<key>``);
    ``strategy(name)`` looks a base up (:func:`cfer.strategies.registry.entry`)."""
    from cfer.plugins.registry import plugin_entry

    if not isinstance(data, Mapping):
        raise ConfigTypeError(f"{where}: key '{prefix}': expected a mapping (base, plugins), got {data!r}")
    unknown = [k for k in data if k not in DEFINITION_KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key '{prefix}.{unknown[0]}' (known here: "
                          f"{', '.join(DEFINITION_KEYS)})")
    if "base" not in data:
        raise ConfigError(f"{where}: key '{prefix}.base' is required (the strategy the plugins join, "
                          "e.g. naive)")
    base, base_values = _named(data["base"], where=where, key=f"{prefix}.base")
    try:
        base_entry = strategy(base)
    except ValueError as e:
        raise ConfigError(f"{where}: key '{prefix}.base': {e}") from None
    if base_entry.definition is not None:
        raise ConfigError(f"{where}: key '{prefix}.base': {base!r} is itself a composed method; "
                          "compose from its base and list its plugins")
    base_params = base_entry.resolve_params(base_values, where=where, prefix=f"{prefix}.base.{base}")
    items = data.get("plugins") or []
    if not isinstance(items, list):
        raise ConfigTypeError(f"{where}: key '{prefix}.plugins': expected a list, got {items!r}")
    plugins: list[tuple[str, object]] = []
    for i, item in enumerate(items):
        key = f"{prefix}.plugins[{i}]"
        plugin, values = _named(item, where=where, key=key)
        try:
            pe = plugin_entry(plugin)
        except ValueError as e:
            raise ConfigError(f"{where}: key '{key}': {e}") from None
        if any(plugin == p for p, _ in plugins):
            raise ConfigError(f"{where}: key '{key}': plugins.{plugin} is listed twice")
        if plugin == base:
            raise ConfigError(f"{where}: key '{key}': a plugin may not be named as the base {base!r}")
        plugins.append((plugin, pe.resolve(values, where=where, prefix=f"{key}.{plugin}")))
    description = data.get("description", "")
    order = data.get("order")
    if not isinstance(description, str):
        raise ConfigTypeError(f"{where}: key '{prefix}.description': expected str, got {description!r}")
    if order is not None and (isinstance(order, bool) or not isinstance(order, int)):
        raise ConfigTypeError(f"{where}: key '{prefix}.order': expected int, got {order!r}")
    return MethodDefinition(name, base, base_params, tuple(plugins), description, order, where)


def default_params(definition: MethodDefinition) -> MethodParams:
    """The method's hyperparameters as its definition sets them."""
    return MethodParams(definition.name, definition.base_params, definition.plugins)


def method_params(definition: MethodDefinition, value, *, where: str) -> MethodParams:
    """``value`` (None, a :class:`MethodParams` of this method, or a mapping of
    ``strategies.params.<method>``) as the method's hyperparameters."""
    defaults = default_params(definition)
    if value is None:
        return _checked(defaults, where=where)
    if isinstance(value, MethodParams) and value.method == definition.name:
        return _checked(value, where=where)
    if not isinstance(value, Mapping):
        raise TypeError(f"{where}: params must be None, a mapping or the MethodParams of "
                        f"{definition.name!r}, got {type(value).__name__}")
    prefix = f"strategies.params.{definition.name}"
    owners = dict(defaults.owners())
    keys = defaults.keys()
    flat: dict[str, dict] = {}
    nested: dict[str, Mapping] = {}
    for k, v in value.items():
        if k in owners and isinstance(v, Mapping) and k not in keys:
            nested[k] = v
        elif k in keys:
            if len(keys[k]) > 1:
                raise ConfigError(f"{where}: key '{prefix}.{k}' is a setting of "
                                  f"{' and '.join(keys[k])}: write {prefix}.{keys[k][0]}.{k}")
            flat.setdefault(keys[k][0], {})[k] = v
        else:
            known = ", ".join(sorted(keys)) or f"none, {definition.name!r} has no settings"
            raise ConfigError(f"{where}: unknown key '{prefix}.{k}' (known here: {known})")
    resolved = {}
    for owner, params in owners.items():
        if owner in flat:
            params = overlay(params, flat[owner], where=where, prefix=prefix)
        if owner in nested:
            params = overlay(params, nested[owner], where=where, prefix=f"{prefix}.{owner}")
        resolved[owner] = params
    base_name = type(definition.base_params).method
    return _checked(MethodParams(definition.name, resolved.get(base_name, definition.base_params),
                                 tuple((p, resolved[p]) for p, _ in definition.plugins)), where=where)


def _checked(params: MethodParams, *, where: str) -> MethodParams:
    """``params`` after each owner's own last check (a stock Avalanche class's required
    constructor arguments, :mod:`cfer.plugins.stock.signature`), which the definition or
    ``strategies.params.<method>`` may set."""
    for _, owner in params.owners():
        if hasattr(owner, "check_required"):
            owner.check_required(where=where)
    return params


def composed_factory(definition: MethodDefinition, base_factory: Callable):
    """The strategy factory of ``definition``: ``base_factory`` (its base's), its build context
    carrying the base's params and the method's plugins (built from their params)."""

    def build_method(ctx):
        from cfer.plugins.registry import plugin_entry

        params = ctx.params
        plugins = [plugin_entry(name).build(p, ctx) for name, p in params.plugins]
        return base_factory(dataclasses.replace(
            ctx, params=params.base, method_plugins=[*ctx.method_plugins, *plugins]))

    build_method.__qualname__ = f"composed:{definition.name}"
    build_method.__doc__ = definition.description
    return build_method
