"""Figures of a run, drawn from results.json data only (PNG).

Every curve is the mean over a method's runs (class orders x folds x seeds)
with a shaded band of +- one sample standard deviation (ddof=1; no band with
one run), the same spread as the summary table. Experiences are matched by
position across runs: with different class orders, "experience 3" is a
different compound class in each run. Confusion matrices are the exception:
they are summed by class NAME (basic classes first, then the data set's
order), since ids differ between orders.

Figures are drawn with matplotlib's object API on an Agg canvas, never
through pyplot, so no global backend is set and nothing is drawn at import.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfer.core.atomic import atomic_write_bytes


@dataclass(frozen=True)
class PlotConfig:
    dpi: int = 120  # sharp enough on screen and in a paper draft
    annotate_max: int = 24  # write the value into heat-map cells up to this many rows


# --------------------------------------------------------------------------- files


def slug(name: str) -> str:
    """A file-name-safe version of a method name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "method"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path, cfg: PlotConfig) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=cfg.dpi)
    return atomic_write_bytes(path, buf.getvalue())


# --------------------------------------------------------------------------- data

def _num(v) -> float:
    return np.nan if v is None else float(v)


def _stack(rows: Sequence[Sequence]) -> np.ndarray:
    """Lists of possibly different lengths (None = NaN) as a NaN-padded 2-D array."""
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), np.nan)
    for k, r in enumerate(rows):
        out[k, : len(r)] = [_num(v) for v in r]
    return out


def _matrices(runs: Sequence[Mapping]) -> np.ndarray:
    """(n_runs, T, T) accuracy matrices, NaN where not evaluated (and padded)."""
    T = max(len(r["accuracy_matrix"]) for r in runs)
    out = np.full((len(runs), T, T), np.nan)
    for k, r in enumerate(runs):
        m = _stack(r["accuracy_matrix"])
        t = len(m)
        out[k, :t, : m.shape[1]] = m
        out[k][np.triu_indices(T, 1)] = np.nan  # above the diagonal: never evaluated
    return out


