"""tools/gpu_check.sh --dry-run on the CPU: the venv install of the checkout (not PYTHONPATH:
the repository root is not the package), the collection of the tests marked cuda, the bench's
command line and the paper protocol's config, every step but the CUDA ones, so that the script
runs on the first try on a GPU machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_dry_run_installs_the_checkout_and_prepares_every_step(tmp_path):
    # the packages this interpreter sees, for the venv the script makes (--system-site-packages
    # covers the base interpreter's only)
    site = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]
    env = {**os.environ, "OUT": str(tmp_path), "EXTRA_SITE": ":".join(site)}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(["bash", str(ROOT / "tools" / "gpu_check.sh"), "--dry-run"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    # cfer came from the venv, not from the checkout
    assert f"cfer from {tmp_path}/venv/" in out, out
    assert "5 tests collected" in out and "test_cuda.py::test_compile_with_inductor_on_cuda" in out, out
    assert "dry run: " in out and "bench --device cuda --path run" in out, out
    assert "dry run: paper_cfee loads" in out, out
    assert not (ROOT / "build").exists()
