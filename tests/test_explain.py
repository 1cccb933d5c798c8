"""Grad-CAM (`cfer explain`): the scores, the maps of real models, the action-unit ground truth,
and the command on a tiny finished run."""

from __future__ import annotations

import functools
import json
import sys

import numpy as np
import pytest

from cfer.core import attribution_scores as S

# --- the scores (pure numpy) ------------------------------------------------------------------


def test_similarity_scores_on_maps_with_known_answers():
    a = np.zeros((8, 8))
    a[1:3, 1:3] = 1.0
    b = np.zeros((8, 8))
    b[5:7, 5:7] = 1.0
    assert S.pearson(a, a)[0] == pytest.approx(1.0)
    assert S.pearson(a, b)[0] < 0
    assert S.top_mass_iou(a, a)[0] == 1.0 and S.top_mass_iou(a, b)[0] == 0.0
    # The top-20% region of a map holding mass 0.5, 0.3, 0.2 is its first pixel only.
    c = np.zeros((1, 5))
    c[0, :3] = [0.5, 0.3, 0.2]
    assert S.top_mass_region(c, mass=0.2)[0].tolist() == [[True, False, False, False, False]]
    assert S.top_mass_region(c, mass=0.6)[0, 0, :3].tolist() == [True, True, False]
    assert S.union(a, b)[0].sum() == pytest.approx(1.0) and (S.union(a, b)[0] > 0).sum() == 8


def test_mask_scores_and_chance_level():
    cam = np.zeros((2, 4, 4))
    cam[0, 0, 0] = 3.0  # all mass in the mask's corner
    cam[1] = 1.0  # spread evenly
    mask = np.zeros((2, 4, 4), dtype=bool)
    mask[:, :2, :2] = True
    assert S.mask_share(cam, mask).tolist() == [1.0, 0.25]
    assert S.area_share(mask).tolist() == [0.25, 0.25]  # an even map scores the chance level
    assert S.pointing_hit(cam[:1], mask[:1]).tolist() == [1.0]
    cam[0] = 0.0
    cam[0, 3, 3] = 1.0
    assert S.pointing_hit(cam, mask)[0] == 0.0


def test_a_map_without_mass_has_no_score():
    empty = np.zeros((1, 4, 4))
    mask = np.ones((1, 4, 4), dtype=bool)
    for score in (S.mask_share(empty, mask), S.pointing_hit(empty, mask), S.pearson(empty, empty),
                  S.top_mass_iou(empty, empty)):
        assert np.isnan(score[0])
    assert S.union(empty, np.ones((1, 4, 4)))[0].sum() == pytest.approx(1.0)  # it adds nothing
    with pytest.raises(ValueError, match="mask_share: masks of shape"):
        S.mask_share(np.ones((1, 4, 4)), np.ones((1, 3, 3), dtype=bool))


def test_the_sign_flip_test_is_exact_and_says_when_it_cannot_reject():
    from cfer.experiments.report.gradcam_section import _verdict

    five = S.sign_flip_test([0.3, 0.2, 0.5, 0.1, 0.4], np.zeros(5))
    assert five["p"] == five["min_p"] == 1 / 32 and five["diff"] == pytest.approx(0.3) and five["above"] == 1
    # One face below its null (sum 0.7): a sign vector reaches it when the magnitudes it flips
    # sum to 0.4 or less: {}, {.1}, {.2}, {.3}, {.4}, {.1, .2}, {.1, .3}, 7 of 32.
    assert S.sign_flip_test([0.3, 0.2, 0.5, 0.1, -0.4], np.zeros(5))["p"] == 7 / 32
    many = S.sign_flip_test(np.linspace(0.1, 1, 40), np.zeros(40), flips=999)
    assert many["p"] == many["min_p"] == 1 / 1000
    flat = S.sign_flip_test(np.ones(30), np.ones(30), flips=999)
    assert flat["diff"] == 0 and flat["p"] == 1 and flat["above"] == 0.5
    assert np.isnan(S.sign_flip_test([np.nan], [0.0])["p"] or np.nan)
    three = S.sign_flip_test([0.3, 0.2, 0.5], np.zeros(3))
    assert _verdict([three]) == "untestable (n)" and _verdict([five]) == "yes"
    assert _verdict([five, S.sign_flip_test([0.3, 0.2, 0.5, 0.1, -0.4], np.zeros(5))]) == "no"
    # Five faces of one subject are one unit: no p below 1/2, whatever the faces say.
    one = S.sign_flip_test([0.3, 0.2, 0.5, 0.1, 0.4], np.zeros(5), clusters=[7] * 5)
    assert one["units"] == 1 and one["p"] == one["min_p"] == 0.5 and one["n"] == 5
    two = S.sign_flip_test([0.3, 0.2, 0.5, 0.1, -0.4], np.zeros(5), clusters=[1, 1, 2, 2, 2])
    assert two["units"] == 2 and two["p"] == 1 / 4  # unit sums 0.5 and 0.2: both up only
    hits = S.pointing_chance_test([1, 1, 0], [0.5, 0.5, 0.5])
    assert hits["p"] == 0.5 and hits["min_p"] == 0.125  # P(2 or 3 hits of 3 at 1/2)


