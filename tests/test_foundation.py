"""Taxonomy, CFEE file names and reader, subject folds, the image cache, compound_benchmark."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cfer.benchmarks import taxonomy
from cfer.benchmarks.cache import load_images
from cfer.benchmarks.dataset import FaceDataset
from cfer.benchmarks.readers.cfee import load_cfee, parse_cfee_name
from cfer.benchmarks.splits import subject_folds
from tests.conftest import make_tiny_dataset

# --- taxonomy -------------------------------------------------------------------------------

def test_taxonomy_cfee_ids_and_components():
    assert taxonomy.CFEE_IDS[1] == "neutral"
    assert [taxonomy.CFEE_IDS[i] for i in range(2, 8)] == list(taxonomy.BASIC)
    assert taxonomy.CFEE_IDS[8] == "happily surprised"
    assert taxonomy.CFEE_IDS[22] == "awed"
    assert len(taxonomy.CFEE_COMPOUND) == 15
    for name in taxonomy.COMPOUND:
        assert all(b in taxonomy.BASIC for b in taxonomy.components(name))
    assert taxonomy.components("appalled") == ("disgusted", "angry")
    assert taxonomy.components("happy") == ("happy",)
    assert "happily sad" in taxonomy.COMPOUND and "happily sad" not in taxonomy.CFEE_COMPOUND


def test_unknown_class_is_a_clear_error():
    with pytest.raises(ValueError, match="'grumpy' is not in the taxonomy"):
        taxonomy.check_class("grumpy", where="labels.txt")
    with pytest.raises(ValueError, match="not in the taxonomy"):
        FaceDataset(paths=["a.jpg"], labels=[0], class_names=["grumpy"])


# --- CFEE file names and reader -------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("02_017_0003.jpg", (2, 17, 3)),
    ("22_230_0100.JPG", (22, 230, 100)),
    ("01_001_0001.png", (1, 1, 1)),
])
def test_parse_good_names(name, expected):
    assert tuple(parse_cfee_name(name)) == expected


@pytest.mark.parametrize("name", ["2_017_0003.jpg", "02-017-0003.jpg", "02_017.jpg", "xx_017_0003.jpg",
                                  "02_017_0003.gif"])
def test_parse_bad_names_name_the_file(name):
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        parse_cfee_name(name)


def write_cfee_tree(root: Path, *, subjects=(1, 2, 3), ids=range(1, 23), size=8, suffix=".jpg") -> Path:
    rng = np.random.default_rng(0)
    for s in subjects:
        folder = root / f"Group{1 + s % 2}" / f"Images{s}"
        folder.mkdir(parents=True, exist_ok=True)
        for k, eid in enumerate(ids):
            arr = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(arr).save(folder / f"{eid:02d}_{s:03d}_{k + 1:04d}{suffix}")
    return root


def test_cfee_reader_counts_subjects_and_classes(tmp_path):
    root = write_cfee_tree(tmp_path / "CFEE_Database_230")
    (root / "Group1" / "notes.txt").write_text("not an image")
    ds = load_cfee(root)
    assert len(ds) == 3 * 21
    assert ds.class_names == taxonomy.BASIC + taxonomy.CFEE_COMPOUND
    assert set(ds.class_counts().values()) == {3}
    assert sorted(set(ds.subjects.tolist())) == [1, 2, 3]
    with_neutral = load_cfee(root, include_neutral=True)
    assert len(with_neutral) == 3 * 22 and with_neutral.class_names[0] == "neutral"


def test_cfee_reader_id_map_override(tmp_path):
    root = write_cfee_tree(tmp_path / "c", ids=[5, 6])
    ds = load_cfee(root, id_map={5: "happy", 6: "awed"})
    assert ds.class_counts() == {"happy": 3, "awed": 3}


def test_cfee_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cfee(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images found"):
        load_cfee(tmp_path / "empty")
    root = write_cfee_tree(tmp_path / "bad", ids=[2])
    Image.new("RGB", (4, 4)).save(root / "Group1" / "Images2" / "IMG_1234.jpg")
    with pytest.raises(ValueError, match="IMG_1234.jpg: file name does not parse"):
        load_cfee(root)
    root = write_cfee_tree(tmp_path / "unknown_id", ids=[2, 23])
    with pytest.raises(ValueError, match="emotion id 23 is not in the id table"):
        load_cfee(root)
    with pytest.raises(ValueError, match="'grumpy' is not in the taxonomy"):
        load_cfee(root, id_map={2: "happy", 23: "grumpy"})


# --- folds ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fold", range(5))
def test_subject_folds_are_disjoint_and_cover_everyone(fold):
    subjects = np.repeat(np.arange(23), 4)
    train, valid, test = subject_folds(subjects, n_folds=5, fold=fold)
    s_train, s_valid, s_test = (set(subjects[i].tolist()) for i in (train, valid, test))
    assert not (s_train & s_valid) and not (s_train & s_test) and not (s_valid & s_test)
    assert s_train | s_valid | s_test == set(range(23))
    assert len(train) + len(valid) + len(test) == len(subjects)
    assert len(s_test) in (4, 5) and len(s_valid) in (4, 5)


def test_subject_folds_rotate_test_over_all_subjects():
    subjects = np.arange(10)
    tests = [set(subject_folds(subjects, n_folds=5, fold=f)[2].tolist()) for f in range(5)]
    assert set().union(*tests) == set(range(10))


def test_subject_folds_errors():
    with pytest.raises(ValueError, match="cannot make 10 subject-disjoint folds"):
        subject_folds([1, 2, 3], n_folds=10, fold=0)
    with pytest.raises(ValueError, match="fold=5"):
        subject_folds(range(10), n_folds=5, fold=5)


# --- image cache ------------------------------------------------------------------------------

def test_cache_reuse_and_invalidation(tmp_path):
    root = write_cfee_tree(tmp_path / "c", subjects=(1, 2), ids=[2, 3], size=12)
    paths = sorted(root.rglob("*.jpg"))
    cache = tmp_path / "cache"
    first = load_images(paths, size=8, cache_dir=cache)
    assert first.images.shape == (4, 8, 8, 3) and first.ok.all()
    mtime = first.cache_file.stat().st_mtime_ns
    second = load_images(paths, size=8, cache_dir=cache)
    assert second.cache_file == first.cache_file
    assert second.cache_file.stat().st_mtime_ns == mtime  # reused, not rewritten
    np.testing.assert_array_equal(first.images, second.images)

    # A changed source image gives a new key (never the stale array).
    Image.fromarray(np.full((12, 12, 3), 255, np.uint8)).save(paths[0])
    os.utime(paths[0], ns=(mtime + 10**9, mtime + 10**9))
    third = load_images(paths, size=8, cache_dir=cache)
    assert third.cache_file != first.cache_file
    assert third.images[0].min() > 240

    # A corrupt cache file is rebuilt, not trusted.
    third.cache_file.write_bytes(b"garbage")
    fourth = load_images(paths, size=8, cache_dir=cache)
    np.testing.assert_array_equal(fourth.images, third.images)
    # A tampered array with the right shape fails its digest and is rebuilt.
    np.save(third.cache_file, np.zeros_like(third.images))
    fifth = load_images(paths, size=8, cache_dir=cache)
    np.testing.assert_array_equal(fifth.images, third.images)


def test_corrupt_images_are_reported_and_skipped(tmp_path, caplog):
    from cfer.benchmarks import compound_benchmark

    root = write_cfee_tree(tmp_path / "c", subjects=range(1, 7), ids=[2, 3, 4, 5, 6, 7, 8, 9], size=12)
    bad = root / "Group2" / "Images1" / "08_001_0007.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    decoded = load_images(sorted(root.rglob("*.jpg")), size=8, cache_dir=tmp_path / "cache")
    assert [p for p, _ in decoded.failed] == [str(bad)]
    ds = load_cfee(root)
    with caplog.at_level("WARNING"):
        bm = compound_benchmark(ds, image_size=8, n_folds=3, cache_dir=tmp_path / "cache")
    assert str(bad) in caplog.text
    assert [p for p, _ in bm.info.failed_images] == [str(bad)]
    total = sum(len(e.dataset) for s in (bm.train_stream, bm.valid_stream, bm.test_stream) for e in s)
    assert total == len(ds) - 1


def test_missing_image_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="gone.jpg: image file does not exist"):
        load_images([tmp_path / "gone.jpg"], size=8, use_cache=False)


# --- benchmark ------------------------------------------------------------------------------

def test_experience_composition_follows_class_order():
    from cfer.benchmarks import compound_benchmark

    ds, images = make_tiny_dataset(compounds=taxonomy.CFEE_COMPOUND[:4])
    order = ["sadly fearful", "happily surprised", "sadly angry", "happily disgusted"]
    bm = compound_benchmark(ds, class_order=order, images=images, image_size=16, n_folds=3)
    assert bm.info.class_names == taxonomy.BASIC + tuple(order)
    assert len(bm.train_stream) == 5
    assert sorted(bm.train_stream[0].classes_in_this_experience) == list(range(6))
    for i, exp in enumerate(list(bm.train_stream)[1:], start=6):
        assert list(exp.classes_in_this_experience) == [i]
        assert set(exp.dataset.targets) == {i}
    for stream in (bm.valid_stream, bm.test_stream):
        assert [sorted(e.classes_in_this_experience) for e in stream] == \
            [sorted(e.classes_in_this_experience) for e in bm.train_stream]
    # Labels travel: every image of 'sadly fearful' is labelled 6 inside the benchmark.
    x, y, t = bm.test_stream[1].dataset[0]
    assert y == 6 and t == 0 and x.shape == (3, 16, 16)


def test_seeded_orders_are_reproducible_and_differ():
    from cfer.benchmarks import class_orders, compound_benchmark

    ds, images = make_tiny_dataset(compounds=taxonomy.CFEE_COMPOUND)
    a = compound_benchmark(ds, seed=1, images=images, image_size=16, n_folds=3).info.class_order
    b = compound_benchmark(ds, seed=1, images=images, image_size=16, n_folds=3).info.class_order
    c = compound_benchmark(ds, seed=2, images=images, image_size=16, n_folds=3).info.class_order
    assert a == b and a != c and sorted(a) == sorted(c) == sorted(taxonomy.CFEE_COMPOUND)
    assert [tuple(o) for o in class_orders(ds, [1, 2])] == [a, c]


def test_benchmark_splits_are_subject_disjoint():
    from cfer.benchmarks import compound_benchmark

    ds, images = make_tiny_dataset(n_subjects=9)
    bm = compound_benchmark(ds, images=images, image_size=16, n_folds=3, fold=2)
    subj = {k: set(ds.subjects[v].tolist()) for k, v in bm.info.split_indices.items()}
    assert not (subj["train"] & subj["valid"]) and not (subj["train"] & subj["test"])
    assert not (subj["valid"] & subj["test"])
    assert subj["test"] == {6, 7, 8} and subj["valid"] == {0, 1, 2}
    assert sum(len(e.dataset) for e in bm.test_stream) == bm.info.split_sizes["test"]
    sizes = bm.info.split_sizes
    assert sizes["train"] + sizes["valid"] + sizes["test"] == len(ds)
    assert sizes["test"] == sizes["valid"] == 3 * len(ds.class_names)


def test_benchmark_errors():
    from cfer.benchmarks import compound_benchmark

    ds, images = make_tiny_dataset()
    with pytest.raises(ValueError, match=r"class_order: \['awed'\] not among"):
        compound_benchmark(ds, class_order=["awed"], images=images, image_size=16, n_folds=3)
    with pytest.raises(ValueError, match="images: expected uint8"):
        compound_benchmark(ds, images=images[:, :8], image_size=16, n_folds=3)
