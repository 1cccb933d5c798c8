"""iCaRL (Rebuffi et al.): herding exemplars, distillation, nearest-mean-of-exemplars classifier."""

from cfer.strategies.registry import register_strategy


@register_strategy("icarl", order=120,
                   description="iCaRL: herding exemplars + distillation + nearest class mean "
                               "(full epoch budget, no early stopping)")
def icarl(ctx):
    from torchvision.transforms import v2

    from cfer.plugins.speed.herding import herding_icarl_plugin
    from cfer.plugins.workarounds.baselines import growing_head_icarl, icarl_stream_layout

    big_m, m = ctx.memory_sizes()
    grow = ctx.config.memory_mode == "grow"
    # Its nearest-class-mean output also covers classes without exemplars yet (zero means):
    # mask them to the classes trained so far.
    ctx.mask.auto = True
    # No early stopping: the nearest-mean classifier that iCaRL evaluates with is only rebuilt
    # after each experience, so validation scores taken between epochs do not reflect the
    # epoch just trained (during experience 0 every class mean is still zero). iCaRL trains
    # for a fixed number of epochs, as in Rebuffi et al.
    ctx.schedule.patience = 0
    kwargs = ctx.template_kwargs(icarl_stream_layout(ctx.benchmark))
    del kwargs["model"], kwargs["criterion"]
    kwargs["eval_every"] = -1
    return growing_head_icarl(feature_extractor=ctx.model.feature_extractor, classifier=ctx.model.classifier,
                              memory_size=m if grow else big_m, fixed_memory=not grow,
                              # exemplars are stored already normalised; iCaRL augments them by flipping
                              buffer_transform=v2.RandomHorizontalFlip(),
                              # herding with one device read per class, not per exemplar
                              plugin_class=herding_icarl_plugin(), **kwargs)
