"""The extensions a run imports (:mod:`cfer.core.extensions`), as results.json records them, and
the ``--resume`` check that the saved runs' extensions are the ones loaded now."""

from __future__ import annotations

from cfer.core.typed import ConfigError


def run_extensions(cfg) -> list[dict]:
    """Import ``cfg.extensions`` and the installed entry points (once per process); the records
    of both: name, file, SHA-256 of the source (and ``entry_point`` for an installed one)."""
    from cfer.core.extensions import load_entry_points, load_extensions

    named = load_extensions(cfg.extensions)
    return [*named, *(r for r in load_entry_points() if r not in named)]


def check_extensions(saved: list[dict], now: list[dict], *, run_dir) -> None:
    """Refuse (one line) to resume a run whose saved runs were computed with an extension whose
    source has changed since: the remaining runs would use other code than the saved ones."""
    current = {r["name"]: r.get("sha256") for r in now}
    for r in saved:
        name, was = r.get("name"), r.get("sha256")
        if name in current and was != current[name]:
            raise ConfigError(f"--resume {run_dir}: extension {name} has changed since the saved runs "
                              f"(sha256 {str(was)[:12]}... then, {str(current[name])[:12]}... now); "
                              "restore it, or run the changed code into another --out")