def mean_spread(a: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware mean and sample std (ddof=1; 0 where fewer than two values) along ``axis``."""
    a = np.asarray(a, dtype=float)
    n = np.sum(np.isfinite(a), axis=axis)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices -> NaN, on purpose
        mean = np.nanmean(a, axis=axis)
        std = np.where(n > 1, np.nanstd(a, axis=axis, ddof=1) if a.shape[axis] > 1 else 0.0, 0.0)
    return mean, std


def n_basic_of(run: Mapping) -> int | None:
    """Number of basic classes of a run: ``n_basic``, else from class_names and T."""
    if run.get("n_basic") is not None:
        return int(run["n_basic"])
    if run.get("class_names"):
        return len(run["class_names"]) - (len(run["accuracy_matrix"]) - 1)
    return None


def _colors(methods: Sequence[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(methods) <= 10 else "tab20"]
    return {m: cmap(k % cmap.N) for k, m in enumerate(methods)}


def _band(ax, x, mean, std, *, color, label, lw=1.8, ls="-", marker="o"):
    """The mean curve and a mean ± std band, clipped to [0, 1]: every curve drawn here is an
    accuracy (or recall), which a band of a normal spread would push past 0% or 100%."""
    ok = np.isfinite(mean)
    x, mean, std = np.asarray(x)[ok], mean[ok], std[ok]
    ax.plot(x, mean, color=color, lw=lw, ls=ls, marker=marker, ms=3.5, label=label)
    if np.any(std > 0):
        ax.fill_between(x, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1), color=color, alpha=0.18,
                        lw=0)


def _percent_axis(ax, *, ylabel: str):
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def _step_axis(ax, T: int):
    from matplotlib.ticker import MaxNLocator

    ax.set_xlim(-0.3, T - 0.7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("after training experience (0 = basic)")


def _spread_note(runs) -> str:
    return f"mean over {len(runs)} run{'s' if len(runs) != 1 else ''}" + (" ± 1 std" if len(runs) > 1 else "")


def _same_order(runs) -> list[str] | None:
    orders = {tuple(r.get("order") or ()) for r in runs}
    return list(next(iter(orders))) if len(orders) == 1 and () not in orders else None


# --------------------------------------------------------------------------- figures

def forgetting_figure(method: str, runs: Sequence[Mapping]):
    """Small multiples, one panel per experience j: the accuracy on j's test data after each
    step i >= j (mean ± std over runs), a dashed line at the accuracy just after learning it,
    the final value written in; the basic block's panel first, in black. One curve a panel,
    so that 16 experiences stay apart."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    R = _matrices(runs)
    T = R.shape[1]
    order = _same_order(runs)
    cols = min(T, 4)
    rows = -(-T // cols)
    fig = _figure(2.5 * cols + 0.7, 1.9 * rows + 1.0)
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
    for j, ax in enumerate(axes):
        if j >= T:
            ax.set_visible(False)
            continue
        mean, std = mean_spread(R[:, j:, j])
        basic = j == 0
        color = "black" if basic else "tab:blue"
        _band(ax, np.arange(j, T), mean, std, color=color, label=None, lw=2.2 if basic else 1.4, marker=".")
        if np.isfinite(mean[0]):
            ax.axhline(mean[0], color=color, lw=0.7, ls="--", alpha=0.6)
        if np.isfinite(mean[-1]):
            ax.annotate(f"{100 * mean[-1]:.0f}%", (T - 1, mean[-1]), xytext=(-2, 4),
                        textcoords="offset points", ha="right", fontsize=7, color=color)
        name = "basic expressions" if basic else (order[j - 1] if order and j - 1 < len(order) else "")
        ax.set_title(f"exp {j}" + (f": {name}" if name else ""), fontsize=8,
                     fontweight="bold" if basic else "normal")
        ax.set_xlim(-0.3, T - 0.7)
        ax.set_ylim(-0.02, 1.02)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.supxlabel("after training experience i (0 = basic)", fontsize=9)
    fig.supylabel("test accuracy on experience j", fontsize=9)
    varies = "" if order else "; experience j is a different class in each order"
    fig.suptitle(f"{method}: accuracy on each experience j after each step i >= j\n"
                 f"{_spread_note(runs)}; dashed: just after learning it{varies}", fontsize=10)
    return fig


def forgetting_curves(method: str, runs: Sequence[Mapping], path: Path, cfg: PlotConfig) -> Path:
    """:func:`forgetting_figure` as a PNG."""
    return _save(forgetting_figure(method, runs), path, cfg)


def basic_accuracy_all(methods: Mapping[str, Sequence[Mapping]], path: Path, cfg: PlotConfig) -> Path:
    """basic_accuracy[i] = R[i][0] per step, all methods."""
    colors = _colors(list(methods))
    fig = _figure(8, 4.8)
    ax = fig.add_subplot()
    T = 1
    for m, runs in methods.items():
        R = _matrices(runs)
        T = max(T, R.shape[1])
        mean, std = mean_spread(R[:, :, 0])
        _band(ax, np.arange(R.shape[1]), mean, std, color=colors[m], label=f"{m} (n={len(runs)})")
    _step_axis(ax, T)
    _percent_axis(ax, ylabel="accuracy on the basic expressions")
    ax.set_title("How the basic expressions survive (mean ± 1 std over runs)")
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path, cfg)


def step_accuracy_all(methods: Mapping[str, Sequence[Mapping]], path: Path, cfg: PlotConfig) -> Path:
    """step_accuracy vs number of seen classes, all methods."""
    colors = _colors(list(methods))
    fig = _figure(8, 4.8)
    ax = fig.add_subplot()
    by_classes = all(n_basic_of(r) is not None for runs in methods.values() for r in runs)
    for m, runs in methods.items():
        S = _stack([r["step_accuracy"] for r in runs])
        mean, std = mean_spread(S)
        x = np.arange(S.shape[1]) + (n_basic_of(runs[0]) if by_classes else 0)
        _band(ax, x, mean, std, color=colors[m], label=f"{m} (n={len(runs)})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of seen classes" if by_classes else "after training experience (0 = basic)")
    _percent_axis(ax, ylabel="step accuracy (all seen classes)")
    ax.set_title("Step accuracy as classes are added (mean ± 1 std over runs)")
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path, cfg)


def accuracy_heatmap(method: str, runs: Sequence[Mapping], path: Path, cfg: PlotConfig) -> Path:
    """Mean accuracy matrix R[i][j]; unevaluated cells (j > i) blank."""
    from matplotlib import colormaps

    mean, _ = mean_spread(_matrices(runs))
    T = len(mean)
    side = 3.5 + 0.38 * T
    fig = _figure(side + 1.2, side)
    ax = fig.add_subplot()
    cmap = colormaps["viridis"].with_extremes(bad="white")
    im = ax.imshow(np.ma.masked_invalid(mean), cmap=cmap, vmin=0, vmax=1)
    if T <= cfg.annotate_max:
        for i, j in zip(*np.nonzero(np.isfinite(mean))):
            v = mean[i, j]
            ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=7,
                    color="black" if v > 0.6 else "white")
    ax.set_xticks(range(T))
    ax.set_yticks(range(T))
    ax.tick_params(labelsize=7)
    ax.set_xlabel("test data of experience j (0 = basic)")
    ax.set_ylabel("after training experience i")
    ax.set_title(f"{method}: accuracy matrix R[i][j], % ({_spread_note(runs).split(' ±')[0]})", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="accuracy")
    return _save(fig, path, cfg)


