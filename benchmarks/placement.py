"""The ``data`` config section: where a benchmark's decoded images live while training.

Why here, in :mod:`cfer.benchmarks`, and not beside the fast data path that reads
it (:mod:`cfer.plugins.speed`): where the decoded uint8 images are held (on the
GPU, in pinned host memory, or as the data set left them) is a property of the
data, and this dataclass must be importable without torch.
:mod:`cfer.experiments.config` imports it while it parses a config, before torch
is loaded, so that a config error answers in 0.1 s instead of after the 6 s of
importing torch and Avalanche. Every module under :mod:`cfer.plugins` pays that
import (the package root imports its plugins), while :mod:`cfer.benchmarks`
stays free of torch at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

ON_DEVICE = ("auto", "true", "false")


@dataclass(frozen=True)
class FastDataConfig:
    """The ``data`` section: where the images live and whether the fast path is used."""

    # auto: fast path, images on the GPU when they fit (else in pinned host memory); true: fast
    # path, images on the GPU (an error when they do not fit); false: Avalanche's stock loading.
    # Either way, a loader the fast path cannot reproduce stays stock (with a warning).
    on_device: str | bool = "auto"  # booleans accepted: YAML reads true/false as such
    max_memory_fraction: float = 0.5  # auto: images may take this share of the GPU's free memory

    def __post_init__(self) -> None:
        value = self.on_device
        if isinstance(value, bool):  # YAML reads `true`/`false` as booleans
            value = "true" if value else "false"
        if value not in ON_DEVICE:
            raise ValueError(f"data.on_device: {self.on_device!r} is not one of auto, true, false")
        object.__setattr__(self, "on_device", value)
        if not 0 < self.max_memory_fraction <= 1:
            raise ValueError(f"data.max_memory_fraction: must be in (0, 1], got {self.max_memory_fraction}")
