"""Ablation: distillation + the PSMR memory filled by herding (iCaRL's selection)."""

from cfer.strategies.registry import register_strategy


@register_strategy("kd_herding", description="ablation: distillation + herding exemplars (PSMR sizes)")
def kd_herding(ctx):
    from avalanche.training import Naive

    return Naive(**ctx.template_kwargs(ctx.distillation(), ctx.psmr(selection="herding")))
