"""Each synthetic image's action-unit regions: the ground truth for attribution maps.

Beside the images, ``<out>/au_masks.npz`` (:data:`AU_MASKS`) holds each image's
action-unit regions (:data:`AU_REGIONS`: brows, lids, cheeks, nose wrinkle, upper
lip, lip corners, jaw), drawn with the face's own pose, and its active AUs
(:func:`read_au_masks`; at the model's input size through :func:`load_region_masks`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from cfer.benchmarks.synthetic_faces.config import MANIFEST
from cfer.benchmarks.synthetic_faces.render import Canvas, ellipse
from cfer.benchmarks.synthetic_faces.subjects import Subject

#: Face regions the renderer changes, and the AUs that change each, read off the ``_draw_*``
#: functions (an AU that moves several parts is in several regions: AU 9 also lowers the inner
#: brows, AU 12 also raises the cheeks). The ground truth for attribution maps: an expression's
#: evidence lies in the regions of its active AUs.
AU_REGIONS: Mapping[str, tuple[int, ...]] = MappingProxyType({
    "brows": (1, 2, 4, 9),  # brows, forehead lines, the furrows between the brows
    "lids": (4, 5, 6, 7, 9),  # lids, the bulge under them, crow's feet
    "cheeks": (6, 12),  # the raised, flushed cheeks
    "nose_wrinkle": (9, 10),  # wrinkles across the bridge, the widened, raised nose
    "upper_lip": (9, 10, 11, 12),  # between nose and mouth, the nasolabial folds
    "lip_corners": (10, 11, 12, 15, 17, 20, 23, 24, 25, 26),  # the mouth's width, corners, lips
    "jaw": (17, 25, 26),  # the parted lips, the open jaw, the chin
})
#: The file of per-image region masks that :func:`write_synthetic` writes beside the images.
AU_MASKS = "au_masks.npz"


def _region_ellipses(s: Subject, region: str) -> list[tuple[float, float, float, float]]:
    """(cx, cy, rx, ry) ellipses in face units around where the renderer draws ``region``'s AUs
    (see the ``_draw_*`` functions), generous enough to hold them at full intensity."""
    base = s.eye_y - s.brow_h  # the brows' resting line
    if region == "brows":
        return [(side * 0.85 * s.eye_dx, base - 0.12, s.brow_len * 0.6 + 0.1, 0.24) for side in (-1, 1)]
    if region == "lids":
        return [(side * (s.eye_dx + 0.03), s.eye_y + 0.01, s.eye_w + 0.12, 0.13) for side in (-1, 1)]
    if region == "cheeks":
        return [(side * (s.eye_dx + 0.05), s.nose_y - 0.08, 0.2, 0.14) for side in (-1, 1)]
    if region == "nose_wrinkle":
        top, bottom = s.eye_y + 0.02, s.nose_y + 0.08
        return [(0.0, (top + bottom) / 2, max(0.15, 1.3 * s.nose_w), (bottom - top) / 2 + 0.03)]
    if region == "upper_lip":
        top, bottom = s.nose_y - 0.04, s.mouth_y + 0.02
        return [(0.0, (top + bottom) / 2, s.mouth_w + 0.16, (bottom - top) / 2 + 0.03)]
    if region == "lip_corners":
        return [(0.0, s.mouth_y + 0.02, 1.5 * s.mouth_w + 0.08, 0.16)]
    if region == "jaw":
        top, bottom = s.mouth_y - 0.03, s.face_h + 0.15  # the jaw drop lowers the chin by 0.14
        return [(0.0, (top + bottom) / 2, 0.8 * s.face_w, (bottom - top) / 2)]
    raise KeyError(f"unknown AU region {region!r} (known: {', '.join(AU_REGIONS)})")


def region_masks(canvas: Canvas, subject: Subject, *, size: int) -> np.ndarray:
    """The AU regions of one rendered face: a (size, size) uint8 array, bit ``r`` set where
    region ``r`` of :data:`AU_REGIONS` lies. Drawn with the face's own pose (``canvas``, the
    one :func:`_render` drew on) and downsampled as the image is (a pixel belongs to a region
    when it covers half of it or more). Uses no random numbers, so images are unchanged."""
    from PIL import Image, ImageDraw

    side = canvas.image.size[0]
    out = np.zeros((size, size), dtype=np.uint8)
    for bit, region in enumerate(AU_REGIONS):
        plane = Image.new("L", (side, side), 0)
        draw = ImageDraw.Draw(plane)
        for cx, cy, rx, ry in _region_ellipses(subject, region):
            draw.polygon(canvas.xy(ellipse(cx, cy, rx, ry, 32)), fill=255)
        if side != size:
            plane = plane.resize((size, size), Image.Resampling.BOX)
        out |= (np.asarray(plane) >= 128).astype(np.uint8) << bit
    return out


@dataclass(frozen=True)
class AUMasks:
    """The region masks of a generated set (:data:`AU_MASKS`), one entry per image.

    Attributes:
        paths: image path relative to the data set root, per entry.
        masks: (N, size, size) uint8, bit ``r`` = region ``r`` of ``regions``.
        active: (N, len(units)) bool, the image's active AUs (:func:`active_units`).
        units: the AU numbers of ``active``'s columns.
        regions: region names, in bit order.
    """

    paths: tuple[str, ...]
    masks: np.ndarray
    active: np.ndarray
    units: tuple[int, ...]
    regions: tuple[str, ...]

    def active_regions(self) -> np.ndarray:
        """(N, len(regions)) bool: the regions holding at least one active AU of each image."""
        col = {a: j for j, a in enumerate(self.units)}
        return np.stack([self.active[:, [col[a] for a in AU_REGIONS[r]]].any(axis=1)
                         for r in self.regions], axis=1)


def read_au_masks(root: str | Path) -> AUMasks:
    """The :data:`AU_MASKS` file of a generated set; a one-line error naming it otherwise."""
    path = Path(root) / AU_MASKS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no action-unit masks (written by `cfer synth` since masks "
                                "exist; regenerate the set)")
    with np.load(path, allow_pickle=False) as z:
        return AUMasks(paths=tuple(str(p) for p in z["paths"]), masks=z["masks"], active=z["active"],
                       units=tuple(int(a) for a in z["units"]), regions=tuple(str(r) for r in z["regions"]))


def masks_current(root: Path) -> bool:
    """Whether ``root`` holds an :data:`AU_MASKS` file with today's regions."""
    try:
        with np.load(root / AU_MASKS, allow_pickle=False) as z:
            return [str(r) for r in z["regions"]] == list(AU_REGIONS)
    except (OSError, KeyError, ValueError):
        return False


