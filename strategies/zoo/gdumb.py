"""GDumb (Prabhu et al.): retrain from scratch on a class-balanced memory."""

from dataclasses import dataclass

from cfer.strategies.params import StrategyParams
from cfer.strategies.registry import register_strategy


@dataclass(frozen=True)
class GDumbParams(StrategyParams):
    memory: int | None = None  # total exemplars; None: the shared memory rule (training.memory_*)

    def __post_init__(self) -> None:
        self.check("memory", self.memory is None or self.memory >= 1, ">= 1 or null")


@register_strategy("gdumb", params=GDumbParams, order=190,
                   description="GDumb: retrain from the initial model on a class-balanced memory")
def gdumb(ctx):
    from avalanche.training import Naive
    from avalanche.training.plugins import GDumbPlugin

    buffer = ctx.class_balanced_buffer(max_size=ctx.params.memory)
    plugin = GDumbPlugin(mem_size=buffer.max_size)
    plugin.storage_policy = buffer  # the paper's memory rule (or params.memory) instead of the default
    return Naive(**ctx.template_kwargs(plugin))
