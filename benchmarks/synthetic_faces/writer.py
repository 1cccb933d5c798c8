"""Writing the synthetic set in the CFEE layout (:func:`write_synthetic`, ``cfer synth``),
with its action-unit masks and manifest, and reading it back (:func:`synthetic`)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from cfer.benchmarks.cache import default_cache_dir
from cfer.benchmarks.readers.cfee import load_cfee
from cfer.benchmarks.synthetic_faces.action_units import AU_NAMES
from cfer.benchmarks.synthetic_faces.config import (
    GENERATOR_VERSION,
    MANIFEST,
    SIZE,
    SUBJECTS,
    SyntheticConfig,
)
from cfer.benchmarks.synthetic_faces.masks import AU_MASKS, AU_REGIONS, masks_current, region_masks
from cfer.benchmarks.synthetic_faces.render import _render
from cfer.benchmarks.synthetic_faces.subjects import action_units, active_units, random_subject
from cfer.benchmarks.taxonomy import CFEE_IDS
from cfer.core.lifetime import die_with_parent

log = logging.getLogger(__name__)

#: The largest image side generated (pixels): a larger one is a typo that would fill the disk.
MAX_SIZE = 1024


def _expressions() -> list[tuple[int, str]]:
    return sorted(CFEE_IDS.items())


def _relpath(subject_id: int, emotion_id: int, number: int) -> Path:
    group, block = (subject_id - 1) // 100 + 1, (subject_id - 1) // 10 + 1
    return Path(f"Group{group}") / f"Images{block}" / f"{emotion_id:02d}_{subject_id:03d}_{number:04d}.jpg"


def _write_subject(job: tuple) -> int:
    """Render and write every image of one subject (runs in a worker process)."""
    from PIL import Image

    root, index, seed, size, config = job
    config = SyntheticConfig(**config)
    # Subject ``index`` always gets the same stream, whatever the number of subjects.
    ident, images = np.random.SeedSequence(seed, spawn_key=(index,)).spawn(2)
    subject = random_subject(np.random.default_rng(ident), config)
    exprs = _expressions()
    k = config.images_per_expression
    img_seeds = images.spawn(len(exprs) * k)
    paths, masks, active = [], [], []
    for e, (eid, name) in enumerate(exprs):
        for r in range(k):
            rng = np.random.default_rng(img_seeds[e * k + r])
            arr, canvas = _render(subject, action_units(name, subject, rng, config), size=size, rng=rng,
                                  config=config)
            number = (index * len(exprs) + e) * k + r + 1
            rel = _relpath(index + 1, eid, number)
            path = Path(root) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(path, quality=config.jpeg_quality)
            paths.append(rel.as_posix())
            masks.append(region_masks(canvas, subject, size=size))
            on = active_units(name, subject)
            active.append([a in on for a in AU_NAMES])
    return paths, np.stack(masks), np.asarray(active, dtype=bool)


def _write_masks(path: Path, parts: list[tuple]) -> None:
    """One :data:`AU_MASKS` file from the workers' (paths, masks, active) parts."""
    np.savez_compressed(path, paths=np.array([p for part in parts for p in part[0]]),
                        masks=np.concatenate([part[1] for part in parts]),
                        active=np.concatenate([part[2] for part in parts]),
                        units=np.array(list(AU_NAMES)), regions=np.array(list(AU_REGIONS)))


def _read_manifest(root: Path) -> dict | None:
    try:
        info = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("generator") == "cfer-synthetic" else None


def _generated_files(info: dict) -> set[str] | None:
    """The files (relative POSIX paths) a generation with manifest ``info`` wrote: the manifest,
    the masks and every image; None when the manifest does not say enough to tell."""
    try:
        subjects, per = int(info["subjects"]), int(info["config"]["images_per_expression"])
    except (KeyError, TypeError, ValueError):
        return None
    exprs = _expressions()
    files = {MANIFEST, AU_MASKS}
    for index in range(subjects):
        for e, (eid, _) in enumerate(exprs):
            for r in range(per):
                files.add(_relpath(index + 1, eid, (index * len(exprs) + e) * per + r + 1).as_posix())
    return files


def foreign_files(root: Path) -> list[str]:
    """Files under ``root`` that no synthetic generation wrote there (all of them when it holds
    no manifest): what replacing the folder would destroy."""
    ours = _generated_files(_read_manifest(root) or {}) or set()
    return sorted(rel for p in root.rglob("*") if not p.is_dir()
                  and (rel := p.relative_to(root).as_posix()) not in ours)


def _params(subjects: int, size: int, seed: int, config: SyntheticConfig) -> dict:
    return {"version": GENERATOR_VERSION, "subjects": subjects, "size": size, "seed": seed,
            "config": json.loads(json.dumps(asdict(config)))}


