"""Atomic file writes: write a temporary file beside the target, then rename."""

from __future__ import annotations

import json
from pathlib import Path

from cfer.benchmarks.cache import atomic_write_bytes

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json"]


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(Path(path), lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, allow_nan=True) + "\n")
