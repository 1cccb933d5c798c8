"""iCaRL (Rebuffi et al.): herding exemplars, distillation, nearest-mean-of-exemplars classifier."""

from cfer.strategies.registry import register_strategy


@register_strategy("icarl", description="iCaRL: herding exemplars + distillation + nearest class mean "
                                        "(full epoch budget, no early stopping)")
def icarl(ctx):
    import copy
    from types import SimpleNamespace
    from unittest import mock

    import avalanche.training.supervised.icarl as icarl_module
    from avalanche.core import SupervisedPlugin
    from avalanche.training import ICaRL
    from avalanche.training.losses import ICaRLLossPlugin
    from torchvision.transforms import v2

    class GrowingHeadICaRLLoss(ICaRLLossPlugin):
        """Why: the base class keeps one copy of the old model and load_state_dict()s
        the new weights into it, which fails once the head has grown (size mismatch);
        here the old model is a fresh copy after each experience."""

        def after_training_exp(self, strategy, **kwargs):
            self.old_model = copy.deepcopy(strategy.model).to(strategy.device)
            self.old_classes += sorted({int(t) for t in strategy.experience.dataset.targets})

    layout = SimpleNamespace(
        n_classes_per_exp=[len(e.classes_in_this_experience) for e in ctx.benchmark.train_stream],
        classes_order=[int(c) for e in ctx.benchmark.train_stream
                       for c in sorted(e.classes_in_this_experience)])

    class StreamLayout(SupervisedPlugin):
        """Why: Avalanche's iCaRL plugin reads ``experience.benchmark.n_classes_per_exp``
        and ``.classes_order`` (the nc_benchmark API); experiences of our
        class_incremental_benchmark have no ``benchmark``, so attach that layout."""

        def before_training_exp(self, strategy, **kwargs):
            strategy.experience.benchmark = layout
            self._sizes(strategy)

        @staticmethod
        def _sizes(strategy):
            """Why: the iCaRL plugin learns its feature size on the first training forward;
            an experience primed without epochs (a shared basic model) has none, so take it
            from one evaluation-mode forward of the experience's first image."""
            import torch

            plugin = next((p for p in strategy.plugins if type(p).__name__ == "_ICaRLPlugin"), None)
            if plugin is None or plugin.input_size is not None:
                return
            x = strategy.experience.dataset.eval()[0][0].unsqueeze(0).to(strategy.device)
            model, was_training = strategy.model, strategy.model.training
            model.eval()
            with torch.no_grad():
                # (model.train_classifier: in eval mode iCaRL answers by class means, none yet)
                features = model.feature_extractor(x)
                plugin.input_size = x.shape[1:]
                plugin.output_size = model.train_classifier(features).shape[1]
                plugin.embedding_size = features.shape[1]
            model.train(was_training)

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
    kwargs = ctx.template_kwargs(StreamLayout())
    del kwargs["model"], kwargs["criterion"]
    kwargs["eval_every"] = -1
    with mock.patch.object(icarl_module, "ICaRLLossPlugin", GrowingHeadICaRLLoss):
        return ICaRL(feature_extractor=ctx.model.feature_extractor, classifier=ctx.model.classifier,
                     memory_size=m if grow else big_m, fixed_memory=not grow,
                     # exemplars are stored already normalised; iCaRL augments them by flipping
                     buffer_transform=v2.RandomHorizontalFlip(), **kwargs)
