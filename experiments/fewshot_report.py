"""Report and figures of the few-shot phases, from results.json only.

- ``phase: fewshot`` (results.json has a top-level ``"fewshot"`` block):
  :func:`write_fewshot_report` writes ``plots/fewshot_*.png`` and
  ``report.md``; :func:`format_fewshot_table` is the one-screen table.
- ``phase: fscil`` (continual schema, runs with ``novel_accuracy``):
  :func:`fscil_section` adds a markdown section and a base / novel /
  harmonic-mean figure per method to the continual report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from cfer.experiments.plots import (PlotConfig, _band, _figure, _percent_axis, _save, _stack, _step_axis,
                               mean_spread, slug)
from cfer.atomic import atomic_write_text
from cfer.experiments.report import _markdown, format_cell

#: Column headers of the few-shot metrics (keys of experiments.fewshot.FEWSHOT_METRICS).
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

FSCIL_HEADERS: dict[str, str] = {
    "performance_drop": "performance drop",
    "final_base_accuracy": "base acc (last)",
    "final_novel_accuracy": "novel acc (last)",
    "final_harmonic_mean": "harmonic mean (last)",
    "average_harmonic_mean": "harmonic mean (avg over sessions)",
}


# --------------------------------------------------------------------------- checking

def check_fewshot(results: Mapping, *, where: str = "results.json") -> Mapping:
    """The ``fewshot`` block of ``results``, checked (one-line ValueError naming the key)."""
    from cfer.experiments.fewshot import FEWSHOT_METRICS, summarize_fewshot

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


def load_fewshot_results(run_dir: str | Path) -> dict:
    """results.json of a ``phase: fewshot`` run, checked."""
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (is {run_dir} a `cfer run` output folder?)")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    check_fewshot(results, where=str(path))
    return results


# --------------------------------------------------------------------------- tables

def _shot_rows(block: Mapping, *, with_n: bool) -> list[list[str]]:
    rows = []
    for n, stats in block["summary"].items():
        rows.append([n] + [format_cell(stats.get(m), with_n=with_n) for m in FEWSHOT_HEADERS])
    return rows


def format_fewshot_table(results: Mapping) -> str:
    """Shots x few-shot metrics as a text table (percent, mean ± std)."""
    from cfer.experiments.report import _aligned

    block = check_fewshot(results)
    header = ["shots n"] + list(FEWSHOT_HEADERS.values())
    return (_aligned(header, _shot_rows(block, with_n=False))
            + f"\n({block['method']}; percent; mean ± sample std over "
              f"{len(block['records']) // max(len(block['summary']), 1)} steps per n)")


def _per_class_rows(block: Mapping) -> list[list[str]]:
    from cfer.plugins.metrics import mean_std

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
    fig = _figure(7, 4.6)
    ax = fig.add_subplot()
    for m, label in FEWSHOT_HEADERS.items():
        stats = [block["summary"][str(n)][m] for n in shots]
        mean = np.array([np.nan if s["mean"] is None else s["mean"] for s in stats])
        std = np.array([0.0 if s["std"] is None else s["std"] for s in stats])
        _band(ax, shots, mean, std, color=colors[m], label=label,
              lw=2.6 if m == "harmonic_mean" else 1.6, ls="--" if m == "new_recall" else "-")
    basics = [b["basic_accuracy"] for b in block.get("basic_models") or []]
    if basics:
        ax.axhline(float(np.mean(basics)), color="tab:blue", ls=":", lw=1.2,
                   label="basic acc of the basic model (before the step)")
    ax.set_xticks(shots)
    ax.set_xlabel("training images of the new class (n)")
    _percent_axis(ax, ylabel="test accuracy")
    ax.set_title(f"Few-shot, one new class at a time ({block['method']}, "
                 f"{len(block['records'])} steps)", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path, cfg)


def per_class_heatmap(block: Mapping, path: Path, cfg: PlotConfig) -> Path:
    """Classes x n: new-class recall (the paper's figure) beside the harmonic mean."""
    from cfer.plugins.metrics import mean_std

    shots = [int(n) for n in block["summary"]]
    classes = list(dict.fromkeys(r["class"] for r in block["records"]))
    fig = _figure(3.2 + 1.1 * len(shots), 1.6 + 0.32 * len(classes))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (m, title) in zip(axes, (("new_recall", "new-class recall (paper)"),
                                     ("harmonic_mean", "harmonic mean"))):
        grid = np.array([[mean_std(r[m] for r in block["records"]
                                   if r["class"] == c and int(r["shots"]) == n)["mean"] or 0.0
                          for n in shots] for c in classes])
        im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        for i, j in np.ndindex(grid.shape):
            ax.text(j, i, f"{100 * grid[i, j]:.0f}", ha="center", va="center", fontsize=7,
                    color="black" if grid[i, j] > 0.6 else "white")
        ax.set_xticks(range(len(shots)), [str(n) for n in shots])
        ax.set_xlabel("n")
        ax.set_title(title, fontsize=9)
    axes[0].set_yticks(range(len(classes)), classes, fontsize=7)
    fig.colorbar(im, ax=axes, shrink=0.8, label="mean over seeds and folds")
    return _save(fig, path, cfg)


def fscil_sessions(method: str, runs: Sequence[Mapping], path: Path, cfg: PlotConfig) -> Path:
    """Base, novel and harmonic-mean accuracy per session, and the session (step) accuracy."""
    fig = _figure(8, 4.8)
    ax = fig.add_subplot()
    T = 1
    for key, label, color in (("step_accuracy", "all seen classes", "tab:green"),
                              ("base_accuracy", "base (basic classes)", "tab:blue"),
                              ("novel_accuracy", "novel (compound classes so far)", "tab:orange"),
                              ("harmonic_mean", "harmonic mean of base and novel", "black")):
        a = _stack([r[key] for r in runs])
        T = max(T, a.shape[1])
        mean, std = mean_spread(a)
        _band(ax, np.arange(a.shape[1]), mean, std, color=color, label=label)
    _step_axis(ax, T)
    ax.set_xlabel("after session (0 = basic)")
    _percent_axis(ax, ylabel="test accuracy")
    shots = runs[0].get("shots")
    ax.set_title(f"{method}: FSCIL{f', {shots} shots' if shots else ''} "
                 f"(mean over {len(runs)} run(s))", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path, cfg)


# --------------------------------------------------------------------------- report

def _img(path: Path, run_dir: Path, alt: str) -> str:
    return f"![{alt}]({path.relative_to(run_dir).as_posix()})"


def render_fewshot_report(results: Mapping, plots: Sequence[Path], run_dir: Path) -> str:
    block = check_fewshot(results)
    ds = results.get("dataset") or {}
    folds = sorted({r["fold"] for r in block["records"]})
    seeds = sorted({r["seed"] for r in block["records"]})
    lines = [f"# Few-shot compound expressions{': ' + ds['name'] if ds.get('name') else ''}", ""]
    if (run_dir / "config.yaml").is_file():
        lines += ["Configuration: [config.yaml](config.yaml). Logs: `logs/`.", ""]
    lines += [f"- method: {block['method']}; protocol: {block.get('protocol', 'n/a')}; "
              f"images repeated to fill batches: {block.get('fill_batch', 'n/a')}",
              f"- {len({r['class'] for r in block['records']})} compound classes, each added alone to the basic model; shots "
              f"{', '.join(block['summary'])}; folds {folds}; seeds {seeds}", ""]
    basics = block.get("basic_models") or []
    if basics:
        from cfer.plugins.metrics import mean_std

        stat = mean_std(b["basic_accuracy"] for b in basics)
        lines += [f"Basic model before any few-shot step: basic-class test accuracy "
                  f"{format_cell(stat)}.", ""]
    lines += ["## Summary", "",
              _markdown(["shots n"] + list(FEWSHOT_HEADERS.values()), _shot_rows(block, with_n=True)),
              "", FEWSHOT_NOTES, ""]
    for p in plots:
        lines += [_img(p, run_dir, p.stem.replace("_", " ")), ""]
    shots = list(block["summary"])
    header = ["class"] + [f"{h} n={n}" for n in shots for h in ("recall", "HM")]
    lines += ["## Per class", "", "New-class recall (paper) and harmonic mean (HM), percent, "
              "mean ± std over seeds and folds.", "", _markdown(header, _per_class_rows(block)), ""]
    return "\n".join(lines)


def write_fewshot_report(run_dir: str | Path, results: Mapping | None = None, *,
                         plot_config: PlotConfig | None = None) -> Path:
    """(Re)write ``plots/fewshot_*.png`` and ``report.md`` of a ``phase: fewshot`` run dir."""
    run_dir = Path(run_dir)
    results = load_fewshot_results(run_dir) if results is None else results
    block = check_fewshot(results)
    cfg = plot_config or PlotConfig()
    out = run_dir / "plots"
    plots = [metrics_vs_shots(block, out / "fewshot_vs_shots.png", cfg),
             per_class_heatmap(block, out / "fewshot_per_class.png", cfg)]
    return atomic_write_text(run_dir / "report.md", render_fewshot_report(results, plots, run_dir))


def fscil_section(results: Mapping, run_dir: str | Path, plot_config: PlotConfig | None = None) -> str:
    """Markdown for FSCIL runs (empty when no method's runs carry the FSCIL fields);
    draws ``plots/fscil_<method>.png``."""
    from cfer.experiments.fewshot import FSCIL_METRICS, fscil_summary

    run_dir = Path(run_dir)
    cfg = plot_config or PlotConfig()
    keys = ("base_accuracy", "novel_accuracy", "harmonic_mean", "step_accuracy")
    methods = {m: e["runs"] for m, e in results.get("methods", {}).items()
               if e.get("runs") and all(all(r.get(k) for k in keys) for r in e["runs"])}
    if not methods:
        return ""
    rows, figures = [], []
    for m, runs in methods.items():
        summary = fscil_summary(runs)
        rows.append([m, str(len(runs))] + [format_cell(summary[k]) for k in FSCIL_METRICS])
        figures.append(_img(fscil_sessions(m, runs, run_dir / "plots" / f"fscil_{slug(m)}.png", cfg),
                            run_dir, f"{m}: FSCIL sessions"))
    shots = {r.get("shots") for runs in methods.values() for r in runs}
    lines = ["", "## Few-shot class-incremental (FSCIL)", "",
             f"Each compound session trains on {', '.join(str(s) for s in sorted(shots, key=str))} "
             "image(s) of its class; the basic session on all basic training images.", "",
             _markdown(["method", "runs"] + [FSCIL_HEADERS[k] for k in FSCIL_METRICS], rows), "",
             "*performance drop*: session-0 accuracy minus last-session accuracy on all seen classes; "
             "*base*: accuracy on the basic classes; *novel*: on the compound classes learnt so far; "
             "*harmonic mean*: of base and novel (sessions >= 1).", ""]
    for f in figures:
        lines += [f, ""]
    return "\n".join(lines)
