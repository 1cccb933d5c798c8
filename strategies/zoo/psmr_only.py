"""Ablation: predictive-sorting memory replay, no distillation."""

from dataclasses import dataclass

from cfer.strategies.registry import register_strategy
from cfer.strategies.zoo._paper_method import MethodParams, psmr


@dataclass(frozen=True)
class PSMROnlyParams(MethodParams):
    """The paper's exemplar selection; no distillation, so none of its settings."""

    unused = ("temperature", "gamma", "decay", "teacher")


@register_strategy("psmr_only", params=PSMROnlyParams, order=220,
                   description="ablation: predictive-sorting replay without distillation")
def psmr_only(ctx):
    from avalanche.training import Naive

    return Naive(**ctx.template_kwargs(psmr(ctx)))
