"""Exemplar selection strategies for class-grouped replay memories.

``PredictiveSortingSelection`` is the paper's ranking (PSMR): a class's
training images sorted by the model's confidence in their true class, most
confident first. The paper's text says "predicted probability"; its reference
code ranks by the raw logit of the true class (src/models/train.py
``RepresentativeMemoryUpdate``: ``model.predict`` on a model whose last ``Dense``
is linear, then ``np.argsort(preds[:, idx])[::-1]``), so ``score="logit"`` is the
default and ``score="probability"`` (softmax over the active units) the paper's
wording. The two orders differ when other classes' logits vary between images.
The other strategies are Avalanche's, so that
"which exemplars" is one switch (``selection_strategy(name)``):

- ``"random"``: Avalanche's ``RandomExemplarsSelectionStrategy`` as is;
- ``"herding"``, ``"closest_to_center"``: Avalanche's
  ``HerdingSelectionStrategy`` / ``ClosestToCenterSelectionStrategy``
  orderings, fed by the small feature extractor below instead of Avalanche's
  ``FeatureExtractorBackbone``. Why: that one binds the model and a forward
  hook at construction (before the plugin has a model, and the hook is lost
  when ``IncrementalClassifier`` replaces its ``Linear`` on growth), and it
  leaves the whole model in eval mode after selecting (the template calls
  ``model.train()`` only once per ``train()`` call, so later experiences
  would train with dropout/batch-norm in eval mode).

Every strategy here ranks on the un-augmented view of the data
(``data.eval()``), in eval mode (the previous train/eval mode of each module
is restored afterwards), without gradients, batched by
``strategy.eval_mb_size`` on ``strategy.device``.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from avalanche.models import avalanche_forward
from avalanche.training.storage_policy import (
    ClosestToCenterSelectionStrategy,
    ExemplarsSelectionStrategy,
    HerdingSelectionStrategy,
    RandomExemplarsSelectionStrategy,
)

from cfer.plugins.method.params import SELECTIONS, PSMRParams
from cfer.plugins.workarounds.selection import LiveFeatureOrdering


def active_classes(strategy, n_outputs: int) -> list[int]:
    """Sorted ids of the classes the model has been trained on so far.

    These are its active output units: Avalanche's ``IncrementalClassifier``
    also holds masked (-1000) units for classes it has not been trained on yet
    (it adapts to evaluation experiences too), which must not take part in a
    softmax. Read from ``strategy.experience.classes_seen_so_far``; when the
    experience does not carry it, all ``n_outputs`` units count as active.
    """
    experience = getattr(strategy, "experience", None)
    seen = getattr(experience, "classes_seen_so_far", None) if experience is not None else None
    if seen is None:
        return list(range(n_outputs))
    ids = sorted(int(c) for c in seen)
    if ids and ids[-1] >= n_outputs:
        raise ValueError(f"the model has {n_outputs} outputs but class {ids[-1]} has been seen; "
                         "is its head adapted to the experience (e.g. IncrementalClassifier)?")
    return ids


@contextmanager
def eval_mode(model: torch.nn.Module):
    """Put ``model`` in eval mode, restoring each module's previous mode on exit."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.train(training)


def _loader(strategy, data):
    # In order, no augmentation; on the fast data path when the strategy has it.
    from cfer.plugins.speed.fast_data import make_loader

    return make_loader(strategy, data.eval(), batch_size=strategy.eval_mb_size)


def _batch_tasks(batch, n: int, device):
    """Task labels of an Avalanche mini-batch ``(x, y, t)``, 0 when absent."""
    if len(batch) > 2:
        return batch[2].to(device)
    return torch.zeros(n, dtype=torch.long, device=device)


