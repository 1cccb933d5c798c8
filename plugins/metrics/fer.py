"""FER metrics as Avalanche ``PluginMetric``s, emitted once per evaluation stream.

Avalanche's own metrics cover accuracy per experience/stream but not the
views of docs/design.md (old/new/basic accuracy, UAR, macro F1, component
confusion), and ``class_accuracy_metrics`` calls ``.item()`` per sample. Here
one :class:`FERPredictionCollector` keeps each eval mini-batch's targets and
arg-max predictions as tensors on the model's device, moves them to the CPU
once per stream, and every metric computes its value with the definitions of
``cfer.core.metric_definitions`` in ``after_eval``, so Avalanche loggers (text,
TensorBoard, ``EvaluationPlugin.get_last_metrics``) receive them under names
like ``StepAcc_Stream/eval_phase/test_stream``.

"Step" is the highest experience in the evaluated stream: evaluate the
prefix ``test_stream[:i+1]`` after training experience i (as the runner does)
and experience i is the new class, 0..i-1 the old ones. This also holds for
offline (joint) training scored on prefixes; Avalanche's ``JointTraining``
reports only experience 0 to ``before_training_exp``, so the training
callbacks cannot tell the step. Values are emitted with the step as x
position; undefined values (old-class accuracy at step 0, ...) are not
emitted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import numpy as np
import torch
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue
from avalanche.evaluation.metric_utils import get_metric_name

from cfer.core import metric_definitions as M


class EvalPredictions(NamedTuple):
    """Test images of one eval stream, in evaluation order (int64 numpy arrays)."""

    y_true: np.ndarray
    y_pred: np.ndarray
    experience: np.ndarray  # experience id of each image

    def select(self, mask: np.ndarray) -> EvalPredictions:
        return EvalPredictions(self.y_true[mask], self.y_pred[mask], self.experience[mask])


class FERPredictionCollector(PluginMetric[EvalPredictions]):
    """Collects (y_true, y_pred, experience id) over the last eval stream; emits nothing.

    The runner reads :meth:`result` after ``strategy.eval(test_stream[:i+1])``
    to fill row i of the accuracy matrix (``cfer.core.metric_definitions.run_record``)
    without a second pass over the data.
    """

    def __init__(self):
        super().__init__()
        self.reset()

    def reset(self) -> None:
        self._targets: list[torch.Tensor] = []
        self._preds: list[torch.Tensor] = []
        self._exp_sizes: list[tuple[int, int]] = []  # (experience id, batch size): no device sync
        self._cache: EvalPredictions | None = None

    def result(self) -> EvalPredictions:
        if self._cache is None:
            if self._targets:
                # One transfer per stream instead of one per sample.
                y = torch.cat(self._targets).cpu().numpy().astype(np.int64)
                p = torch.cat(self._preds).cpu().numpy().astype(np.int64)
            else:
                y = p = np.zeros(0, dtype=np.int64)
            e = np.repeat(np.array([x for x, _ in self._exp_sizes], dtype=np.int64),
                          [n for _, n in self._exp_sizes]) if self._exp_sizes else np.zeros(0, np.int64)
            self._cache = EvalPredictions(y, p, e)
        return self._cache

    @property
    def step(self) -> int | None:
        """The highest experience id evaluated (None before any evaluation)."""
        e = self.result().experience
        return int(e.max()) if e.size else None

    # Avalanche callbacks
    def before_eval(self, strategy) -> None:
        self.reset()

    def after_eval_iteration(self, strategy) -> None:
        super().after_eval_iteration(strategy)
        if hasattr(strategy.experience, "parts"):
            # A joined experience seen as one: every image would count as the last experience's.
            raise ValueError("an experience from cfer.plugins.speed.one_pass needs "
                             "cfer.plugins.speed.one_pass.OnePassEvaluationPlugin as the evaluator "
                             "(experiments/run/evaluation.py builds one)")
        self._targets.append(strategy.mb_y.detach())
        self._preds.append(strategy.mb_output.detach().argmax(dim=1))
        self._exp_sizes.append((int(strategy.experience.current_experience), int(strategy.mb_y.shape[0])))
        self._cache = None

    def __str__(self) -> str:
        return "FERPredictions"


class _FERStreamMetric(PluginMetric[float]):
    """One scalar per eval stream, computed from a (possibly shared) collector.

    Without a ``collector`` the metric owns one and forwards the callbacks to
    it; with a shared one, that collector must itself be in the
    EvaluationPlugin's metric list (as :func:`fer_metrics` arranges).
    """

    name = ""

    def __init__(self, *, collector: FERPredictionCollector | None = None):
        super().__init__()
        self._owns_collector = collector is None
        self.collector = FERPredictionCollector() if collector is None else collector
        self._value: float | None = None

    def compute(self, data: EvalPredictions, step: int) -> float:
        raise NotImplementedError

    def reset(self) -> None:
        self._value = None

    def result(self) -> float | None:
        return self._value

    def __str__(self) -> str:
        return self.name

    def before_eval(self, strategy) -> None:
        self.reset()
        if self._owns_collector:
            self.collector.before_eval(strategy)

    def after_eval_iteration(self, strategy) -> None:
        super().after_eval_iteration(strategy)
        if self._owns_collector:
            self.collector.after_eval_iteration(strategy)

    def after_eval(self, strategy):
        data, step = self.collector.result(), self.collector.step
        if step is None or data.y_true.size == 0:
            return None
        value = float(self.compute(data, step))
        if math.isnan(value):
            return None
        self._value = value
        name = get_metric_name(self, strategy, add_experience=False, add_task=False)
        return [MetricValue(self, name, value, step)]


class StepAccuracy(_FERStreamMetric):
    """Accuracy on the test images of experiences 0..step (sample-weighted union)."""

    name = "StepAcc_Stream"

    def compute(self, data, step):
        return M.accuracy(data.y_true, data.y_pred)


class UAR(_FERStreamMetric):
    """Unweighted average recall over the seen classes present."""

    name = "UAR_Stream"

    def compute(self, data, step):
        return M.uar(data.y_true, data.y_pred)


class MacroF1(_FERStreamMetric):
    """Macro F1 over the seen classes present."""

    name = "MacroF1_Stream"

    def compute(self, data, step):
        return M.macro_f1(data.y_true, data.y_pred)


class OldClassAccuracy(_FERStreamMetric):
    """Accuracy on experiences 0..step-1 (undefined, not emitted, at step 0)."""

    name = "OldClassAcc_Stream"

    def compute(self, data, step):
        return M.accuracy(*data.select(data.experience < step)[:2]) if step > 0 else math.nan


class NewClassAccuracy(_FERStreamMetric):
    """Accuracy on experience ``step``, the newest class (only from step 1 on)."""

    name = "NewClassAcc_Stream"

    def compute(self, data, step):
        return M.accuracy(*data.select(data.experience == step)[:2]) if step > 0 else math.nan


class BasicAccuracy(_FERStreamMetric):
    """Accuracy on the basic-expression test images (class ids < n_basic): R[step][0]."""

    name = "BasicAcc_Stream"

    def __init__(self, *, n_basic: int, collector: FERPredictionCollector | None = None):
        super().__init__(collector=collector)
        self.n_basic = int(n_basic)

    def compute(self, data, step):
        return M.accuracy(*data.select(data.y_true < self.n_basic)[:2])


class ComponentConfusion(_FERStreamMetric):
    """Share of misclassified compound images predicted as one of their basic components."""

    name = "ComponentConfusion_Stream"

    def __init__(self, *, component_ids: Mapping[int, Iterable[int]],
                 collector: FERPredictionCollector | None = None):
        super().__init__(collector=collector)
        self.component_ids = {int(k): tuple(int(c) for c in v) for k, v in component_ids.items()}

    def compute(self, data, step):
        return M.component_confusion(data.y_true, data.y_pred, self.component_ids)


def fer_metrics(*, n_basic: int, component_ids: Mapping[int, Iterable[int]],
                collector: FERPredictionCollector | None = None) -> list[PluginMetric]:
    """All FER metrics sharing one collector, ready for ``EvaluationPlugin(*fer_metrics(...))``.

    The returned list starts with the collector (pass your own to read it
    afterwards; do not add it to the plugin a second time).
    ``component_ids``: ``benchmark.info.component_ids()``.
    """
    c = FERPredictionCollector() if collector is None else collector
    return [
        c,
        StepAccuracy(collector=c),
        UAR(collector=c),
        MacroF1(collector=c),
        OldClassAccuracy(collector=c),
        NewClassAccuracy(collector=c),
        BasicAccuracy(n_basic=n_basic, collector=c),
        ComponentConfusion(component_ids=component_ids, collector=c),
    ]
