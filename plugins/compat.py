"""Every workaround for Avalanche 0.6.0 (on torch 2.14, numpy 2.x) in one place.

Each function or class here says what breaks in stock Avalanche and why the
workaround is needed, so an Avalanche upgrade is checked against this one module:
delete what the new release fixes. Nothing else in the project patches, mocks
or reads private attributes of Avalanche objects.
"""

from __future__ import annotations

# -- strategies -----------------------------------------------------------------------------------
# Used by cfer.strategies (strategies/builder.py and the zoo). Each function imports Avalanche
# inside, so that importing this section costs nothing.


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


def loader_defaults(strategy, **defaults) -> None:
    """Make ``defaults`` the default data-loader options of ``train()``/``eval()``.

    Why: Avalanche takes loader options (``num_workers``...) only as keyword
    arguments of each ``train``/``eval`` call; this applies the config's once.
    """
    train, evaluate = strategy.train, strategy.eval
    strategy.train = lambda *args, **kwargs: train(*args, **{**defaults, **kwargs})
    strategy.eval = lambda *args, **kwargs: evaluate(*args, **{**defaults, **kwargs})


def no_initial_eval(strategy) -> None:
    """Turn off ``PeriodicEval``'s evaluation at the start of every ``train()`` call.

    Why: it runs before the head has grown for the new experience, so it would
    score a class the model has never been trained on (and it costs a full
    validation pass per experience); early stopping does not need it. The
    plugin's ``do_initial`` flag is not a constructor option of the templates.
    """
    from avalanche.training.templates.base_sgd import PeriodicEval

    for p in strategy.plugins:
        if isinstance(p, PeriodicEval):
            p.do_initial = False


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

    def multistep_lr(optimizer, milestones, gamma=0.1, verbose=None, **kwargs):
        return MultiStepLR(optimizer, milestones=milestones, gamma=gamma, **kwargs)

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

    with mock.patch.object(icarl_module, "ICaRLLossPlugin", GrowingHeadICaRLLoss):
        return ICaRL(**kwargs)


# -- plugins --------------------------------------------------------------------------------------
# Used by cfer.plugins: the fast data path (plugins/speed/) reads Avalanche's dataset and loader
# internals, fp16 loss scaling replaces two template methods (plugins/speed/precision.py), and
# feature-based exemplar selection skips an Avalanche constructor (plugins/selection.py). Imports
# stay inside the functions, as above.


def index_array(indices):
    """A flat-data level's index sequence as an int64 numpy array.

    Why: Avalanche 0.6 keeps a level's indices as a ``LazyIndices``, a Sequence
    with no vectorised access (read item by item it costs a Python call per item).
    Its array form is private: ``_to_eager()`` fills ``_eager_list``. Where those
    are missing the indices are read one by one: correct, only slower.
    """
    import numpy as np

    if isinstance(indices, np.ndarray):
        return indices.astype(np.int64, copy=False)
    if isinstance(indices, (list, tuple, range)):
        return np.asarray(indices, dtype=np.int64)
    # Avalanche's LazyIndices: a Sequence without vectorised access; use its eager array.
    if hasattr(indices, "_to_eager"):
        indices._to_eager()
        if isinstance(getattr(indices, "_eager_list", None), np.ndarray):
            return indices._eager_list
    return np.fromiter(indices, dtype=np.int64, count=len(indices))


def flat_data_children(level, idx):
    """Per child of an Avalanche ``FlatData`` level, the items ``idx`` (an int64 array)
    that fall in it: yields ``(child, positions into idx, indices local to the child)``.

    Why: Avalanche 0.6 maps an item to a child only one item at a time
    (``FlatData._get_idx``, called by ``__getitem__``), from the private
    ``_indices`` (None: identity), ``_cumulative_sizes`` and ``_datasets``; it has
    no public, batched way. This is the same lookup for a whole index array.
    """
    import numpy as np

    if getattr(level, "_indices", None) is not None:
        idx = index_array(level._indices)[idx]
    ends = np.asarray(level._cumulative_sizes, dtype=np.int64)
    which = np.searchsorted(ends, idx, side="right")
    for k, child in enumerate(level._datasets):
        sel = np.flatnonzero(which == k)
        if len(sel):
            yield child, sel, idx[sel] - (ends[k - 1] if k else 0)


def transform_groups(level) -> list:
    """The transform groups a flat-data level applies to what its child returns, in the
    order it applies them: the frozen groups, then the others (each maps a group name,
    such as ``"train"``, to a transform).

    Why: Avalanche 0.6 has no public read of a level's transforms: they are its
    private ``_frozen_transform_groups`` and ``_transform_groups`` (either may be
    absent or None).
    """
    out = []
    for name in ("_frozen_transform_groups", "_transform_groups"):
        groups = getattr(level, name, None)
        if groups is not None:
            out.append(groups)
    return out


def dataset_flat_data(ds) -> tuple:
    """``(root, group)``: the root of an ``AvalancheDataset``'s flat-data tree and the name
    of its current transform group.

    Why: Avalanche 0.6 fetches items only one at a time; the fast data path walks
    the same tree for all items at once (:func:`flat_data_children`). The tree is
    the private ``_flat_data``, the group its private ``_transform_groups.current_group``.
    """
    flat = ds._flat_data
    return flat, flat._transform_groups.current_group


