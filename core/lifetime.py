"""Worker processes that die with their parent.

A pool worker (``concurrent.futures.ProcessPoolExecutor``) whose parent is killed outright
(SIGKILL, an out-of-memory kill) is not told: it finishes the task it holds, a whole
training run of an hour and a gigabyte of memory, writing model files into a run
directory nobody will read, and then waits for work for ever. :func:`die_with_parent`,
called first thing in the worker (the pool's ``initializer``), ends it with its parent:

- on Linux the kernel sends it SIGKILL the moment its parent dies (``prctl`` with
  ``PR_SET_PDEATHSIG``; see prctl(2)), so it writes nothing after;
- elsewhere a daemon thread checks the parent every half second and ends the process
  (``os._exit``) when the parent has gone.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _parent_gone(parent_pid: int) -> bool:
    return os.getppid() != parent_pid


def die_with_parent(parent_pid: int, *, poll_seconds: float = 0.5) -> None:
    """End this process when process ``parent_pid`` (its parent, which started it) dies."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
        # The parent may have died before prctl: then this process already has a new parent.
        if _parent_gone(parent_pid):
            os._exit(1)
        if armed:
            return

    def watch() -> None:
        while not _parent_gone(parent_pid):
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
