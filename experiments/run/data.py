"""A run's data: the configured data set read and decoded once per process
(:class:`RunData`), and the benchmark of an (order, fold, seed, shots) with the config's
settings, with the validation stream its protocol scores."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cfer.benchmarks.dataset import FaceDataset
from cfer.experiments.config.sections import DatasetConfig, ExperimentConfig

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


def compound_classes(class_names: Sequence[str], chosen: Sequence[str] | None = None, *,
                     key: str = "benchmark.compounds") -> list[str]:
    """The data set's compound classes (in its order), or ``chosen`` (config key ``key``),
    which must all be among them."""
    from cfer.benchmarks.taxonomy import is_compound

    present = [c for c in class_names if is_compound(c)]
    if chosen is None:
        return present
    unknown = [c for c in chosen if c not in present]
    if unknown:
        raise ValueError(f"{key}: {unknown} not among the data set's compound classes "
                         f"({', '.join(present)})")
    return list(chosen)


class RunData:
    """The config's data set, decoded on first use, and its benchmarks."""

    def __init__(self, cfg: ExperimentConfig, *, data: DecodedDataset | None = None):
        self.cfg = cfg
        self._data = data  # None: read and decoded on first use
        self.given = data is not None  # handed over by the caller (worker processes need it too)
        self.missing_classes: list[str] = []  # expected classes the data lacks (partial taxonomy)

    def decoded(self) -> DecodedDataset:
        """The configured data set with its decoded images (read once)."""
        if self._data is None:
            ds = read_dataset(self.cfg.dataset)
            self._data = decode(ds, image_size=self.cfg.benchmark.image_size,
                                cache_dir=self.cfg.dataset.cache_dir)
            self.missing_classes = self._check_taxonomy(self._data.dataset)
        return self._data

    def _check_taxonomy(self, ds) -> list[str]:
        """The expected classes ``ds`` lacks (allowed by ``benchmark.partial_taxonomy``, reported
        in results.json and report.md); else a one-line error naming them."""
        from cfer.experiments.config.validate import check_taxonomy

        missing = check_taxonomy(self.cfg, class_counts=ds.class_counts(), name=ds.root or ds.name)
        if missing:
            log.warning("the data set has no image of %s; running without them "
                        "(benchmark.partial_taxonomy: true)", ", ".join(missing))
        return missing

    def benchmark(self, *, order: Sequence[str], fold: int, seed: int, shots: int | None = None,
                  shot_repeats: int = 1):
        """``compound_benchmark`` of the data with the config's settings; ``shots``: few-shot
        training splits (that many images per compound class, drawn with ``seed``)."""
        from cfer.benchmarks import compound_benchmark
        from cfer.benchmarks.transforms import train_transform

        cfg, d = self.cfg, self.decoded()
        aug = cfg.benchmark.augment  # benchmarks' own AugmentConfig
        return compound_benchmark(
            d.dataset, class_order=list(order), seed=seed, fold=fold, n_folds=cfg.benchmark.n_folds,
            validation=cfg.protocol.name == "heldout", valid_fraction=cfg.benchmark.valid_fraction,
            image_size=cfg.benchmark.image_size, train_transform=train_transform(aug), images=d.images,
            shots=shots, shot_seed=seed, shot_repeats=shot_repeats)

    def valid(self, bm):
        """The stream early stopping scores: validation subjects (``heldout``), or the test
        fold itself (``paper``, as the reference code)."""
        return bm.valid_stream if self.cfg.protocol.name == "heldout" else bm.test_stream