@dataclass(frozen=True)
class RegionMasks:
    """Action-unit region masks of some images, at the size they are decoded to.

    ``masks``: (N, R, size, size) bool, region ``r`` of ``regions`` per image; ``active``:
    (N, R) bool, the regions holding an active AU of the image's expression.
    """

    masks: np.ndarray
    active: np.ndarray
    regions: tuple[str, ...]

    def expression_masks(self) -> np.ndarray:
        """(N, size, size) bool: the union of each image's active regions."""
        return (self.masks & self.active[:, :, None, None]).any(axis=1)


def _generated_root(path: Path) -> Path:
    for parent in path.parents:
        if (parent / MANIFEST).is_file():
            return parent
    raise FileNotFoundError(f"{path}: not an image of a generated synthetic set (no {MANIFEST} in "
                            "its folders), so it has no action-unit masks")


def load_region_masks(paths: Sequence[str | Path], *, size: int) -> RegionMasks:
    """The action-unit region masks of synthetic images ``paths``, resized as
    :func:`cfer.benchmarks.cache.load_images` resizes the images (area average, then half coverage).

    Not kept on disk like the images: a few hundred masks resize in milliseconds,
    the whole 5060-image set in about a second.
    """
    from PIL import Image

    sets, rows = {}, []
    for p in (Path(x).resolve() for x in paths):
        root = _generated_root(p)
        if root not in sets:
            m = read_au_masks(root)
            sets[root] = (m, {q: i for i, q in enumerate(m.paths)}, m.active_regions())
        m, index, _ = sets[root]
        rel = p.relative_to(root).as_posix()
        if rel not in index:
            raise KeyError(f"{p}: not listed in {root / 'au_masks.npz'}; regenerate the set")
        rows.append((root, index[rel]))
    regions = next(iter(sets.values()))[0].regions if sets else ()
    out = np.zeros((len(rows), len(regions), size, size), dtype=bool)
    active = np.zeros((len(rows), len(regions)), dtype=bool)
    for n, (root, i) in enumerate(rows):
        m, _, act = sets[root]
        active[n] = act[i]
        for r in range(len(regions)):
            plane = ((m.masks[i] >> r) & 1).astype(np.uint8) * 255
            if plane.shape[0] != size:
                plane = np.asarray(Image.fromarray(plane).resize((size, size), Image.Resampling.BOX))
            out[n, r] = plane >= 128
    return RegionMasks(out, active, tuple(regions))
