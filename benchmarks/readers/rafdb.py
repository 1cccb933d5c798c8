"""Readers for RAF-DB (Li, Deng & Du, CVPR 2017): the basic and compound parts.

Layout of the download (one folder per part)::

    <root>/basic/EmoLabel/list_patition_label.txt     lines "train_00001.jpg 4"
    <root>/basic/Image/aligned/train_00001_aligned.jpg
    <root>/basic/Image/original/train_00001.jpg
    <root>/compound/EmoLabel/list_patition_label.txt  lines "test_0001.jpg 3"
    <root>/compound/Image/aligned/test_0001_aligned.jpg

The official partition is read from the file name prefix (``train_`` /
``test_``); RAF-DB has no subject ids. Label files may have CRLF line ends,
extra spaces and blank lines. The helpers that read ``<image> <integer>``
list files and check the listed images are shared with the RAF-CE reader.
"""

from __future__ import annotations

import logging
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, NamedTuple

from cfer.benchmarks.dataset import FaceDataset, concat
from cfer.benchmarks.taxonomy import ALL_CLASSES, NEUTRAL

Variant = Literal["aligned", "original"]
VARIANTS = typing.get_args(Variant)
#: The image folder read by default (``dataset.variant``): the aligned faces RAF-DB ships.
VARIANT: Variant = "aligned"

log = logging.getLogger(__name__)

LABEL_FILE = Path("EmoLabel") / "list_patition_label.txt"  # sic: the download's spelling

#: RAF-DB basic labels (1-based) -> taxonomy names.
RAFDB_BASIC: Mapping[int, str] = {
    1: "surprised", 2: "fearful", 3: "disgusted", 4: "happy", 5: "sad", 6: "angry", 7: NEUTRAL,
}
#: RAF-DB compound labels (1-based) -> taxonomy names.
RAFDB_COMPOUND: Mapping[int, str] = {
    1: "happily surprised", 2: "happily disgusted", 3: "sadly fearful", 4: "sadly angry",
    5: "sadly surprised", 6: "sadly disgusted", 7: "fearfully angry", 8: "fearfully surprised",
    9: "angrily surprised", 10: "angrily disgusted", 11: "disgustedly surprised",
}
_PARTS = {"basic": RAFDB_BASIC, "compound": RAFDB_COMPOUND}


class ListEntry(NamedTuple):
    """One line of a ``<image> <integer>`` list file."""

    line: int  # 1-based line number
    name: str  # image file name as listed
    value: int


