""""Adding a strategy is one new file" (docs/extending.md), kept as a promise: a copy of the
package gets one new zoo file, nothing else, and the suite's registry tests pass on it
unchanged, in a subprocess that imports the copy (no monkeypatching)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import lint_imports  # noqa: E402

NEW_STRATEGY = '''
"""Naive with a label-smoothed cross-entropy (Szegedy et al. 2016): a strategy of one file."""

from dataclasses import dataclass

from cfer.strategies.params import StrategyParams
from cfer.strategies.registry import register_strategy


@dataclass(frozen=True)
class SmoothNaiveParams(StrategyParams):
    smoothing: float = 0.1  # Szegedy et al. 2016: epsilon = 0.1

    def __post_init__(self):
        self.check("smoothing", 0 <= self.smoothing < 1, "in [0, 1)")


@register_strategy("smooth_naive", params=SmoothNaiveParams, description="naive, label-smoothed loss")
def smooth_naive(ctx):
    from avalanche.training import Naive
    from torch.nn import CrossEntropyLoss

    return Naive(**ctx.template_kwargs(criterion=CrossEntropyLoss(label_smoothing=ctx.params.smoothing)))
'''

#: The suite's tests that enumerate the registry (parametrized by strategy, or listing it).
REGISTRY_TESTS = ("tests/test_strategies.py", "tests/test_baselines_behave.py", "tests/test_speed.py")


def copy_package(dest: Path) -> Path:
    """The package as installed (``dest/cfer/<layer>/...``, data files included) and the tests."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "cfer", dest / "cfer", ignore=ignore)
    for layer in lint_imports.LAYERS:
        shutil.copytree(ROOT / layer, dest / "cfer" / layer, ignore=ignore)
    shutil.copytree(ROOT / "tests", dest / "tests", ignore=ignore)
    return dest


def test_a_new_strategy_file_passes_the_registry_tests_unchanged(tmp_path):
    tree = copy_package(tmp_path / "copy")
    (tree / "cfer" / "strategies" / "zoo" / "smooth_naive.py").write_text(textwrap.dedent(NEW_STRATEGY))
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", *REGISTRY_TESTS,
           "-k", "smooth_naive or registry_lists or shipped_configs"]
    out = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    ran = re.findall(r"::(\w+)\[smooth_naive\] PASSED", out.stdout)
    assert {"test_strategy_trains_and_evaluates", "test_every_strategy_declares_typed_frozen_params",
            "test_a_shared_basic_model_gives_the_numbers_of_a_self_trained_run",
            "test_no_strategy_is_naive_in_disguise",
            "test_every_registered_strategy_trains_with_fp16_channels_last_and_the_fast_path"} <= set(ran), \
        out.stdout[-4000:]
    assert "test_registry_lists_the_strategies_by_their_declared_order PASSED" in out.stdout
