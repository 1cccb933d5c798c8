"""Ablation: distillation + the PSMR memory filled with random exemplars."""

from dataclasses import dataclass

from cfer.strategies.registry import register_strategy
from cfer.strategies.zoo._paper_method import MethodParams, Selection, distillation, psmr


@dataclass(frozen=True)
class KDRandomReplayParams(MethodParams):
    """The paper's settings, exemplars drawn at random instead of by predictive sorting."""

    selection: Selection = "random"


@register_strategy("kd_random_replay", params=KDRandomReplayParams, order=230,
                   description="ablation: distillation + random exemplars (PSMR sizes)")
def kd_random_replay(ctx):
    from avalanche.training import Naive

    return Naive(**ctx.template_kwargs(distillation(ctx), psmr(ctx)))
