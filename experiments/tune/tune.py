"""``cfer tune CONFIG``: every method at its own operating point, chosen on the validation
subjects with the same budget of trials for every method (docs/tuning.md).

Each method's trials are drawn from its search space (experiments/config/search_space.py):
``tune.budget`` points, its default point (the config's values) first. Trial k runs every
method's k-th point as one ordinary run of the config (a sweep point:
:func:`cfer.experiments.sweep.sweep.point_config`, on any ``runner.backend``) into
``<tune dir>/trialNN/``, on ``tune.orders`` class orders, with :class:`TrialRunner`, which
scores every step on the validation subjects: the test stream is never evaluated. A
trial's score is the average step accuracy on the validation stream (the validation
analogue of the headline overall accuracy), averaged over its runs; each method keeps its
best trial, the default point on ties.

Every searched knob acts from experience 1 on, so the trials of a method start from the same
basic model: trial 0 trains it, the later trials get a copy stamped with their own settings
digest (:func:`share_basic_models`), which saves ``budget - 1`` basic trainings per method.

The chosen values go to ``best/<config stem>.yaml`` beside the config
(:mod:`~cfer.experiments.config.best_args`), with the spaces, every trial's score, the budget,
the digest of the config, the environment and the cost in wall and CPU seconds.
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Mapping
from pathlib import Path

from cfer.core.typed import ConfigError, overlay, to_dict
from cfer.experiments.config import best_args
from cfer.experiments.config.search_space import (
    Knob,
    check_tuned,
    draw,
    grid_size,
    method_space,
    tuned_methods,
)
from cfer.experiments.config.sections import ExperimentConfig
from cfer.experiments.run.continual import ContinualRunner

log = logging.getLogger(__name__)

SCORE = "average step accuracy on the validation subjects (the test stream is not evaluated)"


class TrialRunner(ContinualRunner):
    """A continual run whose steps are scored on the validation stream, never on the test one
    (the backends rebuild a runner of this class in their workers)."""

    def scored_stream(self, bm):
        return bm.valid_stream


def _merge(a: Mapping, b: Mapping) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def trial_config(cfg: ExperimentConfig, points: Mapping[str, dict], *, spaces: Mapping[str, list[Knob]],
                 k: int) -> ExperimentConfig:
    """The config of trial ``k``: each method of ``points`` at its point, ``tune.orders`` orders,
    no plots and no saved models. Laid over the whole config (a method's other overrides and
    params stay)."""
    from cfer.experiments.sweep.sweep import Point, point_config

    values = {}
    for m, point in points.items():
        for knob in spaces[m]:
            values[knob.key] = point[knob.name]
    orders = ({"class_orders": cfg.protocol.class_orders[: cfg.tune.orders]} if cfg.protocol.class_orders
              else {"orders": cfg.tune.orders})
    data = _merge(to_dict(cfg), {"name": f"{cfg.name}_trial{k:02d}", "protocol": orders,
                                 "strategies": {"methods": list(points)},
                                 "output": {"plots": False, "save_models": "none", "dir": None},
                                 "evaluation": {"gradcam": False}, "runner": {"best_args": "none"}})
    for key, value in values.items():  # merged, so a method's other overrides and params stay
        data = _merge(data, _nested(key, value))
    # A sweep point with no grid of its own: the final validation accuracy recorded too, and
    # protocol paper refused (it has no validation subjects to score on).
    return point_config(overlay(ExperimentConfig(), data, where=f"tune trial {k}"), Point({}))


def _nested(key: str, value) -> dict:
    out: dict = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def share_basic_models(first: ContinualRunner, runner: ContinualRunner) -> None:
    """Copy ``first``'s basic models (trial 0) into ``runner``'s run directory, stamped with
    ``runner``'s settings digest: the searched knobs act from experience 1 on, so experience 0
    trains the same in both."""
    from cfer.experiments.run.basic_store import DIGEST_KEY
    from cfer.experiments.run.continual import plan_runs
    from cfer.experiments.run.model_files import load_state

    specs = plan_runs(runner.cfg, runner.ctx.data().dataset.class_names)
    for spec in {runner.basic_path(s): s for s in specs if runner.uses_shared_basic(s)}.values():
        source, target = first.basic_path(spec), runner.basic_path(spec)
        if target.is_file() or not source.is_file():
            continue
        saved = load_state(source, run_dir=first.run_dir)
        runner.ctx.basic_models.save(target, {**saved, DIGEST_KEY: runner.basic_digest(spec)})


def _cpu_seconds() -> float:
    """CPU seconds of this process and its waited-for children (processes workers; Ray's
    workers are not children: their CPU time is not counted)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def trial_score(runs: list[dict]) -> float | None:
    """Mean over ``runs`` of their average step accuracy (here: on the validation subjects)."""
    from cfer.core.metric_definitions import average_step_accuracy

    if not runs:
        return None
    return sum(average_step_accuracy(r["step_accuracy"]) for r in runs) / len(runs)


