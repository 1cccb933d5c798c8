"""Cumulative: retrain on all data seen so far at each experience."""

from cfer.strategies.registry import register_strategy


@register_strategy("cumulative", order=20,
                   description="each experience trains on the union of all data so far")
def cumulative(ctx):
    from avalanche.training import Cumulative

    return Cumulative(**ctx.template_kwargs())
