"""The report of ``phase: fewshot`` (the paper's protocol), from results.json only.

:mod:`cfer.experiments.report.run_report` picks this module for results whose
``config.phase`` is ``fewshot``; like every phase's report module it has
:func:`check`, :func:`summary_table`, :func:`write_report` (``plots/fewshot_*.png``
and ``report.md``) and :func:`compare_rows`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from cfer.core.atomic import atomic_write_text
from cfer.core.metric_definitions import mean_std
from cfer.experiments.report.figures import PlotConfig, band, figure, percent_axis, percent_colorbar, save
from cfer.experiments.report.tables import aligned_table, format_cell, image_link, markdown_table
from cfer.experiments.run.fewshot import FEWSHOT_METRICS, summarize_fewshot

#: Column headers of the few-shot metrics (keys of cfer.experiments.run.fewshot.FEWSHOT_METRICS).
FEWSHOT_HEADERS: dict[str, str] = {
    "new_recall": "new-class recall (paper)",
    "all_accuracy": "all-class acc",
    "basic_accuracy": "basic acc",
    "harmonic_mean": "harmonic mean",
}

FEWSHOT_NOTES = """\
Percent, mean ± sample std (number of steps) over classes, seeds and folds. Each step adds one
compound class to the basic model with n training images and is scored on the test subjects.
*new-class recall*: share of the new class's test images predicted as the new class; this is
the paper's few-shot figure, and a model that always answers the new class scores 100% on it.
*basic acc*: accuracy on the six basic classes' test images after the step; *all-class acc*: on
the basic and new test images together; *harmonic mean*: of basic acc and new-class recall,
0 for a model that always answers the new class."""


# --------------------------------------------------------------------------- checking

def check(results: Mapping, *, where: str = "results.json") -> Mapping:
    """The ``fewshot`` block of ``results``, checked (one-line ValueError naming ``where`` and
    the key); it gets a ``summary`` if it lacks one."""
    block = results.get("fewshot")
    if not isinstance(block, dict):
        raise ValueError(f"{where}: key 'fewshot' is missing or not an object")
    records = block.get("records")
    if not isinstance(records, list) or not records:
        raise ValueError(f"{where}: fewshot.records is missing or empty")
    for k, r in enumerate(records):
        missing = [key for key in ("class", "shots", "seed", "fold", *FEWSHOT_METRICS)
                   if not isinstance(r, dict) or key not in r]
        if missing:
            raise ValueError(f"{where}: fewshot.records[{k}] lacks {', '.join(missing)}")
    if not isinstance(block.get("summary"), dict) or not block["summary"]:
        block["summary"] = summarize_fewshot(records)
    return block


def compare_rows(results: Mapping) -> list[tuple[str, dict]]:
    """None: ``cfer compare`` tables the continual summary metrics, which a few-shot run has not."""
    return []


# --------------------------------------------------------------------------- tables

def _shot_rows(block: Mapping, *, with_n: bool) -> list[list[str]]:
    rows = []
    for n, stats in block["summary"].items():
        rows.append([n] + [format_cell(stats.get(m), with_n=with_n) for m in FEWSHOT_HEADERS])
    return rows


def summary_table(results: Mapping) -> str:
    """Shots x few-shot metrics as a text table (percent, mean ± std)."""
    block = check(results)
    header = ["shots n"] + list(FEWSHOT_HEADERS.values())
    return (aligned_table(header, _shot_rows(block, with_n=False))
            + f"\n({block['method']}; percent; mean ± sample std over "
              f"{len(block['records']) // max(len(block['summary']), 1)} steps per n)")


def _per_class_rows(block: Mapping) -> list[list[str]]:
    shots = [int(n) for n in block["summary"]]
    classes = list(dict.fromkeys(r["class"] for r in block["records"]))
    rows = []
    for c in classes:
        cells = []
        for n in shots:
            recs = [r for r in block["records"] if r["class"] == c and int(r["shots"]) == n]
            cells += [format_cell(mean_std(r["new_recall"] for r in recs), with_n=False),
                      format_cell(mean_std(r["harmonic_mean"] for r in recs), with_n=False)]
        rows.append([c] + cells)
    return rows


# --------------------------------------------------------------------------- figures

def metrics_vs_shots(block: Mapping, path: Path, cfg: PlotConfig) -> Path:
    """The four few-shot metrics against n (mean ± 1 std over classes, seeds, folds)."""
    shots = sorted(int(n) for n in block["summary"])
    colors = {"new_recall": "tab:orange", "all_accuracy": "tab:green", "basic_accuracy": "tab:blue",
              "harmonic_mean": "black"}
    fig = figure(7, 4.6)
    ax = fig.add_subplot()
    for m, label in FEWSHOT_HEADERS.items():
        stats = [block["summary"][str(n)][m] for n in shots]
        mean = np.array([np.nan if s["mean"] is None else s["mean"] for s in stats])
        std = np.array([0.0 if s["std"] is None else s["std"] for s in stats])
        band(ax, shots, mean, std, color=colors[m], label=label,
              lw=2.6 if m == "harmonic_mean" else 1.6, ls="--" if m == "new_recall" else "-")
    basics = [b["basic_accuracy"] for b in block.get("basic_models") or []]
    if basics:
        ax.axhline(float(np.mean(basics)), color="tab:blue", ls=":", lw=1.2,
                   label="basic acc of the basic model (before the step)")
    ax.set_xticks(shots)
    ax.set_xlabel("training images of the new class (n)")
    percent_axis(ax, ylabel="test accuracy")
    ax.set_title(f"Few-shot, one new class at a time ({block['method']}, "
                 f"{len(block['records'])} steps)", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return save(fig, path, cfg)


def per_class_heatmap(block: Mapping, path: Path, cfg: PlotConfig) -> Path:
    """Classes x n: new-class recall (the paper's figure) beside the harmonic mean."""
    shots = [int(n) for n in block["summary"]]
    classes = list(dict.fromkeys(r["class"] for r in block["records"]))
    fig = figure(3.2 + 1.1 * len(shots), 1.6 + 0.32 * len(classes))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (m, title) in zip(axes, (("new_recall", "new-class recall (paper)"),
                                     ("harmonic_mean", "harmonic mean"))):
        grid = 100 * np.array([[mean_std(r[m] for r in block["records"]
                                         if r["class"] == c and int(r["shots"]) == n)["mean"] or 0.0
                                for n in shots] for c in classes])
        im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=100, aspect="auto")  # percent, as the cells
        for i, j in np.ndindex(grid.shape):
            ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=7,
                    color="black" if grid[i, j] > 60 else "white")
        ax.set_xticks(range(len(shots)), [str(n) for n in shots])
        ax.set_xlabel("n")
        ax.set_title(title, fontsize=9)
    axes[0].set_yticks(range(len(classes)), classes, fontsize=7)
    percent_colorbar(fig, im, axes, label="mean over seeds and folds")
    return save(fig, path, cfg)


