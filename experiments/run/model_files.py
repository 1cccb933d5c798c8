"""Saved models (``basic/*.pt``, ``basic_model/*.pt``, ``models/**/stepNN.pt``): written
atomically, read back safely, and every failure one line naming the file and what to do.

``torch.save`` reports a full disk or the file-size limit as a ``RuntimeError`` from its
zip writer, and ``torch.load`` a truncated or empty file as ``UnpicklingError``,
``EOFError`` or ``RuntimeError`` with advice to load it unsafely (``weights_only=False``),
which must never be followed for a file one did not write. Both become one ValueError
line here: the path, the reason, and "delete it and resume" (what recovers the run).
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

from cfer.core.atomic import atomic_write


class ModelFileError(ValueError):
    """A model file that cannot be written or read (one-line message naming it)."""


def _reason(error: BaseException) -> str:
    text = (getattr(error, "strerror", None) or str(error) or type(error).__name__).strip()
    return text.splitlines()[0][:200]


def save_state(path: str | Path, obj, *, run_dir: str | Path | None = None) -> Path:
    """``torch.save(obj)`` to ``path`` atomically; a failed write (disk full, file too large)
    is a :class:`ModelFileError` naming ``path`` and leaves no file behind."""
    import torch

    path = Path(path)
    try:
        return atomic_write(path, lambda f: torch.save(obj, f))
    except (OSError, RuntimeError) as e:
        resume = f" and `cfer run --resume {run_dir}`" if run_dir is not None else " and --resume"
        raise ModelFileError(f"{path}: cannot write the model file ({_reason(e)}); free disk space "
                             f"(or raise the file-size limit, ulimit -f){resume}") from None


def load_state(path: str | Path, *, mmap: bool = False, run_dir: str | Path | None = None,
               fix: str | None = None):
    """``torch.load(path, weights_only=True)`` on the CPU; a corrupt, truncated or empty file is
    a :class:`ModelFileError` naming it and saying ``fix`` (default: delete it and resume).
    ``mmap``: map the tensors instead of reading them (a cheap look at a large file)."""
    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise
    except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, zipfile.BadZipFile, OSError) as e:
        size = path.stat().st_size if path.exists() else 0
        what = "empty" if size == 0 else f"corrupt or truncated, {size} bytes"
        fix = fix or (f"delete it and continue with `cfer run --resume {run_dir or 'RUN_DIR'}`, which "
                      "trains it again")
        raise ModelFileError(f"{path}: not a readable model file ({what}: {_reason(e)}); {fix}") from None
