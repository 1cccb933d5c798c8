"""``cfer sweep``: a grid of config values, each point its own run directory, and a table of the
grid that marks the best point per method on the validation subjects.

The grid is the config's ``sweep.grid`` section with ``--grid KEY=V1,V2`` laid over it;
every combination of values is a point. A point is an ordinary ``cfer run`` (any
``runner.backend``) into ``<sweep dir>/<point>/`` with ``evaluation.final_validation``
on, so that each run records the accuracy of its final model on the validation
subjects of every experience (``final_valid_accuracy``). The best point of a method
is the one with the highest mean of it over the method's runs: chosen on validation,
never on the test subjects, whose numbers the table shows next to it.

The sweep directory holds ``config.yaml`` (the resolved config, the whole grid in its
``sweep`` section: ``--resume`` needs nothing else), one run directory per point,
``sweep.json`` (the points, their validation accuracy per method, the best points) and
``grid.md`` (the table).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cfer.core import metric_definitions as M
from cfer.core import metrics
from cfer.core.atomic import atomic_write_json, atomic_write_text
from cfer.core.typed import ConfigError, overlay, parse_override, parse_value, to_dict
from cfer.experiments.config.load import load_config, save_config
from cfer.experiments.config.sections import ExperimentConfig
from cfer.experiments.report.tables import aligned_table, format_cell, markdown_table, metric_cell

log = logging.getLogger(__name__)

VALID_KEY = "final_valid_accuracy"  # the run record's field the best point is chosen on


# --------------------------------------------------------------------------- the grid

def _value(raw: str):
    """One ``--grid`` value, read as a config value is (``1e-4`` is a float)."""
    raw = raw.strip()
    return parse_value(raw, what=f"--grid: value {raw!r}")


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets and braces (``[a, b],[c]`` is two values)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def parse_grid(items: Sequence[str]) -> dict[str, list]:
    """``["training.lr=1e-4,1e-5", ...]`` -> ``{"training.lr": [1e-4, 1e-5], ...}``; each
    value is YAML (``1e-4`` is a float), commas inside ``[...]`` or ``{...}`` belong to it."""
    grid: dict[str, list] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values.strip() or any(not p for p in key.split(".")):
            raise ConfigError(f"--grid {item!r}: expected KEY=VALUE,VALUE..., e.g. training.lr=1e-4,1e-5")
        grid[key.strip()] = [_value(v) for v in _split_top_level(values)]
    return grid


@dataclass(frozen=True)
class Point:
    """One combination of grid values."""

    values: dict  # grid key -> value

    def name(self, keys: Sequence[str]) -> str:
        """A directory name: ``lr=0.0001_gamma=0.5`` (the last part of each key when unique)."""
        short = [k.rsplit(".", 1)[-1] for k in keys]
        labels = short if len(set(short)) == len(short) else list(keys)
        text = "_".join(f"{lab}={_fmt(self.values[k])}" for lab, k in zip(labels, keys))
        return re.sub(r"[^A-Za-z0-9._=+,-]", "-", text)


def _fmt(value) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def grid_points(grid: Mapping[str, Sequence]) -> list[Point]:
    """Every combination, the first key varying slowest."""
    keys = list(grid)
    return [Point(dict(zip(keys, combo))) for combo in itertools.product(*(grid[k] for k in keys))]


def point_config(cfg: ExperimentConfig, point: Point) -> ExperimentConfig:
    """``cfg`` with the point's values set, no grid, and the final validation accuracy recorded."""
    data: dict = {"sweep": {"grid": {}}, "evaluation": {"final_validation": True}}
    for key, value in point.values.items():
        data = _merge(data, parse_override(f"{key}={json.dumps(value)}"))
    # Merged into the whole config, not laid over the dataclass: a mapping field is replaced by
    # overlay, so strategies.overrides.kd_psmr.lr would drop the config's other overrides
    merged = _merge(to_dict(cfg), data)
    merged["sweep"] = {**merged["sweep"], "grid": {}}  # a point has no grid (merging {} kept it)
    out = overlay(ExperimentConfig(), merged, where=f"sweep point {point.values}")
    if out.phase != "continual":
        raise ConfigError(f"sweep point {point.values}: cfer sweep runs phase continual, not {out.phase}")
    if out.protocol.name != "heldout":
        raise ConfigError(f"sweep point {point.values}: protocol.name={out.protocol.name} early-stops and "
                          "reports on the test fold, so there is no validation stream to choose on: "
                          "set protocol.name=heldout")
    return out


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# --------------------------------------------------------------------------- the table

