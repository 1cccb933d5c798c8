"""Gradient Episodic Memory (Lopez-Paz & Ranzato)."""

from cfer.strategies.registry import register_strategy


@register_strategy("gem", description="GEM: quadratic-programming gradient projection per past experience")
def gem(ctx):
    import qpsolvers
    from avalanche.training import GEM

    # Avalanche's GEMPlugin solves its QP with qpsolvers(solver="quadprog"); without the
    # quadprog package it would fail at the second experience, so say it at build time.
    if "quadprog" not in qpsolvers.available_solvers:
        raise RuntimeError("strategy 'gem' needs the quadprog QP solver: pip install quadprog")
    cfg = ctx.config
    return GEM(patterns_per_exp=cfg.gem_patterns_per_exp, memory_strength=cfg.gem_memory_strength,
               **ctx.template_kwargs())