class PredictiveSortingSelection(ExemplarsSelectionStrategy):
    """Rank samples by the model's score of their true class, highest first.

    This is the selection of the paper's Predictive Sorting Memory Replay:
    keep the top ``m`` of each class. ``score``:

    - ``"logit"`` (default; the reference code, src/models/train.py
      ``RepresentativeMemoryUpdate``: ``np.argsort(preds[:, idx])[::-1]`` on the
      linear last layer's output): the raw output of the true-class unit;
    - ``"probability"`` (the paper's wording): the softmax of the true class
      over the active units only (see :func:`active_classes`).

    Either way the true class must be an active unit (it is, once trained:
    ``IncrementalClassifier`` masks only the units of unseen classes, with
    -1000), else ranking is an error. Ties keep dataset order (stable sort),
    so the ranking is deterministic.
    """

    def __init__(self, score: str = PSMRParams.score):
        self.score = PSMRParams(score=score).score  # checked where the setting is defined

    @torch.no_grad()
    def make_sorted_indices(self, strategy, data) -> list[int]:
        return torch.argsort(self.true_class_scores(strategy, data), descending=True,
                             stable=True).tolist()

    @torch.no_grad()
    def true_class_scores(self, strategy, data) -> torch.Tensor:
        """The ranking score (``self.score``) of each sample's own class (CPU, float32)."""
        return self._true_class(strategy, data, probability=self.score == "probability")

    @torch.no_grad()
    def true_class_logits(self, strategy, data) -> torch.Tensor:
        """Raw output of each sample's own class unit under the current model (CPU, float32)."""
        return self._true_class(strategy, data, probability=False)

    @torch.no_grad()
    def true_class_probabilities(self, strategy, data) -> torch.Tensor:
        """Probability of each sample's own class under the current model, softmax over the
        active units (CPU, float32)."""
        return self._true_class(strategy, data, probability=True)

    def _true_class(self, strategy, data, *, probability: bool) -> torch.Tensor:
        model, device = strategy.model, strategy.device
        scores = []
        with eval_mode(model):
            for batch in _loader(strategy, data):
                x, y = batch[0].to(device), batch[1].to(device)
                logits = avalanche_forward(model, x, _batch_tasks(batch, len(x), device)).float()
                cols = active_classes(strategy, logits.shape[1])
                position = torch.full((logits.shape[1],), -1, dtype=torch.long, device=device)
                position[cols] = torch.arange(len(cols), device=device)
                where = position[y]
                if (where < 0).any():
                    bad = sorted(set(y[where < 0].tolist()))
                    raise ValueError(f"PredictiveSortingSelection: classes {bad} are not among the "
                                     f"model's trained classes {cols}; rank only after training them")
                active = logits[:, cols]
                if probability:
                    active = torch.softmax(active, dim=1)
                scores.append(active.gather(1, where[:, None]).squeeze(1).cpu())
        return torch.cat(scores) if scores else torch.zeros(0)


@torch.no_grad()
def features(strategy, data, *, layer_name: str | None = None) -> torch.Tensor:
    """Features of ``data`` under ``strategy.model``, flattened to (N, D).

    ``layer_name`` names a module (``model.named_modules()``) whose output is
    taken; ``None`` takes the input of the model's last ``nn.Linear`` (the
    penultimate features, as iCaRL's herding uses). The hook lives only for
    this call, so head growth cannot orphan it.
    """
    model, device = strategy.model, strategy.device
    store = {}
    if layer_name is None:
        linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        if not linears:
            raise ValueError("feature selection: the model has no nn.Linear layer; pass layer_name")
        handle = linears[-1].register_forward_pre_hook(
            lambda module, args: store.__setitem__("f", args[0].detach()))
    else:
        modules = dict(model.named_modules())
        if layer_name not in modules:
            raise ValueError(f"feature selection: no module named {layer_name!r} in the model")
        handle = modules[layer_name].register_forward_hook(
            lambda module, args, out: store.__setitem__("f", out.detach()))
    chunks = []
    try:
        with eval_mode(model):
            for batch in _loader(strategy, data):
                x = batch[0].to(device)
                avalanche_forward(model, x, _batch_tasks(batch, len(x), device))
                chunks.append(store["f"].flatten(1).float())
    finally:
        handle.remove()
    return torch.cat(chunks)


class _LiveFeatureSelection(LiveFeatureOrdering):
    """Feature extraction for Avalanche's feature-based orderings (see module doc; the
    Avalanche constructor it skips: :class:`cfer.plugins.workarounds.selection.LiveFeatureOrdering`)."""

    def features(self, strategy, data) -> torch.Tensor:
        return features(strategy, data, layer_name=self.layer_name)


class HerdingSelection(_LiveFeatureSelection, HerdingSelectionStrategy):
    """Avalanche's iCaRL herding on the model's current features."""


class ClosestToCenterSelection(_LiveFeatureSelection, ClosestToCenterSelectionStrategy):
    """Avalanche's closest-to-class-mean ordering on the model's current features."""


def selection_names() -> tuple[str, ...]:
    """Names accepted by :func:`selection_strategy` (:data:`cfer.plugins.method.params.SELECTIONS`)."""
    return SELECTIONS


def selection_strategy(name: str, *, layer_name: str | None = None,
                       score: str = PSMRParams.score) -> ExemplarsSelectionStrategy:
    """The exemplar selection strategy called ``name`` (see :func:`selection_names`).

    ``layer_name`` picks the feature layer of ``"herding"`` and
    ``"closest_to_center"`` (default: the input of the last ``nn.Linear``);
    ``score`` the ranking score of ``"predictive"`` (:class:`PredictiveSortingSelection`).
    """
    PSMRParams(selection=name, score=score)  # both checked where the settings are defined
    if name in ("herding", "closest_to_center"):
        cls = HerdingSelection if name == "herding" else ClosestToCenterSelection
        return cls(layer_name)
    if layer_name is not None:
        raise ValueError(f"selection {name!r} uses no features; layer_name is only for "
                         "'herding' and 'closest_to_center'")
    if name == "predictive":
        return PredictiveSortingSelection(score)
    return RandomExemplarsSelectionStrategy()
