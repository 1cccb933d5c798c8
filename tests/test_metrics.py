"""Metric definitions (cfer.core.metric_definitions) on hand-made inputs, and the Avalanche FER
plugin metrics."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from cfer.core import metric_definitions as M
from cfer.core import metrics

# R[i][j]: accuracy on experience j after training experience i (T = 3).
R3 = [[0.90, None, None],
      [0.95, 0.60, None],
      [0.70, 0.50, 0.40]]
SIZES3 = [60, 10, 30]


def test_step_accuracy_is_the_sample_weighted_union():
    got = M.step_accuracy(R3, SIZES3)
    assert got == pytest.approx([0.90, (0.95 * 60 + 0.6 * 10) / 70, (42 + 5 + 12) / 100])
    assert M.average_step_accuracy(got) == pytest.approx((0.9 + 63 / 70 + 0.59) / 3)
    assert M.final_accuracy(got) == pytest.approx(0.59)


def test_matrix_metrics():
    assert M.new_class_recall(R3) == pytest.approx((0.6 + 0.4) / 2)
    old = M.old_class_accuracy(R3, SIZES3)
    assert math.isnan(old[0]) and old[1:] == pytest.approx([0.95, (42 + 5) / 70])
    assert M.basic_accuracy(R3) == pytest.approx([0.9, 0.95, 0.7])
    assert M.forgetting(R3) == pytest.approx(((0.9 - 0.7) + (0.6 - 0.5)) / 2)
    # max forgetting starts from the best accuracy ever seen (0.95 after step 1), not R[0][0]
    assert M.max_forgetting(R3) == pytest.approx(((0.95 - 0.7) + (0.6 - 0.5)) / 2)
    assert M.bwt(R3) == pytest.approx(-0.15)


def test_single_experience_is_undefined_not_zero():
    R = [[0.8]]
    assert math.isnan(M.forgetting(R)) and math.isnan(M.max_forgetting(R)) and math.isnan(M.bwt(R))
    assert math.isnan(M.new_class_recall(R))
    assert math.isnan(M.forgetting_learnt(R, n_basic=6)) and M.not_learnt(R, n_basic=6) == 0
    assert math.isnan(M.old_class_accuracy(R, [5])[0])


def test_learnt_is_twice_the_chance_of_its_step():
    # n_basic 2, T 4: chance 1/2, 1/3, 1/4, 1/5 -> thresholds 1.0, 2/3, 1/2, 2/5
    assert M.learnt_threshold(4, n_basic=2) == pytest.approx([1.0, 2 / 3, 0.5, 0.4])
    assert M.learnt_threshold(2, n_basic=1).tolist() == [1.0, 1.0]  # capped: 100% is always learnt
    R = [[1.00, None, None, None],
         [0.90, 0.60, None, None],   # exp 1 at 60% < 2/3: never learnt
         [0.80, 0.50, 0.50, None],   # exp 2 at exactly 1/2: learnt (>=)
         [0.70, 0.55, 0.20, 0.39]]   # exp 3 just under 2/5
    assert M.learnt(R, n_basic=2).tolist() == [True, False, True, False]
    assert M.not_learnt(R, n_basic=2) == 2
    # forgetting over the learnt j < T-1 (0 and 2) only; exp 1 *gained* 0.05, which the
    # unrestricted forgetting counts as negative forgetting
    assert M.forgetting_learnt(R, n_basic=2) == pytest.approx(((1.0 - 0.7) + (0.5 - 0.2)) / 2)
    assert M.forgetting(R) == pytest.approx(((1.0 - 0.7) + (0.6 - 0.55) + (0.5 - 0.2)) / 3)
    assert M.learnt(R, n_basic=2, multiple=1.0).tolist() == [True, True, True, True]
    never = [[0.1, None], [0.1, 0.05]]
    assert math.isnan(M.forgetting_learnt(never, n_basic=6)) and M.not_learnt(never, n_basic=6) == 2


def test_new_class_f1_counts_old_images_pulled_into_the_new_class():
    # 3 basic classes (experience 0), 10 images each; experience 1: class 3, 10 images.
    y = np.repeat([0, 1, 2, 3], 10)
    e = (y == 3).astype(int)
    newest = np.full_like(y, 3)  # the degenerate answer: everything is the newest class
    assert M.accuracy(y[e == 1], newest[e == 1]) == 1.0  # recall 100%
    # TP 10, FP 30, FN 0: F1 = 20 / 50
    assert M.new_class_f1_at_step(y, newest, e, step=1) == pytest.approx(20 / 50)
    assert M.new_class_f1_at_step(y, y, e, step=1) == 1.0
    assert math.isnan(M.new_class_f1_at_step(y, y, e, step=0))
    # images of later experiences are ignored; a step with no image of its experience is an error
    later = np.concatenate([y, [4, 4]]), np.concatenate([newest, [3, 3]]), np.concatenate([e, [2, 2]])
    assert M.new_class_f1_at_step(*later, step=1) == pytest.approx(20 / 50)
    with pytest.raises(ValueError, match="no test images of experience 2"):
        M.new_class_f1_at_step(y, y, e, step=2)
    # the run's figure: the mean over steps >= 1; undefined without per-step values
    assert M.new_class_f1([None, 0.4, 0.8]) == pytest.approx(0.6)
    assert math.isnan(M.new_class_f1(None)) and math.isnan(M.new_class_f1([None]))
    assert math.isnan(M.new_class_f1([None, 0.5, None]))


def test_cells_above_the_diagonal_are_ignored():
    filled = [[0.9, 0.1, 0.2], [0.95, 0.6, 0.3], [0.7, 0.5, 0.4]]
    nan = [[0.9, math.nan, math.nan], [0.95, 0.6, math.nan], [0.7, 0.5, 0.4]]
    for R in (filled, nan):
        assert M.step_accuracy(R, SIZES3) == pytest.approx(M.step_accuracy(R3, SIZES3))
        assert M.max_forgetting(R) == pytest.approx(M.max_forgetting(R3))


@pytest.mark.parametrize("R, match", [
    ([[0.9, None], [0.8]], "row 1 has 1 entries"),
    ([[0.9, None], [None, 0.5]], r"accuracy_matrix\[1\]\[0\]"),
    ([[1.5]], "in \\[0, 1\\]"),
    ([], "empty"),
])
def test_bad_matrix_is_a_clear_error(R, match):
    with pytest.raises(ValueError, match=match):
        M.as_matrix(R)


def test_bad_test_sizes():
    with pytest.raises(ValueError, match="test_sizes has 2 entries, expected 3"):
        M.step_accuracy(R3, [1, 2])
    with pytest.raises(ValueError, match="positive"):
        M.old_class_accuracy(R3, [1, 0, 2])


# Classes 0, 1 basic; 2, 3 compound.
Y_TRUE = np.array([0, 0, 1, 1, 2, 2, 2, 3, 3])
Y_PRED = np.array([0, 1, 1, 1, 2, 0, 3, 3, 2])


def test_prediction_metrics():
    assert M.accuracy(Y_TRUE, Y_PRED) == pytest.approx(5 / 9)
    assert M.uar(Y_TRUE, Y_PRED) == pytest.approx((1 / 2 + 1 + 1 / 3 + 1 / 2) / 4)
    # F1 = 2TP / (2TP + FP + FN): class 0: 2/4, class 1: 4/5, class 2: 2/5, class 3: 2/4
    assert M.macro_f1(Y_TRUE, Y_PRED) == pytest.approx((0.5 + 0.8 + 0.4 + 0.5) / 4)
    cm = M.confusion_matrix(Y_TRUE, Y_PRED, n_classes=4)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 1], [0, 0, 1, 1]]
    # misclassified compound images: 2->0 (a component), 2->3, 3->2 (not components)
    assert M.component_confusion(Y_TRUE, Y_PRED, {2: (0, 1), 3: (0, 1)}) == pytest.approx(1 / 3)
    assert M.component_confusion(Y_TRUE, Y_PRED, {2: (0, 1), 3: (2,)}) == pytest.approx(2 / 3)


def test_prediction_metrics_agree_with_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    t = rng.integers(0, 7, 200)
    p = np.where(rng.random(200) < 0.6, t, rng.integers(0, 9, 200))  # some unseen-class predictions
    labels = np.unique(t)
    assert M.uar(t, p) == pytest.approx(sk.recall_score(t, p, labels=labels, average="macro"))
    assert M.macro_f1(t, p) == pytest.approx(sk.f1_score(t, p, labels=labels, average="macro"))


def test_prediction_edge_cases():
    # a prediction of a class absent from y_true is only a miss for the true class
    assert M.macro_f1([0, 1], [0, 5]) == pytest.approx((1.0 + 0.0) / 2)
    assert math.isnan(M.component_confusion([0, 1, 2], [0, 1, 2], {2: (0, 1)}))  # nothing misclassified
    assert math.isnan(M.component_confusion([0, 1], [1, 0], {2: (0, 1)}))  # no compound image
    with pytest.raises(ValueError, match="outside 0..2"):
        M.confusion_matrix([0, 1], [0, 3], n_classes=3)
    with pytest.raises(ValueError, match="differ in length"):
        M.uar([0, 1], [0])
    with pytest.raises(ValueError, match="integer class ids"):
        M.uar([0.5], [0])


def test_accuracy_row():
    row = M.accuracy_row([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], [0, 0, 0, 2, 2], n_experiences=4)
    assert row[:1].tolist() == pytest.approx([2 / 3]) and math.isnan(row[1])
    assert row[2] == pytest.approx(0.5) and math.isnan(row[3])


def _two_step_predictions():
    # n_basic = 2 (classes 0, 1 in experience 0), class 2 is experience 1
    step0 = ([0, 0, 1, 1, 2], [0, 1, 1, 1, 2], [0, 0, 0, 0, 1])  # the exp-1 image is ignored at step 0
    step1 = ([0, 0, 1, 1, 2, 2], [0, 0, 1, 2, 2, 0], [0, 0, 0, 0, 1, 1])
    return [tuple(np.array(a) for a in s) for s in (step0, step1)]


def test_run_record_from_predictions():
    rec = M.run_record(step_predictions=_two_step_predictions(), n_basic=2, component_ids={2: (0, 1)},
                       class_names=["happy", "sad", "happily sad"])
    assert rec["n_basic"] == 2 and rec["class_names"] == ["happy", "sad", "happily sad"]
    assert rec["test_sizes"] == [4, 2]
    assert rec["accuracy_matrix"] == [[0.75, None], [0.75, 0.5]]
    assert rec["step_accuracy"] == pytest.approx([0.75, 4 / 6])
    assert rec["uar"] == pytest.approx([0.75, (1 + 0.5 + 0.5) / 3])
    assert rec["macro_f1"] == pytest.approx([M.macro_f1([0, 0, 1, 1], [0, 1, 1, 1]),
                                             M.macro_f1([0, 0, 1, 1, 2, 2], [0, 0, 1, 2, 2, 0])])
    assert rec["old_class_accuracy"] == [None, 0.75]
    assert rec["basic_accuracy"] == [0.75, 0.75]
    assert rec["component_confusion"] == [None, 1.0]
    # step 1: class 2 has TP 1 (of 2) and one sad image put into it: F1 = 2 / (2 + 1 + 1)
    assert rec["new_class_f1"] == [None, pytest.approx(0.5)]
    assert rec["confusion_matrix"] == [[2, 0, 0], [0, 1, 1], [1, 0, 1]]
    # the record is consistent with the matrix definitions
    assert rec["step_accuracy"] == pytest.approx(M.step_accuracy(rec["accuracy_matrix"], rec["test_sizes"]))
    import json
    json.dumps(rec, allow_nan=False)  # strictly valid JSON


def test_run_record_rejects_a_missing_experience():
    steps = _two_step_predictions()
    t, p, e = steps[1]
    steps[1] = (t[:4], p[:4], e[:4])
    with pytest.raises(ValueError, match=r"step_predictions\[1\]: no test images of experience\(s\) \[1\]"):
        M.run_record(step_predictions=steps, n_basic=2, component_ids={})


def _run(R, steps=None, sizes=None, n_basic=4):
    steps = M.step_accuracy(R, sizes).tolist() if steps is None else steps
    return {"accuracy_matrix": R, "step_accuracy": steps, "n_basic": n_basic}


def test_summarize_runs_mean_sample_std_and_n():
    R_b = [[0.8, None, None], [0.7, 0.9, None], [0.6, 0.8, 1.0]]
    a, b = _run(R3, sizes=SIZES3), _run(R_b, sizes=SIZES3)
    s = metrics.summarize_runs([a, b])
    assert list(s) == list(metrics.names())
    oa = [M.average_step_accuracy(r["step_accuracy"]) for r in (a, b)]
    assert s["overall_accuracy"]["mean"] == pytest.approx(np.mean(oa))
    assert s["overall_accuracy"]["std"] == pytest.approx(abs(oa[0] - oa[1]) / math.sqrt(2))  # ddof=1
    assert s["overall_accuracy"]["n"] == 2
    assert s["forgetting_all"]["mean"] == pytest.approx((0.15 + (0.2 + 0.1) / 2) / 2)
    # every experience learnt (n_basic 4: thresholds 2/4, 2/5, 2/6): the same forgetting
    assert s["forgetting"]["mean"] == pytest.approx(s["forgetting_all"]["mean"])
    assert s["not_learnt"] == {"mean": 0.0, "std": 0.0, "n": 2}
    assert s["bwt"]["mean"] == pytest.approx(-s["forgetting_all"]["mean"])
    assert s["max_forgetting"]["mean"] == pytest.approx((0.175 + 0.15) / 2)
    assert s["new_class_recall"]["mean"] == pytest.approx((0.5 + 0.95) / 2)
    assert s["new_class_f1"] == {"mean": None, "std": None, "n": 0}  # no per-step F1 recorded
    assert s["basic_accuracy_final"]["mean"] == pytest.approx((0.7 + 0.6) / 2)
    assert s["final_accuracy"]["mean"] == pytest.approx((0.59 + (36 + 8 + 30) / 100) / 2)

    one = metrics.summarize_runs([a])
    assert one["overall_accuracy"]["std"] == 0.0 and one["overall_accuracy"]["n"] == 1
    # an undefined metric in one run (T = 1: no forgetting) is left out of its n
    mixed = metrics.summarize_runs([a, _run([[0.5]], steps=[0.5])])
    assert mixed["forgetting"]["n"] == 1 and mixed["overall_accuracy"]["n"] == 2
    assert metrics.summarize_runs([_run([[0.5]], steps=[0.5])])["forgetting"] == {"mean": None, "std": None,
                                                                                  "n": 0}


def test_summarize_runs_names_the_bad_run():
    with pytest.raises(ValueError, match=r"runs\[1\]: run record has no 'step_accuracy'"):
        metrics.summarize_runs([_run(R3, sizes=SIZES3), {"accuracy_matrix": R3}])


# --------------------------------------------------------------------------- Avalanche plugin metrics

def _eval_predictions(model, stream):
    """Independent pass: (y_true, y_pred, experience) of the eval-mode test data."""
    import torch

    ys, ps, es = [], [], []
    model.eval()
    with torch.no_grad():
        for exp in stream:
            loader = torch.utils.data.DataLoader(exp.dataset.eval(), batch_size=64, shuffle=False)
            for x, y, *_ in loader:
                ys.append(y.numpy())
                ps.append(model(x).argmax(1).numpy())
                es.append(np.full(len(y), exp.current_experience))
    return tuple(np.concatenate(a) for a in (ys, ps, es))


def test_plugin_metrics_match_definitions_and_avalanche(tiny_benchmark):
    import torch
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.logging import TextLogger
    from avalanche.models import IncrementalClassifier
    from avalanche.training import Naive
    from avalanche.training.determinism.rng_manager import RNGManager
    from avalanche.training.plugins import EvaluationPlugin

    from cfer.plugins.metrics.fer import FERPredictionCollector, StepAccuracy, fer_metrics

    RNGManager.set_random_seeds(0)
    bm = tiny_benchmark
    comp = bm.info.component_ids()
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 32), torch.nn.ReLU(),
                                IncrementalClassifier(32, initial_out_features=6))
    collector = FERPredictionCollector()
    fer = fer_metrics(n_basic=bm.info.n_basic, component_ids=comp, collector=collector)
    emitted = {str(m): m for m in fer[1:]}  # result(): the value emitted by the last eval, None if none
    standalone = StepAccuracy()  # owns its collector
    log = io.StringIO()
    evaluator = EvaluationPlugin(*fer, standalone, accuracy_metrics(experience=True, stream=True),
                                 loggers=[TextLogger(log)])
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
                     train_mb_size=16, train_epochs=2, eval_mb_size=5, evaluator=evaluator)
    steps = []
    for i, exp in enumerate(bm.train_stream[:3]):
        strategy.train(exp)
        strategy.eval(bm.test_stream[: i + 1])
        got = collector.result()
        steps.append(got)
        want = _eval_predictions(model, bm.test_stream[: i + 1])
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
        t, p, e = got
        last = evaluator.get_last_metrics()
        value = lambda name: emitted[f"{name}_Stream"].result()  # noqa: E731
        assert last["StepAcc_Stream/eval_phase/test_stream"] == value("StepAcc")  # what loggers got
        assert value("StepAcc") == pytest.approx(M.accuracy(t, p))
        assert value("StepAcc") == pytest.approx(last["Top1_Acc_Stream/eval_phase/test_stream"])
        assert standalone.result() == pytest.approx(value("StepAcc"))
        assert value("UAR") == pytest.approx(M.uar(t, p))
        assert value("MacroF1") == pytest.approx(M.macro_f1(t, p))
        assert value("BasicAcc") == pytest.approx(M.accuracy(t[e == 0], p[e == 0]))
        assert value("BasicAcc") == pytest.approx(last["Top1_Acc_Exp/eval_phase/test_stream/Exp000"])
        if i == 0:
            assert value("OldClassAcc") is None and value("NewClassAcc") is None
        else:
            assert value("OldClassAcc") == pytest.approx(M.accuracy(t[e < i], p[e < i]))
            assert value("NewClassAcc") == pytest.approx(M.accuracy(t[e == i], p[e == i]))
        cc = M.component_confusion(t, p, comp)
        assert value("ComponentConfusion") == (None if math.isnan(cc) else pytest.approx(cc))
    assert "UAR_Stream/eval_phase/test_stream" in log.getvalue()  # loggers receive the values

    # the collector feeds run_record directly; its rows match Avalanche's per-experience accuracy
    rec = M.run_record(step_predictions=steps, n_basic=bm.info.n_basic, component_ids=comp,
                       class_names=bm.info.class_names[:8])
    for j in range(3):
        assert rec["accuracy_matrix"][2][j] == pytest.approx(
            last[f"Top1_Acc_Exp/eval_phase/test_stream/Exp{j:03d}"])
    assert np.sum(rec["confusion_matrix"]) == len(steps[-1].y_true)

    # the step is the highest experience evaluated: on the whole stream, the last one is "new"
    strategy.eval(bm.test_stream)
    t, p, e = collector.result()
    T = len(bm.test_stream)
    assert collector.step == T - 1 and set(e.tolist()) == set(range(T))
    stream_acc = evaluator.get_last_metrics()["Top1_Acc_Stream/eval_phase/test_stream"]
    assert value("StepAcc") == pytest.approx(stream_acc)
    assert value("NewClassAcc") == pytest.approx(M.accuracy(t[e == T - 1], p[e == T - 1]))