# --- maps of real models on synthetic faces -------------------------------------------------

BASIC = ("happy", "surprised", "sad", "angry")  # large, well-separated action units
COMPOUND = ("happily surprised", "sadly angry")  # each with two of BASIC, and two non-components
CLASSES = BASIC + COMPOUND
PX = 64  # the small CNN's Grad-CAM layer: 8x8 cells, the minimum for region scores
EPOCHS = 10  # measured: 8 epochs on 14 subjects, or 48 px, separate the scores only weakly


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """Synthetic faces of CLASSES at PX px: (train x, train y, test x, test y, test RegionMasks,
    test subjects). 12 subjects train, 8 are held out: 8 units for the tests' sign flips."""
    from cfer.benchmarks.cache import load_images
    from cfer.benchmarks.readers.cfee import load_cfee
    from cfer.benchmarks.synthetic_faces.config import SyntheticConfig
    from cfer.benchmarks.synthetic_faces.masks import load_region_masks
    from cfer.benchmarks.synthetic_faces.writer import write_synthetic
    from cfer.experiments.explain.gradcam import normalised_batch

    root = write_synthetic(tmp_path_factory.mktemp("faces") / "set", subjects=20, size=64, seed=0,
                           workers=1, config=SyntheticConfig(images_per_expression=2))
    ds = load_cfee(root, include_neutral=True)
    ds = ds.subset([i for i, lab in enumerate(ds.labels) if ds.class_names[lab] in CLASSES])
    x = normalised_batch(load_images(ds.paths, size=PX, use_cache=False).images)
    y = np.array([CLASSES.index(ds.class_names[lab]) for lab in ds.labels])
    subjects = np.asarray(ds.subjects)
    test = subjects > 12  # subjects 13-20 are held out
    masks = load_region_masks([p for p, s in zip(ds.paths, test) if s], size=PX)
    return x[~test], y[~test], x[test], y[test], masks, subjects[test]


def _small_cnn(*, seed: int):
    import torch

    from cfer.strategies.models import ModelConfig, build_model

    torch.manual_seed(seed)
    return build_model(ModelConfig(name="small_cnn", weights="none"), n_classes=len(CLASSES))


