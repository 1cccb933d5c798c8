"""Whose folder is it: a run touches only directories that are new, empty or its own kind.

``cfer run`` writes ``config.yaml``, ``results.json``, ``metrics.csv``, ``report.md``,
``plots/``, ``logs/``, ``models/`` and ``basic/`` into its run directory, and ``cfer
sweep`` writes ``config.yaml`` (with the grid), ``sweep.json``, ``grid.md`` and one run
directory per point into its sweep directory. So a run into a sweep's directory would
overwrite the sweep's ``config.yaml`` (and break ``cfer sweep --resume``), a sweep into a
run's the run's, and either into a folder of the user's (``--out .``) the user's own
``config.yaml`` or ``report.md``. :func:`claim` refuses all three, in one line, before
anything is written.

The ``config.yaml`` each command writes starts with a comment naming the command
(:data:`RUN_HEADER`, :data:`SWEEP_HEADER`); directories written before the comment
existed are recognised by their other files (``results.json``, ``basic/``, a non-empty
``sweep.grid``).

:func:`removed_if_refused` takes back a directory a refused command created.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

RUN_HEADER = "# cfer run: the resolved config of this run directory (cfer run --resume reads it)\n"
SWEEP_HEADER = ("# cfer sweep: the resolved config and grid of this sweep directory "
                "(cfer sweep --resume reads it)\n")
#: Files a killed ``cfer run`` can leave in a directory it had just created (its lock).
_LEFT_BY_A_START = {".cfer.lock"}


def _first_line(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline()
    except OSError:
        return ""


def _legacy_sweep_config(path: Path) -> bool:
    """A ``config.yaml`` without our comment whose ``sweep.grid`` is not empty (written by a
    cfer sweep from before the comment; a run's saved config has an empty grid)."""
    from cfer.core.typed import read_yaml

    try:
        data = read_yaml(path)
    except (OSError, ValueError):
        return False
    grid = (data.get("sweep") or {}).get("grid") if isinstance(data.get("sweep"), dict) else None
    return bool(grid)


def _legacy_run_config(path: Path) -> bool:
    """A ``config.yaml`` without our comment that is a whole resolved config, every section
    present (what ``cfer run`` saved before the comment existed; a config of the user's names
    a few sections)."""
    import dataclasses

    from cfer.core.typed import read_yaml
    from cfer.experiments.config.sections import ExperimentConfig

    try:
        data = read_yaml(path)
    except (OSError, ValueError):
        return False
    return {f.name for f in dataclasses.fields(ExperimentConfig)} <= data.keys()


def kind_of(folder: str | Path) -> str:
    """What ``folder`` is: ``missing``, ``empty`` (nothing, or only a killed run's lock),
    ``run`` (a cfer run directory), ``sweep`` (a cfer sweep directory), ``file`` (not a folder)
    or ``other`` (a folder of someone else's)."""
    folder = Path(folder)
    if not folder.exists():
        return "missing"
    if not folder.is_dir():
        return "file"
    names = {p.name for p in folder.iterdir()}
    if not names - _LEFT_BY_A_START:
        return "empty"
    config = folder / "config.yaml"
    first = _first_line(config) if config.is_file() else ""
    if first == SWEEP_HEADER or "sweep.json" in names or (
            config.is_file() and not first.startswith("# cfer run") and _legacy_sweep_config(config)):
        return "sweep"
    if first == RUN_HEADER or names & {"results.json", "basic", "basic_model", "models"}:
        return "run"
    if config.is_file() and not first.startswith("#") and _legacy_run_config(config):
        return "run"
    return "other"


def claim(folder: str | Path, *, kind: str) -> None:
    """Refuse (one-line ValueError) to write a ``kind`` ("run" or "sweep") into ``folder``
    unless it is missing, empty or already a directory of that kind."""
    folder = Path(folder)
    found = kind_of(folder)
    if found in ("missing", "empty", kind):
        return
    other = {"run": "sweep", "sweep": "run"}[kind]
    if found == "file":
        raise ValueError(f"{folder}: exists and is not a folder; give cfer {kind} another --out")
    if found == other:
        raise ValueError(f"{folder}: is a cfer {other} directory (`cfer {other} --resume {folder}` continues "
                         f"it); give cfer {kind} another --out")
    held = sorted(p.name for p in folder.iterdir())
    more = f" and {len(held) - 3} more" if len(held) > 3 else ""
    raise ValueError(f"{folder}: is not empty and holds no cfer {kind} ({', '.join(held[:3])}{more}), whose "
                     f"files it could overwrite; give cfer {kind} a new or empty folder as --out")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C before anything was saved; the message is the line to print."""


@contextlib.contextmanager
def removed_if_refused(folder: str | Path, *, started: Callable[[], bool]) -> Iterator[None]:
    """Remove ``folder`` if the body fails (any exception, Ctrl-C too) before ``started()``
    holds and the folder did not exist before: a refused command leaves nothing behind, and
    only what it created itself is removed."""
    folder = Path(folder)
    made = folder  # the outermost folder of the path that does not exist yet (runs/ of runs/x)
    while not made.parent.exists() and made.parent != made:
        made = made.parent
    existed = folder.exists()
    try:
        yield
    except BaseException:
        if not existed and folder.is_dir() and not started():
            shutil.rmtree(folder, ignore_errors=True)
            for parent in folder.parents:  # the empty folders made on the way to it
                if parent == made.parent or not parent.is_dir() or any(parent.iterdir()):
                    break
                parent.rmdir()
        raise
