"""Ablation: predictive-sorting memory replay, no distillation."""

from cfer.strategies.registry import register_strategy


@register_strategy("psmr_only", description="ablation: predictive-sorting replay without distillation")
def psmr_only(ctx):
    from avalanche.training import Naive

    return Naive(**ctx.template_kwargs(ctx.psmr()))
