"""`cfer prepare`: Haar face crop on a real photograph, no-face images, resuming, layouts."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from PIL import Image

from cfer.benchmarks.prepare import Box, PrepareConfig, prepare_faces, read_flags, square_box
from cfer.experiments.cli import main as cfer

# Eyes, nose and mouth of the astronaut in skimage.data.astronaut() (512 x 512), by eye:
# x 190..260, y 90..160. The canvas puts the photograph at (PHOTO_X, PHOTO_Y).
FACE = (190, 90, 260, 160)
PHOTO_X, PHOTO_Y = 600, 300


def _save(path, rgb, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, **kw)


def astronaut_canvas(seed: int = 0) -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    rng = np.random.default_rng(seed)
    canvas = rng.integers(0, 256, (1000, 1400, 3), dtype=np.uint8)
    canvas[PHOTO_Y:PHOTO_Y + 512, PHOTO_X:PHOTO_X + 512] = data.astronaut()
    return canvas


def no_face_images(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"noise": rng.integers(0, 256, (300, 420, 3), dtype=np.uint8),
            "flat": np.full((240, 160, 3), 128, dtype=np.uint8)}


def test_square_box_geometry():
    assert square_box(None, width=300, height=200, margin=0.2) == Box(50, 0, 200)
    assert square_box((100, 50, 40, 60), width=300, height=200, margin=0.25) == Box(75, 35, 90)
    # near the border: moved inside, same side
    assert square_box((0, 0, 40, 40), width=300, height=200, margin=0.5) == Box(0, 0, 80)
    # too big for the image: shrunk to the shorter side
    assert square_box((10, 10, 180, 180), width=300, height=200, margin=0.5) == Box(0, 0, 200)


def test_crop_contains_the_face_of_a_real_photograph():
    pytest.importorskip("cv2")
    from cfer.benchmarks.prepare import FaceDetector, crop_face

    canvas = astronaut_canvas()
    crop = crop_face(canvas, detector=FaceDetector(PrepareConfig(size=64)))
    assert crop.face_found and crop.image.shape == (64, 64, 3)
    x0, y0, x1, y1 = FACE[0] + PHOTO_X, FACE[1] + PHOTO_Y, FACE[2] + PHOTO_X, FACE[3] + PHOTO_Y
    b = crop.box
    assert b.x <= x0 and b.y <= y0 and b.x + b.side >= x1 and b.y + b.side >= y1
    # a face crop, not the whole canvas or the whole photograph
    assert b.side < 300


def test_prepare_cfee_tree_crops_flags_and_resumes(tmp_path, capsys):
    pytest.importorskip("cv2")
    root, out = tmp_path / "CFEE", tmp_path / "CFEE_cropped"
    _save(root / "g1/Images1/02_001_0001.jpg", astronaut_canvas(), quality=90)
    faceless = no_face_images()
    _save(root / "g1/Images1/03_001_0001.jpg", faceless["noise"])
    _save(root / "g2/Images2/04_002_0001.png", faceless["flat"])
    (root / "g2/Images2/05_002_0001.jpg").write_bytes(b"not a JPEG")

    assert cfer(["prepare", "cfee", "--root", str(root), "--out", str(out), "--size", "48"]) == 0
    said = capsys.readouterr().out
    assert "prepared 4 images" in said and "3 written" in said and "2 with no face" in said
    for rel in ("g1/Images1/02_001_0001.jpg", "g1/Images1/03_001_0001.jpg", "g2/Images2/04_002_0001.png"):
        with Image.open(out / rel) as im:
            assert im.size == (48, 48)
    assert not (out / "g2/Images2/05_002_0001.jpg").exists()
    flags = read_flags(out / "no_face.csv")
    assert {k: v[0] for k, v in flags.items()} == {
        "g1/Images1/03_001_0001.jpg": "no_face", "g2/Images2/04_002_0001.png": "no_face",
        "g2/Images2/05_002_0001.jpg": "unreadable"}
    # the no-face output is the centre crop: the 160 x 240 grey image stays uniform grey
    assert np.abs(np.asarray(Image.open(out / "g2/Images2/04_002_0001.png"), dtype=int) - 128).max() <= 1
    # the cropped tree reads with the CFEE reader
    from cfer.benchmarks.readers.cfee import load_cfee

    assert len(load_cfee(out)) == 3

    # resume: nothing up to date is redone, flags are kept
    before = (out / "g1/Images1/02_001_0001.jpg").stat().st_mtime_ns
    again = prepare_faces(root, out=out, config=PrepareConfig(size=48), progress=False)
    assert (again.n_written, again.n_up_to_date, again.n_no_face, again.n_unreadable) == (0, 3, 2, 1)
    assert (out / "g1/Images1/02_001_0001.jpg").stat().st_mtime_ns == before
    assert read_flags(out / "no_face.csv") == flags

    # a source newer than its output is redone; replacing it with a face clears its flag
    src = root / "g1/Images1/03_001_0001.jpg"
    _save(src, astronaut_canvas(seed=5), quality=90)
    newer = (out / "g1/Images1/03_001_0001.jpg").stat().st_mtime_ns + 1_000_000_000
    os.utime(src, ns=(newer, newer))
    third = prepare_faces(root, out=out, config=PrepareConfig(size=48), progress=False)
    assert (third.n_written, third.n_up_to_date, third.n_no_face) == (1, 2, 1)
    assert "g1/Images1/03_001_0001.jpg" not in read_flags(out / "no_face.csv")


def test_prepare_rafdb_crops_originals_and_copies_labels(tmp_path):
    pytest.importorskip("cv2")
    from cfer.benchmarks.readers.rafdb import load_rafdb

    root, out = tmp_path / "RAF-DB", tmp_path / "out"
    lines = []
    for i, (split, label) in enumerate([("train", 4), ("train", 1), ("test", 5)], start=1):
        name = f"{split}_{i:05d}.jpg"
        lines.append(f"{name} {label}")
        _save(root / "basic/Image/original" / name, no_face_images(seed=i)["noise"])
        _save(root / "basic/Image/aligned" / name.replace(".jpg", "_aligned.jpg"),
              np.zeros((10, 10, 3), np.uint8))
    (root / "basic/EmoLabel").mkdir(parents=True)
    (root / "basic/EmoLabel/list_patition_label.txt").write_text("\n".join(lines) + "\n")
    (root / "basic/Annotation").mkdir()
    (root / "basic/Annotation/train_00001_boundingbox.txt").write_text("1 2 3 4")

    report = prepare_faces(root, out=out, kind="rafdb", config=PrepareConfig(size=32), progress=False)
    assert (report.n_images, report.n_written, report.n_copied, report.n_no_face) == (3, 3, 1, 3)
    assert not (out / "basic/Image/aligned").exists() and not (out / "basic/Annotation").exists()
    ds = load_rafdb(out, variant="original")
    assert ds.class_counts() == {"happy": 1, "sad": 1, "surprised": 1}


def test_prepare_errors(tmp_path, monkeypatch, capsys):
    pytest.importorskip("cv2")
    root = tmp_path / "data"
    _save(root / "happy/a.png", no_face_images()["flat"])
    with pytest.raises(ValueError, match="must be outside the data set folder"):
        prepare_faces(root, out=root / "cropped")
    with pytest.raises(FileNotFoundError, match=r"no images found in \*/Image/original/"):
        prepare_faces(root, out=tmp_path / "o", kind="rafdb")
    with pytest.raises(ValueError, match="margin=-0.1"):
        PrepareConfig(margin=-0.1)
    assert cfer(["prepare", "folder", "--root", str(tmp_path / "absent")]) == 2
    assert "absent: data set folder does not exist" in capsys.readouterr().err
    # default --out: beside the root
    assert prepare_faces(root, kind="folder", progress=False).out == tmp_path / "data_cropped"
    assert (tmp_path / "data_cropped/happy/a.png").is_file()


def test_missing_opencv_is_a_one_line_install_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    _save(tmp_path / "d/happy/a.png", no_face_images()["flat"])
    assert cfer(["prepare", "folder", "--root", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install -e .[faces]" in err
