"""The report of ``phase: fscil``, from results.json only: the continual report plus a
few-shot class-incremental section (base / novel / harmonic-mean accuracy per session).

:mod:`cfer.experiments.report.run_report` picks this module for results whose
``config.phase`` is ``fscil``; the results keep the continual schema, so checks,
tables and ``cfer compare`` rows are the continual report's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from cfer.core.atomic import atomic_write_text
from cfer.experiments.report import continual as continual_report
from cfer.experiments.report.figures import (
    PlotConfig,
    band,
    figure,
    mean_spread,
    percent_axis,
    save,
    slug,
    stack,
    step_axis,
)
from cfer.experiments.report.tables import format_cell, image_link, markdown_table
from cfer.experiments.run.fscil import FSCIL_METRICS, fscil_summary

FSCIL_HEADERS: dict[str, str] = {
    "performance_drop": "performance drop",
    "final_base_accuracy": "base acc (last)",
    "final_novel_accuracy": "novel acc (last)",
    "final_harmonic_mean": "harmonic mean (last)",
    "average_harmonic_mean": "harmonic mean (avg over sessions)",
}

# The continual schema: the same checks, one-screen table and `cfer compare` rows.
check = continual_report.check
summary_table = continual_report.summary_table
compare_rows = continual_report.compare_rows


def fscil_sessions(method: str, runs: Sequence[Mapping], path: Path, cfg: PlotConfig) -> Path:
    """Base, novel and harmonic-mean accuracy per session, and the session (step) accuracy."""
    fig = figure(8, 4.8)
    ax = fig.add_subplot()
    T = 1
    for key, label, color in (("step_accuracy", "all seen classes", "tab:green"),
                              ("base_accuracy", "base (basic classes)", "tab:blue"),
                              ("novel_accuracy", "novel (compound classes so far)", "tab:orange"),
                              ("harmonic_mean", "harmonic mean of base and novel", "black")):
        a = stack([r[key] for r in runs])
        T = max(T, a.shape[1])
        mean, std = mean_spread(a)
        band(ax, np.arange(a.shape[1]), mean, std, color=color, label=label)
    step_axis(ax, T)
    ax.set_xlabel("after session (0 = basic)")
    percent_axis(ax, ylabel="test accuracy")
    shots = runs[0].get("shots")
    ax.set_title(f"{method}: FSCIL{f', {shots} shots' if shots else ''} "
                 f"(mean over {len(runs)} run(s))", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return save(fig, path, cfg)


def fscil_section(results: Mapping, run_dir: str | Path, plot_config: PlotConfig | None = None) -> str:
    """Markdown for FSCIL runs (empty when no method's runs carry the FSCIL fields);
    draws ``plots/fscil_<method>.png``."""
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
        figures.append(image_link(fscil_sessions(m, runs, run_dir / "plots" / f"fscil_{slug(m)}.png", cfg),
                                  run_dir, f"{m}: FSCIL sessions"))
    shots = {r.get("shots") for runs in methods.values() for r in runs}
    lines = ["", "## Few-shot class-incremental (FSCIL)", "",
             f"Each compound session trains on {', '.join(str(s) for s in sorted(shots, key=str))} "
             "image(s) of its class; the basic session on all basic training images.", "",
             markdown_table(["method", "runs"] + [FSCIL_HEADERS[k] for k in FSCIL_METRICS], rows), "",
             "*performance drop*: session-0 accuracy minus last-session accuracy on all seen classes; "
             "*base*: accuracy on the basic classes; *novel*: on the compound classes learnt so far; "
             "*harmonic mean*: of base and novel (sessions >= 1).", ""]
    for f in figures:
        lines += [f, ""]
    return "\n".join(lines)


def write_report(run_dir: Path, results: Mapping, *, plot_config: PlotConfig | None = None) -> Path:
    """(Re)write ``plots/*.png`` and ``report.md``: the continual report, then the FSCIL section."""
    text = (continual_report.report_text(run_dir, results, plot_config=plot_config)
            + fscil_section(results, run_dir, plot_config))
    return atomic_write_text(run_dir / "report.md", text)
