"""Elastic Weight Consolidation (Kirkpatrick et al.)."""

from dataclasses import dataclass
from typing import ClassVar

from cfer.strategies.params import StrategyParams
from cfer.strategies.registry import register_strategy


@dataclass(frozen=True)
class EWCParams(StrategyParams):
    #: ``cfer tune``'s grid (around FACIL's lamb = 5000); the penalty acts from experience 1 on
    search: ClassVar[dict[str, tuple]] = {"ewc_lambda": (100.0, 1000.0, 5000.0, 20000.0)}
    ewc_lambda: float = 5000.0  # weight of the quadratic penalty; FACIL: lamb = 5000

    def __post_init__(self) -> None:
        self.check("ewc_lambda", self.ewc_lambda >= 0, ">= 0")


@register_strategy("ewc", params=EWCParams, order=130,
                   description="Elastic Weight Consolidation (separate Fisher per experience)")
def ewc(ctx):
    from avalanche.training import EWC

    return EWC(ewc_lambda=ctx.params.ewc_lambda, mode="separate", **ctx.template_kwargs())
