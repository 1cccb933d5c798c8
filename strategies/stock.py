"""``avalanche:<StrategyClass>``: any stock Avalanche 0.6 strategy by name, as a base of a
composed method (``define: {si: {base: avalanche:SynapticIntelligence, ...}}``).

Its hyperparameters are the constructor's keyword arguments other than the template's
(model, optimizer, criterion, batch sizes, epochs, device, plugins, evaluator: cfer's
``training`` section and builder set those), typed from its signature
(:mod:`cfer.plugins.stock.signature`); a memory size takes ``paper``. A strategy the table
(:mod:`cfer.plugins.stock.table`) marks ``fixed`` is built through its workaround
(:mod:`cfer.plugins.workarounds.stock`); one it says cannot work here is refused in one line.
Light: Avalanche is imported when such a name is looked up.
"""

from __future__ import annotations

import functools
import logging

from cfer.plugins.stock.entries import PREFIX, StockRefused, refusal, stock_class
from cfer.plugins.stock.table import row
from cfer.strategies.params import StrategyParams
from cfer.strategies.registry import StrategyEntry, register_resolver

log = logging.getLogger(__name__)

#: The template's arguments: cfer's builder passes them (BuildContext.template_kwargs).
TEMPLATE = ("model", "optimizer", "criterion", "train_mb_size", "train_epochs", "eval_mb_size",
            "plugins", "evaluator", "eval_every", "peval_mode")
#: Strategies built as Naive plus one fixed plugin (the table's ``fix``), and that plugin's
#: stock class (whose arguments the strategy's are).
AS_NAIVE_PLUS = {"SynapticIntelligence": "SynapticIntelligencePlugin", "GSS_greedy": "GSS_greedyPlugin"}


@functools.cache
def stock_strategy_entry(name: str) -> StrategyEntry:
    """The entry of ``avalanche:<StrategyClass>`` (computed once per process)."""
    from cfer.plugins.stock.signature import build_kwargs, params_dataclass

    cls_name = name.removeprefix(PREFIX)
    why = refusal("strategy", cls_name)
    if why:
        raise StockRefused(why)
    cls = stock_class("strategy", cls_name)
    r = row("strategy", cls_name)
    if r is None:
        log.warning("%s is not in cfer's table of measured Avalanche strategies (docs/avalanche.md): "
                    "nothing checked that it works here", name)
    inject = r.inject if r else ()
    fix = r.fix if r else ""
    params = params_dataclass(cls, base=StrategyParams, name=name, skip=TEMPLATE, inject=inject)
    params.method = name

    def factory(ctx):
        kwargs = build_kwargs(ctx.params, ctx=ctx, inject=inject)
        if fix:
            from cfer.plugins.workarounds import stock as fixes

            made = getattr(fixes, fix)
            if cls_name in AS_NAIVE_PLUS:
                from avalanche.training import Naive

                return Naive(**ctx.template_kwargs(made(**kwargs)))
            return made(**kwargs, **ctx.template_kwargs())
        return cls(**kwargs, **ctx.template_kwargs())

    factory.__qualname__ = f"stock:{cls_name}"
    doc = (cls.__doc__ or "").strip().splitlines()
    return StrategyEntry(name, factory, False, f"Avalanche's {cls_name}" + (f": {doc[0]}" if doc else ""),
                         params)


register_resolver(PREFIX, stock_strategy_entry)
