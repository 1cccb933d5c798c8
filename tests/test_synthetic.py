"""The built-in synthetic face set: determinism, CFEE layout, subjects, AU table, safety, reuse."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from cfer.benchmarks.readers.cfee import load_cfee, parse_cfee_name
from cfer.benchmarks.synthetic_faces import writer
from cfer.benchmarks.synthetic_faces.action_units import AU_NAMES, AU_TABLE
from cfer.benchmarks.synthetic_faces.config import MANIFEST, SyntheticConfig
from cfer.benchmarks.synthetic_faces.render import render_face
from cfer.benchmarks.synthetic_faces.subjects import action_units, random_subject
from cfer.benchmarks.synthetic_faces.writer import synthetic, write_synthetic
from cfer.benchmarks.taxonomy import BASIC, CFEE_COMPOUND, CFEE_IDS, NEUTRAL, components

SMALL = dict(subjects=3, size=64)


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*.jpg"))}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("syn") / "set", seed=0, workers=1, **SMALL)


def test_same_seed_same_bytes_any_workers_other_seed_differs(small_set, tmp_path):
    again = write_synthetic(tmp_path / "again", seed=0, workers=2, **SMALL)
    other = write_synthetic(tmp_path / "other", seed=1, workers=1, **SMALL)
    first = _files(small_set)
    assert first == _files(again)
    assert first.keys() == _files(other).keys()
    assert all(first[k] != v for k, v in _files(other).items())


def test_cfee_layout_read_by_load_cfee(small_set):
    ds = load_cfee(small_set)
    assert ds.class_names == BASIC + CFEE_COMPOUND
    assert len(ds) == 3 * 21
    for s in (1, 2, 3):  # one image per subject and class
        assert sorted(ds.labels[ds.subjects == s].tolist()) == list(range(21))
    with_neutral = load_cfee(small_set, include_neutral=True)
    assert with_neutral.class_names == (NEUTRAL,) + BASIC + CFEE_COMPOUND
    assert with_neutral.class_counts()[NEUTRAL] == 3
    numbers = []
    for p, label, subject in zip(with_neutral.paths, with_neutral.labels, with_neutral.subjects):
        rel = p.relative_to(small_set)
        assert rel.parts[0].startswith("Group") and rel.parts[1].startswith("Images") and len(rel.parts) == 3
        name = parse_cfee_name(p)
        assert CFEE_IDS[name.emotion_id] == with_neutral.class_names[label] and name.subject == subject
        numbers.append(name.number)
    assert sorted(numbers) == list(range(1, 3 * 22 + 1))  # running numbers, no clash
    manifest = json.loads((small_set / MANIFEST).read_text())
    assert (manifest["subjects"], manifest["size"], manifest["seed"], manifest["n_images"]) == (3, 64, 0, 66)


def test_images_are_rgb_of_the_requested_size(small_set):
    from PIL import Image

    path = next(small_set.rglob("*.jpg"))
    with Image.open(path) as im:
        assert im.size == (64, 64) and im.mode == "RGB"


def _render(subject_index, expression, image_seed, *, seed=0):
    config = SyntheticConfig()
    ident, _ = np.random.SeedSequence(seed, spawn_key=(subject_index,)).spawn(2)
    subject = random_subject(np.random.default_rng(ident), config)
    rng = np.random.default_rng(image_seed)
    au = action_units(expression, subject, rng, config)
    return render_face(subject, au, size=64, rng=rng, config=config).astype(np.float32)


def test_subjects_differ_more_than_noise():
    same = np.abs(_render(0, "happy", 1) - _render(0, "happy", 2)).mean()
    for other in (1, 2, 3):
        between = np.abs(_render(0, "happy", 1) - _render(other, "happy", 1)).mean()
        assert between > 2 * same, (other, between, same)


def test_expression_changes_the_face_of_one_subject():
    neutral, surprised = _render(0, NEUTRAL, 1), _render(0, "surprised", 1)
    assert np.abs(neutral - surprised).mean() > 1.0


def test_au_table_compounds_combine_their_components():
    assert set(AU_TABLE) == set(CFEE_IDS.values())
    for pattern in AU_TABLE.values():
        assert pattern.all <= set(AU_NAMES)
        assert not set(pattern.primary) & set(pattern.secondary)
    for compound in CFEE_COMPOUND:
        union = set().union(*(AU_TABLE[b].all for b in components(compound)))
        assert set(AU_TABLE[compound].primary) <= union, compound
        for basic in components(compound):
            assert AU_TABLE[compound].all & AU_TABLE[basic].all, (compound, basic)
    # the close ones share their primary AUs (Du et al.: brow lowerer + upper lip raiser)
    assert {4, 10} <= set(AU_TABLE["appalled"].primary) & set(AU_TABLE["hatred"].primary)
    assert {4, 10} <= set(AU_TABLE["angrily disgusted"].primary)


def test_rendered_compound_uses_aus_of_both_components():
    config = SyntheticConfig(leak=0.0, secondary_prob=1.0)
    rng = np.random.default_rng(0)
    subject = random_subject(rng, config)
    for compound in CFEE_COMPOUND:
        active = {a for a, v in action_units(compound, subject, rng, config).items() if v > 0}
        assert active == AU_TABLE[compound].all
        for basic in components(compound):
            assert active & AU_TABLE[basic].all, (compound, basic)
    none = action_units(NEUTRAL, subject, rng, config)
    assert not any(none.values())


def test_refuses_a_foreign_non_empty_folder(tmp_path):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        write_synthetic(foreign, workers=1, **SMALL)
    assert [p.name for p in foreign.iterdir()] == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]  # no temp folder left


def test_bad_parameters_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="size=32"):
        write_synthetic(tmp_path / "a", subjects=3, size=32)
    with pytest.raises(ValueError, match="subjects=0"):
        write_synthetic(tmp_path / "a", subjects=0, size=64)
    assert not (tmp_path / "a").exists()


def test_interrupted_run_leaves_nothing_behind(tmp_path, monkeypatch):
    def fail(job):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer, "_write_subject", fail)
    with pytest.raises(KeyboardInterrupt):
        write_synthetic(tmp_path / "out", workers=1, **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_replaces_a_previous_synthetic_output(tmp_path):
    out = write_synthetic(tmp_path / "out", seed=0, workers=1, subjects=2, size=64)
    write_synthetic(out, seed=5, workers=1, subjects=1, size=64)
    assert json.loads((out / MANIFEST).read_text())["seed"] == 5
    assert len(list(out.rglob("*.jpg"))) == 22
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_synthetic_generates_once_then_reuses(tmp_path, monkeypatch):
    monkeypatch.setenv("CFER_CACHE", str(tmp_path / "cache"))
    ds = synthetic(**SMALL)
    root = tmp_path / "cache" / "synthetic" / "s3_px64_seed0"
    assert ds.root == root and ds.name == "synthetic" and len(ds) == 63
    stamp = (root / MANIFEST).stat().st_mtime_ns

    def no_regeneration(*args, **kwargs):
        raise AssertionError("synthetic() regenerated an existing data set")

    monkeypatch.setattr(writer, "write_synthetic", no_regeneration)
    again = synthetic(**SMALL, include_neutral=True)
    assert len(again) == 66 and NEUTRAL in again.class_names
    assert (root / MANIFEST).stat().st_mtime_ns == stamp


def test_synthetic_regenerates_when_parameters_differ(tmp_path):
    root = write_synthetic(tmp_path / "s", seed=0, workers=1, subjects=2, size=64)
    ds = synthetic(root=root, seed=1, subjects=2, size=64)
    assert json.loads((root / MANIFEST).read_text())["seed"] == 1 and len(ds) == 42


def test_cfer_synth_command(tmp_path, capsys):
    from cfer.experiments.cli import main

    assert main(["synth", "--out", str(tmp_path / "s"), "--subjects", "2", "--size", "64"]) == 0
    out = capsys.readouterr().out
    assert "44 images" in out and str(tmp_path / "s") in out and re.search(r" in \d+\.\d s$", out.strip())
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "x.txt").write_text("x")
    assert main(["synth", "--out", str(tmp_path / "foreign"), "--size", "64"]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and len(err.strip().splitlines()) == 1
