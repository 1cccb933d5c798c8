"""Atomic file writes, the one implementation every layer uses.

Each writer creates a temporary file beside the target (same folder, so the
rename stays on one file system), fills and fsyncs it, then ``os.replace``-s it
over the target: a reader sees the old file or the whole new one, never a
part, and an interrupted write (an exception, Ctrl-C) leaves no temporary file
behind. A process killed outright (SIGKILL, power loss) can leave one:
:func:`remove_stale_temporaries` clears them, and ``cfer run`` calls it on the
run directory it has locked. Temporary names end in :data:`TEMPORARY_SUFFIX`
(``.<name>.<random>.cfer.tmp``), so that the clean-up never matches a file of the
user's (``.notes.tmp``), and it looks only in the folders it is told a run made.

An error while writing (disk full, the file-size limit) is an ``OSError`` naming the
target file, not the temporary one or none (a write through a file object has no name).

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
           "atomic_write_json", "remove_stale_temporaries", "new_file_mode", "TEMPORARY_SUFFIX"]

#: The end of every temporary file name written here (and the only one the clean-up removes).
TEMPORARY_SUFFIX = ".cfer.tmp"


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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
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
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(e, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _naming(error: OSError, path: Path) -> OSError:
    """``error`` as an OSError of the same kind naming ``path`` (the file the user asked for)."""
    if error.errno is None:
        return error
    return type(error)(error.errno, error.strerror or os.strerror(error.errno), str(path))


def atomic_write_path(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Like :func:`atomic_write` for writers that need a file name (``PIL.Image.save``
    with a format inferred from the suffix, ``cv2.imwrite``): ``write(tmp_path)``."""
    path = Path(path)
    fd, tmp = _temporary(path)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(e, path) from None
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


def remove_stale_temporaries(folder: str | Path, *, subfolders: tuple[str, ...] = ()) -> list[Path]:
    """Delete the temporary files that killed writers of this module left in ``folder`` (its
    own files only) and anywhere under its ``subfolders`` (folders the caller made).

    Only our names match (:data:`TEMPORARY_SUFFIX`); call it only on folders no other
    process writes into (``cfer run`` holds the run directory's lock when it does).
    Returns the files removed."""
    folder = Path(folder)
    found = list(folder.glob(f".*{TEMPORARY_SUFFIX}"))
    for sub in subfolders:
        if (folder / sub).is_dir() and not (folder / sub).is_symlink():
            found += (folder / sub).rglob(f".*{TEMPORARY_SUFFIX}")
    removed = []
    for p in found:
        if p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
