"""BiC (Wu et al.): replay + distillation, then a bias-correction layer on held-out exemplars."""

from dataclasses import dataclass

from cfer.strategies.params import StrategyParams
from cfer.strategies.registry import register_strategy


@dataclass(frozen=True)
class BiCParams(StrategyParams):
    val_fraction: float = 0.1  # Wu et al. / Avalanche: 10% of the memory held out for bias correction
    epochs: int = 200  # bias-correction (stage 2) epochs; Avalanche / FACIL: 200
    lr: float = 0.1  # bias-correction learning rate; Avalanche default
    temperature: float = 2.0  # distillation temperature; Wu et al.: T = 2

    def __post_init__(self) -> None:
        self.check("val_fraction", 0 < self.val_fraction < 1, "in (0, 1)")
        self.check("epochs", self.epochs >= 0, ">= 0")
        self.check("lr", self.lr > 0, "> 0")
        self.check("temperature", self.temperature > 0, "> 0")


@register_strategy("bic", params=BiCParams, order=180,
                   description="BiC: replay + distillation + bias correction of new-class logits")
def bic(ctx):
    from avalanche.training import Naive

    from cfer.plugins.workarounds.baselines import bic_plugin

    p = ctx.params
    buffer = ctx.class_balanced_buffer()
    if int(p.val_fraction * buffer.max_size) < 1:
        raise ValueError(f"{BiCParams.key('val_fraction')}: {p.val_fraction} of a {buffer.max_size}-"
                         "exemplar memory holds out no validation exemplars for bias correction; "
                         "raise it or the memory (training.memory_fraction / mem_per_class)")
    plugin = bic_plugin()(mem_size=buffer.max_size, batch_size_mem=ctx.replay_batch_size(),
                          storage_policy=buffer, val_percentage=p.val_fraction, T=p.temperature,
                          stage_2_epochs=p.epochs, lr=p.lr, num_workers=ctx.config.num_workers)
    return Naive(**ctx.template_kwargs(plugin))
