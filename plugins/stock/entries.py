"""``avalanche:<PluginClass>``: any stock Avalanche 0.6 plugin by name, as a registry entry.

A method names one as it names a registered plugin, with the constructor's keyword arguments
as its params (``plugins: [avalanche:EWCPlugin: {ewc_lambda: 100}]``). Its params dataclass is
made from the constructor's signature (:mod:`cfer.plugins.stock.signature`), its phase and
``first_experience`` come from :data:`cfer.plugins.stock.table.TABLE` (a plugin not in it: the
phase its callbacks imply, and ``acts``), and a plugin the table marks ``fixed`` is built by its
workaround (:mod:`cfer.plugins.workarounds.stock`). A plugin the table says cannot work here is
refused in one line saying why. The lookup imports Avalanche (only for these names).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from cfer.plugins.registry import PluginEntry, PluginParams, callbacks, register_resolver
from cfer.plugins.stock.table import row

PREFIX = "avalanche:"
log = logging.getLogger(__name__)


class StockRefused(ValueError):
    """A stock class cfer cannot run (one line: which, and why)."""


def refusal(kind: str, name: str) -> str | None:
    """Why ``avalanche:<name>`` is refused, from the table alone (no import), or None."""
    r = row(kind, name)
    if r is None or r.runs:
        return None
    if r.verdict == "use":
        return f"{PREFIX}{name}: use {r.note}"
    return f"{PREFIX}{name} cannot work on cfer's class-incremental stream: {r.note}"


@dataclass(frozen=True)
class StockPluginEntry(PluginEntry):
    """The entry of a stock plugin: built from its params, through its workaround if any."""

    fix: str = ""
    inject: tuple[str, ...] = ()

    def load(self) -> type:
        return stock_class("plugin", self.name.removeprefix(PREFIX))

    def build(self, params=None, ctx=None):
        from cfer.plugins.stock.signature import build_kwargs

        params = self.resolve(params, where=self.name)
        kwargs = build_kwargs(params, ctx=ctx, inject=self.inject)
        if self.fix:
            from cfer.plugins.workarounds import stock as fixes

            plugin = getattr(fixes, self.fix)(**kwargs)
        else:
            plugin = self.load()(**kwargs)
        plugin.cfer_plugin_entry = self  # its phase, for the builder's ordering
        return plugin


def stock_class(kind: str, name: str) -> type:
    """Avalanche's plugin (``avalanche.training.plugins``) or strategy (``avalanche.training``)
    class ``name``; ValueError naming the ones there are."""
    import inspect

    if kind == "plugin":
        import avalanche.training.plugins as where
        from avalanche.core import BasePlugin as base
    else:
        import avalanche.training as where
        from avalanche.training.templates import BaseTemplate as base
    cls = getattr(where, name, None)
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        known = sorted(n for n in dir(where) if inspect.isclass(getattr(where, n))
                       and issubclass(getattr(where, n), base) and not n.startswith("_"))
        raise ValueError(f"{PREFIX}{name}: Avalanche has no {kind} {name!r} (its {kind}s: "
                         f"{', '.join(known)})")
    return cls


@functools.cache
def stock_plugin_entry(name: str) -> StockPluginEntry:
    """The entry of ``avalanche:<PluginClass>`` (computed once per process)."""
    from cfer.plugins.stock.signature import infer_phase, params_dataclass

    cls_name = name.removeprefix(PREFIX)
    why = refusal("plugin", cls_name)
    if why:
        raise StockRefused(why)
    cls = stock_class("plugin", cls_name)
    r = row("plugin", cls_name)
    if r is None:
        log.warning("%s is not in cfer's table of measured Avalanche plugins (docs/avalanche.md): "
                    "its phase is read from its callbacks, and nothing checked that it works here", name)
    inject = r.inject if r else ()
    params = params_dataclass(cls, base=PluginParams, name=name, inject=inject)
    phase = (r.phase if r and r.phase else "") or infer_phase(callbacks(cls))
    first = r.first_experience if r else "acts"
    doc = (cls.__doc__ or "").strip().splitlines()
    params.plugin = name
    return StockPluginEntry(name, f"avalanche.training.plugins:{cls_name}", params, phase, first,
                            f"Avalanche's {cls_name}" + (f": {doc[0]}" if doc else ""), None,
                            r.fix if r else "", inject)


register_resolver(PREFIX, stock_plugin_entry)
