"""Action-unit region masks of the synthetic faces: where the renderer draws, exported by
`cfer synth` and loaded at the model's size through the cache module."""

from __future__ import annotations

import numpy as np
import pytest

from cfer.benchmarks.readers.cfee import load_cfee
from cfer.benchmarks.synthetic_faces.action_units import AU_NAMES, AU_TABLE
from cfer.benchmarks.synthetic_faces.config import SyntheticConfig
from cfer.benchmarks.synthetic_faces.masks import (
    AU_MASKS,
    AU_REGIONS,
    load_region_masks,
    read_au_masks,
    region_masks,
)
from cfer.benchmarks.synthetic_faces.render import _render
from cfer.benchmarks.synthetic_faces.subjects import random_subject
from cfer.benchmarks.synthetic_faces.writer import synthetic, write_synthetic
from cfer.benchmarks.taxonomy import CFEE_IDS

SMALL = dict(subjects=3, size=64)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("au") / "set", seed=0, workers=1, **SMALL)


def _unit_mask(masks: np.ndarray, au: int) -> np.ndarray:
    """The pixels of the regions that hold ``au``, from a bit-field mask."""
    out = np.zeros(masks.shape, dtype=bool)
    for bit, (_, units) in enumerate(AU_REGIONS.items()):
        if au in units:
            out |= ((masks >> bit) & 1).astype(bool)
    return out


def test_every_unit_draws_inside_its_regions():
    # Render each AU alone against the same face with no AU, with the same random stream (same
    # pose, light and noise): the pixels the AU changes must lie in the regions said to hold it.
    cfg = SyntheticConfig()
    assert sorted({a for units in AU_REGIONS.values() for a in units}) == sorted(AU_NAMES)
    for k in range(4):
        subject = random_subject(np.random.default_rng(k), cfg)
        rest = {a: 0.0 for a in AU_NAMES}
        off, _ = _render(subject, rest, size=64, rng=np.random.default_rng(1), config=cfg)
        for au in AU_NAMES:
            on, canvas = _render(subject, {**rest, au: 1.0}, size=64, rng=np.random.default_rng(1),
                                     config=cfg)
            change = np.abs(on.astype(float) - off).sum(axis=-1)
            inside = _unit_mask(region_masks(canvas, subject, size=64), au)
            assert change.sum() > 0, au
            share = (change * inside).sum() / change.sum()
            assert share >= 0.7, f"AU {au} ({AU_NAMES[au]}) of subject {k}: {share:.2f} inside"
            assert inside.mean() < 0.35, au  # a region, not the whole picture


def test_synth_writes_one_mask_per_image_and_the_active_units(small_set):
    masks = read_au_masks(small_set)
    ds = load_cfee(small_set, include_neutral=True)
    assert sorted(masks.paths) == sorted(p.relative_to(small_set).as_posix() for p in ds.paths)
    assert masks.masks.shape == (len(ds), 64, 64) and masks.masks.dtype == np.uint8
    assert masks.regions == tuple(AU_REGIONS) and masks.units == tuple(AU_NAMES)
    active = masks.active_regions()
    col = {a: j for j, a in enumerate(masks.units)}
    for i, rel in enumerate(masks.paths):
        name = dict(CFEE_IDS)[int(rel.rsplit("/", 1)[1][:2])]
        on = {a for a in masks.units if masks.active[i, col[a]]}
        assert set(AU_TABLE[name].primary) <= on <= AU_TABLE[name].all
        want = [bool(on & set(units)) for units in AU_REGIONS.values()]
        assert active[i].tolist() == want
        if name == "neutral":
            assert not active[i].any()
    # Faces differ (pose, identity), so the masks do too.
    assert len({m.tobytes() for m in masks.masks}) > len(masks.masks) // 2


def test_masks_at_the_model_size_keep_their_area(small_set):
    ds = load_cfee(small_set)
    full = load_region_masks(ds.paths[:10], size=64)
    half = load_region_masks(ds.paths[:10], size=32)
    assert full.masks.shape == (10, len(AU_REGIONS), 64, 64) and half.masks.shape[-2:] == (32, 32)
    assert np.array_equal(full.active, half.active)
    assert np.abs(full.masks.mean(axis=(2, 3)) - half.masks.mean(axis=(2, 3))).max() < 0.02
    expr = half.expression_masks()
    assert expr.shape == (10, 32, 32) and expr.any(axis=(1, 2)).all()  # every expression has an active AU


def test_images_without_masks_are_one_line_errors(small_set, tmp_path):
    stray = tmp_path / "02_001_0001.jpg"
    stray.write_bytes(next(small_set.rglob("*.jpg")).read_bytes())
    with pytest.raises(FileNotFoundError, match="02_001_0001.jpg: not an image of a generated") as e:
        load_region_masks([stray], size=32)
    assert "\n" not in str(e.value)


def test_a_set_generated_before_masks_existed_is_regenerated_with_the_same_pictures(tmp_path):
    root = write_synthetic(tmp_path / "set", seed=0, workers=1, **SMALL)
    before = {p.relative_to(root): p.read_bytes() for p in root.rglob("*.jpg")}
    (root / AU_MASKS).unlink()
    with pytest.raises(FileNotFoundError, match="au_masks.npz: no action-unit masks"):
        read_au_masks(root)
    ds = synthetic(root=root, **SMALL)
    assert (root / AU_MASKS).is_file() and len(ds) == 3 * 21
    assert {p.relative_to(root): p.read_bytes() for p in root.rglob("*.jpg")} == before
    # Masks of other regions (an older generator) are replaced too.
    np.savez_compressed(root / AU_MASKS, regions=np.array(["brows", "jaw"]))
    synthetic(root=root, **SMALL)
    assert read_au_masks(root).regions == tuple(AU_REGIONS)
    assert {p.relative_to(root): p.read_bytes() for p in root.rglob("*.jpg")} == before
