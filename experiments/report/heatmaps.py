"""Heat maps of a method's runs: the mean accuracy matrix R[i][j] and the final confusion.

Cells are written in percent, and the colour bar is in percent too (the values are drawn
in percent, 0-100), so a cell's number and its colour read in one unit. Confusion
matrices are summed by class NAME (basic classes first, then the data set's order), since
class ids differ between orders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from cfer.experiments.report.figures import (
    ONCE_YLABEL,
    PlotConfig,
    figure,
    matrices,
    mean_spread,
    n_basic_of,
    percent_colorbar,
    save,
    spread_note,
)


def accuracy_heatmap_figure(method: str, runs: Sequence[Mapping], *, cfg: PlotConfig | None = None,
                            once: bool = False):
    """Mean accuracy matrix R[i][j] in percent; unevaluated cells (j > i) blank. ``once``: the
    method was trained once (joint), so row i is the model scored on experiences 0..i."""
    from matplotlib import colormaps

    cfg = cfg or PlotConfig()
    mean, _ = mean_spread(matrices(runs))
    pct = 100 * mean
    T = len(mean)
    side = 3.5 + 0.38 * T
    fig = figure(side + 1.2, side)
    ax = fig.add_subplot()
    cmap = colormaps["viridis"].with_extremes(bad="white")
    im = ax.imshow(np.ma.masked_invalid(pct), cmap=cmap, vmin=0, vmax=100)
    if T <= cfg.annotate_max:
        for i, j in zip(*np.nonzero(np.isfinite(pct))):
            v = pct[i, j]
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7,
                    color="black" if v > 60 else "white")
    ax.set_xticks(range(T))
    ax.set_yticks(range(T))
    ax.tick_params(labelsize=7)
    ax.set_xlabel("test data of experience j (0 = basic)")
    ax.set_ylabel(ONCE_YLABEL if once else "after training experience i")
    ax.set_title(f"{method}: accuracy matrix R[i][j], % ({spread_note(runs).split(' ±')[0]})", fontsize=10)
    percent_colorbar(fig, im, ax, label="accuracy")
    return fig


def accuracy_heatmap(method: str, runs: Sequence[Mapping], path: Path, cfg: PlotConfig, *,
                     once: bool = False) -> Path:
    """:func:`accuracy_heatmap_figure` as a PNG."""
    return save(accuracy_heatmap_figure(method, runs, cfg=cfg, once=once), path, cfg)


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


def confusion_figure(method: str, runs: Sequence[Mapping], *, cfg: PlotConfig | None = None,
                     dataset_names: Sequence[str] = ()):
    """Row-normalised final confusion matrix in percent, summed over runs by class name."""
    cfg = cfg or PlotConfig()
    names = canonical_class_order(runs, dataset_names)
    cm = summed_confusion(runs, names)
    rows = cm.sum(axis=1, keepdims=True)
    share = 100 * np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    n = len(names)
    side = 4 + 0.42 * n
    fig = figure(side + 1.5, side)
    ax = fig.add_subplot()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=100)
    if n <= cfg.annotate_max:
        for i, j in zip(*np.nonzero(cm)):
            v = share[i, j]
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6.5,
                    color="white" if v > 50 else "black")
    nb = n_basic_of(runs[0]) or 0
    if 0 < nb < n:
        for f in (ax.axhline, ax.axvline):
            f(nb - 0.5, color="crimson", lw=1)
    ax.set_xticks(range(n), names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{method}: final confusion, % of each true class (sum of {len(runs)} run(s))", fontsize=10)
    percent_colorbar(fig, im, ax, label="share of the true class's test images")
    return fig


def confusion(method: str, runs: Sequence[Mapping], path: Path, cfg: PlotConfig,
              dataset_names: Sequence[str] = ()) -> Path:
    """:func:`confusion_figure` as a PNG."""
    return save(confusion_figure(method, runs, cfg=cfg, dataset_names=dataset_names), path, cfg)
