"""Elastic Weight Consolidation (Kirkpatrick et al.)."""

from cfer.strategies.registry import register_strategy


@register_strategy("ewc", description="Elastic Weight Consolidation (separate Fisher per experience)")
def ewc(ctx):
    from avalanche.training import EWC

    return EWC(ewc_lambda=ctx.config.ewc_lambda, mode="separate", **ctx.template_kwargs())
