"""Atomic file writes, the one implementation every layer uses.

Each writer creates a temporary file beside the target (same folder, so the
rename stays on one file system), fills and fsyncs it, then ``os.replace``-s it
over the target: a reader sees the old file or the whole new one, never a
part, and an interrupted write (an exception, Ctrl-C) leaves no temporary file
behind. A process killed outright (SIGKILL, power loss) can leave one:
:func:`remove_stale_temporaries` clears them, and ``cfer run`` calls it on the
run directory it has locked.

The result gets the permissions of an ordinary new file, 0666 minus the
umask (0644 with the usual umask 022), not the 0600 that :func:`tempfile.mkstemp`
gives, so that a research group can read each other's runs.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "atomic_write_path", "atomic_write_bytes", "atomic_write_text",
           "atomic_write_json", "remove_stale_temporaries", "new_file_mode"]

_SUFFIX = ".tmp"


def new_file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: 0o666 minus the process umask."""
    try:  # Linux >= 4.7 reports it without changing it
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere the only way to read the umask is to set it
    os.umask(mask)
    return 0o666 & ~mask


def _temporary(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_SUFFIX)
    try:
        os.chmod(tmp, new_file_mode())
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return fd, tmp


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(f)`` on a binary temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_path(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Like :func:`atomic_write` for writers that need a file name (``PIL.Image.save``
    with a format inferred from the suffix, ``cv2.imwrite``): ``write(tmp_path)``."""
    path = Path(path)
    fd, tmp = _temporary(path)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=1, allow_nan=True) + "\n")


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files that killed writers left under ``folder`` (recursively).

    Only call it on a folder no other process writes into (``cfer run`` holds the run
    directory's lock when it does). Returns the files removed."""
    removed = []
    for p in Path(folder).rglob(f".*{_SUFFIX}"):
        if p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
