"""The ``cfer`` command line.

Each sub-command's module is imported only when that sub-command runs, so
``cfer --help`` is instant and ``cfer synth`` never loads Avalanche.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from importlib import import_module
from pathlib import Path

#: ``cfer run``: the function that runs each ``config.phase``,
#: ``run(cfg, run_dir, *, resume) -> results`` (imported only when that phase runs).
PHASE_RUNNERS: dict[str, str] = {
    "continual": "cfer.experiments.run.continual:run",
    "fewshot": "cfer.experiments.run.fewshot:run",
    "fscil": "cfer.experiments.run.fscil:run",
}


def _add_synth(sub) -> None:
    p = sub.add_parser("synth", help="write the built-in synthetic face set (CFEE layout)")
    p.add_argument("--out", required=True, help="folder to write the data set into")
    p.add_argument("--subjects", type=int, default=230, help="number of subjects (default 230, as CFEE)")
    p.add_argument("--size", type=int, default=96, help="image side in pixels (>= 64, default 96)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    p.set_defaults(handler="cfer.benchmarks.synthetic_faces.writer:cli_synth")


def _shipped_configs() -> str:
    return ", ".join(sorted(p.stem for p in (Path(__file__).parent / "configs").glob("*.yaml")))


def _add_run(sub) -> None:
    now = os.environ.get("CFER_CACHE")
    cache = f"$CFER_CACHE (now {now})" if now else "~/.cache/cfer (set CFER_CACHE to move them)"
    p = sub.add_parser(
        "run", help="run an experiment config (default: the synthetic quickstart)",
        description="Run every method x class order x fold x seed of a config into a run directory, "
                    "then write report.md and plots. CONFIG is a YAML file or the name of a shipped "
                    f"config ({_shipped_configs()}). The synthetic faces and the decoded-image cache "
                    f"live in {cache}.")
    p.add_argument("config", nargs="?", default=None, metavar="CONFIG",
                   help="a YAML file or a shipped config name, e.g. paper_cfee (default: quickstart)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set training.epochs=3 (repeatable; the value "
                        "is read as YAML)")
    p.add_argument("--out", default=None, metavar="RUN_DIR",
                   help="run directory (default: output.dir, else runs/<config name>)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue an interrupted run in RUN_DIR with its saved config; --set may change "
                        "only keys that leave the numbers as they are (runner.progress, runner.device, "
                        "output, logging; runner.jobs_per_device, runner.backend when the torch thread "
                        "count per run stays the same)")
    p.add_argument("--backend", default=None, choices=["local", "processes", "ray", "slurm"],
                   help="where the runs execute (the same as --set runner.backend=...)")
    p.add_argument("--detach", action="store_true",
                   help="runner.backend slurm: submit the runs and exit; `cfer status RUN_DIR` shows them, "
                        "`cfer run --resume RUN_DIR` collects them (and resubmits any that died)")
    p.set_defaults(handler="cfer.experiments.cli:cli_run")


def _add_status(sub) -> None:
    p = sub.add_parser("status", help="the state of each run of a run directory submitted to SLURM")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a `cfer run --backend slurm` run directory")
    p.set_defaults(handler="cfer.experiments.cli:cli_status")


def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="run a grid of config values, each point its own run directory, "
                                      "and table it (best point per method on validation)")
    p.add_argument("config", nargs="?", default=None,
                   help="YAML config (default: quickstart.yaml); its sweep.grid section, if any, is the grid")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a grid axis, e.g. --grid training.lr=1e-4,1e-5 (repeatable; every combination "
                        "is a point; replaces the same key of sweep.grid)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value for every point, e.g. --set runner.backend=ray (repeatable)")
    p.add_argument("--out", default=None, metavar="SWEEP_DIR",
                   help="sweep directory (default: sweep.dir, else runs/<config name>_sweep)")
    p.add_argument("--resume", default=None, metavar="SWEEP_DIR",
                   help="continue an interrupted sweep in SWEEP_DIR with its saved config and grid")
    p.set_defaults(handler="cfer.experiments.sweep.sweep:cli_sweep")


def _add_tune(sub) -> None:
    p = sub.add_parser("tune", help="choose each method's operating point on the validation subjects, "
                                     "the same budget for every method (docs/tuning.md)")
    p.add_argument("config", nargs="?", default=None, metavar="CONFIG",
                   help="YAML config (default: quickstart.yaml); its tune section narrows the search")
    p.add_argument("--budget", type=int, default=None, metavar="N", help="trials per method (tune.budget)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (repeatable), e.g. --set tune.space.lr=[1e-4,1e-3]")
    p.add_argument("--out", default=None, metavar="DIR", help="where the trials run (default: tune.dir, "
                   "else runs/<config name>_tune)")
    p.add_argument("--best", default=None, metavar="FILE",
                   help="the best-args file to write (default: best/<config stem>.yaml beside the config)")
    p.add_argument("--resume", action="store_true", help="keep the trials already finished in DIR")
    p.set_defaults(handler="cfer.experiments.tune.tune:cli_tune")


def _add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="detect, crop and resize faces of a real data set")
    p.add_argument("kind", choices=["cfee", "rafdb", "folder"], help="the data set's layout")
    p.add_argument("--root", required=True, help="the data set as obtained")
    p.add_argument("--out", default=None, help="where to write the cropped copy (default: ROOT_cropped)")
    p.add_argument("--size", type=int, default=224, help="output side in pixels (default 224)")
    p.add_argument("--margin", type=float, default=0.2, help="margin around the face box (fraction)")
    p.set_defaults(handler="cfer.benchmarks.prepare:cli_prepare")


def _add_plot(sub) -> None:
    p = sub.add_parser("plot", help="rebuild plots and report.md of a run from its results.json; with "
                                     "several run folders of one setting, their methods' figures together")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="a `cfer run` output folder (holding results.json); several: drawn together")
    p.add_argument("--out", default=None, help="where the figures of several folders go (default: "
                   "./cfer_plots)")
    p.set_defaults(handler="cfer.experiments.report.merged_plots:cli_plot")


def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="summary table and paired statistics of methods across run "
                                        "directories (text, markdown, CSV, LaTeX)")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="run directories of `cfer run` (each holding a results.json)")
    p.add_argument("--out", action="append", default=[], metavar="FILE",
                   help="also write to FILE: .md (summary + paired tables), .csv (summary, fractions) "
                        "or .tex (booktabs table with significance markers); repeatable")
    p.add_argument("--reference", default=None, metavar="METHOD",
                   help="method the paired tests and LaTeX markers compare against "
                        "(default: kd_psmr when present, else the first method)")
    p.add_argument("--all-pairs", action="store_true",
                   help="paired statistics for every pair of methods, not only against the reference")
    p.add_argument("--allow-mixed", action="store_true",
                   help="table runs of different data sets, experience counts or protocols anyway, "
                        "each row marked with its setting (default: refuse)")
    p.add_argument("--tables", choices=("both", "summary", "paired"), default="both",
                   help="which tables the terminal and .md get: the summary, the paired statistics, "
                        "or both (default)")
    p.add_argument("--metrics", choices=("headline", "all"), default="headline",
                   help="the summary's metrics (terminal and .md): the headline ones (default; "
                        "docs/metrics.md) or all; .csv always has all")
    p.set_defaults(handler="cfer.experiments.report.compare:cli_compare")


def _add_explain(sub) -> None:
    p = sub.add_parser("explain", help="Grad-CAM of a finished run: how compound classes reuse the "
                                       "basic features, step by step (needs cfer[explain])")
    p.add_argument("run_dir", help="a `cfer run` output folder with saved models (output.save_models)")
    p.add_argument("--method", dest="methods", action="append", default=None, metavar="M",
                   help="explain this method only (repeatable; default: every method of the run)")
    p.add_argument("--step", default="all", metavar="all|N",
                   help="score the compound maps after every step (all, default) or after step N, "
                        "besides the step that learnt each class and the last step")
    p.add_argument("--images", type=int, default=4, metavar="K",
                   help="test faces per compound class (default 4)")
    p.add_argument("--layer", default=None, metavar="PATH",
                   help="Grad-CAM layer, a dotted module path in the model (default: the model registry's)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: the run's runner.device)")
    p.set_defaults(handler="cfer.experiments.explain.explain:cli_explain")


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="time our Avalanche path against a bare PyTorch loop")
    p.add_argument("--device", default=None, choices=["cuda", "cpu"], help="default: cuda if available")
    p.add_argument("--model", default=None,
                   help="backbone (default: small_cnn on CPU, resnet50_paper on GPU)")
    p.add_argument("--batch-size", type=int, action="append", default=None, dest="batch_sizes",
                   metavar="N",
                   help="training batch size to time (repeatable; default: 32 on CPU, 32 and 256 on CUDA)")
    p.add_argument("--precision", action="append", default=None, dest="precisions",
                   choices=["fp32", "bf16", "fp16"],
                   help="numeric precision to time (repeatable; default: fp32 on CPU, fp32 and bf16 on CUDA)")
    p.add_argument("--compile", action="append", default=None, dest="compiles",
                   choices=["false", "default", "reduce-overhead"],
                   help="torch.compile mode to time (repeatable; default: false)")
    p.add_argument("--path", default=None, choices=["run", "train"],
                   help="run: one kd_psmr step as `cfer run` runs it; train: training epochs (default)")
    p.add_argument("--repeats", type=int, default=None,
                   help="interleaved timed repeats per path (default 5)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads on the CPU (default 1, as each run of `cfer run`)")
    p.add_argument("--json", default=None, dest="json_out", help="also write the table as JSON records")
    p.set_defaults(handler="cfer.experiments.bench.cli:cli_bench")


def cli_run(args) -> int:
    """``cfer run``: run the config's phase into its run directory, then report it."""
    from cfer.experiments.backends.slurm import Detached, detach
    from cfer.experiments.config.load import load_config, resolve_config_path
    from cfer.experiments.config.validate import check_config
    from cfer.experiments.run.results_store import default_run_dir

    if args.backend:
        args.overrides = [*args.overrides, f"runner.backend={args.backend}"]
    detach.set(bool(args.detach))
    if args.resume:
        run_dir = Path(args.resume)
        cfg_path = run_dir / "config.yaml"
        if not cfg_path.exists():
            raise FileNotFoundError(f"{cfg_path}: no saved config to resume from")
        if args.config:
            raise ValueError("--resume takes the config saved in the run directory; drop CONFIG")
        if args.out and Path(args.out) != run_dir:  # a resumed run writes into RUN_DIR, not --out
            raise ValueError(f"--resume {run_dir} continues the run in {run_dir}; drop --out {args.out}")
        cfg = load_config(cfg_path, args.overrides)
    else:
        from cfer.experiments.config.best_args import resolve

        cfg_path = resolve_config_path(args.config)
        cfg = resolve(cfg_path, args.overrides)  # the best-args file under --set (runner.best_args)
        run_dir = Path(args.out) if args.out else default_run_dir(cfg)
    check_config(cfg, where=str(cfg_path), paths=True)  # the files it names, before any data
    module, func = PHASE_RUNNERS[cfg.phase].split(":")
    from cfer.experiments.run import lock, ownership

    ownership.claim(run_dir, kind="run")  # not a sweep's directory, not a folder of the user's
    # A run refused (or interrupted) before it saved its config takes back the directory it made.
    started = (run_dir / "config.yaml").is_file
    with ownership.removed_if_refused(run_dir, started=started):
        with lock.acquire(run_dir) as held:  # one `cfer run` per run directory
            try:
                results = getattr(import_module(module), func)(cfg, run_dir, resume=bool(args.resume))
            except Detached as submitted:
                print(submitted)
                return 0
            except KeyboardInterrupt:
                line = interrupted_line(run_dir, held.info())
                if not started():
                    raise ownership.Interrupted(line) from None
                print(line, file=sys.stderr)
                return 130
    try:
        return report_run(cfg, run_dir, results)
    except KeyboardInterrupt:
        print(f"interrupted while writing the report: every run is saved; `cfer plot {run_dir}` "
              "writes report.md and plots/", file=sys.stderr)
        return 130


