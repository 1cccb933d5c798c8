"""GDumb (Prabhu et al.): retrain from scratch on a class-balanced memory."""

from cfer.strategies.registry import register_strategy


@register_strategy("gdumb", description="GDumb: retrain from the initial model on a class-balanced memory")
def gdumb(ctx):
    from avalanche.training import Naive
    from avalanche.training.plugins import GDumbPlugin

    buffer = ctx.class_balanced_buffer(max_size=ctx.config.gdumb_memory)
    plugin = GDumbPlugin(mem_size=buffer.max_size)
    plugin.storage_policy = buffer  # the paper's memory rule (or gdumb_memory) instead of the default
    return Naive(**ctx.template_kwargs(plugin))
