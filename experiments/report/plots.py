"""Figures of a run, drawn from results.json data only (PNG): every figure of report.md.

Curves here (:mod:`cfer.experiments.report.figures` says how they are averaged): the step
and basic accuracy of all methods, one figure each, every method with its own colour,
line style and marker, and a note under the figure when two methods' curves coincide (one
would hide the other); per method, the accuracy on each experience after each step
(forgetting) and old against new classes. The heat maps (accuracy matrix, confusion) are
:mod:`cfer.experiments.report.heatmaps`. A method trained once (joint) has no "after
training experience i": its axes say what its points are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from cfer.core import metrics
from cfer.experiments.report.figures import (
    ONCE_XLABEL,
    PlotConfig,
    band,
    figure,
    matrices,
    mean_spread,
    n_basic_of,
    percent_axis,
    save,
    slug,
    spread_note,
    stack,
    step_axis,
    trained_once,
)
from cfer.experiments.report.heatmaps import accuracy_heatmap, confusion

#: Line styles and markers cycled over the methods of a figure, so that two methods whose
#: curves coincide stay distinguishable (a colour alone is hidden under the curve drawn last).
LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: Two methods' mean curves closer than this (a fraction) at every step are noted as coinciding.
COINCIDE_ATOL = 0.01


def method_styles(methods: Sequence[str]) -> dict[str, dict]:
    """Per method, a distinct colour, line style and marker (:func:`band`'s keyword arguments)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(methods) <= 10 else "tab20"]
    return {m: {"color": cmap(k % cmap.N), "ls": LINE_STYLES[k % len(LINE_STYLES)],
                "marker": MARKERS[k % len(MARKERS)]} for k, m in enumerate(methods)}


def coinciding(curves: Mapping[str, np.ndarray], *, atol: float = COINCIDE_ATOL) -> list[tuple[str, str]]:
    """The pairs of methods whose mean curves agree within ``atol`` wherever both are defined."""
    names = list(curves)
    out = []
    for k, a in enumerate(names):
        for b in names[k + 1:]:
            x, y = np.asarray(curves[a], dtype=float), np.asarray(curves[b], dtype=float)
            n = min(x.size, y.size)
            ok = np.isfinite(x[:n]) & np.isfinite(y[:n])
            if ok.any() and np.all(np.abs(x[:n][ok] - y[:n][ok]) <= atol):
                out.append((a, b))
    return out


def coincide_note(curves: Mapping[str, np.ndarray]) -> str | None:
    """Which methods' curves coincide, in words (None when none do)."""
    pairs = coinciding(curves)
    if not pairs:
        return None
    return ("; ".join(f"{a} and {b}" for a, b in pairs) + f" coincide within {100 * COINCIDE_ATOL:.0f} "
            "point at every step (told apart by line style and marker)")


def _label(method: str, runs: Sequence[Mapping]) -> str:
    return f"{method} (n={len(runs)}{', trained once' if trained_once(method) else ''})"


def _same_order(runs) -> list[str] | None:
    orders = {tuple(r.get("order") or ()) for r in runs}
    return list(next(iter(orders))) if len(orders) == 1 and () not in orders else None


# --------------------------------------------------------------------------- all methods

def curves_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]], *,
                  labels: Mapping[str, str], title: str, ylabel: str):
    """Methods' mean ± std curves ``{method: (x, mean, std)}`` on one percent axis, each in
    its own style (:func:`method_styles`), with the coincidence note (:func:`coinciding`)."""
    styles = method_styles(list(curves))
    fig = figure(8, 4.8)
    ax = fig.add_subplot()
    for m, (x, mean, std) in curves.items():
        band(ax, x, mean, std, label=labels[m], **styles[m])
    percent_axis(ax, ylabel=ylabel)
    note = coincide_note({m: mean for m, (_, mean, _) in curves.items()})
    ax.set_title(title + (f"\n{note}" if note else ""), fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return fig


def basic_accuracy_figure(methods: Mapping[str, Sequence[Mapping]]):
    """basic_accuracy[i] = R[i][0] per step, all methods."""
    curves, T = {}, 1
    for m, runs in methods.items():
        R = matrices(runs)
        T = max(T, R.shape[1])
        curves[m] = (np.arange(R.shape[1]), *mean_spread(R[:, :, 0]))
    fig = curves_figure(curves, labels={m: _label(m, r) for m, r in methods.items()},
                        title="How the basic expressions survive (mean ± 1 std over runs)",
                        ylabel="accuracy on the basic expressions")
    step_axis(fig.axes[0], T)
    return fig


def basic_accuracy_all(methods: Mapping[str, Sequence[Mapping]], path: Path, cfg: PlotConfig) -> Path:
    return save(basic_accuracy_figure(methods), path, cfg)


def step_accuracy_figure(methods: Mapping[str, Sequence[Mapping]]):
    """step_accuracy vs number of seen classes, all methods."""
    from matplotlib.ticker import MaxNLocator

    by_classes = all(n_basic_of(r) is not None for runs in methods.values() for r in runs)
    curves = {}
    for m, runs in methods.items():
        S = stack([r["step_accuracy"] for r in runs])
        curves[m] = (np.arange(S.shape[1]) + (n_basic_of(runs[0]) if by_classes else 0), *mean_spread(S))
    fig = curves_figure(curves, labels={m: _label(m, r) for m, r in methods.items()},
                        title="Step accuracy as classes are added (mean ± 1 std over runs)",
                        ylabel="step accuracy (all seen classes)")
    ax = fig.axes[0]
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of seen classes" if by_classes else "after training experience (0 = basic)")
    return fig


def step_accuracy_all(methods: Mapping[str, Sequence[Mapping]], path: Path, cfg: PlotConfig) -> Path:
    return save(step_accuracy_figure(methods), path, cfg)


# --------------------------------------------------------------------------- one method

def forgetting_figure(method: str, runs: Sequence[Mapping], *, once: bool = False):
    """Small multiples, one panel per experience j: the accuracy on j's test data after each
    step i >= j (mean ± std over runs), a dashed line at the accuracy just after learning it,
    the final value written right of the curve's end (the x axis leaves room for it, so it
    never sits on the curve); the basic block's panel first, in black. One curve a panel, so
    that 16 experiences stay apart. ``once``: trained once (joint), so step i is the model
    scored with the classes of experiences 0..i."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    R = matrices(runs)
    T = R.shape[1]
    order = _same_order(runs)
    cols = min(T, 4)
    rows = -(-T // cols)
    fig = figure(2.5 * cols + 0.7, 1.9 * rows + 1.0)
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
    # Room right of the last step for a "100%" at fontsize 7 (about 28 points of a panel of
    # about 150): a fifth of the step range, at least one step.
    right = T - 1 + max(1.0, 0.22 * T)
    for j, ax in enumerate(axes):
        if j >= T:
            ax.set_visible(False)
            continue
        mean, std = mean_spread(R[:, j:, j])
        basic = j == 0
        color = "black" if basic else "tab:blue"
        band(ax, np.arange(j, T), mean, std, color=color, label=None, lw=2.2 if basic else 1.4, marker=".")
        if np.isfinite(mean[0]):
            ax.axhline(mean[0], color=color, lw=0.7, ls="--", alpha=0.6)
        if np.isfinite(mean[-1]):
            ax.annotate(f"{100 * mean[-1]:.0f}%", (T - 1, mean[-1]), xytext=(4, 0),
                        textcoords="offset points", ha="left", va="center", fontsize=7, color=color)
        name = "basic expressions" if basic else (order[j - 1] if order and j - 1 < len(order) else "")
        ax.set_title(f"exp {j}" + (f": {name}" if name else ""), fontsize=8,
                     fontweight="bold" if basic else "normal")
        ax.set_xlim(-0.3, right)
        ax.set_ylim(-0.02, 1.02)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.supxlabel(ONCE_XLABEL if once else "after training experience i (0 = basic)", fontsize=9)
    fig.supylabel("test accuracy on experience j", fontsize=9)
    varies = "" if order else "; experience j is a different class in each order"
    what = ("scored with the classes of 0..i, i >= j (trained once)" if once
            else "after each step i >= j")
    fig.suptitle(f"{method}: accuracy on each experience j {what}\n"
                 f"{spread_note(runs)}; dashed: at its own step{varies}", fontsize=10)
    return fig


def forgetting_curves(method: str, runs: Sequence[Mapping], path: Path, cfg: PlotConfig, *,
                      once: bool = False) -> Path:
    """:func:`forgetting_figure` as a PNG."""
    return save(forgetting_figure(method, runs, once=once), path, cfg)


def old_new_figure(method: str, runs: Sequence[Mapping], *, once: bool = False):
    """Old-class accuracy (experiences 0..i-1), new-class recall R[i][i] and, where the runs
    recorded it, new-class F1 per step (headers from :mod:`cfer.core.metrics`). ``once``:
    trained once (joint): each point is the one model scored on the classes of 0..i, not a
    model after training experience i."""
    R = matrices(runs)
    T = R.shape[1]
    new = np.array([[R[k, i, i] for i in range(T)] for k in range(len(runs))])
    new[:, 0] = np.nan  # the basic step has no "new class" in the paper's sense
    old = stack([r["old_class_accuracy"] for r in runs])
    series = [("old classes (experiences 0..i-1)", old, "tab:blue", "-"),
              (f"{metrics.get('new_class_recall').header} (experience i)", new, "tab:orange", "--")]
    if all(r.get("new_class_f1") for r in runs):
        series.append((f"{metrics.get('new_class_f1').header} (experience i, over all seen classes)",
                       stack([r["new_class_f1"] for r in runs]), "tab:green", "-."))
    fig = figure(8, 4.8)
    ax = fig.add_subplot()
    for label, a, color, ls in series:
        mean, std = mean_spread(a)
        band(ax, np.arange(a.shape[1]), mean, std, color=color, label=label, ls=ls)
    step_axis(ax, T, once=once)
    percent_axis(ax, ylabel="test accuracy, recall or F1")
    ax.set_title(f"{method}: old vs new classes{', trained once' if once else ''} ({spread_note(runs)})")
    ax.legend(fontsize=8, loc="best")
    return fig


def old_new(method: str, runs: Sequence[Mapping], path: Path, cfg: PlotConfig, *, once: bool = False) -> Path:
    """:func:`old_new_figure` as a PNG."""
    return save(old_new_figure(method, runs, once=once), path, cfg)


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
        s, once = slug(m), trained_once(m)
        files = [forgetting_curves(m, runs, out / f"forgetting_{s}.png", cfg, once=once),
                 accuracy_heatmap(m, runs, out / f"accuracy_matrix_{s}.png", cfg, once=once)]
        if _has(runs, "old_class_accuracy"):
            files.append(old_new(m, runs, out / f"old_new_{s}.png", cfg, once=once))
        if _has(runs, "confusion_matrix", "class_names"):
            files.append(confusion(m, runs, out / f"confusion_{s}.png", cfg, ds_names))
        written[m] = files
    return written