def valid_stat(runs: Sequence[Mapping]) -> dict:
    """Mean, sample std and n of the runs' final validation accuracy (mean None if a run lacks it)."""
    values = [r.get(VALID_KEY) for r in runs]
    if not values or any(v is None for v in values):
        return {"mean": None, "std": None, "n": len(values)}
    return M.mean_std(values)


def best_points(points: Sequence[tuple[str, Mapping]]) -> dict[str, str]:
    """Per method, the point (name) with the highest mean final validation accuracy; the first
    such point on ties. ``points``: (name, results.json dict) in grid order."""
    best: dict[str, tuple[float, str]] = {}
    for name, results in points:
        for method, block in results["methods"].items():
            mean = valid_stat(block["runs"])["mean"]
            if mean is not None and (method not in best or mean > best[method][0]):
                best[method] = (mean, name)
    return {m: name for m, (_, name) in best.items()}


def grid_table(points: Sequence[tuple[str, Mapping]], *, fmt: str = "text") -> str:
    """Rows (point, method) with the validation accuracy the choice is made on, the best mark,
    and ``cfer compare``'s summary columns (test subjects), as ``text`` or ``md``."""
    from cfer.experiments.report.continual import check, compare_rows

    best = best_points(points)
    names = metrics.headline()
    header = ["point", "method", "valid acc (final)", "best", "runs"] + [metrics.get(k).header for k in names]
    body = []
    for name, results in points:
        check(results, where=name)  # adds a summary where a file lacks one
        for method, summary in compare_rows(results):
            runs = results["methods"][method]["runs"]
            stat = valid_stat(runs)
            body.append([name, method, format_cell(stat, with_n=stat["n"] != len(runs)),
                         "*" if best.get(method) == name else "", str(len(runs))]
                        + [metric_cell(summary, k, runs=len(runs)) for k in names])
    note = ("best: highest mean final accuracy on the validation subjects, per method; "
            "the other columns are on the test subjects (percent; mean ± sample std over runs)")
    if fmt == "md":
        return markdown_table(header, body) + f"\n\n{note}\n"
    return aligned_table(header, body) + f"\n({note})"


# --------------------------------------------------------------------------- running

def default_sweep_dir(cfg: ExperimentConfig) -> Path:
    return Path(cfg.sweep.dir) if cfg.sweep.dir else Path("runs") / f"{cfg.name}_sweep"


def run_sweep(cfg: ExperimentConfig, sweep_dir: str | Path, *, resume: bool = False) -> dict:
    """Run every point of ``cfg.sweep.grid`` into ``sweep_dir``; returns sweep.json's dict.
    A point whose run directory has a results.json is resumed (``resume`` only)."""
    from cfer.experiments.run import ownership

    sweep_dir = Path(sweep_dir)
    ownership.claim(sweep_dir, kind="sweep")  # not a run's directory, not a folder of the user's
    grid = cfg.sweep.grid
    if not grid:
        raise ConfigError("cfer sweep: the grid is empty: give --grid KEY=V1,V2 or a sweep.grid section")
    if (sweep_dir / "config.yaml").exists() and not resume:
        raise ValueError(f"{sweep_dir}: a sweep is already here; use --resume {sweep_dir} to continue "
                         "it, or another --out")
    points = grid_points(grid)
    names = [p.name(list(grid)) for p in points]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # two points would share (and overwrite) one run directory
        raise ConfigError(f"sweep.grid: values {', '.join(twice)} name the same point directory; "
                          "make the values differ in letters or digits")
    configs = [point_config(cfg, p) for p in points]  # every point checked before any runs
    changed = _check_resume(cfg, sweep_dir, names=names) if resume else {}
    # A sweep refused before its first point started takes back the directory it made.
    with ownership.removed_if_refused(sweep_dir, started=lambda: any(
            (sweep_dir / n / "config.yaml").is_file() for n in names)):
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if changed or not resume:
            save_config(cfg, sweep_dir / "config.yaml", header=ownership.SWEEP_HEADER)
        return _run_points(cfg, sweep_dir, grid=grid, points=points, names=names, configs=configs,
                           resume=resume)


