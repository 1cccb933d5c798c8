"""The ``cfer`` command line.

Each sub-command's module is imported only when that sub-command runs, so
``cfer --help`` is instant and ``cfer synth`` never loads Avalanche.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib import import_module
from pathlib import Path

#: ``cfer run``: the function that runs each ``config.phase``,
#: ``run(cfg, run_dir, *, resume) -> results`` (imported only when that phase runs).
PHASE_RUNNERS: dict[str, str] = {
    "continual": "cfer.experiments.continual:run",
    "fewshot": "cfer.experiments.fewshot:run",
    "fscil": "cfer.experiments.fscil:run",
}


def _add_synth(sub) -> None:
    p = sub.add_parser("synth", help="write the built-in synthetic face set (CFEE layout)")
    p.add_argument("--out", required=True, help="folder to write the data set into")
    p.add_argument("--subjects", type=int, default=230, help="number of subjects (default 230, as CFEE)")
    p.add_argument("--size", type=int, default=96, help="image side in pixels (>= 64, default 96)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    p.set_defaults(handler="cfer.benchmarks.synthfaces:cli_synth")


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="run an experiment config (default: the synthetic quickstart)")
    p.add_argument("config", nargs="?", default=None, help="YAML config (default: quickstart.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set training.epochs=3 (repeatable)")
    p.add_argument("--out", default=None, help="run directory (default: runs/<config name>)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue an interrupted run in RUN_DIR with its saved config")
    p.set_defaults(handler="cfer.experiments.cli:cli_run")


def _add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="detect, crop and resize faces of a real data set")
    p.add_argument("kind", choices=["cfee", "rafdb", "folder"])
    p.add_argument("--root", required=True, help="the data set as obtained")
    p.add_argument("--out", default=None, help="where to write the cropped copy (default: ROOT_cropped)")
    p.add_argument("--size", type=int, default=224, help="output side in pixels (default 224)")
    p.add_argument("--margin", type=float, default=0.2, help="margin around the face box (fraction)")
    p.set_defaults(handler="cfer.benchmarks.prepare:cli_prepare")


def _add_plot(sub) -> None:
    p = sub.add_parser("plot", help="rebuild plots and report.md of a run from its results.json")
    p.add_argument("run_dir")
    p.set_defaults(handler="cfer.experiments.report:cli_plot")


def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="one table of summary metrics across run directories")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--out", default=None, help="also write the table to this markdown/CSV file")
    p.set_defaults(handler="cfer.experiments.report:cli_compare")


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="time our Avalanche path against a bare PyTorch loop")
    p.add_argument("--device", default=None, choices=["cuda", "cpu"], help="default: cuda if available")
    p.add_argument("--model", default=None,
                   help="backbone (default: small_cnn on CPU, resnet50_paper on GPU)")
    p.add_argument("--batch-size", type=int, action="append", default=None, dest="batch_sizes")
    p.add_argument("--precision", action="append", default=None, dest="precisions",
                   choices=["fp32", "bf16", "fp16"])
    p.add_argument("--compile", action="append", default=None, dest="compiles",
                   choices=["false", "default", "reduce-overhead"])
    p.add_argument("--json", default=None, dest="json_out", help="also write the table as JSON records")
    p.set_defaults(handler="cfer.experiments.bench:cli_bench")


def cli_run(args) -> int:
    """``cfer run``: run the config's phase into its run directory, then report it."""
    from cfer.experiments.config import load_config
    from cfer.experiments.context import default_run_dir

    if args.resume:
        run_dir = Path(args.resume)
        cfg_path = run_dir / "config.yaml"
        if not cfg_path.exists():
            raise FileNotFoundError(f"{cfg_path}: no saved config to resume from")
        if args.config:
            raise ValueError("--resume takes the config saved in the run directory; drop CONFIG")
        cfg = load_config(cfg_path, args.overrides)
    else:
        cfg = load_config(args.config, args.overrides)
        run_dir = Path(args.out) if args.out else default_run_dir(cfg)
    module, func = PHASE_RUNNERS[cfg.phase].split(":")
    results = getattr(import_module(module), func)(cfg, run_dir, resume=bool(args.resume))
    from cfer.experiments.report import format_summary_table, write_report

    if cfg.output.plots:
        write_report(run_dir)
    print(format_summary_table(results))
    print(f"\nwrote {run_dir}/: results.json, metrics.csv, report.md, plots/, logs/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cfer",
        description="Continual learning of compound facial expressions (Avalanche).")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_run, _add_synth, _add_prepare, _add_plot, _add_compare, _add_bench):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    module, func = args.handler.split(":")
    try:
        return int(getattr(import_module(module), func)(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as e:
        # User errors (bad config, missing data, bad labels) are one line, no traceback.
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"cfer {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
