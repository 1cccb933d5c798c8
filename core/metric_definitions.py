"""Metric definitions of docs/design.md ("Metric definitions"), one function each, pure numpy.

Two kinds of input:

- the accuracy matrix ``R`` (T x T): ``R[i][j]`` = accuracy on the test data
  of experience ``j`` after training through experience ``i``; experience 0
  holds the basic classes. Cells ``j > i`` are never evaluated: they may
  arrive as ``None``/NaN (or any number) and are ignored. ``test_sizes[j]``
  is the number of test images of experience ``j``.
- predictions: integer arrays ``y_true``, ``y_pred`` over the test images of
  the classes seen so far (class ids as in the benchmark: basic first, then
  compounds in experience order).

Undefined values (old-class accuracy at step 0, forgetting with one
experience, component confusion without misclassified compound images) are
NaN in numpy results and ``None`` in the JSON-ready dicts of :func:`run_record` and
:func:`mean_std`. Which of these make the summary of results.json, with their headers,
units and directions, is the table of :mod:`cfer.core.metrics`.

Written by hand rather than with scikit-learn: the definitions are a few
lines each, sklearn is not a dependency of the package, and the weighting
(sample-weighted unions, NaN for undefined) is ours.

Over 400 lines: one function per metric of the table in docs/design.md, with the run
record built from them; each definition reads beside the ones it is defined with
(forgetting beside forgetting over learnt experiences, max_forgetting and bwt; new-class
recall beside new-class F1 and the learnt threshold), so the table stays one module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

#: An experience is learnt when its accuracy at its own step reaches this many times chance
#: (chance: 1 / the number of classes seen at that step); docs/metrics.md says why.
LEARNT_CHANCE_MULTIPLE = 2.0


# --------------------------------------------------------------------------- inputs

def as_matrix(R) -> np.ndarray:
    """``R`` as a float (T, T) array, NaN above the diagonal.

    Raises ValueError when ``R`` is not square or a cell on/below the diagonal
    is missing or outside [0, 1].
    """
    rows = list(R)
    T = len(rows)
    if T == 0:
        raise ValueError("accuracy_matrix is empty")
    out = np.full((T, T), np.nan)
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != T:
            raise ValueError(f"accuracy_matrix row {i} has {len(row)} entries, expected {T} (square)")
        for j in range(i + 1):
            v = row[j]
            v = math.nan if v is None else float(v)
            if not 0.0 <= v <= 1.0:  # also catches NaN
                raise ValueError(f"accuracy_matrix[{i}][{j}] = {row[j]!r}: need an accuracy in [0, 1]")
            out[i, j] = v
    return out


def _sizes(test_sizes, T: int) -> np.ndarray:
    n = np.asarray(test_sizes, dtype=float)
    if n.shape != (T,):
        raise ValueError(f"test_sizes has {n.size} entries, expected {T} (one per experience)")
    if np.any(~np.isfinite(n)) or np.any(n <= 0):
        raise ValueError(f"test_sizes must be positive, got {list(test_sizes)}")
    return n


def _labels(y, name: str) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class ids, got dtype {a.dtype}")
    return a.astype(np.int64, copy=False)


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length ({t.size} vs {p.size})")
    return t, p


# --------------------------------------------------------------------------- from R

def step_accuracy(R, test_sizes) -> np.ndarray:
    """step_accuracy[i]: accuracy on the union of the test data of experiences 0..i
    after training experience i (R row i weighted by test-set sizes)."""
    R = as_matrix(R)
    n = _sizes(test_sizes, len(R))
    return np.array([np.dot(R[i, : i + 1], n[: i + 1]) / n[: i + 1].sum() for i in range(len(R))])


def average_step_accuracy(step_acc: Sequence[float]) -> float:
    """Mean of step_accuracy over i = 0..T-1 (the basic step included, as the paper)."""
    a = np.asarray(step_acc, dtype=float)
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise ValueError(f"step_accuracy must be a non-empty list of numbers, got {list(step_acc)}")
    return float(a.mean())


def final_accuracy(step_acc: Sequence[float]) -> float:
    """step_accuracy[T-1]."""
    a = np.asarray(step_acc, dtype=float)
    if a.size == 0:
        raise ValueError("step_accuracy is empty")
    return float(a[-1])


def new_class_recall(R) -> float:
    """Mean over i >= 1 of R[i][i], the recall of the newest class (NaN when there is no
    compound step). A model that answers the newest class for every image scores 1."""
    R = as_matrix(R)
    return float(np.mean(np.diag(R)[1:])) if len(R) > 1 else math.nan


def new_class_f1(per_step: Sequence[float | None] | None) -> float:
    """Mean over i >= 1 of a run's per-step new-class F1 (:func:`new_class_f1_at_step`, the
    run record's ``new_class_f1``); NaN when the record has none (written before it was
    recorded), a step lacks it, or there is no compound step."""
    if not per_step or len(per_step) < 2 or any(v is None for v in per_step[1:]):
        return math.nan
    return float(np.mean([float(v) for v in per_step[1:]]))


def learnt_threshold(T: int, *, n_basic: int, multiple: float = LEARNT_CHANCE_MULTIPLE) -> np.ndarray:
    """threshold[j] = ``multiple`` x chance at step j, chance = 1 / (n_basic + j) (one class
    per compound experience), capped at 1."""
    if n_basic < 1:
        raise ValueError(f"n_basic must be at least 1, got {n_basic}")
    return np.minimum(multiple / (n_basic + np.arange(T)), 1.0)


def learnt(R, *, n_basic: int, multiple: float = LEARNT_CHANCE_MULTIPLE) -> np.ndarray:
    """learnt[j]: R[j][j] >= the threshold of step j (:func:`learnt_threshold`)."""
    R = as_matrix(R)
    return np.diag(R) >= learnt_threshold(len(R), n_basic=n_basic, multiple=multiple)


def not_learnt(R, *, n_basic: int, multiple: float = LEARNT_CHANCE_MULTIPLE) -> float:
    """How many experiences j = 0..T-1 were never learnt (:func:`learnt` is False)."""
    return float(np.sum(~learnt(R, n_basic=n_basic, multiple=multiple)))


def old_class_accuracy(R, test_sizes) -> np.ndarray:
    """old_class_accuracy[i]: accuracy on experiences 0..i-1 after training experience i
    (sample-weighted); NaN at i = 0, where there is nothing old."""
    R = as_matrix(R)
    n = _sizes(test_sizes, len(R))
    out = np.full(len(R), np.nan)
    for i in range(1, len(R)):
        out[i] = np.dot(R[i, :i], n[:i]) / n[:i].sum()
    return out


def basic_accuracy(R) -> np.ndarray:
    """basic_accuracy[i] = R[i][0]: how the basic expressions survive."""
    return as_matrix(R)[:, 0].copy()


def forgetting(R) -> float:
    """Mean over j < T-1 of R[j][j] - R[T-1][j] (Avalanche's definition, every experience:
    the summary's ``forgetting_all``); NaN if T = 1. A class never learnt has nothing to
    lose, so a method that learns nothing scores 0 or less here: :func:`forgetting_learnt`
    is the headline."""
    R = as_matrix(R)
    T = len(R)
    if T < 2:
        return math.nan
    j = np.arange(T - 1)
    return float(np.mean(R[j, j] - R[T - 1, j]))


def forgetting_learnt(R, *, n_basic: int, multiple: float = LEARNT_CHANCE_MULTIPLE) -> float:
    """Mean over the learnt j < T-1 (:func:`learnt`) of R[j][j] - R[T-1][j]; NaN if T = 1 or
    no such experience was learnt."""
    R = as_matrix(R)
    T = len(R)
    if T < 2:
        return math.nan
    j = np.flatnonzero(learnt(R, n_basic=n_basic, multiple=multiple)[: T - 1])
    return float(np.mean(R[j, j] - R[T - 1, j])) if j.size else math.nan


def max_forgetting(R) -> float:
    """Mean over j < T-1 of max_{l<T-1} R[l][j] - R[T-1][j] (Chaudhry et al. 2018); NaN if T = 1.

    Only evaluated cells (l >= j) enter the max.
    """
    R = as_matrix(R)
    T = len(R)
    if T < 2:
        return math.nan
    best = np.array([R[j : T - 1, j].max() for j in range(T - 1)])
    return float(np.mean(best - R[T - 1, : T - 1]))


def bwt(R) -> float:
    """Backward transfer: mean over j < T-1 of R[T-1][j] - R[j][j] (= -forgetting)."""
    f = forgetting(R)
    return -f if not math.isnan(f) else math.nan


# --------------------------------------------------------------------------- from predictions

def accuracy(y_true, y_pred) -> float:
    """Share of correct predictions (NaN on empty input)."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p)) if t.size else math.nan


def per_class_recall(y_true, y_pred) -> dict[int, float]:
    """Recall of each class present in ``y_true``."""
    t, p = _pair(y_true, y_pred)
    return {int(c): float(np.mean(p[t == c] == c)) for c in np.unique(t)}


def uar(y_true, y_pred) -> float:
    """Unweighted average recall (balanced accuracy) over the classes present in ``y_true``.

    Predictions of any other class (including not-yet-seen ones) count as misses.
    """
    rec = per_class_recall(y_true, y_pred)
    return float(np.mean(list(rec.values()))) if rec else math.nan


def macro_f1(y_true, y_pred) -> float:
    """Macro F1 over the classes present in ``y_true``.

    Per class c: F1 = 2 TP / (2 TP + FP + FN), with FP counting every image
    wrongly predicted as c; predictions of classes absent from ``y_true`` add
    to the FN of the true class only (sklearn's ``f1_score(average="macro",
    labels=present)``).
    """
    t, p = _pair(y_true, y_pred)
    scores = []
    for c in np.unique(t):
        tp = np.sum((t == c) & (p == c))
        fp = np.sum((t != c) & (p == c))
        fn = np.sum((t == c) & (p != c))
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else math.nan


def new_class_f1_at_step(y_true, y_pred, experience, *, step: int) -> float:
    """The F1 of experience ``step``'s class(es) over the predictions on the test images of
    experiences 0..``step`` (images of later experiences are ignored); NaN at step 0, which
    has no new class in the paper's sense.

    Per class c of the experience: F1 = 2 TP / (2 TP + FP + FN), where FP counts the images
    of every seen experience wrongly predicted as c (the old images a method pulls into the
    new class) and FN the images of c predicted as anything else; an experience with several
    classes gets the mean of its classes' F1. A method that answers the newest class for
    every image has recall 1 but precision n_new / n_seen, so its F1 is 2 n_new / (n_new +
    n_seen), low when many old images compete.
    """
    t, p = _pair(y_true, y_pred)
    e = _labels(experience, "experience")
    if e.shape != t.shape:
        raise ValueError("experience and y_true differ in length")
    if step < 1:
        return math.nan
    seen = e <= step
    t, p, e = t[seen], p[seen], e[seen]
    classes = np.unique(t[e == step])
    if classes.size == 0:
        raise ValueError(f"no test images of experience {step}")
    scores = []
    for c in classes:
        tp = np.sum((t == c) & (p == c))
        fp = np.sum((t != c) & (p == c))
        fn = np.sum((t == c) & (p != c))
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def confusion_matrix(y_true, y_pred, *, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): rows true class, columns predicted class."""
    t, p = _pair(y_true, y_pred)
    for name, a in (("y_true", t), ("y_pred", p)):
        if a.size and (a.min() < 0 or a.max() >= n_classes):
            raise ValueError(f"{name} has class ids outside 0..{n_classes - 1}")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def component_confusion(y_true, y_pred, component_ids: Mapping[int, Iterable[int]]) -> float:
    """Share of misclassified compound test images predicted as one of their own basic components.

    ``component_ids`` maps each compound class id to its basic components' ids
    (``cfer.benchmarks.scenario.StreamInfo.component_ids()``); classes absent from
    it are not compound. NaN when no compound image is misclassified.
    """
    t, p = _pair(y_true, y_pred)
    comps = {int(k): {int(c) for c in v} for k, v in component_ids.items()}
    wrong = np.array([c in comps for c in t.tolist()], dtype=bool) & (t != p)
    if not wrong.any():
        return math.nan
    hits = sum(pp in comps[tt] for tt, pp in zip(t[wrong].tolist(), p[wrong].tolist()))
    return hits / int(wrong.sum())


def accuracy_row(y_true, y_pred, experience, *, n_experiences: int) -> np.ndarray:
    """Accuracy per experience id (NaN for experiences without test images)."""
    t, p = _pair(y_true, y_pred)
    e = _labels(experience, "experience")
    if e.shape != t.shape:
        raise ValueError("experience and y_true differ in length")
    hit = np.bincount(e, weights=(t == p).astype(float), minlength=n_experiences)[:n_experiences]
    cnt = np.bincount(e, minlength=n_experiences)[:n_experiences]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, hit / np.maximum(cnt, 1), np.nan)


# --------------------------------------------------------------------------- per run / per method

def n_basic_of(run: Mapping) -> int | None:
    """Number of basic classes of a run record: ``n_basic``, else from ``class_names`` and the
    number of experiences (one class per compound experience); None when it has neither."""
    if run.get("n_basic") is not None:
        return int(run["n_basic"])
    if run.get("class_names") and run.get("accuracy_matrix"):
        return len(run["class_names"]) - (len(run["accuracy_matrix"]) - 1)
    return None


def _json(values) -> list:
    """Floats with NaN -> None (valid JSON)."""
    return [None if (v is None or not math.isfinite(float(v))) else float(v) for v in values]


def run_record(*, step_predictions: Sequence, n_basic: int,
               component_ids: Mapping[int, Iterable[int]],
               class_names: Sequence[str] | None = None) -> dict:
    """All per-run metric fields of results.json from the predictions of each step.

    Args:
        step_predictions: one entry per training step i = 0..T-1, each a triple
            ``(y_true, y_pred, experience)`` of equally long integer arrays
            over the test images evaluated after training experience i
            (``FERPredictionCollector.result()`` after
            ``strategy.eval(test_stream[:i+1])``). Images of experiences > i,
            if any, are ignored.
        n_basic: number of basic classes (the classes of experience 0).
        component_ids: compound class id -> its basic component ids.
        class_names: names in class-id order (optional; copied into the record
            and used to size the confusion matrix).

    Returns:
        A JSON-ready dict with ``n_basic``, ``test_sizes``, ``accuracy_matrix``
        (None above the diagonal), ``step_accuracy``, ``uar``, ``macro_f1``,
        ``old_class_accuracy``, ``basic_accuracy``, ``component_confusion``,
        ``new_class_f1`` (per step; None where undefined, e.g. new_class_f1 at step 0) and
        ``confusion_matrix`` (final step, counts, rows true), plus ``class_names`` when given.
    """
    T = len(step_predictions)
    if T == 0:
        raise ValueError("step_predictions is empty")
    n_classes = n_basic + T - 1 if class_names is None else len(class_names)
    R = np.full((T, T), np.nan)
    sizes = np.zeros(T, dtype=np.int64)
    per_step = {"uar": [], "macro_f1": [], "component_confusion": [], "new_class_f1": []}
    for i, entry in enumerate(step_predictions):
        if len(entry) != 3:
            raise ValueError(f"step_predictions[{i}]: expected (y_true, y_pred, experience)")
        t, p = _pair(entry[0], entry[1])
        e = _labels(entry[2], f"step_predictions[{i}] experience")
        if e.shape != t.shape:
            raise ValueError(f"step_predictions[{i}]: experience and y_true differ in length")
        seen = e <= i
        t, p, e = t[seen], p[seen], e[seen]
        counts = np.bincount(e, minlength=i + 1)
        missing = [j for j in range(i + 1) if counts[j] == 0]
        if missing:
            raise ValueError(f"step_predictions[{i}]: no test images of experience(s) {missing}")
        if i == T - 1:
            sizes[:] = counts
        R[i, : i + 1] = accuracy_row(t, p, e, n_experiences=i + 1)
        per_step["uar"].append(uar(t, p))
        per_step["macro_f1"].append(macro_f1(t, p))
        per_step["component_confusion"].append(component_confusion(t, p, component_ids))
        per_step["new_class_f1"].append(new_class_f1_at_step(t, p, e, step=i))
        if i == T - 1:
            cm = confusion_matrix(t, p, n_classes=n_classes)
    record = {"n_basic": int(n_basic)}
    if class_names is not None:
        record["class_names"] = list(class_names)
    record.update({
        "test_sizes": sizes.tolist(),
        "accuracy_matrix": [_json(R[i, : i + 1]) + [None] * (T - i - 1) for i in range(T)],
        "step_accuracy": _json(step_accuracy(R, sizes)),
        "uar": _json(per_step["uar"]),
        "macro_f1": _json(per_step["macro_f1"]),
        "old_class_accuracy": _json(old_class_accuracy(R, sizes)),
        "basic_accuracy": _json(basic_accuracy(R)),
        "component_confusion": _json(per_step["component_confusion"]),
        "new_class_f1": _json(per_step["new_class_f1"]),
        "confusion_matrix": cm.tolist(),
    })
    return record


def mean_std(values: Iterable[float | None]) -> dict:
    """``{"mean", "std", "n"}`` over the defined (finite, non-None) values.

    std is the sample standard deviation (ddof=1) when n > 1, else 0.0; with
    no defined value, mean and std are None and n is 0.
    """
    a = np.array([v for v in values if v is not None and math.isfinite(float(v))], dtype=float)
    if a.size == 0:
        return {"mean": None, "std": None, "n": 0}
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return {"mean": float(a.mean()), "std": std, "n": int(a.size)}


# -- few-shot ---------------------------------------------------------------------------------

def harmonic_mean(a: float, b: float) -> float:
    """``2ab / (a + b)``; 0 when both are 0; NaN when either is undefined."""
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def fewshot_scores(y_true, y_pred, *, n_basic: int, new_class: int) -> dict[str, float]:
    """The few-shot metrics of one step from test predictions.

    Args:
        y_true, y_pred: class ids of the test images of the basic classes
            (ids ``< n_basic``) and of the new class ``new_class``; other
            images are ignored.
        n_basic: number of basic classes.
        new_class: id of the class added by the few-shot step.

    Returns:
        ``new_recall`` (share of the new class's images predicted as it: the
        paper's figure), ``basic_accuracy`` (accuracy on the basic classes'
        images), ``all_accuracy`` (on basic and new images together,
        sample-weighted), ``harmonic_mean`` (of basic accuracy and new
        recall), and ``basic_as_new`` (share of basic images predicted as the
        new class).
    """
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D and equally long, got {t.shape} and {p.shape}")
    new, basic = t == new_class, t < n_basic
    if not new.any():
        raise ValueError(f"no test images of the new class (id {new_class})")
    if not basic.any():
        raise ValueError(f"no test images of the basic classes (ids 0..{n_basic - 1})")
    both = new | basic
    new_recall = accuracy(t[new], p[new])
    basic_acc = accuracy(t[basic], p[basic])
    return {"new_recall": new_recall, "all_accuracy": accuracy(t[both], p[both]),
            "basic_accuracy": basic_acc, "harmonic_mean": harmonic_mean(basic_acc, new_recall),
            "basic_as_new": float(np.mean(p[basic] == new_class))}
