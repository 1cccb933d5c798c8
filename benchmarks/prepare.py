"""``cfer prepare``: find, crop and resize the face in every image of a data set.

For data sets whose images are not aligned face crops (CFEE's raw photos,
RAF-DB's ``Image/original``, a user's folders). Each image gets the largest
face found by OpenCV's bundled frontal-face Haar cascade, widened by a
margin, squared and resized; an image with no face gets a centre crop and a
row in ``<out>/no_face.csv`` (flagged, never dropped). The output keeps the
input's layout and file names under ``--out`` (label and spec files are
copied), so the same reader reads it. Runs are resumable: an output that
exists and is newer than its source is not redone.

OpenCV is the optional extra ``faces`` (``pip install -e .[faces]``);
OpenCV 5 moved the Haar cascades out of the main package, hence ``<5``.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cfer.core.atomic import atomic_write_path

log = logging.getLogger(__name__)

KINDS = ("cfee", "rafdb", "folder")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
SIDE_SUFFIXES = (".txt", ".csv", ".yaml", ".yml", ".json")  # label lists, specs: copied as they are
FLAGS_FILE = "no_face.csv"
CASCADE = "haarcascade_frontalface_default.xml"
INSTALL_HINT = "pip install -e .[faces]  (or: pip install 'opencv-python-headless>=4.5,<5')"


@dataclass(frozen=True)
class PrepareConfig:
    """Face detection and cropping settings."""

    size: int = 224  # output side in pixels; the reference feeds 224x224 crops to ResNet50V2
    margin: float = 0.2  # added on each side of the face box, as a fraction of its side
    detect_max_side: int = 800  # detection runs on a copy no larger than this (speed on big photos)
    scale_factor: float = 1.1  # Haar pyramid step (OpenCV's default)
    min_neighbors: int = 5  # Haar acceptance threshold (OpenCV's face-detection tutorial)
    min_face: float = 0.05  # smallest face side, as a fraction of the shorter image side
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"size={self.size}: output side must be at least 8 pixels")
        if not 0 <= self.margin <= 2:
            raise ValueError(f"margin={self.margin}: use a fraction of the face box in [0, 2]")


class Box(NamedTuple):
    """A square crop: left, top, side (pixels of the source image)."""

    x: int
    y: int
    side: int


class Crop(NamedTuple):
    image: np.ndarray  # (size, size, 3) uint8 RGB
    box: Box
    face_found: bool


@dataclass(frozen=True)
class PrepareReport:
    out: Path
    flags_csv: Path
    n_images: int  # source images considered
    n_written: int  # outputs written in this run
    n_up_to_date: int  # outputs left as they were (newer than their source)
    n_no_face: int  # flagged in the CSV (this run and earlier runs), centre-cropped
    n_unreadable: int  # flagged in the CSV, no output written
    n_copied: int  # label/spec files copied


def load_cv2():
    """Import OpenCV with its Haar cascades, or raise a one-line ImportError saying how to install."""
    try:
        import cv2
    except ImportError:
        raise ImportError(f"face cropping needs OpenCV: {INSTALL_HINT}") from None
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise ImportError(f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 moved them out): "
                          f"{INSTALL_HINT}")
    return cv2


class FaceDetector:
    """Largest frontal face in an RGB image, with OpenCV's bundled Haar cascade."""

    def __init__(self, config: PrepareConfig = PrepareConfig()):
        self.cv2 = load_cv2()
        path = Path(self.cv2.data.haarcascades) / CASCADE
        self.cascade = self.cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise ImportError(f"{path}: OpenCV's Haar cascade did not load; reinstall: {INSTALL_HINT}")
        self.config = config

    def detect(self, rgb: np.ndarray) -> tuple[int, int, int, int] | None:
        """(x, y, w, h) of the largest face, in ``rgb``'s pixels, or None."""
        cv2, cfg = self.cv2, self.config
        h, w = rgb.shape[:2]
        scale = min(1.0, cfg.detect_max_side / max(h, w))
        small = rgb if scale == 1.0 else cv2.resize(
            rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        min_side = max(20, int(cfg.min_face * min(gray.shape)))
        faces = self.cascade.detectMultiScale(gray, scaleFactor=cfg.scale_factor,
                                              minNeighbors=cfg.min_neighbors,
                                              minSize=(min_side, min_side))
        if len(faces) == 0:
            return None
        x, y, fw, fh = max((tuple(int(v) for v in f) for f in faces), key=lambda f: f[2] * f[3])
        return round(x / scale), round(y / scale), round(fw / scale), round(fh / scale)


def square_box(face: tuple[int, int, int, int] | None, *, width: int, height: int, margin: float) -> Box:
    """The square around ``face`` widened by ``margin`` on each side, moved (and if need be
    shrunk) to lie inside the image; the centre square when ``face`` is None."""
    limit = min(width, height)
    if face is None:
        return Box((width - limit) // 2, (height - limit) // 2, limit)
    x, y, w, h = face
    side = min(limit, max(1, round(max(w, h) * (1 + 2 * margin))))
    cx, cy = x + w / 2, y + h / 2
    left = int(np.clip(round(cx - side / 2), 0, width - side))
    top = int(np.clip(round(cy - side / 2), 0, height - side))
    return Box(left, top, side)


def crop_face(rgb: np.ndarray, *, detector: FaceDetector) -> Crop:
    """Detect, crop square and resize one RGB image (uint8, H x W x 3)."""
    from PIL import Image

    cfg = detector.config
    face = detector.detect(rgb)
    box = square_box(face, width=rgb.shape[1], height=rgb.shape[0], margin=cfg.margin)
    patch = Image.fromarray(rgb[box.y:box.y + box.side, box.x:box.x + box.side])
    out = np.asarray(patch.resize((cfg.size, cfg.size), Image.Resampling.LANCZOS), dtype=np.uint8)
    return Crop(out, box, face is not None)


def _visible(rel: Path) -> bool:
    return not any(part.startswith(".") for part in rel.parts)


def _select(root: Path, kind: str) -> tuple[list[Path], list[Path]]:
    """(images to crop, side files to copy), relative to ``root``, sorted."""
    images, side = [], []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if not p.is_file() or not _visible(rel):
            continue
        suffix = p.suffix.lower()
        if kind == "rafdb":
            # Only RAF-DB's original photos need cropping; Image/aligned is already aligned.
            if suffix in IMAGE_SUFFIXES and "original" in rel.parts[:-1]:
                images.append(rel)
            elif suffix in SIDE_SUFFIXES and "EmoLabel" in rel.parts[:-1]:
                side.append(rel)
        elif suffix in IMAGE_SUFFIXES:
            images.append(rel)
        elif suffix in SIDE_SUFFIXES:
            side.append(rel)
    if not images:
        where = "*/Image/original/" if kind == "rafdb" else "any folder"
        raise FileNotFoundError(f"{root}: no images found in {where} to prepare")
    return sorted(images), sorted(side)


def _up_to_date(src: Path, dst: Path) -> bool:
    return dst.is_file() and dst.stat().st_mtime_ns >= src.stat().st_mtime_ns



def _save_image(rgb: np.ndarray, dst: Path, *, quality: int) -> None:
    from PIL import Image

    fmt = Image.registered_extensions().get(dst.suffix.lower(), "PNG")
    opts = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    atomic_write_path(dst, lambda tmp: Image.fromarray(rgb).save(tmp, format=fmt, **opts))


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.load()
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"), dtype=np.uint8)


def read_flags(path: Path) -> dict[str, tuple[str, str]]:
    """``no_face.csv`` as {image: (status, detail)}; later rows win (the file is appended to)."""
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {row["image"]: (row["status"], row["detail"]) for row in csv.DictReader(f)}


def _write_flags(path: Path, flags: dict[str, tuple[str, str]]) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["image", "status", "detail"])
            w.writerows([rel, *flags[rel]] for rel in sorted(flags))
    atomic_write_path(path, write)


def default_out(root: Path) -> Path:
    return root.parent / f"{root.name}_cropped"


def prepare_faces(
    root: str | Path,
    *,
    out: str | Path | None = None,
    kind: str = "cfee",
    config: PrepareConfig = PrepareConfig(),
    progress: bool | None = None,
) -> PrepareReport:
    """Crop the faces of every image of ``root`` into the same layout under ``out``.

    Args:
        root: the data set as obtained.
        out: output folder (default ``<root>_cropped`` beside ``root``); not inside ``root``.
        kind: ``"cfee"`` or ``"folder"`` (every image), ``"rafdb"`` (``*/Image/original``
            images and ``EmoLabel`` files; read the result with ``variant="original"``).
        progress: show a progress bar (None: only on a terminal).
    """
    from tqdm import tqdm  # installed with avalanche-lib

    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: use one of {KINDS}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: data set folder does not exist")
    out = Path(out) if out is not None else default_out(root)
    if out.resolve() == root.resolve() or root.resolve() in out.resolve().parents:
        raise ValueError(f"{out}: --out must be outside the data set folder {root}")
    detector = FaceDetector(config)
    images, side = _select(root, kind)

    n_copied = 0
    for rel in side:
        if not _up_to_date(root / rel, out / rel):
            atomic_write_path(out / rel, lambda tmp, src=root / rel: tmp.write_bytes(src.read_bytes()))
            n_copied += 1

    flags_csv = out / FLAGS_FILE
    names = {rel.as_posix() for rel in images}
    flags = {k: v for k, v in read_flags(flags_csv).items() if k in names}  # drop removed sources
    _write_flags(flags_csv, flags)
    written = up_to_date = 0
    try:
        with flags_csv.open("a", newline="", encoding="utf-8") as log_file:
            appender = csv.writer(log_file)
            bar = tqdm(images, desc="faces", unit="img", disable=None if progress is None else not progress)
            for rel in bar:
                src, dst, key = root / rel, out / rel, rel.as_posix()
                if _up_to_date(src, dst):
                    up_to_date += 1
                    continue
                flags.pop(key, None)
                try:
                    rgb = _read_rgb(src)
                except Exception as e:  # PIL raises many types for corrupt files
                    flags[key] = ("unreadable", f"{type(e).__name__}: {e}".splitlines()[0])
                else:
                    crop = crop_face(rgb, detector=detector)
                    if not crop.face_found:
                        b = crop.box
                        flags[key] = ("no_face", f"centre crop x={b.x} y={b.y} side={b.side}")
                    _save_image(crop.image, dst, quality=config.jpeg_quality)
                    written += 1
                if key in flags:
                    # Appended at once so a killed run still leaves the flag on disk.
                    appender.writerow([key, *flags[key]])
                    log_file.flush()
    finally:
        _write_flags(flags_csv, flags)
    statuses = [s for s, _ in flags.values()]
    return PrepareReport(out=out, flags_csv=flags_csv, n_images=len(images), n_written=written,
                         n_up_to_date=up_to_date, n_no_face=statuses.count("no_face"),
                         n_unreadable=statuses.count("unreadable"), n_copied=n_copied)


def cli_prepare(args) -> int:
    """``cfer prepare {cfee,rafdb,folder} --root DIR [--out DIR] [--size PX] [--margin F]``."""
    import sys

    try:
        report = prepare_faces(args.root, out=args.out, kind=args.kind,
                               config=PrepareConfig(size=args.size, margin=args.margin))
    except ImportError as e:
        print(f"cfer prepare: error: {e}", file=sys.stderr)
        return 2
    print(f"prepared {report.n_images} images into {report.out}: {report.n_written} written, "
          f"{report.n_up_to_date} already up to date, {report.n_copied} label/spec files copied; "
          f"{report.n_no_face} with no face found (centre crop) and {report.n_unreadable} unreadable "
          f"are listed in {report.flags_csv}")
    return 0