def read_list_file(path: Path, *, what: str) -> list[ListEntry]:
    """Read a ``<image name> <integer>`` file (RAF-DB / RAF-CE label and partition lists).

    Blank lines, CRLF line ends, a UTF-8 byte order mark and runs of spaces or
    tabs are tolerated; anything else that does not parse is a one-line
    ValueError naming ``path:line``.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} file does not exist")
    entries: list[ListEntry] = []
    first_line: dict[str, int] = {}
    # utf-8-sig drops a BOM; text mode turns CRLF and CR into "\n".
    for number, raw in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ValueError(f"{path}:{number}: expected '<image> <label>', got {raw.strip()!r}")
        name, token = fields
        try:
            value = int(token)
        except ValueError:
            raise ValueError(f"{path}:{number}: {token!r} is not an integer "
                             f"(line {raw.strip()!r})") from None
        if name in first_line:
            raise ValueError(f"{path}:{number}: {name} is listed twice (first at line {first_line[name]})")
        first_line[name] = number
        entries.append(ListEntry(number, name, value))
    if not entries:
        raise ValueError(f"{path}: {what} file lists no images")
    return entries


def map_value(entry: ListEntry, table: Mapping[int, str], *, path: Path, what: str = "label") -> str:
    """``table[entry.value]``, or a ValueError naming the line when out of range."""
    if entry.value not in table:
        raise ValueError(f"{path}:{entry.line}: {what} {entry.value} out of range "
                         f"{min(table)}..{max(table)} (line '{entry.name} {entry.value}')")
    return table[entry.value]


def image_file_name(name: str, variant: str) -> str:
    """The image file for a listed name: ``x.jpg`` -> ``x_aligned.jpg`` for the aligned variant."""
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r}: use one of {VARIANTS}")
    if variant == "original":
        return name
    p = Path(name)
    return f"{p.stem}_aligned{p.suffix}"


def check_images(
    entries: list[tuple[ListEntry, Path]], *, list_file: Path, skip_missing: bool
) -> tuple[list[tuple[ListEntry, Path]], tuple[tuple[str, str], ...]]:
    """Split (entry, image path) pairs into those whose image exists and the missing ones.

    A missing image is a FileNotFoundError naming it (and how many are missing)
    unless ``skip_missing``; then the missing ones are returned as ``skipped``
    (path, reason) and logged with their count.
    """
    kept, missing = [], []
    for entry, path in entries:
        (kept if path.is_file() else missing).append((entry, path))
    if missing and not skip_missing:
        entry, path = missing[0]
        raise FileNotFoundError(
            f"{path}: image listed in {list_file}:{entry.line} does not exist ({len(missing)} "
            "listed images missing in all; skip_missing=True / dataset.skip_missing: true "
            "continues without them)")
    skipped = tuple((str(p), f"listed in {list_file}:{e.line} but missing") for e, p in missing)
    if missing:
        log.warning("%s: skipping %d listed images that do not exist (first: %s)",
                    list_file, len(missing), missing[0][1])
    return kept, skipped


def ordered_classes(names) -> tuple[str, ...]:
    """The distinct class names in taxonomy order (basic, compound), neutral last."""
    order = {c: i for i, c in enumerate(ALL_CLASSES + (NEUTRAL,))}
    return tuple(sorted(set(names), key=order.__getitem__))


def _partition(entry: ListEntry, *, path: Path) -> str:
    for prefix, part in (("train_", "train"), ("test_", "test")):
        if entry.name.startswith(prefix):
            return part
    raise ValueError(f"{path}:{entry.line}: {entry.name}: cannot tell its partition "
                     "(RAF-DB names start with 'train_' or 'test_')")


def load_rafdb(
    root: str | Path,
    *,
    part: str = "basic",
    skip_missing: bool = False,
    include_neutral: bool = False,
    variant: str = VARIANT,
) -> FaceDataset:
    """Read one part of RAF-DB into a :class:`FaceDataset` with the official partition.

    Args:
        root: the RAF-DB folder that holds ``basic/`` and ``compound/`` (a copy
            with only one part needs only that part's folder).
        part: ``"basic"`` (7 classes with neutral) or ``"compound"`` (11 classes).
        skip_missing: continue without listed images that do not exist
            (they are counted in ``skipped``) instead of failing.
        include_neutral: keep basic label 7 (neutral); dropped by default.
        variant: ``"aligned"`` (``Image/aligned/<name>_aligned.jpg``, 100x100
            aligned faces) or ``"original"`` (``Image/original/<name>``, e.g.
            after ``cfer prepare rafdb``).
    """
    if part not in _PARTS:
        raise ValueError(f"part={part!r}: use 'basic' or 'compound'")
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r}: use one of {VARIANTS}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: RAF-DB root folder does not exist")
    base = root / part
    label_file = base / LABEL_FILE
    entries = read_list_file(label_file, what=f"RAF-DB {part} label")
    image_dir = base / "Image" / variant
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{image_dir}: RAF-DB image folder does not exist "
                                f"(variant={variant!r}; the download has Image/aligned and Image/original)")
    table = _PARTS[part]
    rows = []
    for e in entries:
        cname = map_value(e, table, path=label_file)
        split = _partition(e, path=label_file)
        if cname == NEUTRAL and not include_neutral:
            continue
        rows.append((e, image_dir / image_file_name(e.name, variant), cname, split))
    kept, skipped = check_images([(e, p) for e, p, _, _ in rows], list_file=label_file,
                                 skip_missing=skip_missing)
    keep = {e.line for e, _ in kept}
    rows = [r for r in rows if r[0].line in keep]
    if not rows:
        raise ValueError(f"{label_file}: no usable images (all missing or neutral)")
    class_names = ordered_classes(c for _, _, c, _ in rows)
    index = {c: i for i, c in enumerate(class_names)}
    return FaceDataset(
        paths=tuple(p for _, p, _, _ in rows),
        labels=[index[c] for _, _, c, _ in rows],
        class_names=class_names,
        subjects=None,
        partition=[s for _, _, _, s in rows],
        name=f"rafdb-{part}",
        root=root,
        skipped=skipped,
    )


def load_rafdb_stream(
    root: str | Path,
    *,
    skip_missing: bool = False,
    include_neutral: bool = False,
    variant: str = VARIANT,
) -> FaceDataset:
    """RAF-DB basic (the basic experience) joined with RAF-DB compound (one
    experience per compound class), official train/test partitions.

    ``compound_benchmark`` then takes a seeded, class-stratified validation
    split from the train partition (``valid_fraction``, ``seed``).
    """
    basic = load_rafdb(root, part="basic", skip_missing=skip_missing,
                       include_neutral=include_neutral, variant=variant)
    compound = load_rafdb(root, part="compound", skip_missing=skip_missing, variant=variant)
    return concat(basic, compound, name="rafdb")
