"""Ablation: distillation + the PSMR memory filled with random exemplars."""

from cfer.strategies.registry import register_strategy


@register_strategy("kd_random_replay", description="ablation: distillation + random exemplars (PSMR sizes)")
def kd_random_replay(ctx):
    from avalanche.training import Naive

    return Naive(**ctx.template_kwargs(ctx.distillation(), ctx.psmr(selection="random")))
