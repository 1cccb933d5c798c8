"""The package layout users rely on: one installed top-level name, no shadowing by a
user's own folders, and the import contracts that keep the layers in order."""

from __future__ import annotations

import ast
import configparser
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
    assert "cfer/strategies/zoo/paper_methods.yaml" in names  # the paper's method and its ablations
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


def dotted(path: Path) -> str:
    """The installed name of a module file of the package (``plugins/speed/config.py`` ->
    ``cfer.plugins.speed.config``; setup.py maps each layer folder into ``cfer``)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) if parts[0] == "cfer" else ".".join(["cfer", *parts])


def package_modules() -> list[Path]:
    """Every module file of the installed package: the cfer/ entry and the layer folders."""
    return sorted(p for top in ("cfer", *lint_imports.LAYERS) for p in (ROOT / top).rglob("*.py")
                  if "__pycache__" not in p.parts)


def test_config_and_report_modules_load_without_torch():
    """cfer --help, config errors, cfer plot and cfer compare must not wait for torch and
    Avalanche (6 s on 2 CPU cores): every module of the config and report rooms, the command
    line, the results files, the package roots and the ``data`` section."""
    rooms = [ROOT / "experiments" / "config", ROOT / "experiments" / "report", ROOT / "core"]
    names = [dotted(p) for p in package_modules() if any(room in p.parents for room in rooms)]
    names += ["cfer.experiments.cli", "cfer.experiments.run.results_store", "cfer.experiments",
              "cfer.benchmarks", "cfer.strategies", "cfer.plugins", "cfer.plugins.speed",
              "cfer.plugins.speed.config", "cfer.experiments.run.progress",
              # the registries and what registers into them: configs name plugins and methods
              "cfer.plugins.registry", "cfer.plugins.method.params", "cfer.plugins.method.memory",
              "cfer.plugins.run.entries", "cfer.plugins.speed.entries", "cfer.strategies.entries",
              "cfer.strategies.registry", "cfer.strategies.compose", "cfer.benchmarks.transforms"]
    assert "cfer.experiments.config.sections" in names and "cfer.experiments.report.compare" in names
    code = (f"import sys, {', '.join(names)}; "
            "cfer.plugins.registry.available_plugins(); cfer.strategies.registry.available(); "
            "print(sorted(m for m in ('torch', 'avalanche', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_public_names_of_the_design_resolve_through_the_lazy_roots():
    code = ("import sys; from cfer.plugins import BasicDistillationPlugin, PredictiveSortingSelection, "
            "PredictiveSortingReplayPlugin; from cfer.benchmarks import compound_benchmark, synthetic, "
            "load_cfee; import cfer.benchmarks.synthetic_faces.writer as w; from cfer import strategies; "
            "import cfer.plugins, cfer.benchmarks; "
            "assert synthetic is w.synthetic and cfer.benchmarks.synthetic is w.synthetic; "
            "assert callable(strategies.build) and 'kd_psmr' in strategies.available(); "
            "print(BasicDistillationPlugin.__module__, PredictiveSortingReplayPlugin.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["cfer.plugins.method.distillation", "cfer.plugins.method.psmr"]


# -- the 400-line rule -------------------------------------------------------------------------

REASON = "Over 400 lines:"


def too_long(paths, *, limit: int = 400) -> list[str]:
    """The modules of ``paths`` over ``limit`` lines whose docstring has no line starting
    :data:`REASON` followed by the reason."""
    out = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        n = len(text.splitlines())
        doc = ast.get_docstring(ast.parse(text)) or ""
        stated = any(line.startswith(REASON) and line[len(REASON):].strip() for line in doc.splitlines())
        if n > limit and not stated:
            out.append(f"{path.name}: {n} lines")
    return out


def test_no_module_is_over_400_lines_without_a_reason_at_its_top():
    assert too_long(package_modules()) == []


def test_the_400_line_rule_catches_a_long_module_and_accepts_a_stated_reason(tmp_path):
    body = "\n".join(f"x{i} = {i}" for i in range(400)) + "\n"
    silent, empty, stated = tmp_path / "silent.py", tmp_path / "empty.py", tmp_path / "stated.py"
    silent.write_text('"""A module."""\n' + body)
    empty.write_text(f'"""A module.\n\n{REASON}\n"""\n' + body)
    stated.write_text(f'"""A module.\n\n{REASON} one table that reads as one.\n"""\n' + body)
    assert too_long([silent, empty, stated]) == ["silent.py: 401 lines", "empty.py: 404 lines"]


# -- the layer contract covers the package -------------------------------------------------------

def contract_layers() -> list[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    return config["importlinter:contract:layers"]["layers"].split()


def setup_layers() -> tuple[str, ...]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    (value,) = [n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "LAYERS"]
    return ast.literal_eval(value)


def test_the_layer_contract_covers_every_module_of_the_package():
    # The contract's layers are the installed subpackages (setup.py), bottom layer last, and the
    # entry module python -m cfer runs on top; the lint copies exactly those folders.
    assert setup_layers() == lint_imports.LAYERS
    assert contract_layers() == ["cfer.__main__", *(f"cfer.{layer}" for layer in reversed(setup_layers()))]
    layers = contract_layers()
    outside = [dotted(p) for p in package_modules()
               if not any(dotted(p) == layer or dotted(p).startswith(layer + ".") for layer in layers)]
    assert outside == ["cfer"]  # the entry package itself: its version, nothing else
    assert sorted(p.name for p in (ROOT / "cfer").iterdir() if p.suffix == ".py") == ["__init__.py",
                                                                                       "__main__.py"]
    # No other folder at the top is a package that setup.py would leave out of the contract.
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert packages - {"tests"} == {"cfer", *setup_layers()}


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
