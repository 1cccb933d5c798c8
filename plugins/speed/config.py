"""The ``data`` config section: where a benchmark's decoded images live while training.

Read by the fast data path beside it (:mod:`cfer.plugins.speed.fast_data`,
:mod:`cfer.plugins.speed.image_store`): on the GPU, in pinned host memory, or as the
data set left them. Imports nothing but the standard library, and the package roots
above it (:mod:`cfer.plugins`, :mod:`cfer.plugins.speed`) import their modules only
when a name is first used, so :mod:`cfer.experiments.config` reads this section before
torch is loaded: a config error answers in 0.1 s instead of after the 6 s of importing
torch and Avalanche.
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