@pytest.fixture(scope="module")
def trained(faces):
    """A small CNN trained for a few epochs on the faces (a plain loop: the test needs a model
    that sees the units, not a continual run)."""
    import torch

    x, y = faces[0], torch.as_tensor(faces[1])
    model = _small_cnn(seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(EPOCHS):
        for idx in torch.randperm(len(x), generator=gen).split(16):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


def _maps(model, x, y):
    from cfer.experiments.explain.gradcam import gradcam, load_model
    from cfer.strategies.models import ModelConfig
    from cfer.strategies.models.registry import gradcam_layer

    loaded = load_model(ModelConfig(name="small_cnn"), model.state_dict(), device="cpu", where="test")
    return gradcam(loaded, x, y, layer=gradcam_layer("small_cnn"))


def test_maps_of_a_trained_model_are_finite_varied_and_input_sized(faces, trained):
    maps = _maps(trained, faces[2], faces[3])
    assert maps.shape == (len(faces[2]), PX, PX) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and (maps >= 0).all()
    assert (maps.reshape(len(maps), -1).std(axis=1) > 0).mean() > 0.8


@functools.cache
def _random_models() -> tuple:
    from cfer.experiments.explain.gradcam import random_models
    from cfer.strategies.models import ModelConfig

    return tuple(random_models(ModelConfig(name="small_cnn"), n_classes=len(CLASSES), device="cpu",
                               seeds=(1001, 1002, 1003)))


def _random_maps(x, y):
    """(R, N, H, W): the maps of the small CNN with fresh random weights (3 seeds)."""
    from cfer.experiments.explain.gradcam import gradcam
    from cfer.strategies.models.registry import gradcam_layer

    return np.stack([gradcam(m, x, y, layer=gradcam_layer("small_cnn")) for m in _random_models()])


def test_the_action_unit_score_of_a_trained_model_beats_randomised_weights(faces, trained):
    import torch

    from cfer.experiments.explain.nulls import run_test

    x, y, masks = faces[2], faces[3], faces[4].expression_masks()
    with torch.no_grad():
        assert (trained(x).argmax(1).numpy() == y).mean() > 0.35  # it learnt the classes (chance: 1/6)
    maps = _maps(trained, x, y)
    t = run_test("share", maps, masks, groups=y, clusters=faces[5],
                 map_nulls={"random_weights": _random_maps(x, y)})
    rw = t["nulls"]["random_weights"]
    assert rw["p"] < 0.05 and rw["diff"] > 0.05, rw  # the model randomisation test (Adebayo et al.)
    assert len(rw["draws"]) == 3 and max(rw["draws"]) < t["observed"]


def _class_maps(model, faces, *, random: bool = True):
    """ClassMaps of each compound class of ``faces``, the basic maps from the same ``model`` (a
    model trained on every class at once: an offline method's one model)."""
    from cfer.benchmarks.taxonomy import components
    from cfer.experiments.explain.nulls import ClassMaps, component_masks

    x, y, regions = faces[2], faces[3], faces[4]
    out = {}
    for c in COMPOUND:
        sel = np.flatnonzero(y == CLASSES.index(c))
        k, comps = len(sel), components(c)
        region = type(regions)(regions.masks[sel], regions.active[sel], regions.regions)
        out[c] = ClassMaps(
            components=comps, learnt=1, compound={1: _maps(model, x[sel], [CLASSES.index(c)] * k)},
            basic={b: _maps(model, x[sel], [CLASSES.index(b)] * k) for b in BASIC},
            random=_random_maps(x[sel], [CLASSES.index(c)] * k),
            random_basic={b: _random_maps(x[sel], [CLASSES.index(b)] * k) for b in comps},
            expression=region.expression_masks(),
            component_masks={b: component_masks(region, b) for b in comps}, subjects=faces[5][sel])
    return out


def test_a_trained_models_overlap_beats_each_of_its_nulls(faces, trained):
    """The compound map looks where the components' maps look, far more than the maps of two
    non-component classes, of other faces, of random weights, a mean map or a centred prior."""
    from cfer.experiments.explain.nulls import method_tests

    tests = method_tests(_class_maps(trained, faces), last=1, offline=True, cells=(8, 8), au=True)
    assert "drift_pearson_last" not in tests  # one model: nothing can drift
    r = tests["overlap_pearson_learnt"]
    assert r["n"] == 32 and set(r["nulls"]) == {"non_component", "shuffled", "mean_map", "centred",
                                                 "random_weights"}
    assert {t["units"] for t in r["nulls"].values()} == {8}  # the held-out subjects
    for name, t in r["nulls"].items():
        assert t["p"] < 0.01 and t["diff"] > 0.2, (name, t)
    assert set(tests["au_pointing_last"]["nulls"]) >= {"uniform", "shuffled", "random_weights"}


def test_an_image_independent_map_scores_as_null(faces, trained):
    """One map for every face (the mean of the trained maps): no effect against the nulls that
    are built to catch it (its own leave-one-out mean, other faces' references), although it
    beats the regions' area share, the null the repository used to call chance."""
    from cfer.core import attribution_scores as S
    from cfer.experiments.explain.nulls import leave_one_out_mean, run_test

    x, y, masks = faces[2], faces[3], faces[4].expression_masks()
    fixed = np.broadcast_to(S.normalise(_maps(trained, x, y)).mean(axis=0), (len(x), PX, PX))
    refs = S.normalise(_maps(trained, x, y))
    for score, ref in (("share", masks), ("pointing", masks), ("pearson", refs), ("iou", refs)):
        t = run_test(score, fixed, ref, groups=y, clusters=faces[5], cells=(8, 8),
                     map_nulls={"mean_map": leave_one_out_mean(fixed), "uniform": np.ones_like(fixed)})
        for name in ("mean_map", "shuffled"):
            assert abs(t["nulls"][name]["diff"]) < 1e-9 and t["nulls"][name]["p"] > 0.3, (score, name, t)
    share = run_test("share", fixed, masks, groups=y, clusters=faces[5],
                     map_nulls={"uniform": np.ones_like(fixed)})
    assert share["nulls"]["uniform"]["p"] < 0.05, share


def test_region_scores_are_refused_below_8x8_cells():
    from cfer.core import attribution_scores as S
    from cfer.experiments.report.gradcam_section import summary_lines

    reason = S.au_refusal((4, 4), size=32)
    assert "4x4 cells at 32 px" in reason and "8x8 minimum" in reason and "64 px" in reason
    assert "\n" not in reason and S.au_refusal((8, 8), size=64) is None
    entry = {"images_per_class": 2, "layer": "l", "au_refused": reason,
             "methods": {"naive": {"summary": {"overlap_pearson_last": {"mean": 0.3, "std": 0.1, "n": 2}}}}}
    printed = "\n".join(summary_lines(entry))
    assert printed.count(reason) == 1 and "AU" not in printed.replace(reason, "")


def test_the_pointing_chance_is_the_share_of_cell_centres_in_the_mask():
    """A Grad-CAM map peaking at a uniformly random cell of its 8x8 grid (upsampled as Captum
    does) hits a mask exactly as often as the mask holds cell centres, not as its area share."""
    import torch
    from captum.attr import LayerAttribution

    from cfer.core import attribution_scores as S

    one_hot = torch.eye(64).reshape(64, 1, 8, 8)  # every cell of the grid once
    maps = LayerAttribution.interpolate(one_hot, (PX, PX), interpolate_mode="bilinear")[:, 0].numpy()
    mask = np.zeros((PX, PX), dtype=bool)
    mask[2:5, :] = True  # a thin band through the first row of cell centres (pixel row 4)
    mask[29:35, 8:56] = True  # a wider one between two rows of centres (rows 28 and 36)
    assert S.cell_chance(mask, (8, 8))[0] == 8 / 64
    assert S.area_share(mask)[0] == pytest.approx(0.117, abs=1e-3)
    hits = S.pointing_hit(maps, np.broadcast_to(mask, maps.shape), cells=(8, 8))
    assert hits.mean() == 8 / 64
    t = S.pointing_chance_test(hits, S.cell_chance(np.broadcast_to(mask, maps.shape), (8, 8)))
    assert t["diff"] == 0 and 0.4 < t["p"] < 0.7  # exactly at chance: no effect


def test_maps_are_fp32_with_autocast_off_whatever_the_training_precision(faces, trained):
    import torch

    from cfer.experiments.explain.gradcam import gradcam, load_model
    from cfer.strategies.models import ModelConfig
    from cfer.strategies.models.registry import gradcam_layer

    x, y = faces[2][:6], faces[3][:6]
    bf16 = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in trained.state_dict().items()}
    model = load_model(ModelConfig(name="small_cnn"), bf16, device="cpu", where="bf16 state")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    plain = gradcam(model, x, y, layer=gradcam_layer("small_cnn"))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as a bf16 training loop leaves it
        inside = gradcam(model, x, y, layer=gradcam_layer("small_cnn"))
    assert inside.dtype == np.float32 and np.array_equal(plain, inside)


