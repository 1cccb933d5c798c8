"""`compound_benchmark`: a FaceDataset as an Avalanche class-incremental benchmark.

Experience 0 holds the basic classes; then one compound class per
experience. Class ids inside the benchmark follow the experience order
(basic 0..5, then the compounds in ``class_order``), so an incremental head
grows by one unit per experience. Avalanche's ``class_incremental_benchmark``
does not remap labels, which is why the ids are renumbered here first.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cfer.benchmarks.dataset import FaceDataset
from cfer.benchmarks.splits import N_FOLDS, VALID_FRACTION, seeded_order, stratified_holdout, subject_folds
from cfer.benchmarks.taxonomy import BASIC, NEUTRAL, components, is_compound

#: Side of the square model input, in pixels (``benchmark.image_size``; the toolkit's own: the
#: paper feeds 224 px crops, experiments/configs/paper_cfee.yaml).
IMAGE_SIZE = 96

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamInfo:
    """What travels with a benchmark: class names in id order and the split."""

    class_names: tuple[str, ...]  # id -> name, experience order
    n_basic: int
    class_order: tuple[str, ...]  # compound names in experience order
    fold: int
    seed: int
    image_size: int
    split_sizes: dict = field(default_factory=dict)
    #: split name -> indices into the FaceDataset (after dropping unreadable images).
    split_indices: dict = field(default_factory=dict, repr=False)
    failed_images: tuple[tuple[str, str], ...] = ()
    dataset: dict = field(default_factory=dict)

    @property
    def experience_classes(self) -> list[list[str]]:
        return [list(self.class_names[: self.n_basic])] + [[c] for c in self.class_order]

    def component_ids(self) -> dict[int, tuple[int, ...]]:
        """Compound class id -> ids of its basic components present in the stream."""
        idx = {c: i for i, c in enumerate(self.class_names)}
        return {idx[c]: tuple(idx[b] for b in components(c) if b in idx)
                for c in self.class_order}


class ImageTensorDataset:
    """Decoded uint8 images (N, 3, H, W) and integer targets as a torch-style dataset.

    Indexing returns ``(uint8 CHW tensor, int)``; transforms run in the
    Avalanche dataset around it. ``images`` is shared, never copied, between
    the train/valid/test views of one benchmark.
    """

    def __init__(self, images, targets, indices):
        import torch

        self.images = images
        self.indices = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        self.targets = torch.as_tensor(np.asarray(targets, dtype=np.int64))
        if len(self.indices) != len(self.targets):
            raise ValueError("indices and targets differ in length")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        return self.images[self.indices[i]], int(self.targets[i])


def class_orders(dataset: FaceDataset, seeds: Sequence[int]) -> list[list[str]]:
    """The seeded compound class orders for ``seeds`` (as ``compound_benchmark`` makes them)."""
    comp = [c for c in dataset.class_names if is_compound(c)]
    return [seeded_order(comp, s) for s in seeds]


def sample_shots(indices: np.ndarray, targets: np.ndarray, *, class_ids: Sequence[int],
                 class_names: Sequence[str], shots: int, seed: int) -> np.ndarray:
    """Keep ``shots`` distinct entries of each class in ``class_ids``; others untouched.

    ``indices`` index ``targets``. Each class draws from its own generator,
    seeded by ``(seed, class name)``, over its entries in index order, so a
    class gets the same images whatever the other classes or the class order,
    and a smaller ``shots`` takes a subset of a larger one (same seed).
    Returns the kept indices, sorted.
    """
    indices = np.asarray(indices)
    labels = targets[indices]
    kept = [indices[~np.isin(labels, list(class_ids))]]
    for cid in class_ids:
        pool = np.sort(indices[labels == cid])
        if len(pool) < shots:
            raise ValueError(f"shots={shots}: class {class_names[cid]!r} has only {len(pool)} "
                             f"training image(s) in this fold")
        key = zlib.crc32(class_names[cid].encode("utf-8"))  # stable across runs, unlike hash()
        rng = np.random.default_rng(np.random.SeedSequence([seed, key]))
        kept.append(rng.permutation(pool)[:shots])
    return np.sort(np.concatenate(kept))


def _split(dataset: FaceDataset, *, fold: int, n_folds: int, validation: bool, seed: int,
           valid_fraction: float):
    if dataset.partition is not None:
        part = dataset.partition
        train = np.flatnonzero(part == "train")
        test = np.flatnonzero(part == "test")
        valid = np.flatnonzero(part == "valid")
        if validation and len(valid) == 0:
            kept, held = stratified_holdout(dataset.labels[train], fraction=valid_fraction, seed=seed)
            train, valid = train[kept], train[held]
        elif not validation:
            train = np.sort(np.concatenate([train, valid]))
            valid = valid[:0]
        return train, valid, test
    if dataset.subjects is not None:
        return subject_folds(dataset.subjects, n_folds=n_folds, fold=fold, validation=validation)
    # No subjects and no partition: image-level folds (not subject-independent).
    log.warning("%s has no subject ids: folds are split by image, not by subject", dataset.name)
    ids = np.random.default_rng(seed).permutation(len(dataset))
    return subject_folds(ids, n_folds=n_folds, fold=fold, validation=validation)


def compound_benchmark(
    dataset: FaceDataset,
    *,
    class_order: Sequence[str] | None = None,
    seed: int = 0,
    fold: int = 0,
    n_folds: int = N_FOLDS,
    validation: bool = True,
    valid_fraction: float = VALID_FRACTION,
    image_size: int = IMAGE_SIZE,
    train_transform: Callable | None = None,
    eval_transform: Callable | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    images=None,
    shots: int | None = None,
    shot_seed: int = 0,
    shot_repeats: int = 1,
):
    """Build the basic-then-compound class-incremental benchmark.

    Args:
        dataset: any reader's :class:`FaceDataset`.
        class_order: compound class names in experience order; ``None`` takes
            the seeded shuffle selected by ``seed``. A subset of the data
            set's compounds is allowed (the others are left out).
        seed: selects the class order when ``class_order`` is None, and the
            validation holdout for data sets with an official partition.
        fold, n_folds: subject-independent folds (fold ``fold`` tests, the
            next one validates, the rest train).
        validation: also build a ``valid_stream`` on held-out subjects.
        image_size: side of the square images fed to the model.
        train_transform, eval_transform: callables on uint8 CHW tensors;
            default: :func:`cfer.benchmarks.transforms.train_transform` with its
            default augmentation (the toolkit's own; the reference code's is
            ``AugmentConfig(rotation=3.6, zoom=0.05, zoom_per_axis=True,
            translate=0.05, fill="reflect")``) and ImageNet normalisation.
        images: an already decoded (N, H, W, 3) uint8 array for ``dataset``
            (skips the cache; used by tests and the speed path).
        shots: few-shot streams: keep only this many distinct training
            images of each compound class, drawn from the training subjects
            with ``shot_seed`` (see :func:`sample_shots`); the basic block,
            validation and test splits are untouched. None keeps them all.
        shot_repeats: repeat each sampled image this many times in the
            training set (the reference code repeats the n images by the
            batch size, so that an epoch is n full batches).

    Returns:
        An Avalanche ``CLScenario`` with ``train_stream``, ``test_stream``
        (and ``valid_stream``), plus ``benchmark.info``, a :class:`StreamInfo`.
    """
    import torch
    from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
    from avalanche.benchmarks.utils import _make_taskaware_classification_dataset

    from cfer.benchmarks import transforms as T
    from cfer.benchmarks.cache import load_images

    basic = [c for c in BASIC if c in dataset.class_names]
    if NEUTRAL in dataset.class_names:
        basic.append(NEUTRAL)
    if not basic:
        raise ValueError(f"{dataset.name}: no basic expression classes (need at least one of {BASIC})")
    if shots is not None and shots < 1:
        raise ValueError(f"shots={shots}: must be >= 1 (or None for all training images)")
    if shot_repeats < 1:
        raise ValueError(f"shot_repeats={shot_repeats}: must be >= 1")
    present = [c for c in dataset.class_names if is_compound(c)]
    if class_order is None:
        order = seeded_order(present, seed)
    else:
        order = list(class_order)
        unknown = [c for c in order if c not in present]
        if unknown:
            raise ValueError(f"class_order: {unknown} not among {dataset.name}'s compound classes "
                             f"({', '.join(present)})")
        if len(set(order)) != len(order):
            raise ValueError(f"class_order: duplicate class names in {order}")
    names = tuple(basic + order)
    new_id = np.full(len(dataset.class_names), -1, dtype=np.int64)
    for i, c in enumerate(names):
        new_id[dataset.class_index(c)] = i
    keep = new_id[dataset.labels] >= 0

    if images is None:
        decoded = load_images(dataset.paths, size=image_size, cache_dir=cache_dir, use_cache=use_cache)
        arr, ok, failed = decoded.images, decoded.ok, decoded.failed
        for path, why in failed:
            log.warning("skipping unreadable image %s (%s)", path, why)
    else:
        arr = np.asarray(images)
        if arr.shape != (len(dataset), image_size, image_size, 3) or arr.dtype != np.uint8:
            raise ValueError(f"images: expected uint8 {(len(dataset), image_size, image_size, 3)}, "
                             f"got {arr.dtype} {arr.shape}")
        ok, failed = np.ones(len(dataset), dtype=bool), ()
    keep &= ok

    train, valid, test = _split(dataset, fold=fold, n_folds=n_folds, validation=validation,
                                seed=seed, valid_fraction=valid_fraction)
    tensor = torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))
    targets = new_id[dataset.labels]
    tf_train = train_transform if train_transform is not None else T.train_transform()
    tf_eval = eval_transform if eval_transform is not None else T.eval_transform()

    def make(idx: np.ndarray, split: str):
        idx = idx[keep[idx]]
        if split == "train" and shots is not None:
            few = list(range(len(basic), len(names)))
            idx = sample_shots(idx, targets, class_ids=few, class_names=names, shots=shots,
                               seed=shot_seed)
            sampled = np.isin(targets[idx], few)
            idx = np.sort(np.concatenate([idx[~sampled], np.repeat(idx[sampled], shot_repeats)]))
        missing = [c for i, c in enumerate(names) if not np.any(targets[idx] == i)]
        if missing:
            raise ValueError(f"{dataset.name} fold {fold}: the {split} split has no images of "
                             f"{missing}; use fewer folds or more subjects")
        base = ImageTensorDataset(tensor, targets[idx], idx)
        return _make_taskaware_classification_dataset(
            base, targets=base.targets.tolist(), task_labels=0,
            transform_groups={"train": (tf_train, None), "eval": (tf_eval, None)},
            initial_transform_group="train" if split == "train" else "eval",
        ), np.unique(idx)

    splits = {"train": train, "test": test}
    if validation:
        splits["valid"] = valid
    data, used = {}, {}
    for split, idx in splits.items():
        data[split], used[split] = make(np.asarray(idx), split)
    bm = class_incremental_benchmark(
        data, class_order=list(range(len(names))),
        num_classes_per_exp=[len(basic)] + [1] * len(order),
    )
    bm.info = StreamInfo(
        class_names=names, n_basic=len(basic), class_order=tuple(order), fold=fold, seed=seed,
        image_size=image_size, split_sizes={k: int(len(v)) for k, v in used.items()},
        split_indices=used, failed_images=tuple(failed),
        dataset=dataset.describe(),
    )
    return bm
