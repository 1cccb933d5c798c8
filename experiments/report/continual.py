"""The report of ``phase: continual``, from results.json only: checks, tables, report.md.

:mod:`cfer.experiments.report.run_report` picks this module for results whose
``config.phase`` is ``continual`` (or missing); :mod:`cfer.experiments.report.fscil`
builds on it. Every phase's report module has the same four functions:
:func:`check`, :func:`summary_table`, :func:`write_report` and :func:`compare_rows`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cfer.core import metric_definitions as M
from cfer.core import metrics
from cfer.core.atomic import atomic_write_text
from cfer.experiments.report import gradcam_section, stats
from cfer.experiments.report.dataset_notes import unreadable_list
from cfer.experiments.report.plots import PlotConfig, plot_all, slug
from cfer.experiments.report.tables import aligned_table, format_cell, image_link, markdown_table, metric_cell

#: report.md's paired table compares this method with each other one (cfer.experiments.report.stats).
PAIRED_REFERENCE = "kd_psmr"


def metric_notes(names) -> str:
    """The notes under a table of the metrics ``names``: each one's header and description
    (cfer.core.metrics), and the learnt rule when a learnt-based metric is among them."""
    notes = "; ".join(f"*{metrics.get(m).header}*: {metrics.get(m).description}" for m in names)
    if any(metrics.get(m).uses_learnt for m in names):
        notes += f". Learnt: {metrics.learnt_rule()}"
    return notes + "."


def units_note(names) -> str:
    """What the cells are: percent (or a count of experiences), mean ± sample std over runs."""
    counts = [f"{metrics.get(m).header}: {metrics.get(m).unit}" for m in names
              if metrics.get(m).unit != "percent"]
    return ("Percent" + (f" ({'; '.join(counts)})" if counts else "")
            + "; mean ± sample std over runs, (n) where a metric is defined on fewer runs than the row has.")


# --------------------------------------------------------------------------- checking

def check(results: dict, *, where: str) -> None:
    """Check the ``methods`` block (one-line ValueError naming ``where`` and the key); each
    method gets a ``summary`` if it lacks one, and the metrics its summary lacks (a metric
    added after the file was written) computed from its runs."""
    methods = results.get("methods")
    if not isinstance(methods, dict) or not methods:
        raise ValueError(f"{where}: key 'methods' is missing or empty "
                         "(expected {method: {'runs': [...]}})")
    for name, entry in methods.items():
        runs = entry.get("runs") if isinstance(entry, dict) else None
        if not isinstance(runs, list) or not runs:
            raise ValueError(f"{where}: methods.{name}.runs is missing or empty")
        for k, run in enumerate(runs):
            at = f"methods.{name}.runs[{k}]"
            if not isinstance(run, dict):
                raise ValueError(f"{where}: {at} is not an object")
            try:
                metrics.run_scalars(run)
            except (ValueError, TypeError) as e:
                raise ValueError(f"{where}: {at}: {e}") from None
        if not isinstance(entry.get("summary"), dict):
            entry["summary"] = metrics.summarize_runs(runs)
        if any(key not in entry["summary"] for key in metrics.names()):
            for key, stat in metrics.summarize_runs(runs).items():
                entry["summary"].setdefault(key, stat)
        for key in metrics.names():
            stat = entry["summary"].get(key)
            if not (isinstance(stat, dict) and {"mean", "std", "n"} <= stat.keys()):
                raise ValueError(f"{where}: methods.{name}.summary.{key} is missing or "
                                 f"not {{'mean', 'std', 'n'}}")
    if not isinstance(results.get("dataset", {}), dict):
        raise ValueError(f"{where}: key 'dataset' must be an object")


def compare_rows(results: Mapping) -> list[tuple[str, dict]]:
    """``(method, summary)`` of every method, for ``cfer compare``."""
    return [(m, e["summary"]) for m, e in results["methods"].items()]


# --------------------------------------------------------------------------- tables

def _rows(results: Mapping, names) -> list[list[str]]:
    rows = []
    for name, entry in results["methods"].items():
        summary = entry.get("summary") or metrics.summarize_runs(entry["runs"])
        n = len(entry["runs"])
        rows.append([name, str(n)] + [metric_cell(summary, k, runs=n) for k in names])
    return rows


def summary_table(results: Mapping) -> str:
    """A one-screen text table: methods x headline metrics (mean ± std over runs), with run
    counts. A metric defined on fewer runs than the method has shows its own count."""
    names = metrics.headline()
    header = ["method", "runs"] + [metrics.get(k).header for k in names]
    return (aligned_table(header, _rows(results, names))
            + f"\n({units_note(names).rstrip('.')}; report.md shows every metric)")


def markdown_summary_table(results: Mapping, names=None) -> str:
    """Methods x the metrics ``names`` (default: the headline ones) as a markdown table."""
    names = metrics.headline() if names is None else names
    header = ["method", "runs"] + [metrics.get(k).header for k in names]
    return markdown_table(header, _rows(results, names))


# --------------------------------------------------------------------------- report

def _dataset_section(results: Mapping) -> list[str]:
    ds = results.get("dataset") or {}
    lines = ["## Data set", ""]
    if not ds:
        return lines + ["(results.json has no dataset description)", ""]
    facts = [("name", ds.get("name")), ("images", ds.get("n_images")), ("subjects", ds.get("n_subjects")),
             ("location", ds.get("root")), ("listed images missing, skipped", ds.get("skipped") or None)]
    lines += [f"- {k}: {v}" for k, v in facts if v is not None]
    counts = ds.get("class_counts") or {}
    names = ds.get("class_names") or list(counts)
    used = used_classes(results)
    if used:
        left = [c for c in names if c not in used]
        of = f" (of the data set's {len(names)})" if left else ""
        listed = ", ".join(f"{c} ({counts[c]})" if c in counts else c for c in used)
        lines.append(f"- {len(used)} classes in the runs{of}: {listed}")
        if left:
            lines.append(f"- not in the stream (benchmark.compounds): {len(left)} classes")
    if ds.get("missing_classes"):
        lines.append(f"- **partial taxonomy** (benchmark.partial_taxonomy: true): no image of "
                     f"{', '.join(ds['missing_classes'])}; these classes are not in the stream")
    if ds.get("unreadable_images"):
        lines.append(f"- **{len(ds['unreadable_images'])} unreadable image(s) left out**:")
        lines += unreadable_list(ds)
    runs = [r for entry in results["methods"].values() for r in entry["runs"]]
    orders = {tuple(r.get("order") or ()) for r in runs}
    folds = sorted({r.get("fold") for r in runs if r.get("fold") is not None})
    seeds = sorted({r.get("seed") for r in runs if r.get("seed") is not None})
    T = max(len(r["accuracy_matrix"]) for r in runs)
    lines.append(f"- stream: {T} experiences (basic block, then one compound class each); "
                 f"{len(orders)} class order(s), folds {_short(folds)}, seeds {_short(seeds)}")
    return lines + [""]


def used_classes(results: Mapping) -> list[str]:
    """The classes the runs used (``benchmark.compounds`` may choose a few), in the data set's
    order: the runs' class names, or, for records without them (the committed reference),
    the data set's basic classes and the compounds of the runs' orders."""
    from cfer.benchmarks.taxonomy import is_compound

    ds = results.get("dataset") or {}
    names = list(ds.get("class_names") or ds.get("class_counts") or [])
    runs = [r for entry in results["methods"].values() for r in entry["runs"]]
    if runs and all(r.get("class_names") for r in runs):
        used = {c for r in runs for c in r["class_names"]}
        names += [c for r in runs for c in r["class_names"] if c not in names]
    else:
        ordered = {c for r in runs for c in r.get("order") or ()}
        used = {c for c in names if c in ordered or not is_compound(c)}
    return [c for c in dict.fromkeys(names) if c in used]


def _short(values: list) -> str:
    if not values:
        return "n/a"
    return ", ".join(map(str, values)) if len(values) <= 6 else f"{len(values)} ({values[0]}..{values[-1]})"


def _final_step_section(results: Mapping) -> list[str]:
    """Class-balanced views of the last step, mean ± std (n) over runs."""
    keys = {"uar": "UAR", "macro_f1": "macro F1", "component_confusion": "component confusion"}
    rows = []
    for name, entry in results["methods"].items():
        cells = []
        for key in keys:
            vals = [r[key][-1] for r in entry["runs"] if r.get(key)]
            stat = M.mean_std(vals)
            cells.append(format_cell(stat, with_n=stat["n"] != len(entry["runs"])) if vals else "n/a")
        if any(c != "n/a" for c in cells):
            rows.append([name] + cells)
    if not rows:
        return []
    return ["## After the last experience", "", markdown_table(["method", *keys.values()], rows), "",
            "*component confusion*: share of the misclassified compound test images predicted as "
            "one of their own basic components.", ""]


def _speed_section(results: Mapping) -> list[str]:
    rows = []
    for name, entry in results["methods"].items():
        secs = [r["train_seconds"] for r in entry["runs"] if r.get("train_seconds") is not None]
        ips = [r["images_per_second"] for r in entry["runs"] if r.get("images_per_second")]
        if secs or ips:
            rows.append([name, f"{sum(secs) / len(secs):.1f}" if secs else "n/a",
                         f"{sum(ips) / len(ips):.0f}" if ips else "n/a"])
    if not rows:
        return []
    header = ["method", "train seconds per run (mean)", "images/s (mean)"]
    return ["## Speed", "", markdown_table(header, rows), ""]


def render_report(results: Mapping, plots: Mapping[str, list[Path]], run_dir: Path) -> str:
    """The text of report.md (plots already written under ``run_dir``)."""
    ds_name = (results.get("dataset") or {}).get("name", "")
    lines = [f"# Compound facial expressions, continual learning{': ' + ds_name if ds_name else ''}", ""]
    if (run_dir / "config.yaml").is_file():
        lines += ["Configuration: [config.yaml](config.yaml). Logs: `logs/`.", ""]
    lines += _dataset_section(results)
    runs = {m: e["runs"] for m, e in results["methods"].items()}
    headline, others = metrics.headline(), metrics.others()
    lines += ["## Summary", "", markdown_summary_table(results, headline), "", units_note(headline),
              " ".join(stats.n_lines(runs)), "", metric_notes(headline), ""]
    if others:
        lines += ["## More metrics", "", markdown_summary_table(results, others), "", units_note(others), "",
                  metric_notes(others), ""]
    lines += stats.markdown_section(runs, reference=PAIRED_REFERENCE)
    lines += _final_step_section(results)
    lines += _speed_section(results)
    lines += gradcam_section.markdown_section(results)  # after `cfer explain`
    lines += ["## All methods", ""]
    for p in plots["all"]:
        lines += [image_link(p, run_dir, p.stem.replace("_", " ")), ""]
    for method in results["methods"]:
        lines += [f"## {method}", ""]
        for p in plots.get(method, []):
            alt = f"{method}: {p.stem.removesuffix('_' + slug(method)).replace('_', ' ')}"
            lines += [image_link(p, run_dir, alt), ""]
    return "\n".join(lines)


def report_text(run_dir: Path, results: Mapping, *, plot_config: PlotConfig | None = None) -> str:
    """Draw ``plots/*.png`` and return the text of report.md."""
    plots = plot_all(results, run_dir / "plots", plot_config)
    return render_report(results, plots, run_dir)


def write_report(run_dir: Path, results: Mapping, *, plot_config: PlotConfig | None = None) -> Path:
    """(Re)write ``plots/*.png`` and ``report.md`` of a checked continual results dict."""
    return atomic_write_text(run_dir / "report.md", report_text(run_dir, results, plot_config=plot_config))
