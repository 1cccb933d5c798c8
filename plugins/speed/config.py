"""The speed path's settings, torch-free: the ``data`` config section and the precision keys
of the ``training`` section.

- :class:`FastDataConfig` (``data:``): where a benchmark's decoded images live while training,
  read by the fast data path (:mod:`cfer.plugins.speed.fast_data`,
  :mod:`cfer.plugins.speed.image_store`): on the GPU, in pinned host memory, or as the data
  set left them;
- :class:`PrecisionConfig` (``training.precision``, ``channels_last``, ``compile``), read by
  :mod:`cfer.plugins.speed.precision`; :class:`cfer.strategies.training.TrainingConfig` holds
  these keys and has them checked here.

Imports no torch, and the package roots above it (:mod:`cfer.plugins`,
:mod:`cfer.plugins.speed`) import their modules only when a name is first used, so
:mod:`cfer.experiments.config` reads these before torch is loaded: a config error answers
in 0.1 s instead of after the 6 s of importing torch and Avalanche.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

from cfer.core.typed import Checked

ON_DEVICE = ("auto", "true", "false")
Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS = typing.get_args(Precision)
COMPILE_MODES = ("false", "default", "reduce-overhead")


@dataclass(frozen=True)
class PrecisionConfig(Checked):
    """Numeric precision and layout of training (the ``training`` section's keys)."""

    section = "training"

    # auto: bf16 autocast on a CUDA device that has it (and cudnn.benchmark), fp32 elsewhere |
    # fp32 | bf16 | fp16 (with loss scaling); paper: fp32 (Keras default)
    precision: Precision = "auto"
    # NHWC activations; auto: on for a model with convolutions, on the CPU too (small_cnn at 32 px,
    # 1 thread: 0.70x the CPU time of a training step, 0.57x of an evaluation; docs/speed.md)
    channels_last: bool | Literal["auto"] = "auto"
    compile: str | bool = "false"  # false | default | reduce-overhead (CUDA graphs: small batches)

    def __post_init__(self) -> None:
        self.check_choice("precision", PRECISIONS)
        if isinstance(self.compile, bool):  # YAML reads `false`/`true` as booleans
            object.__setattr__(self, "compile", "default" if self.compile else "false")
        self.check_choice("compile", COMPILE_MODES)
        self.check_choice("channels_last", (True, False, "auto"))

    def resolved(self, device_type: str, *, convolutional: bool, bf16: bool = False) -> PrecisionConfig:
        """This config with ``auto`` resolved for a model on ``device_type`` (``convolutional``:
        it has convolutions; ``bf16``: the CUDA device supports bfloat16)."""
        import dataclasses

        precision = self.precision
        if precision == "auto":
            precision = "bf16" if device_type == "cuda" and bf16 else "fp32"
        channels_last = self.channels_last
        if channels_last == "auto":
            channels_last = convolutional and device_type in ("cpu", "cuda")
        return dataclasses.replace(self, precision=precision, channels_last=bool(channels_last))

    @property
    def dtype(self):
        """The autocast dtype, ``None`` for fp32."""
        import torch

        return {"fp32": None, "auto": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]

    @property
    def is_default(self) -> bool:
        """fp32, NCHW, not compiled (``auto`` resolved: :meth:`resolved`)."""
        return self.precision == "fp32" and self.channels_last is False and self.compile == "false"


@dataclass(frozen=True)
class FastDataConfig(Checked):
    """The ``data`` section: where the images live and whether the fast path is used."""

    section = "data"

    # auto: fast path, images on the GPU when they fit (else in pinned host memory); true: fast
    # path, images on the GPU (an error when they do not fit); false: Avalanche's stock loading.
    # Either way, a loader the fast path cannot reproduce stays stock (with a warning).
    on_device: str | bool = "auto"  # booleans accepted: YAML reads true/false as such
    max_memory_fraction: float = 0.5  # auto: images may take this share of the GPU's free memory

    def __post_init__(self) -> None:
        if isinstance(self.on_device, bool):  # YAML reads `true`/`false` as booleans
            object.__setattr__(self, "on_device", "true" if self.on_device else "false")
        self.check_choice("on_device", ON_DEVICE)
        self.check("max_memory_fraction", 0 < self.max_memory_fraction <= 1, "in (0, 1]")