@pytest.mark.parametrize("name", ["resnet18", "resnet50_paper"])
def test_resnets_have_a_registered_layer_with_spatial_maps(name):
    import torch

    from cfer.experiments.explain.gradcam import gradcam, load_model
    from cfer.strategies.models import ModelConfig, build_model
    from cfer.strategies.models.registry import gradcam_layer

    cfg = ModelConfig(name=name, weights="none")
    torch.manual_seed(0)
    model = load_model(cfg, build_model(cfg, n_classes=6).state_dict(), device="cpu", where=name)
    x = torch.randn(3, 3, 64, 64)
    maps = gradcam(model, x, [0, 1, 2], layer=gradcam_layer(name))
    assert maps.shape == (3, 64, 64) and np.isfinite(maps).all()
    assert (maps.reshape(3, -1).std(axis=1) > 0).any()
    with pytest.raises(ValueError, match="1x1 map at 32 px"):  # layer4 of a ResNet at 32 px
        gradcam(model, torch.randn(1, 3, 32, 32), [0], layer=gradcam_layer(name))


# --- `cfer explain` on a tiny finished run --------------------------------------------------

TINY = [
    "dataset.subjects=9", "dataset.size=64", "benchmark.image_size=64", "benchmark.n_folds=3",
    "benchmark.compounds=[happily surprised, sadly angry]", "benchmark.augment.rotation=0",
    "training.basic_epochs=1", "training.epochs=1", "training.patience=0", "training.batch_size=16",
    "training.mem_per_class=2", "protocol.orders=1", "strategies.methods=[naive, kd_psmr]",
    "runner.progress=false",
]