def canonical_class_order(runs: Sequence[Mapping], dataset_names: Sequence[str] = ()) -> list[str]:
    """Class names of the runs, basic ones first, then in the data set's (else first-seen) order."""
    seen, basic = [], []
    for r in runs:
        names = list(r["class_names"])
        nb = n_basic_of(r) or 0
        basic += [c for c in names[:nb] if c not in basic]
        seen += [c for c in names if c not in seen]
    rank = {c: k for k, c in enumerate(dataset_names)}
    rest = sorted((c for c in seen if c not in basic), key=lambda c: (rank.get(c, len(rank)), seen.index(c)))
    return basic + rest


def summed_confusion(runs: Sequence[Mapping], names: Sequence[str]) -> np.ndarray:
    """Final-step confusion counts of all runs added up by class name, in ``names`` order."""
    idx = {c: k for k, c in enumerate(names)}
    total = np.zeros((len(names), len(names)), dtype=np.int64)
    for r in runs:
        cm = np.asarray(r["confusion_matrix"], dtype=np.int64)
        ids = np.array([idx[c] for c in r["class_names"]])
        if cm.shape != (len(ids), len(ids)):
            raise ValueError(f"confusion_matrix is {cm.shape}, class_names has {len(ids)} names")
        np.add.at(total, (ids[:, None], ids[None, :]), cm)
    return total


def confusion(method: str, runs: Sequence[Mapping], path: Path, cfg: PlotConfig,
              dataset_names: Sequence[str] = ()) -> Path:
    """Row-normalised final confusion matrix, summed over runs by class name."""
    names = canonical_class_order(runs, dataset_names)
    cm = summed_confusion(runs, names)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    n = len(names)
    side = 4 + 0.42 * n
    fig = _figure(side + 1.5, side)
    ax = fig.add_subplot()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if n <= cfg.annotate_max:
        for i, j in zip(*np.nonzero(cm)):
            v = share[i, j]
            ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=6.5,
                    color="white" if v > 0.5 else "black")
    nb = n_basic_of(runs[0]) or 0
    if 0 < nb < n:
        for f in (ax.axhline, ax.axvline):
            f(nb - 0.5, color="crimson", lw=1)
    ax.set_xticks(range(n), names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{method}: final confusion, % of each true class (sum of {len(runs)} run(s))", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the true class's test images")
    return _save(fig, path, cfg)


def old_new(method: str, runs: Sequence[Mapping], path: Path, cfg: PlotConfig) -> Path:
    """:func:`old_new_figure` as a PNG."""
    return _save(old_new_figure(method, runs), path, cfg)


def old_new_figure(method: str, runs: Sequence[Mapping]):
    """Old-class accuracy (experiences 0..i-1) and new-class accuracy R[i][i] per step."""
    R = _matrices(runs)
    T = R.shape[1]
    new = np.array([[R[k, i, i] for i in range(T)] for k in range(len(runs))])
    new[:, 0] = np.nan  # the basic step has no "new class" in the paper's sense
    old = _stack([r["old_class_accuracy"] for r in runs])
    fig = _figure(8, 4.8)
    ax = fig.add_subplot()
    for label, a, color in (("old classes (experiences 0..i-1)", old, "tab:blue"),
                            ("new class (experience i)", new, "tab:orange")):
        mean, std = mean_spread(a)
        _band(ax, np.arange(a.shape[1]), mean, std, color=color, label=label)
    _step_axis(ax, T)
    _percent_axis(ax, ylabel="test accuracy")
    ax.set_title(f"{method}: old vs new classes ({_spread_note(runs)})")
    ax.legend(fontsize=8, loc="best")
    return fig


def _has(runs, *keys) -> bool:
    return all(r.get(k) not in (None, [], {}) for r in runs for k in keys)


def plot_all(results: Mapping, out_dir: str | Path, cfg: PlotConfig | None = None) -> dict[str, list[Path]]:
    """Every figure of a results dict into ``out_dir``.

    Returns ``{"all": [...], "<method>": [...]}``, the written PNG paths.
    Figures whose fields the runs lack (e.g. no ``confusion_matrix``) are skipped.
    """
    cfg = cfg or PlotConfig()
    out = Path(out_dir)
    methods = {m: v["runs"] for m, v in results["methods"].items()}
    ds_names = (results.get("dataset") or {}).get("class_names") or ()
    written: dict[str, list[Path]] = {"all": [
        step_accuracy_all(methods, out / "step_accuracy.png", cfg),
        basic_accuracy_all(methods, out / "basic_accuracy.png", cfg),
    ]}
    for m, runs in methods.items():
        s = slug(m)
        files = [forgetting_curves(m, runs, out / f"forgetting_{s}.png", cfg),
                 accuracy_heatmap(m, runs, out / f"accuracy_matrix_{s}.png", cfg)]
        if _has(runs, "old_class_accuracy"):
            files.append(old_new(m, runs, out / f"old_new_{s}.png", cfg))
        if _has(runs, "confusion_matrix", "class_names"):
            files.append(confusion(m, runs, out / f"confusion_{s}.png", cfg, ds_names))
        written[m] = files
    return written