def run_tune(cfg: ExperimentConfig, *, config_path: str | Path, tune_dir: str | Path | None = None,
             best_file: str | Path | None = None, resume: bool = False, data=None) -> dict:
    """Tune every method of ``cfg`` (``tune`` section); writes and returns the best-args dict.
    ``data``: a DecodedDataset to use instead of reading the configured data set (tests)."""
    import yaml

    from cfer.core.atomic import atomic_write_text
    from cfer.experiments.sweep.sweep import _connect_ray

    t = cfg.tune
    methods = tuned_methods(cfg)
    if not methods:
        raise ConfigError("cfer tune: no method to tune (tune.methods and strategies.methods share none)")
    spaces = {m: method_space(cfg, m) for m in methods}
    draws = {m: draw(spaces[m], budget=t.budget, seed=t.seed, method=m) for m in methods}
    tune_dir = Path(tune_dir or t.dir or Path("runs") / f"{cfg.name}_tune")
    best_file = Path(best_file) if best_file else best_args.best_path_for(config_path)
    trials = max(len(d) for d in draws.values())
    for m in methods:
        if len(draws[m]) < t.budget:
            log.warning("cfer tune: %s's grid has %d points, fewer than the budget %d: it runs all of them",
                        m, len(draws[m]), t.budget)
    configs = [trial_config(cfg, {m: draws[m][k] for m in methods if k < len(draws[m])}, spaces=spaces, k=k)
               for k in range(trials)]  # every trial checked before any runs
    wall, cpu = time.perf_counter(), _cpu_seconds()
    scores: dict[str, list] = {m: [] for m in methods}
    environment = None
    started = _connect_ray(cfg)
    try:
        first = None
        for k, trial_cfg in enumerate(configs):
            trial_dir = tune_dir / f"trial{k:02d}"
            runner = TrialRunner(trial_cfg, trial_dir, data=data)
            if first is not None and cfg.runner.share_basic:
                share_basic_models(first, runner)
            log.info("cfer tune: trial %d/%d (%s)", k + 1, trials, ", ".join(trial_cfg.strategies.methods))
            # --resume: a finished trial is read back, an interrupted one continues its runs
            results = runner.run(resume=resume and (trial_dir / "config.yaml").is_file())
            first = first or runner
            environment = environment or results.get("environment")
            failed = {f["method"]: f["error"] for f in results.get("failed_runs", [])}
            for m in trial_cfg.strategies.methods:
                runs = results["methods"].get(m, {}).get("runs", [])
                score = None if m in failed else trial_score(runs)
                scores[m].append({"trial": k, "values": dict(draws[m][k]), "valid_score": score,
                                  "final_valid_accuracy": _mean([r.get("final_valid_accuracy")
                                                                 for r in runs]),
                                  **({"error": failed[m]} if m in failed else {})})
    finally:
        if started:
            import ray

            ray.shutdown()
    cost = {"wall_seconds": round(time.perf_counter() - wall, 1),
            "cpu_seconds": round(_cpu_seconds() - cpu, 1)}
    best = _choose(scores)
    out = best_file_dict(cfg, config_path=config_path, spaces=spaces, draws=draws, scores=scores, best=best,
                         environment=environment, cost=cost, tune_dir=tune_dir)
    header = (f"# cfer tune {config_path}: each method's operating point, chosen by the {SCORE}\n"
              "# with the same budget of trials for every method; cfer run lays `values` under --set\n"
              "# (runner.best_args; docs/tuning.md)\n")
    best_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(best_file, header + yaml.safe_dump(out, sort_keys=False))
    out["path"] = str(best_file)
    return out


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _choose(scores: Mapping[str, list]) -> dict[str, int | None]:
    """Per method, the trial with the highest score; the earliest (trial 0: the default point) on ties."""
    best: dict[str, int | None] = {}
    for m, trials in scores.items():
        scored = [(s["valid_score"], s["trial"]) for s in trials if s["valid_score"] is not None]
        best[m] = max(scored, key=lambda p: (p[0], -p[1]))[1] if scored else None
    return best