def _cfer(*argv):
    from cfer.experiments.cli import main

    return main(list(argv))


def _sets(args):
    return sum((["--set", a] for a in args), [])


@pytest.fixture(scope="module")
def explained_run(tmp_path_factory):
    """A tiny run with `evaluation.gradcam: true`: Grad-CAM at the end of `cfer run`."""
    tmp = tmp_path_factory.mktemp("explain")
    out = tmp / "out"
    args = TINY + [f"dataset.root={tmp / 'synth'}", "evaluation.gradcam=true", "evaluation.gradcam_images=3"]
    assert _cfer("run", "--out", str(out), *_sets(args)) == 0
    return tmp, out


def test_run_saves_each_step_and_explain_writes_scores_plots_and_report(explained_run):
    _, out = explained_run
    res = json.loads((out / "results.json").read_text())
    for method in ("naive", "kd_psmr"):
        models = res["methods"][method]["runs"][0]["models"]
        assert models == [f"models/{method}/order0_fold0_seed0/step{i:02d}.pt" for i in range(3)]
        assert all((out / p).is_file() for p in models)
    g = res["gradcam"]
    assert g["model"] == "small_cnn" and g["images_per_class"] == 3
    assert set(g["methods"]) == {"naive", "kd_psmr"}
    for entry in g["methods"].values():
        assert entry["last_step"] == 2
        for cls, c in entry["classes"].items():
            learnt = entry["order"].index(cls) + 1
            assert c["learnt_step"] == learnt and len(c["components"]) == 2
            assert sorted(map(int, c["steps"])) == list(range(learnt, 3))
            first = c["steps"][str(learnt)]
            assert first["overlap_pearson"]["n"] >= 1 and "drift_pearson" not in first
            if learnt < 2:
                assert c["steps"]["2"]["drift_iou"]["n"] >= 1
            assert first["au_share"]["n"] >= 1 and "au_chance" not in c  # the area share is no chance level
        assert entry["summary"]["au_share_last"]["n"] == 2
        tests = entry["tests"]
        # 2 classes x 3 faces (drift: the class learnt first), less any map without mass (1 epoch)
        assert 4 <= tests["overlap_pearson_learnt"]["n"] <= 6 and 1 <= tests["drift_pearson_last"]["n"] <= 3
        assert "joint" not in tests["drift_pearson_last"]["nulls"]  # the run has no joint model
        assert tests["au_pointing_last"]["nulls"]["uniform"]["null"] < 1
        for t in tests.values():
            assert 0 <= min(v["p"] for v in t["nulls"].values()) <= 1
    assert g["cells"] == [8, 8] and "au_refused" not in g
    assert g["nulls"]["random_seeds"] == [1001, 1002, 1003, 1004, 1005]
    # naive and kd_psmr start from the same basic model: the same component maps and scores.
    for cls in g["faces"]:
        a, b = (g["methods"][m]["classes"][cls]["basic"] for m in ("naive", "kd_psmr"))
        assert a == b
    pngs = sorted(p.relative_to(out).as_posix() for p in (out / "plots" / "gradcam").glob("*.png"))
    assert len(pngs) == 4 and g["plots"][0] == "plots/gradcam_overview.png"
    assert sorted(g["plots"][1:]) == pngs
    report = (out / "report.md").read_text()
    assert "## Grad-CAM" in report and "plots/gradcam_overview.png" in report
    assert "### Against the nulls" in report and "| overlap r (learnt) | naive |" in report


