"""Naive fine-tuning: the lower bound."""

from cfer.strategies.registry import register_strategy


@register_strategy("naive", order=0,
                   description="fine-tuning on each experience, no countermeasure (lower bound)")
def naive(ctx):
    from avalanche.training import Naive

    return Naive(**ctx.template_kwargs())
