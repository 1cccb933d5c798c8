"""Reader for RAF-CE (Real-world Affective Faces, Compound Emotions; PRIS/BUPT).

Layout read (the files as published on the RAF-CE download page, with the
images of RAF-AU, from which RAF-CE's images are drawn)::

    <root>/RAFCE_emolabel.txt     lines "0001.jpg 3"   (label 0..13, 0-based)
    <root>/RAFCE_partition.txt    lines "0001.jpg 0"   (0 train, 1 test, 2 validation)
    <root>/aligned/0001_aligned.jpg                     (variant "aligned")
    <root>/original/0001.jpg                            (variant "original")

File and folder names are keywords, so other copies read too. RAF-CE has
only compound classes; :func:`load_rafce_stream` joins it with RAF-DB basic
for the basic experience.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cfer.benchmarks.dataset import FaceDataset, concat
from cfer.benchmarks.readers.rafdb import (
    VARIANT,
    VARIANTS,
    check_images,
    image_file_name,
    load_rafdb,
    map_value,
    ordered_classes,
    read_list_file,
)
from cfer.benchmarks.splits import VALID_FRACTION, stratified_holdout

#: RAF-CE labels (0-based) -> taxonomy names, as on the download page.
RAFCE_LABELS: Mapping[int, str] = dict(enumerate((
    "happily surprised", "happily disgusted", "sadly fearful", "sadly angry", "sadly surprised",
    "sadly disgusted", "fearfully angry", "fearfully surprised", "fearfully disgusted",
    "angrily surprised", "angrily disgusted", "disgustedly surprised", "happily fearful",
    "happily sad",
)))
#: RAF-CE partition ids -> partition names.
RAFCE_PARTITIONS: Mapping[int, str] = {0: "train", 1: "test", 2: "valid"}


def load_rafce(
    root: str | Path,
    *,
    label_file: str = "RAFCE_emolabel.txt",
    partition_file: str | None = "RAFCE_partition.txt",
    variant: str = VARIANT,
    image_dir: str | None = None,
    skip_missing: bool = False,
) -> FaceDataset:
    """Read RAF-CE into a :class:`FaceDataset` (14 compound classes, official partition).

    Args:
        root: the RAF-CE folder.
        label_file, partition_file: list files, relative to ``root``;
            ``partition_file=None`` reads no partition (folds are then made
            by image, RAF-CE having no subject ids).
        variant: ``"aligned"`` (``<name>_aligned.jpg``) or ``"original"`` (``<name>``).
        image_dir: image folder relative to ``root`` (default: the variant's name).
        skip_missing: continue without listed images that do not exist.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r}: use one of {VARIANTS}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: RAF-CE root folder does not exist")
    labels_path = root / label_file
    entries = read_list_file(labels_path, what="RAF-CE label")
    split_of: dict[str, str] | None = None
    if partition_file is not None:
        part_path = root / partition_file
        split_of = {e.name: map_value(e, RAFCE_PARTITIONS, path=part_path, what="partition")
                    for e in read_list_file(part_path, what="RAF-CE partition")}
    images = root / (image_dir if image_dir is not None else variant)
    if not images.is_dir():
        raise FileNotFoundError(f"{images}: RAF-CE image folder does not exist (variant={variant!r})")
    rows = []
    for e in entries:
        cname = map_value(e, RAFCE_LABELS, path=labels_path)
        if split_of is not None and e.name not in split_of:
            raise ValueError(f"{root / partition_file}: no partition line for {e.name} "
                             f"(labelled at {labels_path}:{e.line})")
        rows.append((e, images / image_file_name(e.name, variant), cname))
    kept, skipped = check_images([(e, p) for e, p, _ in rows], list_file=labels_path,
                                 skip_missing=skip_missing)
    keep = {e.line for e, _ in kept}
    rows = [r for r in rows if r[0].line in keep]
    if not rows:
        raise ValueError(f"{labels_path}: no usable images (all listed images are missing)")
    class_names = ordered_classes(c for _, _, c in rows)
    index = {c: i for i, c in enumerate(class_names)}
    return FaceDataset(
        paths=tuple(p for _, p, _ in rows),
        labels=[index[c] for _, _, c in rows],
        class_names=class_names,
        subjects=None,
        partition=None if split_of is None else [split_of[e.name] for e, _, _ in rows],
        name="rafce",
        root=root,
        skipped=skipped,
    )


def load_rafce_stream(
    root: str | Path,
    *,
    rafdb_root: str | Path,
    skip_missing: bool = False,
    include_neutral: bool = False,
    valid_fraction: float = VALID_FRACTION,
    seed: int = 0,
    variant: str = VARIANT,
    label_file: str = "RAFCE_emolabel.txt",
    partition_file: str = "RAFCE_partition.txt",
    rafdb_variant: str = VARIANT,
) -> FaceDataset:
    """RAF-DB basic (the basic experience) joined with RAF-CE's 14 compound classes.

    RAF-CE brings its own validation partition; RAF-DB has none, so a seeded,
    class-stratified ``valid_fraction`` of RAF-DB's train partition becomes
    validation here (``compound_benchmark`` holds out from train only when a
    data set has no validation images at all).
    """
    basic = load_rafdb(rafdb_root, part="basic", skip_missing=skip_missing,
                       include_neutral=include_neutral, variant=rafdb_variant)
    compound = load_rafce(root, variant=variant, skip_missing=skip_missing,
                          label_file=label_file, partition_file=partition_file)
    part = basic.partition.copy()
    train = np.flatnonzero(part == "train")
    _, held = stratified_holdout(basic.labels[train], fraction=valid_fraction, seed=seed)
    part[train[held]] = "valid"
    basic = FaceDataset(paths=basic.paths, labels=basic.labels, class_names=basic.class_names,
                        partition=part, name=basic.name, root=basic.root, skipped=basic.skipped)
    return concat(basic, compound, name="rafdb+rafce")