def write_synthetic(out: str | Path, *, subjects: int = SUBJECTS, size: int = SIZE, seed: int = 0,
                    config: SyntheticConfig | None = None, workers: int | None = None) -> Path:
    """Generate the synthetic set into ``out`` (CFEE layout) and return ``out``.

    Images are written into a hidden temporary folder beside ``out`` and
    renamed into place at the end, so an interrupted run leaves no half data
    set. A previous synthetic output in ``out`` is replaced if the folder holds
    nothing else; a folder holding any file the generator did not write is refused.

    Args:
        subjects: number of subjects (1..999; CFEE has 230).
        size: image side in pixels (>= 64).
        seed: generator seed (>= 0); subject i is the same for every ``subjects``.
        config: rendering knobs (difficulty); default :class:`SyntheticConfig`.
        workers: processes rendering subjects in parallel (default: CPU count).
    """
    out = Path(out)
    config = (config or SyntheticConfig()).check()
    n_expr = len(_expressions())
    if not 1 <= subjects <= 999:
        raise ValueError(f"subjects={subjects}: must be in 1..999 (CFEE file names have 3 digits)")
    if not 64 <= size <= MAX_SIZE:
        raise ValueError(f"size={size}: must be in 64..{MAX_SIZE} pixels")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed={seed}: must be in 0..{2**32 - 1}")
    total = subjects * n_expr * config.images_per_expression
    if total > 9999:
        raise ValueError(f"{total} images do not fit CFEE's 4-digit running number; use fewer subjects")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    previous = out.is_dir() and any(out.iterdir())
    if previous and _read_manifest(out) is None:
        raise ValueError(f"{out}: folder is not empty and holds no synthetic data set ({MANIFEST}); "
                         "choose another folder")
    others = foreign_files(out) if previous else []
    if others:  # replacing the folder would delete them
        more = f" and {len(others) - 3} more" if len(others) > 3 else ""
        raise ValueError(f"{out}: holds a synthetic data set and files it did not write "
                         f"({', '.join(others[:3])}{more}); move them out or choose another folder")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        start = time.perf_counter()
        jobs = [(str(tmp), i, seed, size, asdict(config)) for i in range(subjects)]
        n_workers = min(workers or os.cpu_count() or 1, subjects)
        if n_workers > 1:
            # Workers die with this process: a killed `cfer synth` leaves none rendering.
            with ProcessPoolExecutor(max_workers=n_workers, initializer=die_with_parent,
                                     initargs=(os.getpid(),)) as pool:
                parts = list(pool.map(_write_subject, jobs, chunksize=max(1, subjects // (4 * n_workers))))
        else:
            parts = list(map(_write_subject, jobs))
        _write_masks(tmp / AU_MASKS, parts)
        written = sum(len(part[0]) for part in parts)
        manifest = {"generator": "cfer-synthetic", **_params(subjects, size, seed, config),
                    "n_images": written, "n_expressions": n_expr, "au_masks": AU_MASKS,
                    "seconds": round(time.perf_counter() - start, 2)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        if out.is_dir():
            old = out.parent / f"{tmp.name}.old"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def default_root(*, subjects: int = SUBJECTS, size: int = SIZE, seed: int = 0) -> Path:

    return default_cache_dir() / "synthetic" / f"s{subjects}_px{size}_seed{seed}"


def synthetic(*, root: str | Path | None = None, subjects: int = SUBJECTS, size: int = SIZE, seed: int = 0,
              include_neutral: bool = False, config: SyntheticConfig | None = None):
    """The synthetic set as a :class:`~cfer.benchmarks.dataset.FaceDataset`.

    Generated into ``root`` (default ``<cache>/synthetic/s{subjects}_px{size}_seed{seed}``)
    unless a generation with the same parameters is already there.
    """

    config = (config or SyntheticConfig()).check()
    root = Path(root) if root is not None else default_root(subjects=subjects, size=size, seed=seed)
    info = _read_manifest(root)
    want = _params(subjects, size, seed, config)
    other = {k: info.get(k) for k in ("subjects", "size", "seed")} if info else None
    if other and other != {k: want[k] for k in other}:
        # Said, not silent: another config may use the set that is replaced (write_synthetic
        # refuses when the folder holds any file it did not write).
        have = ", ".join(f"{k} {v}" for k, v in other.items())
        log.warning("%s holds the synthetic faces of %s; replacing them with %s", root, have,
                    ", ".join(f"{k} {want[k]}" for k in other))
    # Sets generated before the masks existed (or with other regions) get them by regenerating:
    # the pictures come out the same.
    if info is None or {k: info.get(k) for k in want} != want or not masks_current(root):
        log.info("generating the synthetic data set into %s", root)
        write_synthetic(root, subjects=subjects, size=size, seed=seed, config=config)
        info = _read_manifest(root)
    ds = load_cfee(root, include_neutral=include_neutral, name="synthetic")
    expected = info["n_images"] // info["n_expressions"] * (info["n_expressions"] - (not include_neutral))
    if len(ds) != expected:
        raise ValueError(f"{root}: holds {len(ds)} images but {MANIFEST} promises {expected}; "
                         "delete the folder to regenerate it")
    return ds


def cli_synth(args) -> int:
    """``cfer synth --out DIR [--subjects N] [--size PX] [--seed S]``."""
    start = time.perf_counter()
    for flag, value, low, high in (("--subjects", args.subjects, 1, 999), ("--size", args.size, 64, MAX_SIZE),
                                   ("--seed", args.seed, 0, 2**32 - 1)):
        if not low <= value <= high:  # named as the user typed it
            raise ValueError(f"{flag} {value}: must be in {low}..{high}")
    out = write_synthetic(args.out, subjects=args.subjects, size=args.size, seed=args.seed)
    n = _read_manifest(out)["n_images"]
    print(f"wrote {n} images ({args.subjects} subjects, {args.size} px, seed {args.seed}) and their "
          f"action-unit masks ({AU_MASKS}) to {out} in {time.perf_counter() - start:.1f} s")
    return 0
