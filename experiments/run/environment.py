"""What a results.json records about where and how it was computed, and its schema version.

- :data:`SCHEMA_VERSION` and :func:`check_schema`: the layout version of results.json
  (files without ``schema_version`` are version 1, the layout before it was recorded,
  and read as such); a newer major version than this code knows is refused in one line.
- :func:`environment`: the ``environment`` block (cfer version and git commit, Python and
  package versions, device, CUDA/cuDNN, numerics, threads, CPU), detected when a run
  starts. torch is imported inside the function only, so reading results stays torch-free.
- :func:`config_digest` / :func:`run_config_digests`: a short hash of the settings that
  determine a run's numbers, per method.
- :func:`differences`: the environment keys in which two results files differ (for
  ``cfer compare``'s warning).
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from cfer.core.digest import digest  # env.digest, for its callers: the one digest of cfer

#: The layout version of results.json written by this code. 2: ``schema_version``,
#: ``environment`` and ``config_digests`` added; version 1 files (no ``schema_version``)
#: have the same ``config``/``dataset``/``methods`` layout and stay readable.
#: 3: per-step ``new_class_f1`` in each run record; the summary's ``new_class_accuracy`` is
#: ``new_class_recall`` and ``forgetting`` counts learnt experiences only (the unrestricted
#: value is ``forgetting_all``); version 1 and 2 files are read with their summaries
#: recomputed from the runs under the new names (CHANGELOG.md).
SCHEMA_VERSION = 3
#: The versions this code reads.
READABLE_SCHEMAS = (1, 2, 3)
#: Python distributions whose versions the environment block records.
PACKAGES = ("torch", "torchvision", "avalanche-lib", "numpy", "scipy")
#: Config sections that do not change a run's numbers (or are replaced per method; ``tune``
#: is read by ``cfer tune`` only).
# extensions: their paths say nothing of their code; --resume compares their SHA-256 instead
# (cfer.experiments.run.extensions), and a method's own plugins' settings are in its params.
_NOT_IN_DIGEST = ("name", "output", "runner", "strategies", "training", "extensions", "tune")


def check_schema(results: Mapping, *, where: str) -> int:
    """The schema version of ``results`` (1 when absent); a one-line ValueError naming
    ``where`` when this code cannot read it."""
    version = results.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version not in READABLE_SCHEMAS:
        raise ValueError(f"{where}: schema_version {version!r} is not one this cfer reads "
                         f"({', '.join(map(str, READABLE_SCHEMAS))}); upgrade cfer or re-run")
    return version


def config_digest(config: Mapping, *, method: str, training: Mapping, params: Mapping,
                  definition: Mapping | None = None) -> str:
    """The digest of what determines the numbers of ``method``'s runs: every config section
    but the cosmetic ones (name, output, runner), with the shared ``training``
    section replaced by the method's own (overrides applied) and its hyperparameters, and,
    for a method the config defines itself (``strategies.define``), its definition (the
    config's other definitions do not count). With a run's order, fold and seed it
    identifies the run."""
    shared = {k: v for k, v in config.items() if k not in _NOT_IN_DIGEST}
    if isinstance(shared.get("strategies"), Mapping):
        shared["strategies"] = {k: v for k, v in shared["strategies"].items() if k != "define"}
    own = {"definition": dict(definition)} if definition is not None else {}
    return digest({**shared, "method": method, "training": dict(training), "params": dict(params), **own})


def run_config_digests(cfg) -> dict[str, str]:
    """``{method: config_digest}`` of an ExperimentConfig's methods."""
    import dataclasses

    from cfer.core.typed import record, to_dict

    config = to_dict(cfg)
    return {m: config_digest(config, method=m, training=dataclasses.asdict(cfg.training_for(m)),
                             params=record(cfg.params_for(m)), definition=cfg.strategies.define.get(m))
            for m in cfg.strategies.methods}


# --------------------------------------------------------------------------- detection

def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_state(root: Path) -> dict:
    """``{"commit", "dirty"}`` of the checkout at ``root`` (None each when it is not a git
    checkout, e.g. an installed wheel, or git is missing). Untracked files do not count."""
    if not (root / ".git").exists():
        return {"commit": None, "dirty": None}
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(status.strip())}


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what platform reports)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _device_block(device) -> dict:
    import torch

    dev = torch.device(device if device is not None else "cpu")
    block = {"type": dev.type, "name": cpu_model(),
             "cpu_capability": torch.backends.cpu.get_cpu_capability(),
             "torch_cuda": torch.version.cuda, "cudnn": None}  # the CUDA torch was built with
    if dev.type == "cuda":
        block.update(name=torch.cuda.get_device_name(dev), cudnn=torch.backends.cudnn.version(),
                     capability=".".join(map(str, torch.cuda.get_device_capability(dev))),
                     tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
                     tf32_cudnn=torch.backends.cudnn.allow_tf32)
    return block


def environment(*, device=None, numerics: Mapping | None = None) -> dict:
    """The ``environment`` block of results.json, detected now (imports torch).

    ``device``: the torch device the runs use; ``numerics``: the precision and compile
    settings of the run (``training.precision``, ``channels_last``, ``compile``).
    """
    import torch

    root = Path(__file__).resolve().parents[2]  # the checkout, when run from one
    from cfer import __version__

    return {
        "cfer": {"version": __version__, **git_state(root)},
        "python": platform.python_version(),
        "platform": platform.platform(),
        # torch's own version string keeps the build's local tag (+cpu, +cu130): it matters.
        "packages": {**{p: _version(p) for p in PACKAGES}, "torch": torch.__version__},
        "device": _device_block(device),
        "numerics": {**dict(numerics or {}),
                     "float32_matmul_precision": torch.get_float32_matmul_precision()},
        "threads": torch.get_num_threads(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
    }


# --------------------------------------------------------------------------- comparing

#: The environment entries that can change numbers, as dotted keys (``cfer compare`` warns
#: when they differ between results files put side by side).
COMPARED_KEYS = ("cfer.version", "cfer.commit", "python", "packages.torch", "packages.torchvision",
                 "packages.avalanche-lib", "packages.numpy", "device.type", "device.name",
                 "device.cpu_capability", "device.torch_cuda", "device.cudnn", "numerics", "threads",
                 "cpu_model")


def value(block: Mapping | None, dotted: str):
    """The entry ``dotted`` (e.g. ``packages.torch``) of an environment block; None if absent."""
    for part in dotted.split("."):
        block = block.get(part) if isinstance(block, Mapping) else None
    return block


def differences(a: Mapping | None, b: Mapping | None) -> list[str]:
    """The :data:`COMPARED_KEYS` on which environment blocks ``a`` and ``b`` differ; ``["environment"]``
    when exactly one of them has none (an older results file)."""
    if not a or not b:
        return [] if not a and not b else ["environment"]
    return [k for k in COMPARED_KEYS if value(a, k) != value(b, k)]
