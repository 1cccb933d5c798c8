"""RAF-DB, RAF-CE and class-per-folder readers on small fake trees in each published layout."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cfer.benchmarks.dataset import concat
from cfer.benchmarks.readers.folder import load_folder, parse_folder_spec
from cfer.benchmarks.readers.rafce import RAFCE_LABELS, load_rafce, load_rafce_stream
from cfer.benchmarks.readers.rafdb import RAFDB_BASIC, RAFDB_COMPOUND, load_rafdb, load_rafdb_stream
from cfer.benchmarks.taxonomy import BASIC, NEUTRAL

RNG = np.random.default_rng(0)


def write_image(path: Path, size: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)


def write_rafdb_part(root: Path, part: str, counts: dict[int, tuple[int, int]], *,
                     variants=("aligned",), messy: bool = True) -> list[str]:
    """RAF-DB layout for one part; counts: label -> (n_train, n_test). Returns the label lines.
    ``messy`` writes CRLF line ends, runs of spaces and blank lines, as some copies have."""
    lines, n = [], {"train": 0, "test": 0}
    for label, (n_train, n_test) in counts.items():
        for split, k in (("train", n_train), ("test", n_test)):
            for _ in range(k):
                n[split] += 1
                name = f"{split}_{n[split]:05d}.jpg" if part == "basic" else f"{split}_{n[split]:04d}.jpg"
                lines.append(f"{name} {label}")
                for v in variants:
                    fname = name.replace(".jpg", "_aligned.jpg") if v == "aligned" else name
                    write_image(root / part / "Image" / v / fname)
    label_file = root / part / "EmoLabel" / "list_patition_label.txt"
    label_file.parent.mkdir(parents=True, exist_ok=True)
    if messy:
        text = "\r\n".join(f"  {ln.replace(' ', '   ')}  " if i % 3 == 0 else ln
                           for i, ln in enumerate(lines))
        text = "\r\n\r\n" + text.replace("\r\n", "\r\n\r\n", 2) + "\r\n\r\n"
    else:
        text = "\n".join(lines) + "\n"
    label_file.write_bytes(text.encode())
    return lines


BASIC_COUNTS = {1: (3, 1), 2: (2, 1), 3: (2, 2), 4: (4, 1), 5: (2, 1), 6: (3, 1), 7: (2, 1)}
COMPOUND_COUNTS = {k: (2 + k % 2, 1) for k in RAFDB_COMPOUND}


@pytest.fixture
def rafdb_root(tmp_path):
    root = tmp_path / "RAF-DB"
    write_rafdb_part(root, "basic", BASIC_COUNTS)
    write_rafdb_part(root, "compound", COMPOUND_COUNTS)
    return root


def test_rafdb_basic_counts_partition_and_label_mapping(rafdb_root):
    ds = load_rafdb(rafdb_root, part="basic")
    want = {RAFDB_BASIC[k]: a + b for k, (a, b) in BASIC_COUNTS.items() if k != 7}
    assert ds.class_counts() == want
    assert ds.class_names == BASIC  # taxonomy order, neutral dropped by default
    assert Counter(ds.partition.tolist()) == {"train": 16, "test": 7}
    assert ds.subjects is None and ds.skipped == () and ds.name == "rafdb-basic"
    # label 1 is surprise: the first listed image, train_00001, is surprised
    first = ds.paths.index(rafdb_root / "basic/Image/aligned/train_00001_aligned.jpg")
    assert ds.class_names[ds.labels[first]] == "surprised"
    for p, part in zip(ds.paths, ds.partition):
        assert p.name.startswith(part + "_") and p.name.endswith("_aligned.jpg")

    with_neutral = load_rafdb(rafdb_root, part="basic", include_neutral=True)
    assert with_neutral.class_names == BASIC + (NEUTRAL,)
    assert with_neutral.class_counts()[NEUTRAL] == 3


def test_rafdb_compound_and_original_variant(tmp_path):
    root = tmp_path / "raf"
    write_rafdb_part(root, "compound", COMPOUND_COUNTS, variants=("original",), messy=False)
    ds = load_rafdb(root, part="compound", variant="original")
    assert ds.class_counts() == {RAFDB_COMPOUND[k]: a + b for k, (a, b) in COMPOUND_COUNTS.items()}
    assert all(p.parent == root / "compound/Image/original" for p in ds.paths)
    assert all(not p.stem.endswith("_aligned") for p in ds.paths)
    with pytest.raises(FileNotFoundError, match=r"Image/aligned: RAF-DB image folder does not exist"):
        load_rafdb(root, part="compound")


def _label_file(root, part="basic"):
    return root / part / "EmoLabel" / "list_patition_label.txt"


def test_rafdb_errors_name_the_file_and_line(tmp_path, rafdb_root):
    with pytest.raises(FileNotFoundError,
                       match=r"list_patition_label.txt: RAF-DB basic label file does not exist"):
        load_rafdb(tmp_path, part="basic")
    with pytest.raises(FileNotFoundError, match="RAF-DB root folder does not exist"):
        load_rafdb(tmp_path / "nope")
    with pytest.raises(ValueError, match="part='both'"):
        load_rafdb(rafdb_root, part="both")

    lf = _label_file(rafdb_root)
    good = lf.read_bytes()
    lf.write_bytes(b"train_00001.jpg 1\r\n\r\ntest_00001.jpg 8\r\n")
    with pytest.raises(ValueError, match=r"list_patition_label.txt:3: label 8 out of range 1..7 "
                                         r"\(line 'test_00001.jpg 8'\)"):
        load_rafdb(rafdb_root)
    lf.write_bytes(b"train_00001.jpg 1\ntrain_00002.jpg\n")
    with pytest.raises(ValueError, match=r":2: expected '<image> <label>', got 'train_00002.jpg'"):
        load_rafdb(rafdb_root)
    lf.write_bytes(b"train_00001.jpg one\n")
    with pytest.raises(ValueError, match=r":1: 'one' is not an integer"):
        load_rafdb(rafdb_root)
    lf.write_bytes(b"train_00001.jpg 1\ntrain_00001.jpg 2\n")
    with pytest.raises(ValueError, match=r":2: train_00001.jpg is listed twice \(first at line 1\)"):
        load_rafdb(rafdb_root)
    lf.write_bytes(b"valid_00001.jpg 1\n")
    with pytest.raises(ValueError, match=r":1: valid_00001.jpg: cannot tell its partition"):
        load_rafdb(rafdb_root)
    lf.write_bytes(b"\r\n  \r\n")
    with pytest.raises(ValueError, match="label file lists no images"):
        load_rafdb(rafdb_root)
    lf.write_bytes(good)


def test_rafdb_missing_image_is_named_or_skipped_with_a_count(rafdb_root, caplog):
    gone = [rafdb_root / "basic/Image/aligned/test_00002_aligned.jpg",
            rafdb_root / "basic/Image/aligned/train_00005_aligned.jpg"]
    for p in gone:
        p.unlink()
    with pytest.raises(FileNotFoundError) as err:
        load_rafdb(rafdb_root)
    msg = str(err.value)
    assert msg.startswith(f"{gone[1]}: image listed in {_label_file(rafdb_root)}:")
    assert "2 listed images missing in all" in msg and "skip_missing" in msg

    with caplog.at_level(logging.WARNING):
        ds = load_rafdb(rafdb_root, skip_missing=True)
    assert len(ds) == 21 and len(ds.skipped) == 2
    assert sorted(p for p, _ in ds.skipped) == sorted(str(p) for p in gone)
    assert "skipping 2 listed images" in caplog.text
    assert not set(gone) & set(ds.paths)
    # The stream carries the skipped list on to the benchmark's dataset description.
    assert load_rafdb_stream(rafdb_root, skip_missing=True).describe()["skipped"] == 2


def test_rafdb_stream_builds_a_benchmark(rafdb_root):
    from cfer.benchmarks import compound_benchmark

    ds = load_rafdb_stream(rafdb_root)
    assert ds.name == "rafdb" and len(ds.class_names) == 6 + 11
    assert ds.class_counts()["sadly angry"] == sum(COMPOUND_COUNTS[4])
    images = RNG.integers(0, 256, (len(ds), 8, 8, 3), dtype=np.uint8)
    bm = compound_benchmark(ds, images=images, image_size=8, seed=3)
    assert len(bm.train_stream) == 12 and bm.info.n_basic == 6
    idx = bm.info.split_indices
    # official test partition is the test split; validation is held out of train
    assert set(idx["test"].tolist()) == set(np.flatnonzero(ds.partition == "test").tolist())
    assert set(idx["valid"].tolist()) <= set(np.flatnonzero(ds.partition == "train").tolist())
    assert not set(idx["valid"].tolist()) & set(idx["train"].tolist())
    again = compound_benchmark(ds, images=images, image_size=8, seed=3).info.split_indices
    assert np.array_equal(again["valid"], idx["valid"])


def test_rafdb_stream_through_real_files_and_cache(rafdb_root, tmp_path):
    from cfer.benchmarks import compound_benchmark

    ds = load_rafdb_stream(rafdb_root)
    bm = compound_benchmark(ds, image_size=8, cache_dir=tmp_path / "cache", seed=0)
    assert bm.info.failed_images == ()
    assert sum(len(e.dataset) for e in bm.test_stream) == int((ds.partition == "test").sum())
    assert list((tmp_path / "cache").glob("*.npy"))


# ---------------------------------------------------------------- RAF-CE

def write_rafce(root: Path, counts: dict[int, tuple[int, int, int]], *, label_file="RAFCE_emolabel.txt",
                partition_file="RAFCE_partition.txt", image_dir="aligned", suffix="_aligned") -> None:
    """RAF-CE layout; counts: label (0-based) -> (n_train, n_test, n_valid)."""
    labels, parts, n = [], [], 0
    for label, per_split in counts.items():
        for part_id, k in enumerate(per_split):
            for _ in range(k):
                n += 1
                labels.append(f"{n:04d}.jpg {label}")
                parts.append(f"{n:04d}.jpg {part_id}")
                write_image(root / image_dir / f"{n:04d}{suffix}.jpg")
    # the partition file may list more images than are labelled (RAF-AU's list)
    parts.append(f"{n + 1:04d}.jpg 0")
    (root / label_file).write_bytes(("\r\n".join(labels) + "\r\n").encode())
    (root / partition_file).write_text("\n".join(parts) + "\n\n")


RAFCE_COUNTS = {k: (2 + k % 3, 1, 1) for k in RAFCE_LABELS}


def test_rafce_counts_partition_and_labels(tmp_path):
    write_rafce(tmp_path, RAFCE_COUNTS)
    ds = load_rafce(tmp_path)
    assert ds.class_counts() == {RAFCE_LABELS[k]: sum(v) for k, v in RAFCE_COUNTS.items()}
    assert len(ds.class_names) == 14 and {"happily fearful", "happily sad"} <= set(ds.class_names)
    n_train = sum(v[0] for v in RAFCE_COUNTS.values())
    assert Counter(ds.partition.tolist()) == {"train": n_train, "test": 14, "valid": 14}
    # 0001.jpg has label 0 (happily surprised) and partition 0 (train)
    i = ds.paths.index(tmp_path / "aligned/0001_aligned.jpg")
    assert ds.class_names[ds.labels[i]] == "happily surprised" and ds.partition[i] == "train"
    # label 0: 0001-0002 train (0), 0003 test (1), 0004 validation (2)
    parts = [ds.partition[ds.paths.index(tmp_path / f"aligned/000{k}_aligned.jpg")] for k in (2, 3, 4)]
    assert parts == ["train", "test", "valid"]
    assert load_rafce(tmp_path, partition_file=None).partition is None


def test_rafce_file_names_are_configurable(tmp_path):
    write_rafce(tmp_path, {12: (2, 1, 0), 13: (1, 1, 1)}, label_file="labels.txt",
                partition_file="split.txt", image_dir="faces", suffix="")
    ds = load_rafce(tmp_path, label_file="labels.txt", partition_file="split.txt",
                    variant="original", image_dir="faces")
    assert ds.class_counts() == {"happily fearful": 3, "happily sad": 3}


def test_rafce_errors_name_the_line(tmp_path):
    write_rafce(tmp_path, {0: (1, 1, 1)})
    with pytest.raises(FileNotFoundError, match="labels.txt: RAF-CE label file does not exist"):
        load_rafce(tmp_path, label_file="labels.txt")
    lab, part = tmp_path / "RAFCE_emolabel.txt", tmp_path / "RAFCE_partition.txt"
    lab.write_text("0001.jpg 0\n0002.jpg 14\n")
    with pytest.raises(ValueError, match=r"RAFCE_emolabel.txt:2: label 14 out of range 0..13"):
        load_rafce(tmp_path)
    lab.write_text("0001.jpg 0\n")
    part.write_text("0001.jpg 3\n")
    with pytest.raises(ValueError, match=r"RAFCE_partition.txt:1: partition 3 out of range 0..2"):
        load_rafce(tmp_path)
    part.write_text("0002.jpg 0\n")
    with pytest.raises(ValueError,
                       match=r"no partition line for 0001.jpg \(labelled at .*RAFCE_emolabel.txt:1\)"):
        load_rafce(tmp_path)
    part.write_text("0001.jpg 0\n")
    (tmp_path / "aligned/0001_aligned.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"0001_aligned.jpg: image listed in .*RAFCE_emolabel.txt:1"):
        load_rafce(tmp_path)


def test_rafce_stream_with_rafdb_basic_builds_a_benchmark(tmp_path, rafdb_root):
    from cfer.benchmarks import compound_benchmark

    write_rafce(tmp_path / "RAF-CE", RAFCE_COUNTS)
    ds = load_rafce_stream(tmp_path / "RAF-CE", rafdb_root=rafdb_root, seed=1)
    assert ds.class_names[:6] == BASIC and len(ds.class_names) == 20
    basic = np.isin(ds.labels, range(6))
    # RAF-DB basic gets a seeded validation split from its train partition
    assert Counter(ds.partition[basic].tolist()) == {"train": 10, "valid": 6, "test": 7}
    images = RNG.integers(0, 256, (len(ds), 8, 8, 3), dtype=np.uint8)
    bm = compound_benchmark(ds, images=images, image_size=8, seed=0)
    assert len(bm.train_stream) == 15 and len(bm.valid_stream) == 15
    valid = set(np.flatnonzero(ds.partition == "valid").tolist())
    assert set(bm.info.split_indices["valid"].tolist()) == valid
    # plain concat (no validation for the basic part) fails clearly in compound_benchmark
    plain = concat(load_rafdb(rafdb_root), load_rafce(tmp_path / "RAF-CE"))
    with pytest.raises(ValueError, match="valid split has no images of"):
        compound_benchmark(plain, images=images, image_size=8)


# ---------------------------------------------------------------- class-per-folder

FOLDER_SPEC = """
name: my_faces
basic: [happiness, sad, fear, angry, surprise, Disgusted]
compound:
  happily_surprised: [surprised, happy]
  Sadly-Angry:
  awe: {name: awed, components: [fearful, surprised]}
