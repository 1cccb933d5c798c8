"""Keep freed memory in the process for reuse: fewer page faults for a training loop.

Every training step frees and allocates the same few activation buffers (megabytes each at
a batch of 32). glibc's malloc serves a large block by ``mmap`` and returns it with
``munmap`` when freed, and trims the top of its heap back to the kernel, so the next step
faults the same pages in again and the kernel zeroes each one: on this project's 2-core VM a
quickstart run spent 10% of its CPU time in the kernel, 1.7 million minor page faults for one
lwf run (``/usr/bin/time``). :func:`keep_freed_memory` sets the two thresholds with
``mallopt`` (glibc's own knob, see mallopt(3); Python and torch expose none): blocks under
the largest mmap threshold glibc accepts come from the heap, and the heap is trimmed only
when ``trim_bytes`` sit free at its top. The lwf run: 3.9 -> 1.0 s of system time, 1.68 M ->
0.18 M page faults, user time unchanged (docs/speed.md). Only where memory comes from
changes, never a value: the numbers are the same to the bit (tests/test_allocator.py).

The cost is memory the process keeps after its peak (at most ``trim_bytes`` beyond what it
uses). Elsewhere than glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import sys

_M_TRIM_THRESHOLD = -1  # malloc.h
_M_MMAP_THRESHOLD = -3
#: glibc refuses a larger mmap threshold on 64-bit (HEAP_MAX_SIZE / 2, see mallopt(3)).
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024


def keep_freed_memory(*, trim_bytes: int = 1 << 30) -> bool:
    """Serve blocks up to 32 MiB from the heap and trim it only past ``trim_bytes`` free;
    True when glibc took both settings (False: not glibc, or refused)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # the mmap threshold first: setting either one ends glibc's own sliding threshold
    mmap_set = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX))
    return mmap_set and bool(mallopt(_M_TRIM_THRESHOLD, trim_bytes))
