"""Learning without Forgetting (Li & Hoiem)."""

from dataclasses import dataclass
from typing import ClassVar

from cfer.strategies.params import StrategyParams
from cfer.strategies.registry import register_strategy


@dataclass(frozen=True)
class LwFParams(StrategyParams):
    #: ``cfer tune``'s grid (around FACIL's lamb = 1, T = 2); both act from experience 1 on
    search: ClassVar[dict[str, tuple]] = {"alpha": (0.5, 1.0, 2.0, 4.0), "temperature": (1.0, 2.0, 4.0)}
    alpha: float = 1.0  # weight of the distillation loss; FACIL: lamb = 1
    temperature: float = 2.0  # FACIL / Li & Hoiem: T = 2

    def __post_init__(self) -> None:
        self.check("alpha", self.alpha >= 0, ">= 0")
        self.check("temperature", self.temperature > 0, "> 0")


@register_strategy("lwf", params=LwFParams, order=110,
                   description="Learning without Forgetting: distillation from the previous model")
def lwf(ctx):
    from avalanche.training import LwF

    p = ctx.params
    return LwF(alpha=p.alpha, temperature=p.temperature, **ctx.template_kwargs())
