"""The paper's method: distillation from the basic model + predictive-sorting memory replay."""

from cfer.strategies.registry import register_strategy


@register_strategy("kd_psmr", description="the paper: basic-model distillation + predictive-sorting replay")
def kd_psmr(ctx):
    from avalanche.training import Naive

    # The distillation plugin first: it rescales strategy.loss in before_backward.
    return Naive(**ctx.template_kwargs(ctx.distillation(), ctx.psmr()))
