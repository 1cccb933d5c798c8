"""report.md, plots and comparison tables from a run directory's results.json.

Used by ``cfer plot RUN_DIR`` (:func:`cli_plot`), ``cfer compare RUN_DIR...``
(:func:`cli_compare`) and by the runner (:func:`write_report`,
:func:`format_summary_table`). Everything here reads results.json only, so a
run can be re-reported anywhere without data, model or GPU.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Mapping, Sequence

from cfer.plugins import metrics as M
from cfer.atomic import atomic_write_text
from cfer.experiments.plots import PlotConfig, plot_all, slug

#: Column headers of the summary metrics (same order as metrics.SUMMARY_METRICS).
HEADERS: dict[str, str] = {
    "overall_accuracy": "overall acc",
    "final_accuracy": "final acc",
    "new_class_accuracy": "new-class acc",
    "forgetting": "forgetting",
    "max_forgetting": "max forgetting",
    "bwt": "BWT",
    "basic_accuracy_final": "basic acc (final)",
}

METRIC_NOTES = """\
All values in percent, mean ± sample std (number of runs); runs are class orders x folds x seeds.
*overall acc*: mean over runs of the average step accuracy (the paper's headline); *final acc*:
step accuracy after the last experience; *new-class acc*: mean over steps i >= 1 of the accuracy
on the class just learnt; *forgetting*: mean over earlier experiences of (accuracy just after
learning it - final accuracy on it); *max forgetting*: the same from its best accuracy; *BWT*:
-forgetting; *basic acc (final)*: final accuracy on the basic expressions."""


# --------------------------------------------------------------------------- reading

def load_results(run_dir: str | Path) -> dict:
    """results.json of ``run_dir``, checked; each method gets a ``summary`` if it lacks one.

    Raises FileNotFoundError / ValueError with one line naming the file and key.
    """
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        where = "no such directory" if not Path(run_dir).is_dir() else "no results.json in it"
        raise FileNotFoundError(f"{path}: not found ({where}; is {run_dir} a `cfer run` output folder?)")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    if not isinstance(results, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level")
    if "fewshot" in results and not results.get("methods"):  # phase: fewshot
        from cfer.experiments.fewshot_report import check_fewshot

        check_fewshot(results, where=str(path))
        return results
    methods = results.get("methods")
    if not isinstance(methods, dict) or not methods:
        raise ValueError(f"{path}: key 'methods' is missing or empty (expected {{method: {{'runs': [...]}}}})")
    for name, entry in methods.items():
        runs = entry.get("runs") if isinstance(entry, dict) else None
        if not isinstance(runs, list) or not runs:
            raise ValueError(f"{path}: methods.{name}.runs is missing or empty")
        for k, run in enumerate(runs):
            where = f"methods.{name}.runs[{k}]"
            if not isinstance(run, dict):
                raise ValueError(f"{path}: {where} is not an object")
            try:
                M.run_scalars(run)
            except (ValueError, TypeError) as e:
                raise ValueError(f"{path}: {where}: {e}") from None
        if not isinstance(entry.get("summary"), dict):
            entry["summary"] = M.summarize_runs(runs)
        for key in M.SUMMARY_METRICS:
            stat = entry["summary"].get(key)
            if not (isinstance(stat, dict) and {"mean", "std", "n"} <= stat.keys()):
                raise ValueError(f"{path}: methods.{name}.summary.{key} is missing or "
                                 f"not {{'mean', 'std', 'n'}}")
    if not isinstance(results.get("dataset", {}), dict):
        raise ValueError(f"{path}: key 'dataset' must be an object")
    return results


# --------------------------------------------------------------------------- tables

def format_cell(stat: Mapping, *, with_n: bool = True) -> str:
    """``{"mean", "std", "n"}`` (fractions) as ``71.2 ± 3.4 (10)`` in percent; ``n/a`` if undefined."""
    if not stat or stat.get("mean") is None or not math.isfinite(stat["mean"]):
        return "n/a"
    text = f"{100 * stat['mean']:.1f} ± {100 * (stat.get('std') or 0.0):.1f}"
    return f"{text} ({stat['n']})" if with_n else text


def _aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
    line = lambda r: "  ".join(str(v).ljust(w) if c < 2 else str(v).rjust(w)  # noqa: E731
                               for c, (v, w) in enumerate(zip(r, widths))).rstrip()
    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    esc = lambda v: str(v).replace("|", "\\|")  # noqa: E731
    out = ["| " + " | ".join(map(esc, header)) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    out += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(out)


def _summary_rows(results: Mapping, *, with_n: bool) -> list[list[str]]:
    rows = []
    for name, entry in results["methods"].items():
        summary = entry.get("summary") or M.summarize_runs(entry["runs"])
        rows.append([name, str(len(entry["runs"]))] +
                    [format_cell(summary.get(k), with_n=with_n) for k in M.SUMMARY_METRICS])
    return rows


def format_summary_table(results: Mapping) -> str:
    """A one-screen text table: methods x summary metrics (percent, mean ± std), with run counts.

    A metric defined on fewer runs than the method has shows its own count.
    """
    if "fewshot" in results and not results.get("methods"):  # phase: fewshot
        from cfer.experiments.fewshot_report import format_fewshot_table

        return format_fewshot_table(results)
    header = ["method", "runs"] + [HEADERS[k] for k in M.SUMMARY_METRICS]
    rows = []
    for name, entry in results["methods"].items():
        summary = entry.get("summary") or M.summarize_runs(entry["runs"])
        n = len(entry["runs"])
        rows.append([name, str(n)] + [format_cell(summary[k], with_n=summary[k].get("n") != n)
                                      for k in M.SUMMARY_METRICS])
    return _aligned(header, rows) + "\n(percent; mean ± sample std over runs)"


def markdown_summary_table(results: Mapping) -> str:
    """Methods x summary metrics as a markdown table, cells ``mean ± std (n)`` in percent."""
    header = ["method", "runs"] + [HEADERS[k] for k in M.SUMMARY_METRICS]
    return _markdown(header, _summary_rows(results, with_n=True))


# --------------------------------------------------------------------------- report

def _dataset_section(results: Mapping) -> list[str]:
    ds = results.get("dataset") or {}
    lines = ["## Data set", ""]
    if not ds:
        return lines + ["(results.json has no dataset description)", ""]
    facts = [("name", ds.get("name")), ("images", ds.get("n_images")), ("subjects", ds.get("n_subjects")),
             ("location", ds.get("root")), ("unreadable images skipped", ds.get("skipped") or None)]
    lines += [f"- {k}: {v}" for k, v in facts if v is not None]
    counts = ds.get("class_counts") or {}
    names = ds.get("class_names") or list(counts)
    if names:
        lines.append(f"- {len(names)} classes: " + ", ".join(
            f"{c} ({counts[c]})" if c in counts else c for c in names))
    runs = [r for entry in results["methods"].values() for r in entry["runs"]]
    orders = {tuple(r.get("order") or ()) for r in runs}
    folds = sorted({r.get("fold") for r in runs if r.get("fold") is not None})
    seeds = sorted({r.get("seed") for r in runs if r.get("seed") is not None})
    T = max(len(r["accuracy_matrix"]) for r in runs)
    lines.append(f"- stream: {T} experiences (basic block, then one compound class each); "
                 f"{len(orders)} class order(s), folds {_short(folds)}, seeds {_short(seeds)}")
    return lines + [""]


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
            cells.append(format_cell(M.mean_std(vals)) if vals else "n/a")
        if any(c != "n/a" for c in cells):
            rows.append([name] + cells)
    if not rows:
        return []
    return ["## After the last experience", "", _markdown(["method", *keys.values()], rows), "",
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
    return ["## Speed", "", _markdown(["method", "train seconds per run (mean)", "images/s (mean)"], rows), ""]


def _img(path: Path, run_dir: Path, alt: str) -> str:
    return f"![{alt}]({path.relative_to(run_dir).as_posix()})"


def render_report(results: Mapping, plots: Mapping[str, list[Path]], run_dir: Path) -> str:
    """The text of report.md (plots already written under ``run_dir``)."""
    ds_name = (results.get("dataset") or {}).get("name", "")
    lines = [f"# Compound facial expressions, continual learning{': ' + ds_name if ds_name else ''}", ""]
    if (run_dir / "config.yaml").is_file():
        lines += ["Configuration: [config.yaml](config.yaml). Logs: `logs/`.", ""]
    lines += _dataset_section(results)
    lines += ["## Summary", "", markdown_summary_table(results), "", METRIC_NOTES, ""]
    lines += _final_step_section(results)
    lines += _speed_section(results)
    lines += ["## All methods", ""]
    for p in plots["all"]:
        lines += [_img(p, run_dir, p.stem.replace("_", " ")), ""]
    for method in results["methods"]:
        lines += [f"## {method}", ""]
        for p in plots.get(method, []):
            lines += [_img(p, run_dir, f"{method}: {p.stem.removesuffix('_' + slug(method)).replace('_', ' ')}"), ""]
    return "\n".join(lines)


def write_report(run_dir: str | Path, *, plot_config: PlotConfig | None = None) -> Path:
    """Read ``run_dir/results.json``; (re)write ``plots/*.png`` and ``report.md``. Returns report.md."""
    from cfer.experiments.fewshot_report import fscil_section, write_fewshot_report

    run_dir = Path(run_dir)
    results = load_results(run_dir)
    if "fewshot" in results and not results.get("methods"):  # phase: fewshot
        return write_fewshot_report(run_dir, results, plot_config=plot_config)
    plots = plot_all(results, run_dir / "plots", plot_config)
    # fscil_section is empty unless the runs carry the FSCIL fields (phase: fscil).
    text = render_report(results, plots, run_dir) + fscil_section(results, run_dir, plot_config)
    return atomic_write_text(run_dir / "report.md", text)


# --------------------------------------------------------------------------- CLI

def cli_plot(args) -> int:
    """``cfer plot RUN_DIR``: rebuild plots and report.md from results.json alone."""
    report = write_report(args.run_dir)
    print(f"wrote {report} and its figures in {report.parent / 'plots'}")
    return 0


def _compare_rows(run_dirs: Sequence[str]) -> list[tuple[str, str, dict]]:
    rows = []
    for d in run_dirs:
        results = load_results(d)
        rows += [(str(d), m, e["summary"]) for m, e in results["methods"].items()]
    return rows


def compare_table(rows: Sequence[tuple[str, str, dict]], *, fmt: str) -> str:
    """Rows (run dir, method, summary) as ``text``, ``md`` or ``csv`` (CSV: fractions, 3 columns a metric)."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["run_dir", "method"] + [f"{k}_{s}" for k in M.SUMMARY_METRICS for s in ("mean", "std", "n")])
        for run_dir, method, summary in rows:
            w.writerow([run_dir, method] + ["" if summary[k][s] is None else summary[k][s]
                                            for k in M.SUMMARY_METRICS for s in ("mean", "std", "n")])
        return buf.getvalue()
    header = ["run", "method"] + [HEADERS[k] for k in M.SUMMARY_METRICS]
    body = [[d, m] + [format_cell(s[k]) for k in M.SUMMARY_METRICS] for d, m, s in rows]
    if fmt == "md":
        return _markdown(header, body) + "\n"
    return _aligned(header, body) + "\n(percent; mean ± sample std (runs))"


def cli_compare(args) -> int:
    """``cfer compare RUN_DIR... [--out FILE.md|FILE.csv]``: one table of all runs' methods."""
    out = getattr(args, "out", None)
    fmt = None
    if out:
        fmt = {".md": "md", ".csv": "csv"}.get(Path(out).suffix.lower())
        if fmt is None:
            raise ValueError(f"--out {out}: the file name must end in .md (markdown) or .csv")
    rows = _compare_rows(args.run_dirs)
    print(compare_table(rows, fmt="text"))
    if out:
        atomic_write_text(out, compare_table(rows, fmt=fmt))
        print(f"wrote {out}")
    return 0
