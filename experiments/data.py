"""Read the configured data set and decode its images once per process."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from cfer.benchmarks.dataset import FaceDataset
from cfer.experiments.config.sections import DatasetConfig

log = logging.getLogger(__name__)


def read_dataset(cfg: DatasetConfig) -> FaceDataset:
    """The data set named by ``dataset.kind`` (one key switches data sets)."""
    if cfg.kind == "synthetic":
        from cfer.benchmarks.synthetic_faces.writer import synthetic

        return synthetic(root=cfg.root, subjects=cfg.subjects, size=cfg.size, seed=cfg.seed)
    if cfg.kind == "cfee":
        from cfer.benchmarks.readers.cfee import load_cfee

        return load_cfee(cfg.root, include_neutral=cfg.include_neutral)
    if cfg.kind == "rafdb":
        from cfer.benchmarks.readers.rafdb import load_rafdb_stream

        return load_rafdb_stream(cfg.root, skip_missing=cfg.skip_missing,
                                 include_neutral=cfg.include_neutral, variant=cfg.variant)
    if cfg.kind == "rafce":
        from cfer.benchmarks.readers.rafce import load_rafce_stream

        return load_rafce_stream(cfg.root, rafdb_root=cfg.rafdb_root, skip_missing=cfg.skip_missing,
                                 include_neutral=cfg.include_neutral, variant=cfg.variant)
    if cfg.kind == "folder":
        from cfer.benchmarks.readers.folder import load_folder

        return load_folder(cfg.root, cfg.spec)
    raise ValueError(f"dataset.kind: unknown kind {cfg.kind!r}")


@dataclass(frozen=True)
class DecodedDataset:
    """A data set with its decoded images; unreadable images already dropped (and logged)."""

    dataset: FaceDataset
    images: np.ndarray  # (N, S, S, 3) uint8
    failed: tuple[tuple[str, str], ...]


def decode(dataset: FaceDataset, *, image_size: int, cache_dir: str | None) -> DecodedDataset:
    from cfer.benchmarks.cache import load_images

    dec = load_images(dataset.paths, size=image_size, cache_dir=cache_dir)
    for path, why in dec.failed:
        log.warning("skipping unreadable image %s (%s)", path, why)
    if dec.ok.all():
        return DecodedDataset(dataset, dec.images, dec.failed)
    keep = np.flatnonzero(dec.ok)
    return DecodedDataset(dataset.subset(keep), dec.images[keep], dec.failed)