# --------------------------------------------------------------------------- report

def render_report(results: Mapping, plots: Sequence[Path], run_dir: Path) -> str:
    """The text of report.md (plots already written under ``run_dir``)."""
    block = check(results)
    ds = results.get("dataset") or {}
    folds = sorted({r["fold"] for r in block["records"]})
    seeds = sorted({r["seed"] for r in block["records"]})
    lines = [f"# Few-shot compound expressions{': ' + ds['name'] if ds.get('name') else ''}", ""]
    if (run_dir / "config.yaml").is_file():
        lines += ["Configuration: [config.yaml](config.yaml). Logs: `logs/`.", ""]
    lines += [f"- method: {block['method']}; protocol: {block.get('protocol', 'n/a')}; "
              f"images repeated to fill batches: {block.get('fill_batch', 'n/a')}",
              f"- {len({r['class'] for r in block['records']})} compound classes, each added alone to "
              "the basic model; shots "
              f"{', '.join(block['summary'])}; folds {folds}; seeds {seeds}", ""]
    basics = block.get("basic_models") or []
    if basics:
        stat = mean_std(b["basic_accuracy"] for b in basics)
        lines += [f"Basic model before any few-shot step: basic-class test accuracy "
                  f"{format_cell(stat)}.", ""]
    lines += ["## Summary", "",
              markdown_table(["shots n"] + list(FEWSHOT_HEADERS.values()), _shot_rows(block, with_n=True)),
              "", FEWSHOT_NOTES, ""]
    for p in plots:
        lines += [image_link(p, run_dir, p.stem.replace("_", " ")), ""]
    shots = list(block["summary"])
    header = ["class"] + [f"{h} n={n}" for n in shots for h in ("recall", "HM")]
    lines += ["## Per class", "", "New-class recall (paper) and harmonic mean (HM), percent, "
              "mean ± std over seeds and folds.", "", markdown_table(header, _per_class_rows(block)), ""]
    return "\n".join(lines)


def write_report(run_dir: Path, results: Mapping, *, plot_config: PlotConfig | None = None) -> Path:
    """(Re)write ``plots/fewshot_*.png`` and ``report.md`` of a ``phase: fewshot`` run dir."""
    block = check(results)
    cfg = plot_config or PlotConfig()
    out = run_dir / "plots"
    plots = [metrics_vs_shots(block, out / "fewshot_vs_shots.png", cfg),
             per_class_heatmap(block, out / "fewshot_per_class.png", cfg)]
    return atomic_write_text(run_dir / "report.md", render_report(results, plots, run_dir))
