"""Check the import-linter contracts of ``.importlinter`` against the ``cfer`` package.

Why a copy: ``setup.py`` maps the top-level folders ``core/ benchmarks/ plugins/
strategies/ experiments/`` into ``cfer.*``; grimp (import-linter's graph
builder) walks one package directory and cannot follow that mapping, so this
lays the package out as it is installed (``cfer/benchmarks/...``) in a
temporary folder and lints that.

    python tools/lint_imports.py           # exit status 0: all contracts kept
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("core", "benchmarks", "plugins", "strategies", "experiments")


def installed_layout(dest: Path) -> Path:
    """Copy the package as installed (``dest/cfer/<layer>/...``); returns ``dest``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "configs")
    shutil.copytree(ROOT / "cfer", dest / "cfer", ignore=ignore)
    for layer in LAYERS:
        shutil.copytree(ROOT / layer, dest / "cfer" / layer, ignore=ignore)
    return dest


def lint(tree: Path) -> subprocess.CompletedProcess:
    """Run ``lint-imports`` with this repository's contracts on the package under ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    exe = Path(sys.executable).with_name("lint-imports")
    cmd = [str(exe) if exe.exists() else "lint-imports", "--no-cache", str(ROOT / ".importlinter")]
    return subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cfer-lint-") as tmp:
        result = lint(installed_layout(Path(tmp)))
    sys.stdout.write(result.stdout[result.stdout.find("Contracts"):] if result.returncode == 0
                     else result.stdout + result.stderr)
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
