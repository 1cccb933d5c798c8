"""Joint training on the whole stream at once: the upper bound."""

from cfer.strategies.registry import register_strategy


@register_strategy("joint", offline=True, order=10,
                   description="trained once on all experiences (upper bound); scored per step on "
                               "the classes seen so far")
def joint(ctx):
    # Trained with the basic experience's schedule (JointTraining's single pass starts at
    # experience 0); the runner sets strategy.seen_class_mask.n_seen before each evaluation.
    from avalanche.training import JointTraining

    return JointTraining(**ctx.template_kwargs())
