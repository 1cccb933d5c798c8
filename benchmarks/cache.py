"""Decoded-image cache: decode and resize each image once, keep a uint8 array.

The array lives in ``<cache_dir>/<key>.npy`` beside ``<key>.json``. The key
hashes the source paths, their sizes and modification times and the target
size, so any change of the source makes a new key. The JSON holds a digest
of the array bytes; a cache file whose digest, shape or dtype does not match
is rebuilt, never trusted. Files are written to a temporary name and
renamed, so an interrupted write leaves no half file behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfer.core.atomic import atomic_write

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return Path(os.environ.get("CFER_CACHE", Path.home() / ".cache" / "cfer"))


@dataclass(frozen=True)
class DecodedImages:
    """Decoded images (N, H, W, 3) uint8, and the paths that failed to decode."""

    images: np.ndarray
    ok: np.ndarray  # bool per source path
    failed: tuple[tuple[str, str], ...]  # (path, reason)
    cache_file: Path | None


#: Pillow modes whose pixels are 8 bits a channel (or fewer): ``convert("RGB")`` is exact.
EIGHT_BIT_MODES = frozenset({"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr"})


class UnreadableImage(ValueError):
    """An image whose pixels cannot be turned into 8-bit RGB without guessing."""


def _eight_bit(im):
    """``im`` as an 8-bit Pillow image. 16-bit greyscale (``I;16*``: 16-bit PNG and TIFF) is
    scaled by 255/65535; Pillow's own ``convert`` would clip it to white. 32-bit integer
    (``I``) and float (``F``) pixels have no known range and are refused."""
    from PIL import Image

    if im.mode in EIGHT_BIT_MODES:
        return im
    if im.mode.startswith("I;16"):
        wide = np.asarray(im).astype(np.uint32)
        return Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8), mode="L")
    kind = {"I": "32-bit integer", "F": "floating-point"}.get(im.mode, "unsupported")
    raise UnreadableImage(f"mode {im.mode} ({kind} pixels of unknown range); save it as 8- or 16-bit")


def _decode(path: Path, size: int) -> np.ndarray:
    from PIL import Image, ImageOps  # Pillow is imported only when decoding

    with Image.open(path) as im:
        im.load()
        im = _eight_bit(ImageOps.exif_transpose(im)).convert("RGB")
        # Face crops are square; non-square images are centre-cropped to square.
        im = ImageOps.fit(im, (size, size), method=Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def available_memory() -> int | None:
    """Bytes of memory a new allocation can get: Linux's ``MemAvailable`` (free memory plus the
    page cache it can drop), else the physical memory; None when the system does not say."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(n: int, size: int) -> None:
    """Refuse (one line) a decoded array of ``n`` images of ``size`` px that this machine's
    available memory cannot hold, before allocating it (numpy would fail with a traceback,
    or the kernel kill the process, only once pages are touched)."""
    need = n * size * size * 3
    free = available_memory()
    if free is None:  # unknown: numpy's own MemoryError then
        return
    if need > free:
        raise ValueError(f"decoding {n} images at {size} px needs {need / 2**30:.1f} GiB of memory, "
                         f"more than the {free / 2**30:.1f} GiB available; lower benchmark.image_size")


def cache_key(paths: Sequence[Path], size: int) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(f"v2|{size}|".encode())  # v2: 16-bit images scaled, not clipped
    for p in paths:
        st = Path(p).stat()
        h.update(f"{Path(p).resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _digest(arr: np.ndarray) -> str:
    return hashlib.blake2b(memoryview(np.ascontiguousarray(arr)).cast("B"), digest_size=16).hexdigest()



def _try_load(npy: Path, meta: Path, n: int, size: int):
    try:
        info = json.loads(meta.read_text())
        arr = np.load(npy, allow_pickle=False)
        ok = np.asarray(info["ok"], dtype=bool)
        if arr.dtype != np.uint8 or arr.shape != (n, size, size, 3) or ok.shape != (n,):
            raise ValueError("shape mismatch")
        if _digest(arr) != info["digest"]:
            raise ValueError("digest mismatch")
        return arr, ok, tuple(tuple(x) for x in info["failed"])
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
        log.warning("image cache %s is unusable (%s); rebuilding it", npy, e)
        return None


def load_images(
    paths: Sequence[str | Path],
    *,
    size: int,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    workers: int | None = None,
) -> DecodedImages:
    """Decode ``paths`` to a (N, size, size, 3) uint8 array, through the cache.

    Images that cannot be decoded get an all-zero slot and ``ok=False``; their
    paths and reasons are returned in ``failed`` so the caller reports them.
    """
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: image file does not exist")
    n = len(paths)
    cache_file = None
    if use_cache:
        cdir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        key = cache_key(paths, size)
        cache_file, meta = cdir / f"{key}.npy", cdir / f"{key}.json"
        if cache_file.exists() and meta.exists():
            loaded = _try_load(cache_file, meta, n, size)
            if loaded is not None:
                return DecodedImages(loaded[0], loaded[1], loaded[2], cache_file)

    check_memory(n, size)
    images = np.zeros((n, size, size, 3), dtype=np.uint8)
    ok = np.ones(n, dtype=bool)
    failed: list[tuple[str, str]] = []

    def work(i: int):
        try:
            images[i] = _decode(paths[i], size)
        except Exception as e:  # PIL raises many types for corrupt files
            ok[i] = False
            failed.append((str(paths[i]), f"{type(e).__name__}: {e}".splitlines()[0]))

    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(work, range(n)))
    failed.sort()
    if use_cache and cache_file is not None:
        atomic_write(cache_file, lambda f: np.save(f, images, allow_pickle=False))
        info = {"digest": _digest(images), "ok": ok.tolist(), "failed": failed,
                "size": size, "n": n}
        atomic_write(meta, lambda f: f.write(json.dumps(info).encode()))
    return DecodedImages(images, ok, tuple(failed), cache_file)
