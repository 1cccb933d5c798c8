"""Few-shot phases: shot sampling, the few-shot and FSCIL metrics, both runners end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cfer.benchmarks.splits import subject_folds
from cfer.benchmarks.taxonomy import BASIC, CFEE_COMPOUND
from tests.conftest import make_tiny_dataset

COMPOUNDS = CFEE_COMPOUND[:3]


def tiny_bench(ds, images, **kw):
    from cfer.benchmarks import compound_benchmark

    kw = {"image_size": 16, "n_folds": 3, "seed": 0, "class_order": list(COMPOUNDS), **kw}
    return compound_benchmark(ds, images=images, **kw)


@pytest.fixture(scope="module")
def tiny2():
    # 6 subjects x 2 images per class: with 3 folds, 2 training subjects -> 4 training images a class.
    return make_tiny_dataset(n_subjects=6, per_class=2, compounds=COMPOUNDS)


def _train_ids_by_class(bm, ds):
    idx = bm.info.split_indices["train"]
    return {c: idx[ds.labels[idx] == ds.class_index(c)] for c in ds.class_names}


# --------------------------------------------------------------------------- sampling

def test_shots_are_distinct_training_images_of_training_subjects(tiny2):
    ds, images = tiny2
    bm = tiny_bench(ds, images, shots=2, shot_seed=3)
    train, valid, test = subject_folds(ds.subjects, n_folds=3, fold=0)
    full = _train_ids_by_class(tiny_bench(ds, images), ds)
    by_class = _train_ids_by_class(bm, ds)
    train_subjects = set(ds.subjects[train].tolist())
    for c in COMPOUNDS:
        ids = by_class[c]
        assert len(ids) == 2 and len(set(ids.tolist())) == 2
        assert set(ds.subjects[ids].tolist()) <= train_subjects
        assert set(ids.tolist()) <= set(full[c].tolist())
    for c in BASIC:  # the basic block keeps all its training images
        assert np.array_equal(by_class[c], full[c])
    for exp in bm.train_stream[1:]:
        assert len(exp.dataset) == 2
    # validation and test are untouched
    assert bm.info.split_sizes["test"] == len(test) and bm.info.split_sizes["valid"] == len(valid)


def test_shots_reproducible_nested_and_order_independent(tiny2):
    ds, images = tiny2
    a = _train_ids_by_class(tiny_bench(ds, images, shots=2, shot_seed=1), ds)
    b = _train_ids_by_class(tiny_bench(ds, images, shots=2, shot_seed=1,
                                       class_order=list(COMPOUNDS)[::-1]), ds)
    one = _train_ids_by_class(tiny_bench(ds, images, shots=1, shot_seed=1), ds)
    draws = [_train_ids_by_class(tiny_bench(ds, images, shots=2, shot_seed=s), ds) for s in range(2, 6)]
    for c in COMPOUNDS:
        assert np.array_equal(a[c], b[c])  # same images whatever the class order
        assert set(one[c].tolist()) < set(a[c].tolist())  # n=1 is a subset of n=2
    # another seed draws other images (4 choose 2 = 6 pairs per class, 3 classes, 4 seeds)
    assert any(not np.array_equal(d[c], a[c]) for d in draws for c in COMPOUNDS)


def test_shot_repeats_fill_the_training_set(tiny2):
    ds, images = tiny2
    bm = tiny_bench(ds, images, shots=3, shot_seed=0, shot_repeats=8)
    for exp in bm.train_stream[1:]:
        assert len(exp.dataset) == 24
        assert set(int(t) for t in exp.dataset.targets) == set(int(c) for c in exp.classes_in_this_experience)
    assert len(bm.train_stream[0].dataset) == len(tiny_bench(ds, images).train_stream[0].dataset)


def test_too_many_shots_is_a_clear_error(tiny2):
    ds, images = tiny2
    with pytest.raises(ValueError, match="has only 4 training image"):
        tiny_bench(ds, images, shots=5)
    with pytest.raises(ValueError, match="shots=0"):
        tiny_bench(ds, images, shots=0)


# --------------------------------------------------------------------------- metrics

def test_fewshot_scores_by_hand():
    from cfer.core.metric_definitions import fewshot_scores

    # 2 basic classes (0, 1), new class 2.
    y_true = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([0, 2, 1, 0, 2, 2, 2, 0])
    s = fewshot_scores(y_true, y_pred, n_basic=2, new_class=2)
    assert s["new_recall"] == pytest.approx(3 / 4)
    assert s["basic_accuracy"] == pytest.approx(2 / 4)
    assert s["all_accuracy"] == pytest.approx(5 / 8)
    assert s["harmonic_mean"] == pytest.approx(2 * 0.5 * 0.75 / 1.25)
    assert s["basic_as_new"] == pytest.approx(1 / 4)


def test_always_new_class_gets_full_recall_but_zero_harmonic_mean():
    from cfer.core.metric_definitions import fewshot_scores, harmonic_mean

    y_true = np.array([0, 1, 2, 3, 4, 5, 6, 6, 6])
    s = fewshot_scores(y_true, np.full_like(y_true, 6), n_basic=6, new_class=6)
    assert s["new_recall"] == 1.0
    assert s["basic_accuracy"] == 0.0 and s["harmonic_mean"] == 0.0
    assert s["all_accuracy"] == pytest.approx(3 / 9)
    assert harmonic_mean(0.0, 0.0) == 0.0 and math.isnan(harmonic_mean(math.nan, 1.0))
    with pytest.raises(ValueError, match="new class"):
        fewshot_scores(np.array([0, 1]), np.array([0, 1]), n_basic=6, new_class=6)


def test_always_new_classifier_through_the_evaluation_path(tmp_path, tiny2):
    """A real model whose head always answers the new class, scored as the runner scores."""
    import torch

    from cfer import strategies
    from cfer.core.metric_definitions import fewshot_scores
    from cfer.experiments.config.sections import EvaluationConfig
    from cfer.experiments.run.evaluation import build_evaluator
    from cfer.strategies.models import ModelConfig, build_model
    from cfer.strategies.training import TrainingConfig

    ds, images = tiny2
    bm = tiny_bench(ds, images, class_order=[COMPOUNDS[0]], shots=1)
    model = build_model(ModelConfig(name="small_cnn"), n_classes=7)
    with torch.no_grad():
        model.classifier.linear.weight.zero_()
        model.classifier.linear.bias.copy_(torch.tensor([0.0] * 6 + [10.0]))
    evaluator, collector, closers = build_evaluator(EvaluationConfig(confusion_matrix=False),
                                                    info=bm.info, log_dir=tmp_path)
    strategy = strategies.build("naive", model=model, benchmark=bm, config=TrainingConfig(patience=0),
                                evaluator=evaluator, device="cpu")
    try:
        strategy.eval(bm.test_stream[:2])
    finally:
        for close in closers:
            close()
    pred = collector.result()
    s = fewshot_scores(pred.y_true, pred.y_pred, n_basic=6, new_class=6)
    assert s["new_recall"] == 1.0 and s["harmonic_mean"] == 0.0 and s["basic_as_new"] == 1.0


def test_priming_builds_the_teacher_without_training(tmp_path, tiny2):
    """Experience 0 run with no epoch: the weights stay, the distillation teacher is set,
    and the few-shot step then distils with the paper's g_0 = 0.1."""
    import torch

    from cfer import strategies
    from cfer.plugins.method.distillation import BasicDistillationPlugin
    from cfer.plugins.run.start_from_weights import StartFromWeightsPlugin
    from cfer.strategies.models import ModelConfig, build_model
    from cfer.strategies.training import TrainingConfig

    ds, images = tiny2
    bm = tiny_bench(ds, images, class_order=[COMPOUNDS[0]], shots=2, shot_repeats=4)
    model = build_model(ModelConfig(name="small_cnn"), n_classes=6)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    primer = StartFromWeightsPlugin()
    strategy = strategies.build("kd_only", model=model, benchmark=bm, device="cpu", plugins=[primer],
                                config=TrainingConfig(patience=0, epochs=1, batch_size=8))
    (kd,) = [p for p in strategy.plugins if isinstance(p, BasicDistillationPlugin)]
    primer.prime(strategy, bm.train_stream[0], state_dict=before, eval_streams=[bm.test_stream[:1]])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert kd.teacher is not None and kd.teacher_classes == list(range(6))
    strategy.train(bm.train_stream[1], eval_streams=[bm.test_stream[:2]])
    assert kd.last_gamma == pytest.approx(0.1)
    assert model.classifier.out_features == 7


