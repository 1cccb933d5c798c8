"""DER++ (Buzzega et al.): replay of stored logits and labels."""

from dataclasses import dataclass

from cfer.strategies.params import StrategyParams
from cfer.strategies.registry import register_strategy


@dataclass(frozen=True)
class DERParams(StrategyParams):
    alpha: float = 0.1  # weight of the logit-matching loss; Buzzega et al. / Avalanche default
    beta: float = 0.5  # weight of the stored-label loss (DER++); 0 gives plain DER; Avalanche default

    def __post_init__(self) -> None:
        self.check("alpha", self.alpha >= 0, ">= 0")
        self.check("beta", self.beta >= 0, ">= 0")


@register_strategy("der", params=DERParams, order=160,
                   description="DER++: replay matching stored logits (beta=0: DER)")
def der(ctx):
    from cfer.plugins.workarounds.baselines import growing_head_der

    strategy_cls, buffer_cls = growing_head_der(ctx.n_classes)
    buffer = ctx.class_balanced_buffer(buffer_cls)
    p = ctx.params
    strategy = strategy_cls(mem_size=buffer.max_size, batch_size_mem=ctx.replay_batch_size(),
                            alpha=p.alpha, beta=p.beta, **ctx.template_kwargs())
    strategy.storage_policy = buffer  # the paper's memory rule (grow or limit)
    return strategy
