#!/usr/bin/env bash
# GPU check of the speed path (issue 14): two calls of at most 5 minutes each, back to back on
# one warm H100/H200, each writing its JSON as it goes (a call cut short keeps what it measured).
#
# Before (on a machine with PyPI access): download the wheels the GPU machine lacks into .whl/
# beside the project (git-ignored), with the shared wheels.sh of this workspace's gpu tools.
# Then, from the repository root, with carry [".whl"] and timeout_s 300 each:
#   bash tools/gpu_check.sh bench     # A: cfer bench --path run and --path train, batches 32 and 256,
#                                     #    fp32 / bf16 / bf16 + torch.compile
#   bash tools/gpu_check.sh protocol  # B: one kd_psmr order of the paper protocol (CFEE-sized synthetic
#                                     #    faces, 224 px, resnet50_paper, weights none); per-step seconds
#                                     #    streamed to steps.jsonl; projections for 10 orders and the
#                                     #    baselines table at jobs_per_device 1, 2 and 4
# Results under $OUT (default /tmp/gpu_check). BUDGET (default 285 s) bounds each call; each step
# gets a time limit within it. B's epoch budgets: BASIC_EPOCHS, FINETUNE_EPOCHS, EPOCHS
# (defaults 3, 2, 4: the paper's 1000 with patience 100 do not fit a call; the per-epoch
# seconds measured are projected to the paper's epochs in docs/benchmarks.md).
set -uo pipefail
cd "$(dirname "$0")/.."
what=${1:-}
case "$what" in bench|protocol) ;; *) echo "usage: bash tools/gpu_check.sh bench|protocol" >&2; exit 2;; esac
export OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
deadline=$((SECONDS + ${BUDGET:-285}))
limit() {  # limit MAX: seconds for the next step, at most MAX, leaving 10 s to print results
  local left=$((deadline - SECONDS - 10))
  left=$(( left < $1 ? left : $1 ))
  echo $(( left < 1 ? 1 : left ))
}

if ! ls .whl/*.whl >/dev/null 2>&1; then
  echo "gpu_check: no wheels in .whl/; download them first (see the header) and carry .whl" >&2
  exit 2
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "gpu_check: wheel install failed" >&2; exit 2; }
export PYTHONPATH=/tmp/site:$PWD
export PYTHONWARNINGS=ignore

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
lscpu | grep -m1 "Model name"; nproc
python3 -c "import torch, torchvision, avalanche; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'torchvision', torchvision.__version__, 'avalanche', avalanche.__version__)"

bench() {  # bench PATH NAME SECONDS ARGS...: one cfer bench call, its JSON written per setting
  local path=$1 name=$2 max=$3; shift 3
  echo "== cfer bench --path $path $*"
  timeout "$(limit "$max")" python3 -m experiments.cli bench --device cuda --model resnet50_paper \
    --path "$path" --batch-size 32 --batch-size 256 "$@" --json "$OUT/bench_${path}_${name}.json"
}

if [ "$what" = bench ]; then
  # The run path first: it is the one `cfer run` takes. 3 repeats each (min/median/max).
  bench run eager 80 --precision fp32 --precision bf16 --repeats 3
  bench run compile 70 --precision bf16 --compile default --repeats 3
  bench train eager 70 --precision fp32 --precision bf16 --repeats 3
  bench train compile 60 --precision bf16 --compile default --repeats 3
else
  echo "== one kd_psmr order of the paper protocol (synthetic CFEE-sized faces, 224 px, resnet50_paper)"
  timeout "$(limit 275)" python3 - <<'EOF'
import json, os
from cfer.experiments.bench.protocol import protocol_order
from cfer.experiments.config.load import load_config

out = os.environ["OUT"]
e = os.environ
cfg = load_config("paper_cfee", [
    "dataset.kind=synthetic", f"dataset.root={out}/synth", "dataset.subjects=230", "dataset.size=96",
    "model.name=resnet50_paper", "model.weights=none",
    f"training.basic_epochs={e.get('BASIC_EPOCHS', 3)}", f"training.finetune_epochs={e.get('FINETUNE_EPOCHS', 2)}",
    f"training.epochs={e.get('EPOCHS', 4)}", "training.precision=bf16", "training.channels_last=true",
    "runner.progress=false", "runner.device=cuda", "output.plots=false"])
n_baselines = len(load_config("baselines_cfee").strategies.methods)
summary = protocol_order(cfg, run_dir=f"{out}/protocol_run", jsonl=f"{out}/steps.jsonl",
                         orders=10, methods_in_table=n_baselines)
print(json.dumps(summary, indent=2))
EOF
fi

echo "== results"
for f in "$OUT"/*.json "$OUT"/*.jsonl; do [ -f "$f" ] && { echo "-- $f"; cat "$f"; }; done
