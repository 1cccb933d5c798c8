"""report.md and plots from a run directory's results.json, and its reading for every report.

Used by ``cfer plot RUN_DIR`` (:func:`cli_plot`), ``cfer compare RUN_DIR...``
(:mod:`cfer.experiments.report.compare` reads through :func:`load_results`) and by ``cfer run``
(:func:`write_report`, :func:`format_summary_table`). The phase that wrote a results.json
(``config.phase``; "continual" for files without it) picks its report module
(:data:`REPORTS`). Everything here reads results.json only, so a run can be
re-reported anywhere without data, model or GPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cfer.experiments.report import continual as continual_report
from cfer.experiments.report import fewshot as fewshot_report
from cfer.experiments.report import fscil as fscil_report
from cfer.experiments.report.plots import PlotConfig
from cfer.experiments.run.results_store import RESULTS, phase_of, read_results

#: The report module of each phase: check(results, where=), summary_table(results),
#: write_report(run_dir, results, plot_config=), compare_rows(results).
REPORTS = {"continual": continual_report, "fewshot": fewshot_report, "fscil": fscil_report}


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
    print(f"reading {Path(args.run_dir) / RESULTS}, drawing plots/ and report.md "
          "(a few seconds per method)", flush=True)
    report = write_report(args.run_dir)
    print(f"wrote {report} and its figures in {report.parent / 'plots'}")
    return 0
