"""BiC (Wu et al.): replay + distillation, then a bias-correction layer on held-out exemplars."""

from cfer.strategies.registry import register_strategy


@register_strategy("bic", description="BiC: replay + distillation + bias correction of new-class logits")
def bic(ctx):
    from unittest import mock

    import avalanche.training.plugins.bic as bic_module
    from avalanche.training import Naive
    from avalanche.training.plugins import BiCPlugin
    from torch.optim.lr_scheduler import MultiStepLR

    def multistep_lr(optimizer, milestones, gamma=0.1, verbose=None, **kwargs):
        # Why: torch 2.14's MultiStepLR has no `verbose` argument; BiCPlugin passes one.
        return MultiStepLR(optimizer, milestones=milestones, gamma=gamma, **kwargs)

    class ExperienceView:
        """The experience with a writable ``dataset`` (everything else is the experience's)."""

        def __init__(self, experience, dataset):
            self._experience = experience
            self.dataset = dataset

        def __getattr__(self, name):
            return getattr(self._experience, name)

    class BiC(BiCPlugin):
        """Why: BiCPlugin holds out its validation exemplars by assigning
        ``strategy.experience.dataset``, a read-only property of the 0.6 benchmark
        API (AttributeError). Here it writes to a view; the view's training part
        becomes the adapted dataset and is what the memory later samples from."""

        train_part = None

        def _with_view(self, strategy, method, dataset, **kwargs):
            experience = strategy.experience
            view = ExperienceView(experience, dataset)
            strategy.experience = view
            try:
                method(strategy, **kwargs)
            finally:
                strategy.experience = experience
            return view.dataset

        def before_train_dataset_adaptation(self, strategy, **kwargs):
            self.train_part = self._with_view(strategy, super().before_train_dataset_adaptation,
                                              strategy.experience.dataset, **kwargs)

        def after_train_dataset_adaptation(self, strategy, **kwargs):
            strategy.adapted_dataset = self.train_part.train()

        def after_training_exp(self, strategy, **kwargs):
            self._with_view(strategy, super().after_training_exp, self.train_part, **kwargs)

        def bias_correction_step(self, strategy, **kwargs):
            with mock.patch.object(bic_module, "MultiStepLR", multistep_lr):
                super().bias_correction_step(strategy, **kwargs)

    cfg = ctx.config
    buffer = ctx.class_balanced_buffer()
    if int(cfg.bic_val_fraction * buffer.max_size) < 1:
        raise ValueError(f"strategy 'bic': bic_val_fraction {cfg.bic_val_fraction} of a {buffer.max_size}-"
                         "exemplar memory holds out no validation exemplars for bias correction; "
                         "raise bic_val_fraction or the memory (memory_fraction / mem_per_class)")
    plugin = BiC(mem_size=buffer.max_size, batch_size_mem=ctx.replay_batch_size(), storage_policy=buffer,
                 val_percentage=cfg.bic_val_fraction, T=cfg.bic_temperature,
                 stage_2_epochs=cfg.bic_epochs, lr=cfg.bic_lr, num_workers=cfg.num_workers)
    return Naive(**ctx.template_kwargs(plugin))
