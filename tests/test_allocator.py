"""runner.keep_freed_memory (cfer/core/allocator.py): freed training buffers stay in the process,
so a step does not fault its pages in again, and no number changes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

# In a fresh interpreter (glibc's thresholds are per process), set up as a backend sets up the
# process its runs train in (runner.keep_freed_memory on or off): minor page faults of 40 steps
# that each allocate and free a buffer of 2 MiB and a little more each step (a training step's
# activations change size with the batch: the last one of an epoch, evaluation's), and the
# weights after a few SGD steps. Off, glibc maps every block larger than any it has freed
# before and unmaps it when freed (its sliding mmap threshold), so each step faults its pages
# in again; the pattern makes that deterministic (a pattern that relies on trimming the heap's
# top depends on where other blocks happen to lie).
PROBE = r"""
import json, resource, sys
import torch
from cfer.experiments.backends import prepare_process
from cfer.experiments.config.sections import RunnerConfig
prepare_process(RunnerConfig(keep_freed_memory=sys.argv[1] == "on"))  # as every backend does
assert torch.get_num_threads() == 1
grown = [0]
def step():  # an activation buffer a little larger than the last step's
    grown[0] += 1
    x = torch.empty((2 * 1024 * 1024 + grown[0] * 64 * 1024) // 4).fill_(1.0)
    return float(x[0])
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    step()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
torch.manual_seed(0)
nn = torch.nn
model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(4))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(3):
    x, y = torch.randn(16, 3, 16, 16), torch.randint(0, 4, (16,))
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
print(json.dumps({"faults": faults, "weights": [p.detach().flatten().tolist() for p in model.parameters()]}))
"""


def probe(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_freed_buffers_are_reused_and_numbers_unchanged():
    off, on = probe("off"), probe("on")
    # Off: 2 to 4.5 MiB faulted in each step (34 280 pages here); on: only the growth (1 168).
    assert off["faults"] > 40 * 512, off["faults"]
    assert on["faults"] < off["faults"] / 10, (on["faults"], off["faults"])
    assert on["weights"] == off["weights"]  # where memory comes from changes no value

