"""Gradient Episodic Memory (Lopez-Paz & Ranzato)."""

from dataclasses import dataclass

from cfer.strategies.params import StrategyParams
from cfer.strategies.registry import register_strategy


@dataclass(frozen=True)
class GEMParams(StrategyParams):
    patterns_per_exp: int = 100  # exemplars stored per experience; ours (Avalanche has no default)
    memory_strength: float = 0.5  # Lopez-Paz & Ranzato / Avalanche default: margin 0.5

    def __post_init__(self) -> None:
        self.check("patterns_per_exp", self.patterns_per_exp > 0, "> 0")
        self.check("memory_strength", self.memory_strength >= 0, ">= 0")


@register_strategy("gem", params=GEMParams, order=150,
                   description="GEM: quadratic-programming gradient projection per past experience")
def gem(ctx):
    import qpsolvers
    from avalanche.training import GEM

    # Avalanche's GEMPlugin solves its QP with qpsolvers(solver="quadprog"); without the
    # quadprog package it would fail at the second experience, so say it at build time.
    if "quadprog" not in qpsolvers.available_solvers:
        raise RuntimeError("strategy 'gem' needs the quadprog QP solver: pip install quadprog")
    p = ctx.params
    return GEM(patterns_per_exp=p.patterns_per_exp, memory_strength=p.memory_strength,
               **ctx.template_kwargs())
