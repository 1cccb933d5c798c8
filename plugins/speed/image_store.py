"""Where the benchmark's decoded images live while batches are gathered from them.

The placement follows the ``data`` config section
(:class:`cfer.plugins.speed.config.FastDataConfig`): on the GPU when the images
fit, else in pinned host memory; on a CPU run, as they are.
"""

from __future__ import annotations

import logging

import torch

from cfer.plugins.speed.config import FastDataConfig

log = logging.getLogger(__name__)


def canonical_device(device) -> torch.device:
    """``cuda`` -> ``cuda:<current>``, so that devices compare equal to tensors' devices."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


class ImageStore:
    """The benchmark's uint8 images, once, where batches are gathered from.

    Placement: ``"device"`` (a copy on the GPU), ``"pinned"`` (a copy in
    page-locked host memory; each batch is gathered on the host and copied
    asynchronously), or ``"host"`` (the images as they are: CPU training).
    """

    def __init__(self, images: torch.Tensor, *, device: torch.device, config: FastDataConfig):
        self.source = images
        self.device = canonical_device(device)
        if self.device.type == "cpu":
            self.placement, self.images = "host", images
            return
        need = images.numel() * images.element_size()
        free = torch.cuda.mem_get_info(self.device)[0] if self.device.type == "cuda" else need
        if config.on_device == "true" or need <= config.max_memory_fraction * free:
            if need > free:
                raise ValueError(f"data.on_device=true: the images need {need / 2**30:.2f} GiB but "
                                 f"{self.device} has {free / 2**30:.2f} GiB free; use data.on_device=auto")
            self.placement, self.images = "device", images.to(self.device)
        else:
            log.info("images (%.2f GiB) kept in pinned host memory: more than %.0f%% of %s's free memory",
                     need / 2**30, 100 * config.max_memory_fraction, self.device)
            self.placement, self.images = "pinned", images.pin_memory()

    @property
    def index_device(self) -> torch.device:
        return self.images.device

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """uint8 images at ``rows`` (on :attr:`index_device`), on the training device."""
        batch = self.images.index_select(0, rows)
        if self.placement == "pinned":
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        return batch
