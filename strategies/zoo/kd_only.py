"""Ablation: distillation from the basic model, no replay."""

from cfer.strategies.registry import register_strategy


@register_strategy("kd_only", description="ablation: basic-model distillation without replay")
def kd_only(ctx):
    from avalanche.training import Naive

    return Naive(**ctx.template_kwargs(ctx.distillation()))