def test_summarize_fewshot_per_shot_count():
    from cfer.experiments.run.fewshot import summarize_fewshot

    recs = [{"shots": n, "new_recall": r, "all_accuracy": a, "basic_accuracy": b, "harmonic_mean": h}
            for n, r, a, b, h in [(5, 1.0, .5, .4, .6), (5, .5, .7, .8, .6), (1, .2, .3, .4, .5)]]
    s = summarize_fewshot(recs)
    assert list(s) == ["5", "1"]
    assert s["5"]["new_recall"] == {"mean": 0.75, "std": pytest.approx(math.sqrt(0.125)), "n": 2}
    assert s["1"]["harmonic_mean"] == {"mean": 0.5, "std": 0.0, "n": 1}


def test_fscil_fields_by_hand():
    from cfer.experiments.run.fscil import fscil_fields, fscil_summary

    run = {"accuracy_matrix": [[0.9, None, None], [0.8, 0.5, None], [0.6, 0.3, 0.7]],
           "test_sizes": [30, 10, 30], "step_accuracy": [0.9, 0.725, 0.5571428571428572]}
    f = fscil_fields(run)
    assert f["base_accuracy"] == [0.9, 0.8, 0.6]
    assert f["novel_accuracy"][0] is None
    assert f["novel_accuracy"][1] == pytest.approx(0.5)
    assert f["novel_accuracy"][2] == pytest.approx((0.3 * 10 + 0.7 * 30) / 40)
    assert f["harmonic_mean"][2] == pytest.approx(2 * 0.6 * 0.6 / 1.2)
    assert f["performance_drop"] == pytest.approx(0.9 - 0.5571428571428572)
    s = fscil_summary([{**run, **f}])
    assert s["performance_drop"]["n"] == 1
    assert s["average_harmonic_mean"]["mean"] == pytest.approx(np.mean(f["harmonic_mean"][1:]))


