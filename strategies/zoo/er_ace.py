"""ER-ACE (Caccia et al.): replay with asymmetric cross-entropy."""

from cfer.strategies.registry import register_strategy


@register_strategy("er_ace", order=170, description="ER-ACE: replay with asymmetric cross-entropy")
def er_ace(ctx):
    from avalanche.training import ER_ACE

    buffer = ctx.class_balanced_buffer()
    strategy = ER_ACE(mem_size=buffer.max_size, batch_size_mem=ctx.replay_batch_size(),
                      **ctx.template_kwargs())
    strategy.storage_policy = buffer  # the paper's memory rule instead of ER_ACE's adaptive buffer
    return strategy
