"""What ``--resume`` (or a new run into a used directory) may change of the saved config.

The runs already in ``results.json`` were computed with the saved ``config.yaml``; a
resumed run that trained the rest with other settings would mix two experiments under
one config. So any change of a key that can change a number is refused, naming the keys;
the keys that only change how the run runs (:data:`HARMLESS`) are allowed, and each such
change is recorded in ``results.json`` (``resumes``) with the number of runs saved before it.

``--resume`` may also add methods (:func:`added_method_keys`): ``strategies.methods`` may gain
names, with their ``strategies.define``/``params``/``overrides`` entries and the extensions
that bring their code. The saved methods' runs, settings and digests are untouched
(a method's digest holds only its own settings: :func:`cfer.experiments.run.environment.
config_digest`); removing or reordering a saved method, or changing its settings, stays refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cfer.core.typed import ConfigError

#: Keys (and sections) whose change leaves every number as it is: progress bars, where
#: and how many at a time the runs execute, logging, plots, the output folder. A device
#: change can move the last digits (another floating-point unit); it is allowed, and recorded.
#: A backend or jobs-per-device change is allowed only when a run keeps its torch thread count
#: (:func:`cfer.experiments.run.context.check_threads`): the count changes the numbers.
HARMLESS: tuple[str, ...] = ("runner.progress", "runner.device", "runner.jobs_per_device",
                             "runner.backend", "output", "evaluation.tensorboard", "evaluation.wandb",
                             "evaluation.wandb_project")


def flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def config_changes(saved: Mapping, requested: Mapping) -> dict[str, tuple[Any, Any]]:
    """Flattened keys whose value differs, ``key -> (saved, requested)``."""
    a, b = flatten(saved), flatten(requested)
    return {k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}


def is_harmless(key: str) -> bool:
    return any(key == h or key.startswith(h + ".") for h in HARMLESS)


def _show(v: Any) -> str:
    return "unset" if v is None else str(v)


def added_method_keys(saved: Mapping, requested: Mapping, changes: Mapping) -> set[str]:
    """The changed keys that only add methods to the saved ones: ``strategies.methods`` when the
    saved methods are kept, in their order, at its start; the new methods' own ``define``,
    ``params`` and ``overrides`` (absent before); ``extensions`` when it only gains entries."""
    strategies = ("strategies",)
    old = (saved.get("strategies") or {}).get("methods") or []
    new = (requested.get("strategies") or {}).get("methods") or []
    if list(new[: len(old)]) != list(old) or len(new) == len(old):
        return set()
    added = set(new) - set(old)
    out = {"strategies.methods"}
    for key, (before, _) in changes.items():
        parts = key.split(".")
        if parts[0] not in strategies or len(parts) < 2 or parts[1] not in ("define", "params", "overrides"):
            continue
        if (len(parts) == 2 and before == {}) or (len(parts) >= 3 and parts[2] in added and before is None):
            out.add(key)  # a section that was empty, or a key of a new method
    before_ext = saved.get("extensions") or []
    after_ext = requested.get("extensions") or []
    if list(after_ext[: len(before_ext)]) == list(before_ext):
        out.add("extensions")
    return out


def check_same_experiment(saved: Mapping, requested: Mapping, *, run_dir, resume: bool,
                          n_saved: int) -> dict[str, dict]:
    """Refuse (one-line ConfigError) a requested config that would change the results of the
    run saved in ``run_dir``; return the harmless changes, ``key -> {"from": .., "to": ..}``."""
    changes = config_changes(saved, requested)
    adding = added_method_keys(saved, requested, changes) if resume else set()
    bad = {k: v for k, v in changes.items() if not is_harmless(k) and k not in adding}
    if bad:
        keys = ", ".join(bad)
        was = "; ".join(f"{k}={_show(old)}" for k, (old, _) in bad.items())
        if resume:
            raise ConfigError(
                f"--resume {run_dir}: refusing to change {keys}, which would change the results "
                f"({n_saved} run(s) saved with {was}); run the new setting with another --out "
                f"(allowed on resume: {', '.join(HARMLESS)})")
        raise ConfigError(
            f"{run_dir}: holds the start of a run of another config ({was}); it would reuse "
            "that run's basic models: use another --out, or delete the folder")
    return {k: {"from": old, "to": new} for k, (old, new) in changes.items()}


def _plain(d: Mapping) -> dict:
    """``d`` as JSON would give it back (tuples as lists), so that a config read from
    results.json compares equal to the same config as a dataclass dict."""
    import json

    return json.loads(json.dumps(d, default=str))


def check_recorded_config(recorded: Mapping, requested: Mapping, *, run_dir, n_saved: int) -> None:
    """Refuse (one-line ConfigError) resuming with a config that differs, in a key that can
    change a number, from ``recorded``: the config results.json says its saved runs were
    computed with. It catches a config.yaml edited by hand between two sessions, which the
    comparison with config.yaml alone cannot. Keys that ``recorded`` lacks (added to cfer
    since) are not compared."""
    a, b = flatten(_plain(recorded)), flatten(_plain(requested))
    adding = added_method_keys(_plain(recorded), _plain(requested),
                               {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys()})
    bad = {k: a[k] for k in sorted(a.keys() & b.keys())
           if a[k] != b[k] and not is_harmless(k) and k not in adding}
    if bad:
        was = "; ".join(f"{k}={_show(v)}" for k, v in bad.items())
        raise ConfigError(
            f"--resume {run_dir}: config.yaml differs from the config its {n_saved} saved run(s) were "
            f"computed with (results.json: {was}); restore config.yaml, or run the new setting into "
            "another --out")
