"""The paper's method: distillation from the basic model + predictive-sorting memory replay."""

from dataclasses import dataclass

from cfer.strategies.registry import register_strategy
from cfer.strategies.zoo._paper_method import MethodParams, distillation, psmr


@dataclass(frozen=True)
class KDPSMRParams(MethodParams):
    """The paper's settings (see :class:`MethodParams`)."""


@register_strategy("kd_psmr", params=KDPSMRParams, order=200,
                   description="the paper: basic-model distillation + predictive-sorting replay")
def kd_psmr(ctx):
    from avalanche.training import Naive

    # The distillation plugin first: it rescales strategy.loss in before_backward.
    return Naive(**ctx.template_kwargs(distillation(ctx), psmr(ctx)))