def cli_status(args) -> int:
    """``cfer status RUN_DIR``: each SLURM task of the run, and the counts per state."""
    from collections import Counter

    from cfer.experiments.backends.slurm import status

    run_dir = Path(args.run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir / 'config.yaml'}: not a run directory")
    rows = status(run_dir)
    if not rows:
        print(f"{run_dir}: no run was submitted to SLURM")
        return 0
    for r in rows:
        print(f"{r['state']:<10} {r['job']:<12} {r['run']}" + (f"  ({r['error']})" if "error" in r else ""))
    counts = Counter(r["state"] for r in rows)
    print(", ".join(f"{n} {state}" for state, n in counts.most_common()))
    return 0


def interrupted_line(run_dir: Path, plan: dict) -> str:
    """What Ctrl-C leaves: how many runs are saved of how many, and how to continue."""
    from cfer.experiments.run.results_store import read_results, saved_count

    if not (run_dir / "config.yaml").is_file():
        return "interrupted before the run started: nothing saved"
    try:
        n = saved_count(read_results(run_dir))
    except (FileNotFoundError, ValueError):
        n = 0
    what = plan.get("what", "runs")
    of = f" of {plan['planned']}" if plan.get("planned") is not None else ""
    return f"interrupted: {n}{of} {what} saved; continue with cfer run --resume {run_dir}"