def _check_resume(cfg: ExperimentConfig, sweep_dir: Path, *, names: Sequence[str]) -> dict:
    """Refuse (one line, before anything is written) a ``--set`` on ``--resume`` that would change
    the numbers of the points already run; the harmless changes, ``key -> {from, to}``."""
    from cfer.core.typed import read_yaml, to_dict
    from cfer.experiments.config.resume import check_same_experiment
    from cfer.experiments.run.results_store import read_results, saved_count

    path = sweep_dir / "config.yaml"
    saved = to_dict(overlay(ExperimentConfig(), read_yaml(path), where=str(path)))
    n_saved = sum(saved_count(read_results(sweep_dir / n)) for n in names
                  if (sweep_dir / n / "results.json").is_file())
    return check_same_experiment(saved, to_dict(cfg), run_dir=sweep_dir, resume=True, n_saved=n_saved)


def _run_points(cfg: ExperimentConfig, sweep_dir: Path, *, grid, points, names, configs,
                resume: bool) -> dict:
    from cfer.experiments.report.run_report import write_report
    from cfer.experiments.run.continual import ContinualRunner

    started = _connect_ray(cfg)
    try:
        done = []
        for k, (name, point_cfg) in enumerate(zip(names, configs), 1):
            point_dir = sweep_dir / name
            log.info("sweep point %d/%d: %s", k, len(points), name)
            results = ContinualRunner(point_cfg, point_dir).run(
                resume=resume and (point_dir / "results.json").exists())
            if point_cfg.output.plots and any(b["runs"] for b in results["methods"].values()):
                write_report(point_dir)
            done.append((name, results))
    finally:
        if started:
            import ray

            ray.shutdown()
    return write_sweep(sweep_dir, grid=grid, points=points, done=done)


def write_sweep(sweep_dir: Path, *, grid: Mapping, points: Sequence[Point], done) -> dict:
    """``sweep.json`` and ``grid.md`` of the finished points ``done`` ((name, results) pairs)."""
    tabled = [(n, r) for n, r in done if any(b["runs"] for b in r["methods"].values())]
    summary = {
        "grid": dict(grid), "selected_on": f"{VALID_KEY} (validation subjects)",
        "points": [{"name": n, "dir": n, "values": p.values,
                    "valid_accuracy": {m: valid_stat(b["runs"]) for m, b in r["methods"].items()},
                    "failed_runs": [f["run"] for f in r.get("failed_runs", [])]}
                   for p, (n, r) in zip(points, done)],
        "best": best_points(tabled),
    }
    atomic_write_json(sweep_dir / "sweep.json", summary)
    if tabled:
        atomic_write_text(sweep_dir / "grid.md", grid_table(tabled, fmt="md"))
    summary["table"] = grid_table(tabled) if tabled else ""
    return summary


def _connect_ray(cfg: ExperimentConfig) -> bool:
    """One Ray session for the whole sweep (the points' runs join it)."""
    if cfg.runner.effective_backend != "ray":
        return False
    from cfer.experiments.backends.ray_tasks import connect

    return connect(cfg.runner.ray.address)


def cli_sweep(args) -> int:
    """``cfer sweep [CONFIG] --grid KEY=V1,V2 ... [--set KEY=VALUE] [--out DIR | --resume DIR]``."""
    import dataclasses

    if args.resume:
        sweep_dir = Path(args.resume)
        if args.config or args.grid:
            raise ValueError("--resume takes the config and grid saved in the sweep directory; "
                             "drop CONFIG and --grid")
        cfg = load_config(sweep_dir / "config.yaml", args.overrides)
    else:
        cfg = load_config(args.config, args.overrides)
        grid = {**cfg.sweep.grid, **parse_grid(args.grid)}
        cfg = dataclasses.replace(cfg, sweep=dataclasses.replace(cfg.sweep, grid=grid))
        cfg.sweep.validate(where="--grid")  # the section's checks, on the axes given here too
        sweep_dir = Path(args.out) if args.out else default_sweep_dir(cfg)
    summary = run_sweep(cfg, sweep_dir, resume=bool(args.resume))
    print(summary["table"])
    print(f"\nwrote {sweep_dir}/: config.yaml, sweep.json, grid.md, one run directory per point")
    failed = [f"{p['name']}: {run}" for p in summary["points"] for run in p["failed_runs"]]
    if failed:
        import sys

        print(f"cfer sweep: error: {len(failed)} runs failed ({'; '.join(failed)}); their errors are in "
              f"each point's results.json; `cfer sweep --resume {sweep_dir}` runs them again",
              file=sys.stderr)
        return 1
    return 0
