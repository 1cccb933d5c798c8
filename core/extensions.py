"""A user's own plugins, strategies and models, from their own folder: extensions.

An extension is a Python file or an importable module that registers things with cfer's
decorators (``register_plugin``, ``register_strategy``, ``register_model``) when imported. Two
ways to name one:

- a config's ``extensions:`` list (``extensions: [my_plugins.py, my_package.methods]``): a
  name ending in ``.py`` (or with a ``/``) is a file, relative to the config file's folder; any
  other is a module name, imported as Python imports it;
- an installed package's entry point in the group ``cfer.extensions`` (``[project.entry-points.
  "cfer.extensions"] mine = "my_package.methods"``), loaded by every cfer command before a
  registry is read.

Each is imported once per process, before the config that names it is checked, and again in
every worker process a backend starts (the run context loads them). What ran is recorded:
:func:`load_extensions` returns, per extension, its name, the file it was read from and the
SHA-256 of its source (every ``.py`` file of a package), which ``results.json`` keeps
(``extensions``) and ``--resume`` compares: a changed extension would change the numbers.
"""

from __future__ import annotations

import hashlib
import sys
from importlib import import_module
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

from cfer.core.typed import ConfigError

#: The entry-point group installed packages declare their extensions in.
GROUP = "cfer.extensions"
_LOADED: dict[str, dict] = {}  # resolved name -> its record
_entry_points_loaded = False


class ExtensionError(ConfigError):
    """An extension that cannot be found or imported (one line: which, and why)."""


def is_file(name: str) -> bool:
    return name.endswith(".py") or "/" in name or "\\" in name


def resolve(name: str, *, base_dir: str | Path | None) -> str:
    """``name`` as it is recorded and loaded: a file as an absolute path (relative to
    ``base_dir``, the config file's folder), a module name as is."""
    if not is_file(name):
        return name
    path = Path(name).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return str(path.resolve())


def digest(path: Path) -> str:
    """SHA-256 of a file, or of every ``.py`` file of a package folder (by relative path)."""
    h = hashlib.sha256()
    if path.name == "__init__.py":
        for f in sorted(path.parent.rglob("*.py")):
            if "__pycache__" not in f.parts:
                h.update(f.relative_to(path.parent).as_posix().encode() + b"\0" + f.read_bytes())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


def _module_name(path: Path) -> str:
    """A module name of its own for a file (two files named ``plugins.py`` do not collide)."""
    tag = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    return f"cfer_extension_{path.stem}_{tag}"


def load_one(name: str) -> dict:
    """Import extension ``name`` (resolved: an absolute file path or a module name) once;
    its record ``{"name", "path", "sha256"}``."""
    if name in _LOADED:
        return _LOADED[name]
    if is_file(name):
        path = Path(name)
        if not path.is_file():
            raise ExtensionError(f"extensions: {name}: no such file")
        module_name = _module_name(path)
        spec = spec_from_file_location(module_name, path)
        module = module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses and pickling look the module up
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            sys.modules.pop(module_name, None)
            raise ExtensionError(f"extensions: {name}: {type(e).__name__}: {e}") from e
    else:
        try:
            module = import_module(name)
        except ImportError as e:
            raise ExtensionError(f"extensions: {name}: cannot import it ({e}); a file is written "
                                 "with its .py ending") from e
        path = Path(getattr(module, "__file__", "") or "")
    record = {"name": name, "path": str(path), "sha256": digest(path) if path.is_file() else None}
    _LOADED[name] = record
    return record


def load_extensions(names, *, base_dir=None) -> list[dict]:
    """Import the ``names`` a config lists (and the installed entry points, once); their records."""
    load_entry_points()
    return [load_one(resolve(str(n), base_dir=base_dir)) for n in names]


def load_entry_points() -> list[dict]:
    """Import every ``cfer.extensions`` entry point of the installed packages (once per process)."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return [r for r in _LOADED.values() if r.get("entry_point")]
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    out = []
    for ep in entry_points(group=GROUP):
        record = load_one(ep.value.partition(":")[0])
        record["entry_point"] = ep.name
        out.append(record)
    return out


def loaded() -> list[dict]:
    """The records of every extension this process imported (config-named and entry points)."""
    return list(_LOADED.values())