def report_run(cfg, run_dir: Path, results: dict) -> int:
    """The end of ``cfer run``: report.md and plots (``output.plots``), the summary table with
    what the data set lacked, and the failed runs, if any."""
    from cfer.experiments.report.dataset_notes import dataset_notes
    from cfer.experiments.report.run_report import format_summary_table, write_report

    failed = results.get("failed_runs") or []
    if not failed or any(b.get("runs") for b in results.get("methods", {}).values()):
        if cfg.output.plots:
            print(f"writing report.md and plots/ of {run_dir}", flush=True)
            write_report(run_dir)
        print(format_summary_table(results))
        if failed:  # what the table leaves out
            print(f"not in the table: {len(failed)} failed run(s): {'; '.join(f['run'] for f in failed)}")
        from cfer.experiments.config.best_args import summary_line

        if summary_line(results.get("best_args")):
            print(summary_line(results.get("best_args")))
        for note in dataset_notes(results.get("dataset") or {}):
            print(f"note: {note}")
        files = "results.json, metrics.csv, " + ("report.md, plots/, " if cfg.output.plots else "") + "logs/"
        later = "" if cfg.output.plots else f" (output.plots: false; `cfer plot {run_dir}` writes report.md)"
        print(f"\nwrote {run_dir}/: {files}{later}")
        if cfg.evaluation.gradcam and cfg.phase == "continual" and not failed:
            from cfer.experiments.explain.explain import explain

            entry = explain(run_dir, images=cfg.evaluation.gradcam_images)
            print(f"Grad-CAM ({entry['seconds']:.1f} s): results.json (gradcam), plots/gradcam/, report.md")
    if failed:
        print(failure_summary(results, run_dir=run_dir), file=sys.stderr)
        return 1
    return 0


