"""One-pass evaluation with our metrics gives exactly what Avalanche's per-experience
evaluation with its own metrics gives: predictions, every emitted metric, and (with early
stopping, which evaluates after every epoch) the training that follows."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from cfer.benchmarks.transforms import train_transform
from cfer.plugins.speed.one_pass import PartBatchSampler, one_pass
from cfer.strategies.builder import build
from cfer.strategies.models import ModelConfig, build_model
from cfer.strategies.training import TrainingConfig
from tests.conftest import make_tiny_dataset


def bench():
    from cfer.benchmarks import compound_benchmark

    ds, images = make_tiny_dataset(n_subjects=9, per_class=2)
    return compound_benchmark(ds, images=images, image_size=16, n_folds=3, seed=0,
                              class_order=list(ds.class_names[6:]), valid_fraction=0.3,
                              train_transform=train_transform())


def stock_evaluator(collector, info):
    """What experiments/run/evaluation.py built before: Avalanche's own metrics."""
    from avalanche.evaluation.metrics import (
        accuracy_metrics,
        bwt_metrics,
        confusion_matrix_metrics,
        forgetting_metrics,
        loss_metrics,
    )
    from avalanche.training.plugins import EvaluationPlugin

    from cfer.plugins.metrics.fer import fer_metrics
    from cfer.plugins.metrics.stream_filter import OnlyStream

    with warnings.catch_warnings():  # "No loggers specified"
        warnings.simplefilter("ignore", UserWarning)
        return EvaluationPlugin(
            accuracy_metrics(experience=True, stream=True), loss_metrics(epoch=True, stream=True),
            *[OnlyStream(m, stream="test") for m in forgetting_metrics(experience=True, stream=True)],
            *[OnlyStream(m, stream="test") for m in bwt_metrics(experience=True, stream=True)],
            *fer_metrics(n_basic=info.n_basic, component_ids=info.component_ids(), collector=collector),
            confusion_matrix_metrics(stream=True, save_image=False), loggers=[])


def run(method: str, tmp_path, *, ours: bool, patience: int):
    """Train ``method`` through 3 experiences, evaluating test[:i+1] after each; returns
    per step (predictions, validation scores, the evaluator's metrics)."""
    from avalanche.training.determinism.rng_manager import RNGManager

    from cfer.experiments.config.sections import EvaluationConfig
    from cfer.experiments.run.evaluation import build_evaluator
    from cfer.plugins.metrics.fer import FERPredictionCollector

    RNGManager.set_random_seeds(0)
    bm = bench()
    model = build_model(ModelConfig(name="small_cnn"), n_classes=bm.info.n_basic)
    if ours:
        evaluator, collector, closers = build_evaluator(EvaluationConfig(), info=bm.info, log_dir=tmp_path)
    else:
        collector, closers = FERPredictionCollector(), []
        evaluator = stock_evaluator(collector, bm.info)
    cfg = TrainingConfig(batch_size=4, eval_batch_size=3, basic_epochs=2, epochs=2, patience=patience,
                         lr=1e-3, basic_lr=3e-3, mem_per_class=2)
    strategy = build(method, model=model, benchmark=bm, config=cfg, evaluator=evaluator, seed=0)
    joined = one_pass if ours else (lambda stream: stream)
    steps = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, exp in enumerate(bm.train_stream[:3]):
            strategy.train(exp, eval_streams=[joined(bm.valid_stream[: i + 1])] if patience else [])
            scores = list(strategy.schedule.history)
            strategy.eval(joined(bm.test_stream[: i + 1]))
            metrics = {k: v for k, v in evaluator.get_last_metrics().items() if "Time" not in k}
            steps.append((collector.result(), scores, metrics))
    for close in closers:
        close()
    return steps


def assert_same_value(key, a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), key
    else:
        assert a == b and type(a) is type(b), (key, a, b)  # exact: no tolerance


@pytest.mark.parametrize("method, patience", [("kd_psmr", 0), ("kd_psmr", 1), ("naive", 1)])
def test_one_pass_evaluation_equals_per_experience_evaluation(tmp_path, method, patience):
    stock = run(method, tmp_path / "stock", ours=False, patience=patience)
    ours = run(method, tmp_path / "ours", ours=True, patience=patience)
    for i, ((p0, v0, m0), (p1, v1, m1)) in enumerate(zip(stock, ours)):
        for a, b in zip(p0, p1):
            np.testing.assert_array_equal(a, b)
        assert v0 == v1  # early stopping's validation scores, epoch by epoch
        assert bool(v0) == bool(patience)  # scored after every epoch when patience > 0
        assert sorted(m0) == sorted(m1)
        for key in m0:
            assert_same_value(key, m0[key], m1[key])
        # every seen experience is reported on its own, as Avalanche's loop reports it
        assert all(any(k.startswith("Top1_Acc_Exp/eval_phase/test_stream") and k.endswith(f"Exp{j:03d}")
                       for k in m1) for j in range(i + 1))
    assert stock[-1][0].y_true.size > 3 * 3  # several evaluation batches per step


def test_part_batches_never_straddle_experiences():
    sampler = PartBatchSampler([5, 2, 3], batch_size=2)
    assert list(sampler) == [[0, 1], [2, 3], [4], [5, 6], [7, 8], [9]]
    assert sampler.starts == [0, 3, 4]


def test_one_pass_refuses_mixed_streams():
    bm = bench()
    assert one_pass(bm.test_stream[:1]) is bm.test_stream[0]
    with pytest.raises(ValueError, match="several streams"):
        one_pass([bm.test_stream[0], bm.valid_stream[1]])


def test_a_joined_experience_needs_the_one_pass_evaluator():
    from avalanche.training.plugins import EvaluationPlugin

    from cfer.plugins.metrics.fer import fer_metrics

    bm = bench()
    model = build_model(ModelConfig(name="small_cnn"), n_classes=bm.info.n_basic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluator = EvaluationPlugin(*fer_metrics(n_basic=6, component_ids={}), loggers=[])
        strategy = build("naive", model=model, benchmark=bm, evaluator=evaluator,
                         config=TrainingConfig(basic_epochs=1, patience=0))
        strategy.train(bm.train_stream[0], eval_streams=[])
        strategy.train(bm.train_stream[1], eval_streams=[])
        with pytest.raises(ValueError, match="needs cfer.plugins.speed.one_pass.OnePassEvaluationPlugin"):
            strategy.eval(one_pass(bm.test_stream[:2]))
