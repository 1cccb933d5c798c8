"""Elastic Weight Consolidation (Kirkpatrick et al.)."""

from dataclasses import dataclass

from cfer.strategies.params import StrategyParams
from cfer.strategies.registry import register_strategy


@dataclass(frozen=True)
class EWCParams(StrategyParams):
    ewc_lambda: float = 5000.0  # weight of the quadratic penalty; FACIL: lamb = 5000

    def __post_init__(self) -> None:
        self.check("ewc_lambda", self.ewc_lambda >= 0, ">= 0")


@register_strategy("ewc", params=EWCParams, order=130,
                   description="Elastic Weight Consolidation (separate Fisher per experience)")
def ewc(ctx):
    from avalanche.training import EWC

    return EWC(ewc_lambda=ctx.params.ewc_lambda, mode="separate", **ctx.template_kwargs())
