"""What every figure of a report shares: the PNG canvas, the run data as arrays, the
mean ± std band, percent axes and colour bars, and which methods were trained once.

Every curve is the mean over a method's runs (class orders x folds x seeds)
with a shaded band of +- one sample standard deviation (ddof=1; no band with
one run), the same spread as the summary table. Experiences are matched by
position across runs: with different class orders, "experience 3" is a
different compound class in each run.

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
from cfer.core.metric_definitions import n_basic_of

#: Re-exported for the figure modules: the number of basic classes of a run record.
__all__ = ["n_basic_of"]


@dataclass(frozen=True)
class PlotConfig:
    dpi: int = 120  # sharp enough on screen and in a paper draft
    annotate_max: int = 24  # write the value into heat-map cells up to this many rows


# --------------------------------------------------------------------------- files


def slug(name: str) -> str:
    """A file-name-safe version of a method name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "method"


def figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig, path: Path, cfg: PlotConfig) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=cfg.dpi)
    return atomic_write_bytes(path, buf.getvalue())


# --------------------------------------------------------------------------- data

def num(v) -> float:
    return np.nan if v is None else float(v)


def stack(rows: Sequence[Sequence]) -> np.ndarray:
    """Lists of possibly different lengths (None = NaN) as a NaN-padded 2-D array."""
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), np.nan)
    for k, r in enumerate(rows):
        out[k, : len(r)] = [num(v) for v in r]
    return out


def matrices(runs: Sequence[Mapping]) -> np.ndarray:
    """(n_runs, T, T) accuracy matrices, NaN where not evaluated (and padded)."""
    T = max(len(r["accuracy_matrix"]) for r in runs)
    out = np.full((len(runs), T, T), np.nan)
    for k, r in enumerate(runs):
        m = stack(r["accuracy_matrix"])
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


def trained_once(method: str) -> bool:
    """True for a method trained once on the whole stream (joint: ``offline`` in the
    strategy registry), whose per-step points are not "after training experience i"; False
    for a name the registry does not know."""
    from cfer import strategies

    try:
        return bool(strategies.entry(method).offline)
    except ValueError:
        return False


def band(ax, x, mean, std, *, color, label, lw=1.8, ls="-", marker="o"):
    """The mean curve and a mean ± std band, clipped to [0, 1]: every curve drawn here is an
    accuracy (or recall), which a band of a normal spread would push past 0% or 100%."""
    ok = np.isfinite(mean)
    x, mean, std = np.asarray(x)[ok], mean[ok], std[ok]
    ax.plot(x, mean, color=color, lw=lw, ls=ls, marker=marker, ms=3.5, label=label)
    if np.any(std > 0):
        ax.fill_between(x, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1), color=color, alpha=0.18,
                        lw=0)


def percent_axis(ax, *, ylabel: str):
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


#: The step axis of a method trained once (joint): there is no "after training experience
#: i", each point scores the one model on the classes of experiences 0..i.
ONCE_XLABEL = "scored on the classes of experiences 0..i (trained once on all; 0 = basic)"
ONCE_YLABEL = "scored on the classes of experiences 0..i (trained once)"


def step_axis(ax, T: int, *, once: bool = False):
    from matplotlib.ticker import MaxNLocator

    ax.set_xlim(-0.3, T - 0.7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(ONCE_XLABEL if once else "after training experience (0 = basic)")


def spread_note(runs) -> str:
    return f"mean over {len(runs)} run{'s' if len(runs) != 1 else ''}" + (" ± 1 std" if len(runs) > 1 else "")


def percent_colorbar(fig, im, ax, *, label: str):
    """A colour bar in percent for an image drawn from values in percent (0-100): the unit
    the cells are written in."""
    from matplotlib.ticker import PercentFormatter

    bar = fig.colorbar(im, ax=ax, shrink=0.8, label=label)
    bar.ax.yaxis.set_major_formatter(PercentFormatter(100))
    return bar