# --------------------------------------------------------------------------- runners

def _cfg(run_dir, **over):
    from cfer.core.typed import overlay
    from cfer.experiments.config.load import _deep_merge
    from cfer.experiments.config.sections import ExperimentConfig

    data = {"phase": "fewshot",
            "benchmark": {"image_size": 16, "n_folds": 3},
            "model": {"name": "small_cnn"},
            "training": {"basic_epochs": 1, "epochs": 1, "patience": 0, "batch_size": 8},
            "strategies": {"methods": ["kd_only"]},
            "protocol": {"folds": [0], "seeds": [0]},
            "fewshot": {"shots": [2, 1], "classes": [COMPOUNDS[1]], "fscil_shots": 1},
            "evaluation": {"confusion_matrix": False},
            "output": {"dir": str(run_dir)},
            "runner": {"device": "cpu", "progress": False}}
    return overlay(ExperimentConfig(), _deep_merge(data, over), where="test")


def _decoded(data):
    """The tiny (dataset, images) as the runners' decoded data (no reading, no cache)."""
    from cfer.experiments.run.data import DecodedDataset

    ds, images = data
    return DecodedDataset(ds, images, ())


def test_fewshot_runner_end_to_end_and_resume(tmp_path, tiny2):
    from cfer.experiments.report import run_report as report
    from cfer.experiments.run.fewshot import FEWSHOT_METRICS, FewShotRunner

    cfg = _cfg(tmp_path / "run")
    results = FewShotRunner(cfg, tmp_path / "run", data=_decoded(tiny2)).run()
    block = results["fewshot"]
    assert block["method"] == "kd_only" and [r["shots"] for r in block["records"]] == [2, 1]
    for r in block["records"]:
        assert r["class"] == COMPOUNDS[1]
        assert len(set(r["train_images"])) == r["shots"] == len(r["train_images"])
        assert r["train_set_size"] == r["shots"] * 8  # fill_batch: repeated by the batch size
        for m in FEWSHOT_METRICS:
            assert 0.0 <= r[m] <= 1.0
        assert r["n_test_new"] > 0 and r["n_test_basic"] > 0
    assert list(block["summary"]) == ["2", "1"]
    assert (tmp_path / "run" / "basic_model" / "fold0_seed0.pt").is_file()
    assert len(block["basic_models"]) == 1
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["fewshot"]["records"] == block["records"]
    assert f"kd_only,{COMPOUNDS[1]},2,0,0,new_recall," in (tmp_path / "run" / "metrics.csv").read_text()

    # A second run into the same folder without --resume is refused.
    with pytest.raises(ValueError, match="already here"):
        FewShotRunner(cfg, tmp_path / "run", data=_decoded(tiny2)).run()

    # Drop the last record: resume recomputes only it, from the saved basic model, identically.
    saved["fewshot"]["records"] = saved["fewshot"]["records"][:1]
    (tmp_path / "run" / "results.json").write_text(json.dumps(saved))
    resumed = FewShotRunner(cfg, tmp_path / "run", data=_decoded(tiny2)).run(resume=True)
    strip = lambda recs: [{k: v for k, v in r.items() if k != "train_seconds"} for r in recs]  # noqa: E731
    assert strip(resumed["fewshot"]["records"]) == strip(block["records"])

    # `cfer plot` picks the few-shot report from the phase saved in results.json.
    text = report.write_report(tmp_path / "run").read_text()
    assert "new-class recall (paper)" in text and "harmonic mean" in text
    assert (tmp_path / "run" / "plots" / "fewshot_vs_shots.png").stat().st_size > 0
    assert "harmonic mean" in report.format_summary_table(resumed)


