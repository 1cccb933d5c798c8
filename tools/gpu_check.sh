#!/usr/bin/env bash
# GPU check (issue 25): install this checkout into a venv, run the tests that need CUDA, then
# `cfer bench --device cuda --path run` and one order of the paper protocol; all within BUDGET
# seconds (default 480: 8 minutes), each step with its own time limit, results under $OUT.
#
# Before (on a machine with PyPI access): download the wheels the GPU machine lacks into .whl/
# (git-ignored) with the workspace's gpu/wheels.sh. Then, from the repository root, on the GPU
# machine, with carry [".whl"]:
#   bash tools/gpu_check.sh            # every step
#   bash tools/gpu_check.sh --dry-run  # every step but the CUDA ones (tests/test_gpu_check.py runs
#                                      # it on the CPU, so that the script cannot rot)
# The repository root is not the package: `cfer.experiments` exists only in an installed copy
# (setup.py maps the top-level folders into cfer.*), so the checkout is installed, never put on
# PYTHONPATH. The venv sees the machine's own torch (--system-site-packages; EXTRA_SITE: more
# package folders, colon-separated, e.g. where a CPU machine keeps its dependencies).
set -uo pipefail
cd "$(dirname "$0")/.."
dry=0
[ "${1:-}" = "--dry-run" ] && { dry=1; shift; }
[ $# -eq 0 ] || { echo "usage: bash tools/gpu_check.sh [--dry-run]" >&2; exit 2; }
export OUT=${OUT:-/tmp/gpu_check}
VENV=${VENV:-$OUT/venv}
mkdir -p "$OUT"
deadline=$((SECONDS + ${BUDGET:-480}))
limit() {  # limit MAX: seconds for the next step, at most MAX, leaving 10 s to print results
  local left=$((deadline - SECONDS - 10))
  left=$(( left < $1 ? left : $1 ))
  echo $(( left < 1 ? 1 : left ))
}
step() { echo "== $*"; }

step "install the checkout into $VENV"
python3 -m venv --system-site-packages "$VENV" || { echo "gpu_check: venv failed" >&2; exit 2; }
py="$VENV/bin/python"
if [ -n "${EXTRA_SITE:-}" ]; then  # more folders of packages (the dry run: the CPU machine's deps)
  echo "$EXTRA_SITE" | tr ':' '\n' > "$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/gpu_check_extra.pth"
fi
if ls .whl/*.whl >/dev/null 2>&1; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir .whl/*.whl \
    || { echo "gpu_check: wheel install failed" >&2; exit 2; }
elif [ $dry -eq 0 ]; then
  echo "gpu_check: no wheels in .whl/; download them first (see the header) and carry .whl" >&2
  exit 2
fi
# Installed as setup.py lays it out (cfer/ and the five top-level folders as cfer.<layer>, with
# their YAML files), without building a wheel: the GPU machine's venv may have no setuptools.
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$py" - "$site" <<'PY' || { echo "gpu_check: installing the checkout failed" >&2; exit 2; }
import shutil, sys
from pathlib import Path

dest = Path(sys.argv[1]) / "cfer"
shutil.rmtree(dest, ignore_errors=True)
skip = shutil.ignore_patterns("__pycache__", "*.pyc")
shutil.copytree("cfer", dest, ignore=skip)
for layer in ("core", "benchmarks", "plugins", "strategies", "experiments"):
    shutil.copytree(layer, dest / layer, ignore=skip)
PY
printf '#!%s\nfrom cfer.experiments.cli import main\nraise SystemExit(main())\n' "$py" > "$VENV/bin/cfer"
chmod +x "$VENV/bin/cfer"
# The tests, and every step, run from a folder of their own: in the checkout, its cfer/ (the
# package's entry only) would shadow the installed package.
tests="$OUT/tests_run"; rm -rf "$tests"; mkdir -p "$tests"; cp -r tests "$tests/"
cd "$OUT"  # likewise for every step from here on
"$py" - <<'PY' || { echo "gpu_check: the installed cfer does not import" >&2; exit 2; }
import cfer.experiments.cli, torch
print("cfer from", cfer.experiments.cli.__file__)
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
PY
export PYTHONWARNINGS=ignore

step "machine"
if [ $dry -eq 0 ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
fi
lscpu | grep -m1 "Model name"; nproc

step "tests that need CUDA (pytest -m cuda)"
if [ $dry -eq 1 ]; then
  (cd "$tests" && "$py" -m pytest -q -m cuda --collect-only -p no:cacheprovider tests/test_cuda.py) || exit 1
else
  (cd "$tests" && timeout "$(limit 200)" "$py" -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda.py \
    --junitxml "$OUT/cuda_tests.xml") || echo "gpu_check: some CUDA tests failed (above)"
fi

step "cfer bench --device cuda --path run"
bench=("$VENV/bin/cfer" bench --device cuda --path run --repeats 3 --json "$OUT/bench_run.json")
if [ $dry -eq 1 ]; then
  "$VENV/bin/cfer" bench --help >/dev/null || exit 1
  echo "dry run: ${bench[*]}"
else
  timeout "$(limit 120)" "${bench[@]}" || echo "gpu_check: bench did not finish"
fi

step "one kd_psmr order of the paper protocol (synthetic CFEE-sized faces, 224 px, resnet50_paper)"
protocol() {
  "$py" - "$1" <<'PY'
import json, os, sys
from cfer.experiments.config.load import load_config

out, dry, e = os.environ["OUT"], sys.argv[1] == "1", os.environ
cfg = load_config("paper_cfee", [
    "dataset.kind=synthetic", f"dataset.root={out}/synth", "dataset.subjects=230", "dataset.size=96",
    "model.name=resnet50_paper", "model.weights=none",
    f"training.basic_epochs={e.get('BASIC_EPOCHS', 3)}", f"training.finetune_epochs={e.get('FINETUNE_EPOCHS', 2)}",
    f"training.epochs={e.get('EPOCHS', 4)}", "runner.progress=false", "runner.device=cuda", "output.plots=false"])
if dry:
    print("dry run: paper_cfee loads,", cfg.model.name, cfg.training.precision, cfg.training.channels_last)
    sys.exit(0)
from cfer.experiments.bench.protocol import protocol_order

n_baselines = len(load_config("baselines_cfee").strategies.methods)
summary = protocol_order(cfg, run_dir=f"{out}/protocol_run", jsonl=f"{out}/steps.jsonl",
                         orders=10, methods_in_table=n_baselines)
print(json.dumps(summary, indent=2))
PY
}
if [ $dry -eq 1 ]; then
  protocol 1 || exit 1
else
  timeout "$(limit 300)" bash -c "$(declare -f protocol); protocol 0" || echo "gpu_check: protocol did not finish"
fi

step "results"
for f in "$OUT"/*.json "$OUT"/*.jsonl; do [ -f "$f" ] && { echo "-- $f"; cat "$f"; }; done
exit 0
