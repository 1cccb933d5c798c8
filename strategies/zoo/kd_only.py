"""Ablation: distillation from the basic model, no replay."""

from dataclasses import dataclass

from cfer.strategies.registry import register_strategy
from cfer.strategies.zoo._paper_method import MethodParams, distillation


@dataclass(frozen=True)
class KDOnlyParams(MethodParams):
    """The paper's distillation settings; no memory, so no exemplar selection or new-class draw."""

    unused = ("selection", "score", "new_class_samples", "new_class_draw")


@register_strategy("kd_only", params=KDOnlyParams, order=210,
                   description="ablation: basic-model distillation without replay")
def kd_only(ctx):
    from avalanche.training import Naive

    return Naive(**ctx.template_kwargs(distillation(ctx)))
