"""The ``data`` config section of the fast data path, without importing torch.

Kept apart from :mod:`cfer.plugins.fast_data` so that loading (and rejecting) an
experiment config does not pay for importing torch and Avalanche.
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