def test_region_scores_are_refused_on_a_coarse_layer_with_one_line(explained_run, tmp_path, capsys):
    """layer3 after its pooling is 4x4 at 64 px: no action-unit number anywhere, one reason."""
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(explained_run[1], out)
    capsys.readouterr()
    layer = "feature_extractor.backbone.stages.layer3"
    assert _cfer("explain", str(out), "--method", "naive", "--layer", layer) == 0
    printed = capsys.readouterr().out
    g = json.loads((out / "results.json").read_text())["gradcam"]
    reason = g["au_refused"]
    assert g["cells"] == [4, 4] and "4x4 cells at 64 px" in reason and "128 px" in reason
    assert printed.count(reason) == 1 and "AU share" not in printed and "pointing" not in printed
    entry = g["methods"]["naive"]
    assert not [k for k in entry["summary"] if "au_" in k] and not [k for k in entry["tests"] if "au_" in k]
    assert all("basic" not in c and "au_share" not in c["steps"][str(c["learnt_step"])]
               for c in entry["classes"].values())
    report = (out / "report.md").read_text()
    assert report.count(reason) == 1 and "AU share" not in report.split("### Against the nulls")[0]


def test_explain_one_method_one_step(explained_run, tmp_path, capsys):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(explained_run[1], out)
    assert _cfer("explain", str(out), "--method", "kd_psmr", "--step", "1", "--images", "2") == 0
    g = json.loads((out / "results.json").read_text())["gradcam"]
    assert list(g["methods"]) == ["kd_psmr"] and g["images_per_class"] == 2
    for c in g["methods"]["kd_psmr"]["classes"].values():
        assert set(map(int, c["steps"])) == {c["learnt_step"], 2} | ({1} if c["learnt_step"] <= 1 else set())
    assert "kd_psmr" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--step", "5"], "--step 5: the run has compound steps 1..2"),
    (["--method", "lwf"], "--method lwf: not in"),
])
def test_bad_explain_options_are_one_line_errors(explained_run, capsys, argv, message):
    _, out = explained_run
    assert _cfer("explain", str(out), *argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_run_without_saved_models_is_a_one_line_error(explained_run, capsys):
    tmp, _ = explained_run
    bare = tmp / "bare"
    args = TINY + [f"dataset.root={tmp / 'synth'}", "strategies.methods=[naive]", "output.save_models=none"]
    assert _cfer("run", "--out", str(bare), *_sets(args)) == 0
    assert not (bare / "models").exists()
    capsys.readouterr()
    assert _cfer("explain", str(bare)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "results.json: method naive has no saved models" in err and "output.save_models" in err


def test_a_missing_model_file_is_named(explained_run, tmp_path, capsys):
    import shutil

    _, out = explained_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "models" / "naive" / "order0_fold0_seed0" / "step01.pt").unlink()
    assert _cfer("explain", str(copy), "--method", "naive") == 2
    err = capsys.readouterr().err
    assert "step01.pt: saved model listed in" in err and err.count("\n") == 1


def test_without_captum_explain_names_the_extra(explained_run, monkeypatch, capsys):
    _, out = explained_run
    monkeypatch.setitem(sys.modules, "captum", None)  # import captum now raises ImportError
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    assert _cfer("explain", str(out)) == 2
    err = capsys.readouterr().err
    assert 'pip install "cfer[explain]"' in err and err.count("\n") == 1


def test_an_icarl_model_is_explained_through_its_nearest_mean_classifier():
    """iCaRL predicts with the nearest class mean, not its training head: the reloaded model
    must score as Avalanche's NCMClassifier does, and still have a gradient for Grad-CAM."""
    import torch
    from avalanche.models import NCMClassifier

    from cfer.experiments.explain.gradcam import gradcam, load_model
    from cfer.strategies.models import ModelConfig, build_model
    from cfer.strategies.models.registry import model_entry

    torch.manual_seed(0)
    cfg = ModelConfig(name="small_cnn", image_size=32)
    net = build_model(cfg, n_classes=4)
    width = net.classifier.linear.weight.shape[1]
    means = torch.nn.functional.normalize(torch.randn(4, width), dim=1)
    state = {f"feature_extractor.{k}": v for k, v in net.feature_extractor.state_dict().items()}
    state.update({f"train_classifier.{k}": v for k, v in net.classifier.state_dict().items()},
                 **{"eval_classifier.class_means": means})
    model = load_model(cfg, state, device=torch.device("cpu"), where="icarl step03.pt")
    x = torch.randn(5, 3, 32, 32)
    ncm = NCMClassifier()
    ncm.update_class_means_dict({c: means[c] for c in range(4)})
    net.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), ncm(net.feature_extractor(x)), atol=1e-5)
    maps = gradcam(model, x, [0, 1, 2, 3, 0], layer=model_entry("small_cnn").gradcam_layer)
    assert maps.shape == (5, 32, 32) and np.isfinite(maps).all() and maps.std() > 0