subject: '(?P<subject>S\\d+)_'
"""


def write_folder_tree(root: Path, folders, *, subjects=("S01", "S02", "S03", "S04"), per=1) -> None:
    for f in folders:
        for s in subjects:
            for k in range(per):
                write_image(root / f / f"{s}_{k}.png")


FOLDERS = ["happiness", "sad", "fear", "angry", "surprise", "Disgusted", "happily_surprised",
           "Sadly-Angry", "awe"]


def test_folder_reader_counts_names_and_subjects(tmp_path):
    root = tmp_path / "faces"
    write_folder_tree(root, FOLDERS)
    write_image(root / "awe" / "S05" / "S05_0.jpg")  # nested folder: still read
    write_image(root / "contempt" / "S01_0.png")  # not in the spec: left out
    (root / "awe" / "notes.txt").write_text("not an image")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(FOLDER_SPEC)
    ds = load_folder(root, spec_file)
    assert ds.name == "my_faces"
    assert ds.class_names == BASIC + ("happily surprised", "sadly angry", "awed")
    counts = ds.class_counts()
    assert counts["awed"] == 5 and all(counts[c] == 4 for c in ds.class_names if c != "awed")
    assert sorted(set(ds.subjects.tolist())) == ["S01", "S02", "S03", "S04", "S05"]
    i = ds.paths.index(root / "fear" / "S03_0.png")
    assert ds.class_names[ds.labels[i]] == "fearful" and ds.subjects[i] == "S03"
    assert ds.partition is None
    # the same spec as a dict, without subjects
    import yaml

    spec = yaml.safe_load(FOLDER_SPEC)
    del spec["subject"], spec["name"]
    plain = load_folder(root, spec)
    assert plain.subjects is None and plain.name == "faces" and len(plain) == len(ds)


def test_folder_subject_regex_group_rules(tmp_path):
    write_image(tmp_path / "happy" / "p7" / "x.jpg")
    write_image(tmp_path / "sad" / "id-12-a.jpg")
    ds = load_folder(tmp_path, {"basic": ["happy"], "subject": r"(?P<subject>p\d+)/x"})  # named group
    assert ds.subjects.tolist() == ["p7"]
    ds = load_folder(tmp_path, {"basic": ["happy"], "subject": r"p\d+"})  # no group: whole match
    assert ds.subjects.tolist() == ["p7"]
    ds = load_folder(tmp_path, {"basic": ["sad"], "subject": r"id-(\d+)"})  # group 1
    assert ds.subjects.tolist() == ["12"]


def test_folder_benchmark_is_subject_independent(tmp_path):
    from cfer.benchmarks import compound_benchmark

    root = tmp_path / "faces"
    write_folder_tree(root, FOLDERS, subjects=[f"S{i:02d}" for i in range(6)])
    (tmp_path / "spec.yaml").write_text(FOLDER_SPEC)
    ds = load_folder(root, tmp_path / "spec.yaml")
    images = RNG.integers(0, 256, (len(ds), 8, 8, 3), dtype=np.uint8)
    bm = compound_benchmark(ds, images=images, image_size=8, n_folds=3, fold=1)
    assert len(bm.train_stream) == 4
    subj = {k: set(ds.subjects[v].tolist()) for k, v in bm.info.split_indices.items()}
    assert not subj["train"] & subj["test"] and not subj["valid"] & subj["test"]
    assert not subj["train"] & subj["valid"]


@pytest.mark.parametrize("spec, error, match", [
    ({"compound": {"happily_surprised": ["happy", "sad"]}}, ValueError,
     r"compound\['happily_surprised'\]: components \['happy', 'sad'\] disagree with the taxonomy: "
     r"'happily surprised' is happy \+ surprised"),
    ({"basic": ["happy", "contempt"]}, ValueError,
     r"basic\['contempt'\]: class 'contempt' is not in the taxonomy"),
    ({"compound": ["happy"]}, ValueError, r"'happy' is not a compound expression"),
    ({"basic": ["sadly_angry"]}, ValueError, r"'sadly angry' is not a basic expression"),
    ({"basic": ["happy"], "subjects": "x"}, ValueError, r"unknown keys \['subjects'\]"),
    ({"basic": {"happy": "happy", "joy": "happy"}}, ValueError,
     r"folders 'happy' and 'joy' both map to 'happy'"),
    ({"basic": ["happy"], "subject": "(unclosed"}, ValueError,
     r"'subject' is not a valid regular expression"),
    ({}, ValueError, "names no class folders"),
    ({"basic": "happy"}, ValueError, "'basic' must be a list of folders or a mapping"),
    ({"compound": {"awe": {"name": "awed", "parts": []}}}, ValueError, r"unknown keys \['parts'\]"),
])
def test_folder_spec_errors(spec, error, match):
    with pytest.raises(error, match=match):
        parse_folder_spec(spec)


def test_folder_tree_errors(tmp_path):
    write_image(tmp_path / "happy" / "S1_a.jpg")
    (tmp_path / "sad").mkdir()
    with pytest.raises(FileNotFoundError, match=r"angry: class folder named in the spec does not exist"):
        load_folder(tmp_path, {"basic": ["happy", "angry"]})
    with pytest.raises(ValueError, match=r"sad: class folder holds no images"):
        load_folder(tmp_path, {"basic": ["happy", "sad"]})
    with pytest.raises(ValueError,
                       match=r"S1_a.jpg: subject expression '\^P\(\\d\+\)' does not match 'S1_a.jpg'"):
        load_folder(tmp_path, {"basic": ["happy"], "subject": r"^P(\d+)"})
    with pytest.raises(FileNotFoundError, match="spec.yaml: folder spec file does not exist"):
        load_folder(tmp_path, tmp_path / "spec.yaml")
    (tmp_path / "bad.yaml").write_text("basic: [happy\n")
    with pytest.raises(ValueError, match=r"bad.yaml: not valid YAML"):
        load_folder(tmp_path, tmp_path / "bad.yaml")
