"""``cfer bench``: our Avalanche path against a bare PyTorch loop (and stock Avalanche).

Two paths (``--path``): ``run`` times one kd_psmr continual step as ``cfer run`` runs it
(:mod:`cfer.experiments.bench.run_path`); ``train`` times plain training epochs
(:mod:`cfer.experiments.bench.train_path`). Both interleave their repeats and report
min / median / max, the ratio of each repeat's pair (so that the load of a shared
machine cancels) and, on the CPU, the process CPU time; :func:`spread_warning` says when
the spread is too wide to trust.
"""

from __future__ import annotations

import json
from pathlib import Path

from cfer.core.atomic import atomic_write_text
from cfer.experiments.bench import run_path, train_path
from cfer.experiments.bench.config import BenchConfig, config_from_args, setting_name


def run_bench(cfg: BenchConfig, *, progress=print, on_record=None) -> list[dict]:
    """All settings of ``cfg``; one record per setting (``--path train``:
    :data:`~cfer.experiments.bench.train_path.RECORD_KEYS`; ``run``:
    :func:`cfer.experiments.bench.run_path.run_setting`'s), each also passed to
    ``on_record(records so far)`` as it is made. On the CPU at ``cfg.threads`` torch threads."""
    import torch

    device = torch.device(cfg.device)
    if device.type == "cpu":
        # one thread by default: two spinning OpenMP threads on a shared CPU made the ratios
        # swing (ours faster than the bare loop); restored after
        threads = torch.get_num_threads()
        torch.set_num_threads(cfg.threads)
        try:
            return _run_bench(cfg, device, progress=progress, on_record=on_record)
        finally:
            torch.set_num_threads(threads)
    return _run_bench(cfg, device, progress=progress, on_record=on_record)


def _run_bench(cfg: BenchConfig, device, *, progress, on_record) -> list[dict]:
    import warnings

    import torch

    from cfer.benchmarks.transforms import train_transform

    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: CUDA is not available on this machine")
        torch.backends.cudnn.benchmark = True  # every path: autotuned convolutions
    bm = train_path.synthetic_benchmark(cfg, transform=train_transform()) if cfg.path == "train" else None
    records, stock = [], {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Avalanche's deprecation and no-logger warnings
        for b in cfg.batch_sizes:
            for p in cfg.precisions:
                for c in cfg.compiles:
                    name = setting_name(cfg, batch_size=b, precision=p, compile_mode=c)
                    progress(f"bench --path {cfg.path}: {name} ...")
                    if cfg.path == "run":
                        rec = run_path.run_setting(cfg, batch_size=b, precision=p, compile_mode=c,
                                                   device=device, name=name)
                    else:
                        rec = train_path.run_setting(cfg, bm, batch_size=b, precision=p,
                                                     compile_mode=c, device=device, stock=stock)
                    records.append(rec)
                    if on_record is not None:
                        on_record(records)
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
    return records


def spread_warning(rec: dict, *, max_spread: float) -> str | None:
    """A one-line warning when the paired ours/bare ratios of ``rec`` (wall, and CPU time when
    measured) spread by more than ``max_spread`` of their median (other load on the machine);
    None when they agree."""
    for what, key in (("ours/bare", "ours_over_bare"), ("cpu ours/bare", "ours_over_bare_cpu")):
        if f"{key}_min" not in rec:
            continue
        lo, mid, hi = rec[f"{key}_min"], rec[key], rec[f"{key}_max"]
        spread = (hi - lo) / mid if mid > 0 else float("inf")
        if spread > max_spread:
            return (f"{rec['setting']}: spread too wide to trust: {what} {lo:.2f} to {hi:.2f} over the "
                    f"repeats ({100 * spread:.0f}% of the median, more than {100 * max_spread:.0f}%); "
                    "rerun on an idle machine or with more repeats")
    return None


def machine_description(device: str, *, threads: int | None = None) -> str:
    import os
    import platform

    import torch

    text = (f"{platform.node()}: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
            f"({threads or torch.get_num_threads()} torch threads), torch {torch.__version__}")
    if device == "cuda" and torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    return text



def cli_bench(args) -> int:
    cfg = config_from_args(args)
    print(f"machine: {machine_description(cfg.device, threads=cfg.threads if cfg.device == 'cpu' else None)}")
    if cfg.path == "run":
        print(f"path run: one kd_psmr continual step ({cfg.step_epochs} epochs, evaluation and ranking) on "
              f"{cfg.images} synthetic {cfg.image_size}px training images; per path {cfg.repeats} "
              "steps in alternating pairs after one warm-up step; ours/bare: bare seconds / ours (median, "
              "min-max), wall and CPU time")
    else:
        print(f"path train: {cfg.images} synthetic {cfg.image_size}px training images; per path the median "
              f"of {cfg.epochs} interleaved timed epochs after one warm-up epoch (ours/bare: min-max)")
    def write(records):  # after every setting, so that a run cut short keeps what it measured
        if args.json_out:
            path = Path(args.json_out)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(records, indent=2) + "\n")

    records = run_bench(cfg, on_record=write)
    print(run_path.format_table(records) if cfg.path == "run" else train_path.format_table(records))
    for rec in records:
        warning = spread_warning(rec, max_spread=cfg.max_spread)
        print(warning or f"{rec['setting']}: ours/bare {rec['ours_over_bare']:.2f} "
              f"({rec['ours_over_bare_min']:.2f}-{rec['ours_over_bare_max']:.2f}): spread within "
              f"{100 * cfg.max_spread:.0f}%")
    if args.json_out:
        print(f"wrote {args.json_out}")
    return 0
