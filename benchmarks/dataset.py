"""`FaceDataset`: the one object every reader returns.

It is a plain description of an image collection (paths, labels, subjects,
an optional official partition); images are decoded later, once, through the
cache in :mod:`cfer.benchmarks.cache`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cfer.benchmarks.taxonomy import check_class

#: Names of the official partitions a data set may carry.
PARTITIONS = ("train", "valid", "test")


@dataclass(frozen=True, eq=False)
class FaceDataset:
    """An expression data set: one entry per image.

    Attributes:
        paths: image file per entry.
        labels: class index per entry, into ``class_names``.
        class_names: taxonomy names (see :mod:`cfer.benchmarks.taxonomy`).
        subjects: subject id per entry, or ``None`` when the data set has none.
        partition: official split per entry (``"train"``, ``"valid"``,
            ``"test"``), or ``None`` when splits are made by subject folds.
        name: short name of the data set ("cfee", "rafdb", ...).
        root: folder the data set was read from.
        skipped: files that were found but could not be used, with the reason.
    """

    paths: tuple[Path, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]
    subjects: np.ndarray | None = None
    partition: np.ndarray | None = None
    name: str = "dataset"
    root: Path | None = None
    skipped: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.paths)
        object.__setattr__(self, "paths", tuple(Path(p) for p in self.paths))
        object.__setattr__(self, "labels", np.asarray(self.labels, dtype=np.int64))
        object.__setattr__(self, "class_names", tuple(self.class_names))
        if self.labels.shape != (n,):
            raise ValueError(f"{self.name}: {n} paths but {self.labels.shape[0]} labels")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError(f"{self.name}: label out of range 0..{len(self.class_names) - 1}")
        for c in self.class_names:
            check_class(c, where=self.name)
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"{self.name}: duplicate class names {self.class_names}")
        if self.subjects is not None:
            object.__setattr__(self, "subjects", np.asarray(self.subjects))
            if self.subjects.shape != (n,):
                raise ValueError(f"{self.name}: subjects must have one entry per image")
        if self.partition is not None:
            part = np.asarray(self.partition, dtype=object)
            bad = sorted(set(part.tolist()) - set(PARTITIONS))
            if bad:
                raise ValueError(f"{self.name}: unknown partition names {bad}; use {PARTITIONS}")
            object.__setattr__(self, "partition", part)

    def __len__(self) -> int:
        return len(self.paths)

    def class_counts(self) -> dict[str, int]:
        """Class name -> number of images (every class listed, zeros included)."""
        counts = Counter(self.labels.tolist())
        return {name: counts.get(i, 0) for i, name in enumerate(self.class_names)}

    def class_index(self, name: str) -> int:
        try:
            return self.class_names.index(name)
        except ValueError:
            raise KeyError(f"{self.name}: class {name!r} not in this data set "
                           f"(has: {', '.join(self.class_names)})") from None

    def subset(self, indices: Sequence[int] | np.ndarray) -> FaceDataset:
        """The entries at ``indices``, same classes."""
        idx = np.asarray(indices, dtype=np.int64)
        return FaceDataset(
            paths=tuple(self.paths[i] for i in idx),
            labels=self.labels[idx],
            class_names=self.class_names,
            subjects=None if self.subjects is None else self.subjects[idx],
            partition=None if self.partition is None else self.partition[idx],
            name=self.name,
            root=self.root,
            skipped=self.skipped,
        )

    def describe(self) -> dict:
        """A JSON-friendly summary (used in results.json)."""
        return {
            "name": self.name,
            "root": None if self.root is None else str(self.root),
            "n_images": len(self),
            "class_names": list(self.class_names),
            "class_counts": self.class_counts(),
            "n_subjects": None if self.subjects is None else int(len(np.unique(self.subjects))),
            "skipped": len(self.skipped),
        }


def concat(first: FaceDataset, second: FaceDataset, *, name: str | None = None) -> FaceDataset:
    """Join two data sets (e.g. RAF-DB basic + compound); class names are merged."""
    names = list(first.class_names) + [c for c in second.class_names if c not in first.class_names]
    remap = np.array([names.index(c) for c in second.class_names], dtype=np.int64)
    def _cat(a, b):
        if a is None or b is None:
            if a is None and b is None:
                return None
            raise ValueError("cannot join a data set with subjects/partitions to one without")
        return np.concatenate([np.asarray(a, dtype=object), np.asarray(b, dtype=object)])
    return FaceDataset(
        paths=first.paths + second.paths,
        labels=np.concatenate([first.labels, remap[second.labels]]),
        class_names=tuple(names),
        subjects=_cat(first.subjects, second.subjects),
        partition=_cat(first.partition, second.partition),
        name=name or f"{first.name}+{second.name}",
        root=first.root,
        skipped=first.skipped + second.skipped,
    )