def test_fewshot_needs_exactly_one_method(tmp_path, tiny2):
    from cfer.experiments.run.fewshot import FewShotRunner

    cfg = _cfg(tmp_path / "run", strategies={"methods": ["kd_only", "naive"]})
    with pytest.raises(ValueError, match="runs one method"):
        FewShotRunner(cfg, tmp_path / "run", data=_decoded(tiny2)).run()


def test_fscil_runner_end_to_end(tmp_path, tiny2):
    from cfer.experiments.report import run_report as report
    from cfer.experiments.report.plots import PlotConfig
    from cfer.experiments.run.continual import plan_runs
    from cfer.experiments.run.fscil import FSCILRunner

    cfg = _cfg(tmp_path / "fscil", phase="fscil", strategies={"methods": ["kd_psmr"]},
               protocol={"orders": 1}, training={"mem_per_class": 2})
    runner = FSCILRunner(cfg, tmp_path / "fscil", data=_decoded(tiny2))
    spec = plan_runs(cfg, tiny2[0].class_names)[0]
    bm = runner.benchmark(spec)
    assert [len(e.dataset) for e in bm.train_stream[1:]] == [1, 1, 1]
    results = runner.run()
    (run,) = results["methods"]["kd_psmr"]["runs"]
    T = len(run["accuracy_matrix"])
    assert T == 4 and run["shots"] == 1
    assert len(run["novel_accuracy"]) == T and run["novel_accuracy"][0] is None
    assert run["base_accuracy"] == run["basic_accuracy"]
    assert run["performance_drop"] == pytest.approx(run["step_accuracy"][0] - run["step_accuracy"][-1])
    assert results["methods"]["kd_psmr"]["fscil_summary"]["performance_drop"]["n"] == 1
    assert "summary" in results["methods"]["kd_psmr"]  # the continual schema is kept
    assert "kd_psmr,0,0,0,,performance_drop," in (tmp_path / "fscil" / "metrics.csv").read_text()
    # The report of phase fscil: the continual report, then the FSCIL section.
    text = report.write_report(tmp_path / "fscil", plot_config=PlotConfig(dpi=40)).read_text()
    assert "| method | runs | overall acc |" in text and "## Few-shot class-incremental (FSCIL)" in text
    assert "performance drop" in text and (tmp_path / "fscil" / "plots" / "fscil_kd_psmr.png").is_file()


@pytest.mark.parametrize("on_device", ["false", "auto"])
def test_fewshot_phase_honours_the_data_section(tmp_path, tiny2, monkeypatch, on_device):
    """The ``data:`` section reaches both strategies of the few-shot phase (the basic model's
    and the step's): ``on_device: false`` trains and scores on Avalanche's stock loaders,
    ``auto`` on the fast path with the configured memory cap."""
    from cfer.experiments.run.fewshot import FewShotRunner
    from cfer.plugins.speed.fast_data import FastDataPlugin

    wrapped = []  # (fast data plugin, its config) at each loader it serves
    real_wrap = FastDataPlugin.wrap

    def wrap(self, loader, *, device):
        wrapped.append((id(self), self.config))
        return real_wrap(self, loader, device=device)

    monkeypatch.setattr(FastDataPlugin, "wrap", wrap)
    cfg = _cfg(tmp_path / "run", data={"on_device": on_device, "max_memory_fraction": 0.25},
               fewshot={"shots": [1]})
    results = FewShotRunner(cfg, tmp_path / "run", data=_decoded(tiny2)).run()
    assert [r["shots"] for r in results["fewshot"]["records"]] == [1]
    if on_device == "false":
        assert wrapped == []
    else:
        assert len({plugin for plugin, _ in wrapped}) == 2  # the basic model's strategy, the step's
        assert all(config == cfg.data for _, config in wrapped)
        assert cfg.data.max_memory_fraction == 0.25


def test_shipped_fewshot_configs_load():
    from cfer.experiments.config.load import load_config

    assert load_config("fewshot").phase == "fewshot"
    assert load_config("fscil").phase == "fscil"
    cfee = load_config("fewshot_cfee")
    assert cfee.phase == "fewshot" and cfee.dataset.kind == "cfee"
    assert cfee.model.name == "resnet50_paper" and cfee.benchmark.image_size == 224
    assert list(cfee.fewshot.shots) == [5, 3, 1] and cfee.fewshot.classes is None
