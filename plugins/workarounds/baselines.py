"""Baselines that fail on Avalanche 0.6 with torch 2.14, made to run (used by
:mod:`cfer.strategies`: strategies/builder.py and the zoo).

Each function imports Avalanche inside, so that importing this module costs nothing.
"""

from __future__ import annotations


def quiet_class_balanced_buffer():
    """Avalanche's ``ClassBalancedBuffer`` whose ``update`` does not warn.

    Why: ReplayPlugin, ER_ACE, BiC and GDumb call the deprecated
    ``storage_policy.update`` (a DeprecationWarning per experience); it only
    forwards to ``post_adapt``, which this calls directly.
    """
    from avalanche.training.storage_policy import ClassBalancedBuffer

    class QuietClassBalancedBuffer(ClassBalancedBuffer):
        def update(self, strategy, **kwargs):
            self.post_adapt(strategy, strategy.experience)

    return QuietClassBalancedBuffer


def growing_head_der(n_classes: int) -> tuple[type, type]:
    """``(GrowingHeadDER, PaddedLogitsBuffer)``: Avalanche's DER and its buffer for a growing head.

    Why: Avalanche's DER compares the logits stored with an exemplar with the
    current output, whose width grows with the head (a shape mismatch at the
    second experience), and stored rows of different widths do not collate.
    The buffer pads stored logits to ``n_classes`` (the final number of
    classes) with NaN, "not a class yet", by patching DER's module-level
    ``compute_dataset_logits`` during ``update``; the strategy gives NaN units
    the current output's value, so they add no loss or gradient (it reads DER's
    ``replay_loader``, ``batch_logits`` and ``batch_size_mem`` in ``_after_forward``).
    """
    from unittest import mock

    import avalanche.training.supervised.der as der_module
    import torch
    import torch.nn.functional as F
    from avalanche.training import DER
    from avalanche.training.supervised.der import ClassBalancedBufferWithLogits

    compute_logits = der_module.compute_dataset_logits

    def padded_logits(*args, **kwargs):
        return [F.pad(row, (0, n_classes - row.shape[0]), value=float("nan"))
                for row in compute_logits(*args, **kwargs)]

    class PaddedLogitsBuffer(ClassBalancedBufferWithLogits):
        def update(self, strategy, **kwargs):
            with mock.patch.object(der_module, "compute_dataset_logits", padded_logits):
                super().update(strategy, **kwargs)

    class GrowingHeadDER(DER):
        def _after_forward(self, **kwargs):
            if self.replay_loader is not None:
                current = self.mb_output[: self.batch_size_mem].detach()
                stored = self.batch_logits[:, : current.shape[1]]
                self.batch_logits = torch.where(torch.isnan(stored), current, stored)
            super()._after_forward(**kwargs)

    return GrowingHeadDER, PaddedLogitsBuffer


def bic_plugin() -> type:
    """Avalanche's ``BiCPlugin``, made to run on the 0.6 benchmark API and torch 2.14.

    Why: (1) ``BiCPlugin`` holds out its validation exemplars by assigning
    ``strategy.experience.dataset``, a read-only property of the 0.6 benchmark
    API (AttributeError); here it writes to a view of the experience, and the
    view's training part becomes the adapted dataset and is what the memory
    later samples from. (2) torch 2.14's ``MultiStepLR`` has no ``verbose``
    argument, which ``bias_correction_step`` passes; the module-level name is
    patched during that step.
    """
    from unittest import mock

    import avalanche.training.plugins.bic as bic_module
    from avalanche.training.plugins import BiCPlugin
    from torch.optim.lr_scheduler import MultiStepLR

    def multistep_lr(optimizer, milestones, verbose=None, **kwargs):
        return MultiStepLR(optimizer, milestones=milestones, **kwargs)

    class ExperienceView:
        """The experience with a writable ``dataset`` (everything else is the experience's)."""

        def __init__(self, experience, dataset):
            self._experience = experience
            self.dataset = dataset

        def __getattr__(self, name):
            return getattr(self._experience, name)

    class BiC(BiCPlugin):
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

    return BiC


def icarl_stream_layout(benchmark):
    """A plugin giving Avalanche's iCaRL what it reads from an ``nc_benchmark``.

    Why: (1) Avalanche's iCaRL plugin reads ``experience.benchmark.n_classes_per_exp``
    and ``.classes_order`` (the nc_benchmark API); experiences of our
    ``class_incremental_benchmark`` have no ``benchmark``, so this attaches that
    layout. (2) The iCaRL plugin (the private ``_ICaRLPlugin``) learns its
    feature size on the first training forward; an experience primed without
    epochs (a shared basic model) has none, so it is taken from one
    evaluation-mode forward of the experience's first image.
    """
    from types import SimpleNamespace

    from avalanche.core import SupervisedPlugin

    layout = SimpleNamespace(
        n_classes_per_exp=[len(e.classes_in_this_experience) for e in benchmark.train_stream],
        classes_order=[int(c) for e in benchmark.train_stream for c in sorted(e.classes_in_this_experience)])

    class StreamLayout(SupervisedPlugin):
        def before_training_exp(self, strategy, **kwargs):
            strategy.experience.benchmark = layout
            self._sizes(strategy)

        @staticmethod
        def _sizes(strategy):
            import torch

            plugin = next((p for p in strategy.plugins
                           if any(c.__name__ == "_ICaRLPlugin" for c in type(p).__mro__)), None)
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

    return StreamLayout()


def growing_head_icarl(**kwargs):
    """Avalanche's ``ICaRL(**kwargs)`` whose distillation loss works with a growing head.

    Why: ``ICaRLLossPlugin`` keeps one copy of the old model and
    ``load_state_dict()``s the new weights into it, which fails once the head has
    grown (size mismatch); here the old model is a fresh copy after each
    experience. ``ICaRL.__init__`` instantiates the loss plugin by its
    module-level name, which is patched while the strategy is built.
    """
    import copy
    from unittest import mock

    import avalanche.training.supervised.icarl as icarl_module
    from avalanche.training import ICaRL
    from avalanche.training.losses import ICaRLLossPlugin

    class GrowingHeadICaRLLoss(ICaRLLossPlugin):
        def after_training_exp(self, strategy, **kwargs):
            self.old_model = copy.deepcopy(strategy.model).to(strategy.device)
            self.old_classes += sorted({int(t) for t in strategy.experience.dataset.targets})

    # and, when given, its own _ICaRLPlugin class (the strategy zoo gives the one whose herding
    # reads the device once per class: cfer.plugins.speed.herding)
    plugin_class = kwargs.pop("plugin_class", None) or icarl_module._ICaRLPlugin
    with mock.patch.object(icarl_module, "ICaRLLossPlugin", GrowingHeadICaRLLoss), \
            mock.patch.object(icarl_module, "_ICaRLPlugin", plugin_class):
        return ICaRL(**kwargs)
