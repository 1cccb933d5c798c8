"""Experience replay with random exemplars, sized by the paper's memory rule."""

from cfer.strategies.registry import register_strategy


@register_strategy("replay", order=100,
                   description="random class-balanced exemplars (the PSMR memory size), replayed")
def replay(ctx):
    from avalanche.training import Naive
    from avalanche.training.plugins import ReplayPlugin

    buffer = ctx.class_balanced_buffer()
    plugin = ReplayPlugin(mem_size=buffer.max_size, batch_size_mem=ctx.replay_batch_size(),
                          storage_policy=buffer)
    return Naive(**ctx.template_kwargs(plugin))
