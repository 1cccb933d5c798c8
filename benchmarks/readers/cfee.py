"""Reader for the CFEE layout: ``<root>/<group>/Images<k>/EE_SSS_NNNN.jpg``.

EE is the emotion id (CFEE's numbering: 01 neutral, 02-07 basic, 08-22
compound, see :data:`cfer.benchmarks.taxonomy.CFEE_IDS`), SSS the subject id and
NNNN a running number. The built-in synthetic set is written in this layout,
so this reader is exercised by every run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from cfer.benchmarks.dataset import FaceDataset
from cfer.benchmarks.taxonomy import CFEE_IDS, NEUTRAL, check_class

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_NAME = re.compile(r"^(\d{2})_(\d{3})_(\d{4})$")


class CfeeName(NamedTuple):
    emotion_id: int
    subject: int
    number: int


def parse_cfee_name(path: str | Path) -> CfeeName:
    """Parse ``EE_SSS_NNNN.jpg``; raise a one-line ValueError naming the file."""
    p = Path(path)
    if p.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{p}: not an image file name (expected {', '.join(IMAGE_SUFFIXES)})")
    m = _NAME.match(p.stem)
    if m is None:
        raise ValueError(f"{p}: file name does not parse as CFEE 'EE_SSS_NNNN' "
                         "(emotion id, subject id, number)")
    return CfeeName(int(m.group(1)), int(m.group(2)), int(m.group(3)))


def load_cfee(
    root: str | Path,
    *,
    include_neutral: bool = False,
    id_map: Mapping[int, str] | None = None,
    name: str = "cfee",
) -> FaceDataset:
    """Read a CFEE tree into a :class:`FaceDataset`.

    Args:
        root: the folder that holds the ``<group>/Images<k>/`` folders
            (``CFEE_Database_230`` in the official copy).
        include_neutral: keep id 01 (neutral) as a class of the basic block.
        id_map: emotion id -> taxonomy name, replacing CFEE's own numbering
            (for copies that number emotions differently).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: CFEE root folder does not exist")
    table = dict(CFEE_IDS if id_map is None else id_map)
    for eid, cname in table.items():
        check_class(cname, where=f"{root}: id_map[{eid}]")
    files = sorted(p for p in root.rglob("*")
                   if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise FileNotFoundError(f"{root}: no images found (expected <group>/Images<k>/EE_SSS_NNNN.jpg)")
    entries = []
    for f in files:
        parsed = parse_cfee_name(f)
        if parsed.emotion_id not in table:
            raise ValueError(f"{f}: emotion id {parsed.emotion_id:02d} is not in the id table "
                             f"(known ids: {', '.join(f'{i:02d}' for i in sorted(table))})")
        cname = table[parsed.emotion_id]
        if cname == NEUTRAL and not include_neutral:
            continue
        entries.append((f, cname, parsed.subject))
    # Class order: the table's order (basic before compound in CFEE's numbering).
    present = {c for _, c, _ in entries}
    class_names = tuple(dict.fromkeys(c for _, c in sorted(table.items()) if c in present))
    index = {c: i for i, c in enumerate(class_names)}
    return FaceDataset(
        paths=tuple(f for f, _, _ in entries),
        labels=[index[c] for _, c, _ in entries],
        class_names=class_names,
        subjects=[s for _, _, s in entries],
        name=name,
        root=root,
    )
