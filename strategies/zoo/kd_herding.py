"""Ablation: distillation + the PSMR memory filled by herding (iCaRL's selection)."""

from dataclasses import dataclass

from cfer.strategies.registry import register_strategy
from cfer.strategies.zoo._paper_method import MethodParams, Selection, distillation, psmr


@dataclass(frozen=True)
class KDHerdingParams(MethodParams):
    """The paper's settings, exemplars chosen by herding (Rebuffi et al.) instead of predictive sorting."""

    selection: Selection = "herding"


@register_strategy("kd_herding", params=KDHerdingParams, order=240,
                   description="ablation: distillation + herding exemplars (PSMR sizes)")
def kd_herding(ctx):
    from avalanche.training import Naive

    return Naive(**ctx.template_kwargs(distillation(ctx), psmr(ctx)))