def failure_summary(results: dict, *, run_dir: Path) -> str:
    """One line naming the failed runs of ``results`` (``failed_runs``) and what to do."""
    failed = results["failed_runs"]
    total = len(failed) + sum(len(b.get("runs", [])) for b in results.get("methods", {}).values())
    names = "; ".join(f"{f['run']} ({f['error']})" for f in failed)
    return (f"cfer run: error: {len(failed)} of {total} runs failed: {names}; their errors are in "
            f"{run_dir / 'results.json'} (failed_runs); `cfer run --resume {run_dir}` runs them again")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cfer",
        description="Continual learning of compound facial expressions (Avalanche).")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, and a traceback with every error")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_run, _add_sweep, _add_tune, _add_synth,
                _add_prepare, _add_plot, _add_compare, _add_bench, _add_explain, _add_status):
        add(sub)
    return parser


def _version() -> str:
    from cfer import __version__

    return __version__


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM ends a run as Ctrl-C does: files complete, one line


def main(argv: list[str] | None = None) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)  # library warnings go through logging, above the progress bars
    on_term = signal.getsignal(signal.SIGTERM)
    catch_term = on_term is signal.SIG_DFL and threading.current_thread() is threading.main_thread()
    if catch_term:
        signal.signal(signal.SIGTERM, _terminate)
    module, func = args.handler.split(":")
    try:
        with logging_redirect_tqdm():
            return int(getattr(import_module(module), func)(args) or 0)
    except KeyboardInterrupt as e:
        print(str(e) or f"cfer {args.command}: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as e:
        # Out of memory (the host's, or the GPU's: torch.OutOfMemoryError is a RuntimeError) is a
        # resource error like a full disk: one line; any other RuntimeError is a bug: traceback.
        if args.verbose or (isinstance(e, RuntimeError) and type(e).__name__ != "OutOfMemoryError"):
            raise
        where = "the GPU" if isinstance(e, RuntimeError) else "this machine"
        why = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        print(f"cfer {args.command}: error: {where} ran out of memory ({why}); lower training.batch_size, "
              "training.eval_batch_size or benchmark.image_size", file=sys.stderr)
        return 2
    except (ValueError, KeyError, OSError, ImportError) as e:  # ImportError: a missing extra
        # User errors (bad config, missing data, bad labels, an output path that cannot be
        # written) are one line, no traceback (-v shows it).
        if args.verbose:
            raise
        if isinstance(e, KeyError) and e.args:
            msg = e.args[0]
        elif isinstance(e, OSError) and e.strerror:  # raised by the OS: the path and the reason
            msg = f"{e.filename}: {e.strerror}" if e.filename else e.strerror
        else:
            msg = e
        print(f"cfer {args.command}: error: {msg}", file=sys.stderr)
        return 2
    finally:
        if catch_term:
            signal.signal(signal.SIGTERM, on_term)


if __name__ == "__main__":
    sys.exit(main())
