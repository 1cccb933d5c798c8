"""Learning without Forgetting (Li & Hoiem)."""

from cfer.strategies.registry import register_strategy


@register_strategy("lwf", description="Learning without Forgetting: distillation from the previous model")
def lwf(ctx):
    from avalanche.training import LwF

    cfg = ctx.config
    return LwF(alpha=cfg.lwf_alpha, temperature=cfg.lwf_temperature, **ctx.template_kwargs())
