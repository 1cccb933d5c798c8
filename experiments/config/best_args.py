"""Best-args files: the operating point ``cfer tune`` chose for a config, and how ``cfer run``
lays it over the config.

A best-args file (``best/<config stem>.yaml`` beside the config) holds the chosen values as
config keys (``values``), the search space and every trial's validation score per method,
the budget, the environment, the tuning cost, and the digest of the config it was tuned for
(:func:`operating_digest`). ``runner.best_args`` says which file ``cfer run`` uses:

- ``auto`` (default): ``best/<stem>.yaml`` beside the config, when there is one. If it was
  tuned for another digest it is not applied and the run uses the config's own values (the
  config changed something the operating point depends on; ``cfer -v run`` logs why): the
  printed summary names a file only when one was applied.
- ``none``: no file.
- a path: that file; one tuned for another digest is refused in one line (asked for by name,
  a silent fallback would hide that it does not fit).

Explicit ``--set`` keys win over the file's values; results.json records the file, its digest,
the values applied and the keys ``--set`` overrode (``best_args``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from cfer.core.digest import digest
from cfer.core.typed import ConfigError, read_yaml, to_dict
from cfer.experiments.config.resume import flatten

log = logging.getLogger(__name__)

#: Settings that change the speed of a run, not the operating point: out of the digest.
_RUNTIME = {"dataset": ("root", "rafdb_root", "cache_dir", "skip_missing"),
            "training": ("num_workers", "eval_batch_size")}


def best_path_for(config_path: str | Path) -> Path:
    """Where ``cfer tune`` writes, and ``cfer run`` looks for, a config's best-args file."""
    config_path = Path(config_path)
    return config_path.parent / "best" / f"{config_path.stem}.yaml"


def operating_digest(cfg, tuned: Mapping[str, Sequence[str]]) -> str:
    """The digest of what a tuned operating point depends on: the data set (not where it lies),
    the benchmark, the model, the training section, the methods' params, overrides and
    definitions, the phase and ``protocol.name``, without the tuned knobs themselves
    (``tuned``: method -> knob names) so that ``--set`` of a tuned knob still meets its file.
    Left out: how many orders, folds and seeds a run has, ``strategies.methods``, the data
    loading (``data``), evaluation, output, runner, sweep and tune sections."""
    d = to_dict(cfg)
    knobs = {k for ks in tuned.values() for k in ks}

    def section(name: str, drop=()) -> dict:
        return {k: v for k, v in d[name].items() if k not in (*_RUNTIME.get(name, ()), *drop)}

    def per_method(block: Mapping) -> dict:
        out = {m: {k: v for k, v in (p or {}).items() if k not in tuned.get(m, ())}
               for m, p in block.items()}
        return {m: p for m, p in out.items() if p}

    return digest({"phase": d["phase"], "dataset": section("dataset"), "benchmark": d["benchmark"],
                   "model": d["model"], "training": section("training", drop=knobs),
                   "strategies": {"define": d["strategies"]["define"],
                                  "params": per_method(d["strategies"]["params"]),
                                  "overrides": per_method(d["strategies"]["overrides"])},
                   "protocol": d["protocol"]["name"]})


def read_best(path: str | Path) -> dict:
    """A best-args file, checked for the keys ``cfer run`` needs (one line otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"runner.best_args: {path} does not exist (write it with cfer tune CONFIG)")
    data = read_yaml(path)
    missing = [k for k in ("config_digest", "values", "tuned") if k not in (data or {})]
    if missing or not isinstance(data.get("values"), dict) or not isinstance(data.get("tuned"), dict):
        raise ConfigError(f"runner.best_args: {path} is not a best-args file of cfer tune "
                          f"(missing or malformed: {', '.join(missing) or 'values/tuned'})")
    return data


def resolve(config_path: str | Path, overrides: Sequence[str]):
    """The config of ``config_path`` with ``overrides`` and, per ``runner.best_args``, its
    best-args file laid under them (explicit ``--set`` wins); ``runner.best_args`` of the
    result is the file applied, or ``none``."""
    from cfer.experiments.config.load import load_config

    cfg = load_config(config_path, overrides)
    mode = cfg.runner.best_args
    if mode == "none":
        return cfg
    path = best_path_for(config_path) if mode == "auto" else Path(mode)
    if mode == "auto" and not path.is_file():
        return load_config(config_path, [*overrides, "runner.best_args=none"])
    best = read_best(path)
    have = operating_digest(cfg, best["tuned"])
    if have != best["config_digest"]:
        msg = (f"{path}: tuned for config digest {best['config_digest']}, this config's is {have} "
               "(a setting the operating point depends on differs: data set, benchmark, model, "
               "training, the methods' settings or protocol.name)")
        if mode != "auto":
            raise ConfigError(f"runner.best_args: {msg}; tune this config (cfer tune) or set "
                              "runner.best_args=none")
        # Debug, not a warning: every --set of a training key (a quick run of the quickstart)
        # changes the digest, and a warning on each would bury the one-line errors
        log.debug("%s; not applied: the config's own values are used (cfer tune %s writes one for it)",
                  msg, config_path)
        return load_config(config_path, [*overrides, "runner.best_args=none"])
    sets = [f"{k}={json.dumps(v)}" for k, v in flatten(best["values"]).items()]
    return load_config(config_path, [*sets, *overrides, f"runner.best_args={json.dumps(_shown(path))}"])


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies under it (a shipped config's
    file is not recorded with this machine's absolute path), else as given."""
    import os

    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else str(path)


def lookup(data: Mapping, key: str):
    for part in key.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


def record(cfg) -> dict | None:
    """results.json's ``best_args``: the file applied, its digest and source, the values it set
    and the keys ``--set`` overrode (None when no file was applied)."""
    mode = cfg.runner.best_args
    if mode in ("auto", "none"):
        return None
    out: dict = {"path": mode}
    try:
        best = read_best(mode)
    except (ConfigError, OSError, ValueError) as e:  # moved or edited since the run started
        return {**out, "error": str(e)}
    values = flatten(best["values"])
    d = to_dict(cfg)
    out.update(config_digest=best["config_digest"], source=best.get("source", "cfer tune"),
               values=values, overridden=sorted(k for k, v in values.items() if lookup(d, k) != v))
    return out


def summary_line(best: Mapping | None) -> str | None:
    """What ``cfer run``'s printed summary says about the best-args file (None: none applied)."""
    if not best:
        return None
    if "error" in best:
        return f"best-args: {best['path']} ({best['error']})"
    over = f"; --set overrode {', '.join(best['overridden'])}" if best.get("overridden") else ""
    return (f"best-args: {best['path']} applied ({len(best['values'])} values, source: {best['source']}; "
            f"config digest {best['config_digest']}{over})")
