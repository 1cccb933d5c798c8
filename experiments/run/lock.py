"""One ``cfer run`` at a time per run directory: a lock file that names its holder.

The lock is an operating-system lock (``flock``; ``msvcrt.locking`` on Windows) on
``RUN_DIR/.cfer.lock``, so it ends with the process that holds it, however that process
ends: a lock file left behind by a killed run is taken over by the next one, and a
second run into a directory in use fails at once with the holder's pid and host. The
file's text (JSON) says who holds it and, once the runs are planned, how many there
are (``cfer run``'s Ctrl-C message reads it).

Written by hand: the standard library has the OS calls but no lock-file class, and
the usual packages (filelock, fasteners) do not record or report the holder.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = ".cfer.lock"


class RunDirInUse(ValueError):
    """Another process holds the run directory's lock (one-line message)."""


def _try_lock(fd: int) -> bool:
    try:
        if os.name == "nt":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # BlockingIOError (flock), PermissionError (msvcrt): held elsewhere
        return False
    return True


def _read(path: Path) -> dict:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _describe(info: dict) -> str:
    if not info.get("pid"):
        return "another process"
    since = f", since {info['started']}" if info.get("started") else ""
    return f"pid {info['pid']} on {info.get('host', '?')}{since}"


class RunLock:
    """The held lock of a run directory (:func:`acquire`); :meth:`release` ends it."""

    def __init__(self, path: Path, fd: int | None):
        self.path = path
        self._fd = fd  # None: this process already held it (the lock is re-entered)

    @property
    def owned(self) -> bool:
        """True if this object took the lock (and :meth:`release` ends it)."""
        return self._fd is not None

    def info(self) -> dict:
        """What the lock file says: pid, host, started, and ``planned``/``what`` once noted."""
        return _read(self.path)

    def note(self, **fields) -> None:
        """Add ``fields`` to the lock file's text (written in place: the file must stay
        the locked one)."""
        info = {**self.info(), **fields}
        with open(self.path, "r+", encoding="utf-8") as f:
            f.write(json.dumps(info))
            f.truncate()

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if os.name == "nt":  # Windows cannot delete an open file
            os.close(fd)
            self.path.unlink(missing_ok=True)
            return
        try:
            self.path.unlink(missing_ok=True)  # while still held: no one can lock the old file
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def acquire(run_dir: str | Path) -> RunLock:
    """Create ``run_dir`` if needed and lock it for this process.

    Raises :class:`RunDirInUse` if another live process holds it, and a one-line
    ValueError if the directory cannot be created or written. A lock this process already
    holds is re-entered (the returned lock does not release it)."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{run_dir}: cannot create the run directory ({e.strerror or e})") from None
    path = run_dir / LOCK_NAME
    for _ in range(10):  # retried only if the file was replaced between opening and locking it
        try:
            # Not through a symlink: the lock file is rewritten, and must be ours, not its target.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as e:
            raise ValueError(f"{path}: cannot write in the run directory ({e.strerror or e})") from None
        if not _try_lock(fd):
            os.close(fd)
            info = _read(path)
            if info.get("pid") == os.getpid() and info.get("host") == socket.gethostname():
                return RunLock(path, None)
            raise RunDirInUse(f"{run_dir}: in use by another cfer run ({_describe(info)}; lock file "
                              f"{path}); wait for it to finish, or use another --out")
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if not same:  # its holder released (deleted) it after we opened it: open the new one
            os.close(fd)
            continue
        stale = _read(path)
        if stale.get("pid"):
            log.info("taking over the lock of %s, which no longer runs (%s)", run_dir, _describe(stale))
        text = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        os.ftruncate(fd, 0)
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
        return RunLock(path, fd)
    raise RunDirInUse(f"{run_dir}: its lock file {path} keeps changing; is another cfer run starting?")
