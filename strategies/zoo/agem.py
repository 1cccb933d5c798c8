"""Averaged GEM (Chaudhry et al.)."""

from dataclasses import dataclass

from cfer.strategies.params import StrategyParams
from cfer.strategies.registry import register_strategy


@dataclass(frozen=True)
class AGEMParams(StrategyParams):
    patterns_per_exp: int = 100  # exemplars stored per experience; ours (Avalanche has no default)
    sample_size: int = 64  # memory sample of each gradient projection; Avalanche default: 64

    def __post_init__(self) -> None:
        self.check("patterns_per_exp", self.patterns_per_exp > 0, "> 0")
        self.check("sample_size", self.sample_size > 0, "> 0")


@register_strategy("agem", params=AGEMParams, order=140,
                   description="A-GEM: project gradients against a memory sample")
def agem(ctx):
    from avalanche.training import AGEM

    p = ctx.params
    return AGEM(patterns_per_exp=p.patterns_per_exp, sample_size=p.sample_size, **ctx.template_kwargs())
