"""``cfer plot A B ...``: the figures of methods from several run directories of one setting.

A method added later (``--resume`` adds it to a finished directory, or another directory ran it)
is drawn beside the ones already run, without re-running them: the step-accuracy and
basic-accuracy figures hold every method of every directory, and each method gets its forgetting
curves and accuracy matrix. The directories must hold the same setting (data set, compound classes,
experiences, protocol: :func:`cfer.experiments.report.compare.setting_of`); otherwise it stops in
one line, as ``cfer compare`` does. A method name two directories share is labelled with its
directory (``naive (runs/a)``).
"""

from __future__ import annotations

from pathlib import Path

#: Where the figures of several directories go unless ``--out`` says.
DEFAULT_OUT = "cfer_plots"


def plot_runs(run_dirs, out_dir: str | Path) -> list[Path]:
    """Draw the methods of ``run_dirs`` (continual runs of one setting) into ``out_dir``."""
    from cfer.experiments.report.compare import load
    from cfer.experiments.report.plots import plot_all

    comparison = load([str(d) for d in run_dirs])
    phases = {s["phase"] for s in comparison.settings}
    if phases != {"continual"}:
        raise ValueError(f"cfer plot {' '.join(map(str, run_dirs))}: several directories are drawn "
                         f"together for phase continual only (these are {', '.join(sorted(phases))})")
    from cfer.experiments.report.run_report import load_results

    first = load_results(run_dirs[0])
    merged = {"dataset": first.get("dataset"), "methods": {r.label: {"runs": r.runs} for r in comparison.rows
                                                           if r.runs}}
    written = plot_all(merged, out_dir)
    return [p for files in written.values() for p in files]


def cli_plot(args) -> int:
    """``cfer plot RUN_DIR [RUN_DIR ...]``: one directory: its plots/ and report.md; several: their
    methods' figures together, in ``--out``."""
    from cfer.experiments.report import run_report

    dirs = args.run_dirs
    if len(dirs) == 1 and args.out is None:
        args.run_dir = dirs[0]
        return run_report.cli_plot(args)
    out = Path(args.out or DEFAULT_OUT)
    print(f"drawing the methods of {', '.join(dirs)} into {out}/", flush=True)
    files = plot_runs(dirs, out)
    print(f"wrote {len(files)} figures in {out}")
    return 0
