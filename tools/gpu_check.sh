#!/usr/bin/env bash
# GPU check of the speed path (issue 7), for one call on a lent H100/H200.
#
# Before (on the session's own machine, needs PyPI): bash /work/shared/gpu/wheels.sh
#   (downloads avalanche-lib and its imports into .whl/, git-ignored).
# Then one device call, from the repository root, with carry [".whl"] and timeout_s 590:
#   bash tools/gpu_check.sh
# It installs the wheels, prints the machine and card, runs `cfer bench --device cuda` over
# the issue's target settings, then a CUDA smoke test of the fast path and of every precision
# option, then (time permitting) the torch.compile settings. Results: stdout and $OUT/*.json.
# Each step gets a time limit within BUDGET seconds (default 570, under the device tool's
# 600 s per call), so a slow step still leaves the others' output.
set -uo pipefail
cd "$(dirname "$0")/.."
export OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
deadline=$((SECONDS + ${BUDGET:-570}))
limit() {  # limit MAX: seconds for the next step, at most MAX, leaving 15 s to print results
  local left=$((deadline - SECONDS - 15))
  left=$(( left < $1 ? left : $1 ))
  echo $(( left < 1 ? 1 : left ))
}

if ! ls .whl/*.whl >/dev/null 2>&1; then
  echo "gpu_check: no wheels in .whl/; run 'bash /work/shared/gpu/wheels.sh' first and carry .whl" >&2
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

echo "== cfer bench --device cuda (targets: ResNet-50 224 px, batches 32 and 256, fp32 and bf16 channels-last)"
timeout "$(limit 330)" python3 -m experiments.cli bench --device cuda --model resnet50_paper \
  --batch-size 32 --batch-size 256 --precision fp32 --precision bf16 --json "$OUT/bench.json"

echo "== smoke: fast path and precision options on CUDA"
timeout "$(limit 150)" python3 - <<'EOF' 2>&1 | tee "$OUT/smoke.txt"
import time, torch
from avalanche.benchmarks.utils.data_loader import TaskBalancedDataLoader
from cfer.benchmarks.transforms import train_transform
from cfer.plugins.speed import fast_data, precision
from cfer.strategies.builder import build
from cfer.strategies.config import StrategyConfig
from cfer.strategies.models import ModelConfig, build_model
from tests.test_speed import TINY, tiny_bm

bm = tiny_bm(size=64)
# 1. the fast loader gives stock's items on the GPU (no augmentation: same images)
d = bm.train_stream[0].dataset.train()
torch.manual_seed(0); stock = list(TaskBalancedDataLoader(d, oversample_small_groups=True, batch_size=5, shuffle=True))
torch.manual_seed(0)
plugin = fast_data.FastDataPlugin()
fast = list(plugin.wrap(TaskBalancedDataLoader(d, oversample_small_groups=True, batch_size=5, shuffle=True), device="cuda"))
assert plugin.store.placement == "device" and fast[0][0].is_cuda
for a, b in zip(stock, fast):
    assert torch.equal(a[1], b[1].cpu()) and torch.equal(a[2], b[2].cpu())
    assert torch.allclose(a[0], b[0].cpu(), atol=1e-6), float((a[0] - b[0].cpu()).abs().max())
print("fast loader on cuda: same images and labels as stock, batches:", len(fast))
# 2. every precision option trains the paper's method (distillation + PSMR) on the GPU
for prec, comp in (("fp32", "false"), ("bf16", "false"), ("fp16", "false"), ("bf16", "reduce-overhead")):
    torch.manual_seed(0)
    bm = tiny_bm(size=64, train_transform=train_transform())
    model = build_model(ModelConfig(name="small_cnn"), n_classes=bm.info.n_basic)
    s = build("kd_psmr", model=model, benchmark=bm, config=StrategyConfig(**TINY), device="cuda")
    precision.enable(s, precision.PrecisionConfig(precision=prec, channels_last=True, compile=comp))
    fast_data.enable(s)
    t = time.time()
    for i in range(3):
        s.train(bm.train_stream[i], eval_streams=[])
        r = s.eval(bm.test_stream[: i + 1])
    acc = r["Top1_Acc_Stream/eval_phase/test_stream"]
    print(f"kd_psmr {prec} channels-last compile={comp}: {time.time() - t:.1f} s, test accuracy {acc:.3f}")
print("smoke OK")
EOF

echo "== torch.compile settings (bf16 channels-last): reduce-overhead at batch 32, default at batch 256"
if [ "$(limit 330)" -lt 90 ]; then echo "skipped: $(limit 330) s left"; else
timeout "$(limit 330)" python3 - <<'EOF'
import json, os
from dataclasses import replace
from cfer.experiments.bench import default_config, format_table, run_bench
out = []
for batch, mode in ((32, "reduce-overhead"), (256, "default")):
    cfg = replace(default_config("cuda"), batch_sizes=(batch,), precisions=("bf16",), compiles=(mode,))
    out += run_bench(cfg)
    print(format_table(out), flush=True)
    with open(os.path.join(os.environ["OUT"], "bench_compile.json"), "w") as f:
        json.dump(out, f, indent=2)
EOF
fi

echo "== results"
for f in "$OUT"/*.json; do echo "-- $f"; cat "$f"; done