def best_file_dict(cfg, *, config_path, spaces, draws, scores, best, environment, cost, tune_dir) -> dict:
    """The best-args file's content (its keys: experiments/config/best_args.py)."""
    import platform

    values: dict = {}
    methods = {}
    for m, space in spaces.items():
        chosen = dict(draws[m][best[m]]) if best[m] is not None else None  # a copy: no YAML alias
        for knob in space:
            if chosen is not None:
                values = _merge(values, _nested(knob.key, chosen[knob.name]))
        methods[m] = {"space": {k.name: list(k.values) for k in space},
                      "default": {k.name: k.default for k in space}, "grid_size": grid_size(space),
                      "trials": len(draws[m]), "chosen_trial": best[m], "chosen": chosen,
                      "scores": scores[m]}
    if any(b is None for b in best.values()):
        failed = [m for m, b in best.items() if b is None]
        log.warning("cfer tune: no trial of %s finished: their values are left out", ", ".join(failed))
    tuned = {m: [k.name for k in space] for m, space in spaces.items()}
    return {"config": str(config_path), "config_digest": best_args.operating_digest(cfg, tuned),
            "source": "cfer tune", "selected_on": SCORE, "budget": cfg.tune.budget,
            "orders": cfg.tune.orders, "seed": cfg.tune.seed, "trials_dir": str(tune_dir),
            "tuned": tuned, "values": values, "methods": methods,
            "cost": {**cost, "machine": _machine(environment)},
            "environment": environment or {"python": platform.python_version()}}


def _machine(environment: Mapping | None) -> str:
    if not environment:
        return ""
    dev = environment.get("device") or {}
    return f"{dev.get('name', '?')} ({dev.get('type', '?')}), {environment.get('cpu_count', '?')} CPUs, " \
           f"{environment.get('threads', '?')} torch threads"


def cli_tune(args) -> int:
    """``cfer tune [CONFIG] [--budget N] [--set KEY=VALUE] [--out DIR] [--best FILE] [--resume]``."""
    from cfer.experiments.config.load import load_config, resolve_config_path

    config_path = resolve_config_path(args.config)
    overrides = list(args.overrides)
    if args.budget is not None:
        overrides.append(f"tune.budget={args.budget}")
    cfg = load_config(config_path, overrides)
    if cfg.phase != "continual":
        raise ConfigError(f"cfer tune: phase {cfg.phase}: cfer tune tunes phase continual")
    check_tuned(cfg, where=str(config_path))
    out = run_tune(cfg, config_path=config_path, tune_dir=args.out, best_file=args.best, resume=args.resume)
    for m, block in out["methods"].items():
        scored = [s for s in block["scores"] if s["valid_score"] is not None]
        best = block["chosen"]
        line = ", ".join(f"{k}={v}" for k, v in (best or {}).items())
        top = max((s["valid_score"] for s in scored), default=None)
        print(f"{m:12s} {len(block['scores'])} trials  best {line or '(none finished)'}"
              + (f"  valid {100 * top:.1f}%" if top is not None else ""))
    c = out["cost"]
    print(f"\nwrote {out['path']} (tuning cost: {c['wall_seconds']:.0f} s wall, "
          f"{c['cpu_seconds']:.0f} CPU s; "
          f"trials in {out['trials_dir']})")
    return 0
