"""Averaged GEM (Chaudhry et al.)."""

from cfer.strategies.registry import register_strategy


@register_strategy("agem", description="A-GEM: project gradients against a memory sample")
def agem(ctx):
    from avalanche.training import AGEM

    cfg = ctx.config
    return AGEM(patterns_per_exp=cfg.agem_patterns_per_exp, sample_size=cfg.agem_sample_size,
                **ctx.template_kwargs())
