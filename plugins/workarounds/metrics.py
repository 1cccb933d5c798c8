"""The metric and evaluation internals of Avalanche 0.6 that our metrics read or replace (used by
plugins/metrics/deferred.py and plugins/speed/one_pass.py).

Avalanche's plugin metrics keep their inner metric, and its inner metrics their running means,
in private attributes, and its ``EvaluationPlugin`` forwards a callback to its metrics and
loggers only through a private method; Avalanche has no public way to swap the inner metric
(for one read without a host-device sync per mini-batch) or to replay a callback.
"""

from __future__ import annotations


def accuracy_mean(accuracy):
    """The running ``Mean`` of an ``Accuracy`` (private ``_mean_accuracy``), which the deferred
    accuracy fills in mini-batch order when its result is asked for."""
    return accuracy._mean_accuracy


def loss_mean(loss):
    """The running ``Mean`` of a ``LossMetric`` (private ``_mean_loss``)."""
    return loss._mean_loss


def task_accuracies(metric):
    """A ``TaskAwareAccuracy``'s accuracies per task label (private ``_mean_accuracy``)."""
    return metric._mean_accuracy


def set_task_accuracies(metric, accuracies) -> None:
    """Replace a ``TaskAwareAccuracy``'s accuracies per task label (a ``defaultdict`` of ours)."""
    metric._mean_accuracy = accuracies


def confusion_counts(matrix):
    """The counts a ``ConfusionMatrix`` has accumulated (private ``_cm_tensor``; None: none yet)."""
    return matrix._cm_tensor


def set_confusion_counts(matrix, counts) -> None:
    matrix._cm_tensor = counts


def replace_inner_metric(plugin_metric, metric) -> None:
    """Make ``metric`` the inner metric of an Avalanche plugin metric: its private ``_metric``
    (``GenericPluginMetric``), and ``_loss`` too for the loss plugin metrics, which keep it
    under both names."""
    plugin_metric._metric = metric
    if hasattr(plugin_metric, "_loss"):
        plugin_metric._loss = metric


def replace_current_accuracy(forgetting, metric) -> None:
    """Make ``metric`` the accuracy a forgetting or BWT plugin metric measures with (private
    ``_current_metric``)."""
    forgetting._current_metric = metric


def replace_stream_matrix(stream_matrix, matrix) -> None:
    """Make ``matrix`` the ``ConfusionMatrix`` of a ``StreamConfusionMatrix`` (private ``_matrix``)."""
    stream_matrix._matrix = matrix


def update_metrics_and_loggers(evaluator, strategy, callback: str) -> None:
    """Have an ``EvaluationPlugin`` hand ``callback`` (``"before_eval_exp"``...) to its metrics and
    loggers, as Avalanche does when the callback fires (its private ``_update_metrics_and_loggers``).
    One-pass evaluation replays the per-experience callbacks through it."""
    evaluator._update_metrics_and_loggers(strategy, callback)


def experience_with_dataset(experience, dataset):
    """A shallow copy of ``experience`` holding ``dataset``: in Avalanche 0.6 ``dataset`` is a
    read-only property over the private ``_dataset``."""
    import copy

    out = copy.copy(experience)
    out._dataset = dataset
    return out
