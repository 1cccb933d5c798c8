"""Avalanche's loss, accuracy, forgetting, BWT and confusion-matrix metrics, read once per phase.

Why: Avalanche 0.6's ``Accuracy.update`` calls ``float()`` on a device tensor per
mini-batch, its ``Mean.update`` calls ``float()`` on the loss per mini-batch
(``loss_metrics(epoch=True)``: every training iteration), and its
``ConfusionMatrix.update`` calls ``.item()`` four times per batch and then loops
over the samples. Each is a host-device synchronisation: on a GPU at batch 32
the step is launch-bound, so each one costs throughput (docs/benchmarks.md).

The classes here are Avalanche's plugin metrics (same names, same emission
points, same loggers) with the inner metric swapped for a deferred one: a
mini-batch only queues its device tensors (the number of correct predictions,
the loss, the labels); the values are read in one transfer when the result is
asked for (once per epoch, experience or stream) and then folded into
Avalanche's own ``Mean`` in mini-batch order, so every emitted number is the one
Avalanche would have emitted, to the last bit (``tests/test_sync_free.py``). The private
attributes of Avalanche's metrics that this swaps and reads are reached through
:mod:`cfer.plugins.workarounds.metrics`.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from avalanche.evaluation.metrics import accuracy as av_accuracy
from avalanche.evaluation.metrics import confusion_matrix as av_confusion
from avalanche.evaluation.metrics import forgetting_bwt as av_forgetting
from avalanche.evaluation.metrics import loss as av_loss

from cfer.plugins.workarounds import metrics as internals


def _labels(y: torch.Tensor) -> torch.Tensor:
    """Class ids from labels or logits (as Avalanche's metrics read them)."""
    y = torch.as_tensor(y)
    return torch.max(y, 1)[1] if y.dim() > 1 else y


class _Queue:
    """Device scalars and their weights, read in one transfer and folded into a ``Mean``."""

    def __init__(self, mean):
        self.mean = mean
        self.values: list[torch.Tensor] = []
        self.weights: list[int] = []

    def add(self, value: torch.Tensor, weight: int) -> None:
        self.values.append(value.detach().reshape(()))
        self.weights.append(weight)

    def flush(self, scale) -> None:
        """Fold the queued values into the mean as ``mean.update(scale(v, w), w)``, in order."""
        if not self.values:
            return
        # float64 holds every float32/bf16/int64 count exactly, as float() would read it.
        read = torch.stack([v.to(torch.float64) for v in self.values]).tolist()
        for v, w in zip(read, self.weights):
            self.mean.update(scale(v, w), w)
        self.values, self.weights = [], []


class DeferredAccuracy(av_accuracy.Accuracy):
    """Avalanche's ``Accuracy``; ``update`` queues the correct count on the device."""

    def __init__(self):
        super().__init__()
        self._queue = _Queue(internals.accuracy_mean(self))

    @torch.no_grad()
    def update(self, predicted_y, true_y) -> None:
        if len(true_y) != len(predicted_y):
            raise ValueError("Size mismatch for true_y and predicted_y tensors")
        correct = torch.sum(torch.eq(_labels(predicted_y), _labels(true_y)))
        self._queue.add(correct, len(true_y))

    def result(self) -> float:
        # Accuracy.update: mean.update(true_positives / total_patterns, total_patterns)
        self._queue.flush(lambda tp, n: tp / n)
        return super().result()

    def reset(self) -> None:
        super().reset()
        self._queue = _Queue(internals.accuracy_mean(self))


class DeferredTaskAwareAccuracy(av_accuracy.TaskAwareAccuracy):
    """Avalanche's ``TaskAwareAccuracy`` (one int task label per update) over
    :class:`DeferredAccuracy`."""

    def __init__(self):
        super().__init__()
        internals.set_task_accuracies(self, defaultdict(DeferredAccuracy))

    def update(self, predicted_y, true_y, task_labels) -> None:
        if not isinstance(task_labels, int):
            raise ValueError("DeferredTaskAwareAccuracy: one int task label per update (the "
                             "forgetting metrics pass 0)")
        internals.task_accuracies(self)[task_labels].update(predicted_y, true_y)

    def reset(self, task_label=None) -> None:
        if task_label is None:
            internals.set_task_accuracies(self, defaultdict(DeferredAccuracy))
        else:
            internals.task_accuracies(self)[task_label].reset()


class DeferredLoss(av_loss.LossMetric):
    """Avalanche's ``LossMetric``; ``update`` queues the mean loss on the device."""

    def __init__(self):
        super().__init__()
        self._queue = _Queue(internals.loss_mean(self))

    @torch.no_grad()
    def update(self, loss, patterns: int) -> None:
        self._queue.add(torch.mean(loss), patterns)

    def result(self) -> float:
        # LossMetric.update: mean.update(torch.mean(loss), weight=patterns)
        self._queue.flush(lambda v, n: v)
        return super().result()

    def reset(self) -> None:
        super().reset()
        self._queue = _Queue(internals.loss_mean(self))


class DeferredConfusionMatrix(av_confusion.ConfusionMatrix):
    """Avalanche's ``ConfusionMatrix`` (no ``num_classes``, no normalisation) built with one
    ``bincount`` from the queued labels instead of a loop over the samples."""

    def __init__(self):
        super().__init__(num_classes=None, normalize=None)
        self._true: list[torch.Tensor] = []
        self._pred: list[torch.Tensor] = []
        self._width = -1  # widest logits seen (Avalanche sizes the matrix by them too)

    @torch.no_grad()
    def update(self, true_y, predicted_y) -> None:
        if len(true_y) != len(predicted_y):
            raise ValueError("Size mismatch for true_y and predicted_y tensors")
        for y in (true_y, predicted_y):
            if y.dim() > 1:
                self._width = max(self._width, y.shape[1])
        self._true.append(_labels(true_y).detach())
        self._pred.append(_labels(predicted_y).detach())

    def result(self) -> torch.Tensor:
        if self._true:
            t, p = torch.cat(self._true).long(), torch.cat(self._pred).long()
            lo, hi = torch.stack([torch.minimum(t.min(), p.min()), torch.maximum(t.max(), p.max())]).tolist()
            if lo < 0:
                raise ValueError("Label values must be non-negative values")
            size = max(self._width, int(hi) + 1)
            counts = torch.bincount(t * size + p, minlength=size * size).view(size, size).cpu()
            old = internals.confusion_counts(self)
            internals.set_confusion_counts(self, counts if old is None else self._grow(old, counts))
            self._true, self._pred = [], []
        return super().result()

    @staticmethod
    def _grow(old: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        size = max(old.shape[0], counts.shape[0])
        out = torch.zeros(size, size, dtype=torch.long)
        out[: old.shape[0], : old.shape[0]] += old
        out[: counts.shape[0], : counts.shape[0]] += counts
        return out

    def reset(self) -> None:
        super().reset()
        self._true, self._pred, self._width = [], [], -1


# -- the plugin metrics: Avalanche's classes with the deferred inner metric -------------------

class ExperienceAccuracy(av_accuracy.ExperienceAccuracy):
    def __init__(self):
        super().__init__()
        internals.replace_inner_metric(self, DeferredAccuracy())


class StreamAccuracy(av_accuracy.StreamAccuracy):
    def __init__(self):
        super().__init__()
        internals.replace_inner_metric(self, DeferredAccuracy())


class EpochAccuracy(av_accuracy.EpochAccuracy):
    def __init__(self):
        super().__init__()
        internals.replace_inner_metric(self, DeferredAccuracy())


def _deferred_loss(metric):
    internals.replace_inner_metric(metric, DeferredLoss())
    return metric


class EpochLoss(av_loss.EpochLoss):
    def __init__(self):
        super().__init__()
        _deferred_loss(self)


class ExperienceLoss(av_loss.ExperienceLoss):
    def __init__(self):
        super().__init__()
        _deferred_loss(self)


class StreamLoss(av_loss.StreamLoss):
    def __init__(self):
        super().__init__()
        _deferred_loss(self)


class ExperienceForgetting(av_forgetting.ExperienceForgetting):
    def __init__(self):
        super().__init__()
        internals.replace_current_accuracy(self, DeferredTaskAwareAccuracy())


class StreamForgetting(av_forgetting.StreamForgetting):
    def __init__(self):
        super().__init__()
        internals.replace_current_accuracy(self, DeferredTaskAwareAccuracy())


class ExperienceBWT(av_forgetting.ExperienceBWT):
    def __init__(self):
        super().__init__()
        internals.replace_current_accuracy(self, DeferredTaskAwareAccuracy())


class StreamBWT(av_forgetting.StreamBWT):
    def __init__(self):
        super().__init__()
        internals.replace_current_accuracy(self, DeferredTaskAwareAccuracy())


class StreamConfusionMatrix(av_confusion.StreamConfusionMatrix):
    """Avalanche's stream confusion matrix (``save_image=False``: no figure per evaluation)."""

    def __init__(self):
        super().__init__(num_classes=None, normalize=None, save_image=False)
        self.reset()

    def reset(self) -> None:
        internals.replace_stream_matrix(self, DeferredConfusionMatrix())


# -- factories with Avalanche's signatures -----------------------------------------------------

def accuracy_metrics(*, epoch: bool = False, experience: bool = False, stream: bool = False) -> list:
    """As ``avalanche.evaluation.metrics.accuracy_metrics`` (no minibatch/running/trained
    variants: they would read a value every iteration anyway)."""
    return ([EpochAccuracy()] if epoch else []) + ([ExperienceAccuracy()] if experience else []) + \
        ([StreamAccuracy()] if stream else [])


def loss_metrics(*, epoch: bool = False, experience: bool = False, stream: bool = False) -> list:
    """As ``avalanche.evaluation.metrics.loss_metrics`` (no minibatch/running variants)."""
    return ([EpochLoss()] if epoch else []) + ([ExperienceLoss()] if experience else []) + \
        ([StreamLoss()] if stream else [])


def forgetting_metrics(*, experience: bool = False, stream: bool = False) -> list:
    return ([ExperienceForgetting()] if experience else []) + ([StreamForgetting()] if stream else [])


def bwt_metrics(*, experience: bool = False, stream: bool = False) -> list:
    return ([ExperienceBWT()] if experience else []) + ([StreamBWT()] if stream else [])
