"""report.md, plots and comparison tables from a run directory's results.json.

Used by ``cfer plot RUN_DIR`` (:func:`cli_plot`), ``cfer compare RUN_DIR...``
(:func:`cli_compare`) and by ``cfer run`` (:func:`write_report`,
:func:`format_summary_table`). The phase that wrote a results.json
(``config.phase``; "continual" for files without it) picks its report module
(:data:`REPORTS`). Everything here reads results.json only, so a run can be
re-reported anywhere without data, model or GPU.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from cfer import metric_definitions as M
from cfer.atomic import atomic_write_text
from cfer.experiments import continual_report, fewshot_report, fscil_report
from cfer.experiments.context import RESULTS, phase_of, read_results
from cfer.experiments.plots import PlotConfig
from cfer.experiments.tables import aligned_table, format_cell, markdown_table

#: The report module of each phase: check(results, where=), summary_table(results),
#: write_report(run_dir, results, plot_config=), compare_rows(results).
REPORTS = {"continual": continual_report, "fewshot": fewshot_report, "fscil": fscil_report}

HEADERS = continual_report.HEADERS  # the columns of `cfer compare`


def report_module(results: Mapping):
    """The report module of the phase that wrote ``results``."""
    return REPORTS[phase_of(results)]


# --------------------------------------------------------------------------- reading

def load_results(run_dir: str | Path) -> dict:
    """results.json of ``run_dir``, checked by its phase's report (continual: each method gets
    a ``summary`` if it lacks one).

    Raises FileNotFoundError / ValueError with one line naming the file and key.
    """
    where = str(Path(run_dir) / RESULTS)
    results = read_results(run_dir)
    try:
        module = report_module(results)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    module.check(results, where=where)
    return results


def format_summary_table(results: Mapping) -> str:
    """The one-screen text table of a run, as its phase draws it."""
    return report_module(results).summary_table(results)


def write_report(run_dir: str | Path, *, plot_config: PlotConfig | None = None) -> Path:
    """Read ``run_dir/results.json``; (re)write ``plots/*.png`` and ``report.md``. Returns report.md."""
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    return report_module(results).write_report(run_dir, results, plot_config=plot_config)


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
        rows += [(str(d), m, summary) for m, summary in report_module(results).compare_rows(results)]
    return rows


def compare_table(rows: Sequence[tuple[str, str, dict]], *, fmt: str) -> str:
    """Rows (run dir, method, summary) as ``text``, ``md`` or ``csv`` (CSV: fractions, 3 columns a metric)."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        stats = ("mean", "std", "n")
        w.writerow(["run_dir", "method"] + [f"{k}_{s}" for k in M.SUMMARY_METRICS for s in stats])
        for run_dir, method, summary in rows:
            w.writerow([run_dir, method] + ["" if summary[k][s] is None else summary[k][s]
                                            for k in M.SUMMARY_METRICS for s in stats])
        return buf.getvalue()
    header = ["run", "method"] + [HEADERS[k] for k in M.SUMMARY_METRICS]
    body = [[d, m] + [format_cell(s[k]) for k in M.SUMMARY_METRICS] for d, m, s in rows]
    if fmt == "md":
        return markdown_table(header, body) + "\n"
    return aligned_table(header, body) + "\n(percent; mean ± sample std (runs))"


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