def item_attributes(ds) -> list:
    """The data attributes an ``AvalancheDataset`` appends to each item after ``(x, y)``
    (the task labels), in item order.

    Why: Avalanche 0.6 lists them only in the private ``_data_attributes`` (name ->
    ``DataAttribute``, appended when ``use_in_getitem``).
    """
    return [da for da in ds._data_attributes.values() if da.use_in_getitem]


def epoch_loader(loader):
    """The torch ``DataLoader`` (with its batch sampler) that a ``MultiDatasetDataLoader``
    iterates this epoch, its samplers built exactly as its ``__iter__`` builds them.

    Why: Avalanche 0.6 builds that loader (one sampler per dataset, oversampling,
    the generator) only inside ``__iter__``, through the private ``_get_loader()``;
    the fast data path replays its batch sampler, so that batches and the random
    stream stay Avalanche's.
    """
    return loader._get_loader()


SGD_STEPS = ("backward", "optimizer_step")


def own_sgd_steps(strategy) -> list[str] | None:
    """Which of :data:`SGD_STEPS` the strategy's class defines itself (``[]``: it keeps the
    template's); ``None`` when it is not an Avalanche SGD template. Replacing a step the
    class defines itself (:func:`replace_sgd_steps`) would drop that class's code."""
    from avalanche.training.templates.base_sgd import BaseSGDTemplate

    if not isinstance(strategy, BaseSGDTemplate):
        return None
    cls = type(strategy)
    return [name for name in SGD_STEPS if getattr(cls, name) is not getattr(BaseSGDTemplate, name)]


def replace_sgd_steps(strategy, *, backward, optimizer_step) -> None:
    """Make ``backward`` and ``optimizer_step`` (callables without arguments) the strategy's
    own, as instance attributes, so that every strategy class is covered as built.

    Why: Avalanche 0.6's ``BaseSGDTemplate`` has no mixed precision: its
    ``backward()`` calls ``loss.backward()`` and its ``optimizer_step()`` calls
    ``optimizer.step()``, and no plugin callback sits between them where a
    ``GradScaler`` could scale the loss, unscale the gradients or skip a step. Only
    for classes that keep the template's two methods (:func:`own_sgd_steps` ``[]``).
    """
    strategy.backward = backward
    strategy.optimizer_step = optimizer_step


def flattens_gradients(strategy) -> bool:
    """Whether a plugin of ``strategy`` reads gradients with ``.view(-1)``: Avalanche's
    ``AGEMPlugin`` and ``GSS_greedyPlugin``.

    Why: in Avalanche 0.6 both flatten ``p.grad`` with ``.view(-1)``, which fails on
    the gradients of channels-last weights (not contiguous); with them,
    channels-last applies to the inputs only and parameters (hence gradients) keep
    their layout.
    """
    from avalanche.training.plugins import AGEMPlugin, GSS_greedyPlugin

    return any(isinstance(p, (AGEMPlugin, GSS_greedyPlugin)) for p in strategy.plugins)


class LiveFeatureOrdering:
    """Mixin, listed before Avalanche's ``HerdingSelectionStrategy`` or
    ``ClosestToCenterSelectionStrategy``: their ordering, of features the subclass
    computes from the strategy's current model (its ``features(strategy, data)``: (N, D)).

    Why: in Avalanche 0.6 their ``__init__`` wraps a fixed model in a
    ``FeatureExtractorBackbone``: a forward hook bound at construction, before a
    plugin has a model, and lost when ``IncrementalClassifier`` replaces its
    ``Linear`` on growth; its ``make_sorted_indices`` also leaves the whole model in
    eval mode. So the base ``__init__`` is not called (its
    ``make_sorted_indices_from_features`` needs none of its state) and
    ``make_sorted_indices`` is replaced.
    """

    def __init__(self, layer_name: str | None = None):
        # Avalanche's __init__ (which builds a FeatureExtractorBackbone on a fixed model) is
        # deliberately not called: the model is read from the strategy at selection time.
        self.layer_name = layer_name

    def make_sorted_indices(self, strategy, data) -> list[int]:
        feats = self.features(strategy, data)
        return [int(i) for i in self.make_sorted_indices_from_features(feats)]


# -- experience boundaries

def call_before_after_training_exp(strategy, hook) -> None:
    """Run ``hook()`` when ``strategy``'s training loop of an experience is over, before the
    template's ``_after_training_exp`` (its own after-experience work, then the plugins').

    Why: Avalanche 0.6 has no callback there. ``after_training_epoch`` does not
    fire for an experience run with no epoch (a primed shared basic model), and
    templates such as DER and ER-ACE update their buffers in
    ``_after_training_exp`` before any plugin's ``after_training_exp``, so a
    re-seed must wrap that method itself.
    """
    original = strategy._after_training_exp

    def after_training_exp(**kwargs):
        hook()
        return original(**kwargs)

    strategy._after_training_exp = after_training_exp
