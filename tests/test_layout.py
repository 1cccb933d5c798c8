"""The package layout users rely on: one installed top-level name, no shadowing by a
user's own folders, and the import contracts that keep the layers in order."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import lint_imports  # noqa: E402


def test_the_wheel_installs_only_the_cfer_package(tmp_path):
    # Built from a copy of the sources, so that setuptools' build/ folder lands there.
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("cfer", *lint_imports.LAYERS):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(src)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("cfer-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"cfer", next(t for t in top if t.endswith(".dist-info"))}
    for layer in lint_imports.LAYERS:  # every layer is inside cfer, with its subpackages
        assert f"cfer/{layer}/__init__.py" in names
    assert "cfer/strategies/zoo/naive.py" in names
    assert "cfer/experiments/configs/quickstart.yaml" in names


def test_a_users_own_plugins_and_experiments_folders_do_not_shadow_ours(tmp_path):
    for name in ("plugins", "experiments", "strategies", "benchmarks"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("MINE = True\n")
    code = ("import cfer.plugins, cfer.experiments, plugins; "
            "print(cfer.plugins.__file__); print(cfer.experiments.__file__); print(plugins.MINE)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout.split()
    assert Path(out[0]) == ROOT / "plugins" / "__init__.py"
    assert Path(out[1]) == ROOT / "experiments" / "__init__.py"
    assert out[2] == "True"  # the user's folder is still theirs under its own name


def test_config_and_report_modules_load_without_torch():
    """cfer --help, config errors, cfer plot and cfer compare must not wait for torch and
    Avalanche (6 s on 2 CPU cores)."""
    code = ("import sys, cfer.experiments.config, cfer.experiments.report.run_report, cfer.experiments.cli, "
            "cfer.benchmarks, cfer.strategies, cfer.core.metric_definitions, cfer.plugins, "
            "cfer.plugins.speed, cfer.plugins.speed.config, cfer.experiments; "
            "print(sorted(m for m in ('torch', 'avalanche', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_python_dash_m_cfer_is_the_command_line():
    out = subprocess.run([sys.executable, "-m", "cfer", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "run" in out and "prepare" in out


@pytest.mark.skipif(importlib.util.find_spec("importlinter") is None, reason="import-linter not installed")
def test_import_contracts_hold_and_catch_a_back_edge(tmp_path):
    tree = lint_imports.installed_layout(tmp_path / "ok")
    kept = lint_imports.lint(tree)
    assert kept.returncode == 0, kept.stdout + kept.stderr

    broken = lint_imports.installed_layout(tmp_path / "broken")
    taxonomy = broken / "cfer" / "benchmarks" / "taxonomy.py"
    taxonomy.write_text(taxonomy.read_text() + "\nfrom cfer.experiments import config  # back-edge\n")
    result = lint_imports.lint(broken)
    assert result.returncode != 0
    assert "core -> benchmarks -> plugins -> strategies -> experiments BROKEN" in result.stdout
    assert "cfer.benchmarks.taxonomy -> cfer.experiments.config" in result.stdout
