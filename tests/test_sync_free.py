"""No host-device synchronisation per mini-batch on the default `cfer run` path (kd_psmr).

On the CPU nothing really waits, so the test counts the calls that would wait on a GPU
(``Tensor.item``, ``__float__``, ``__int__``, ``__bool__``, ``tolist``, ``cpu``, ``numpy``;
not torch.optim's reads of its step counters, which are host tensors on a GPU too)
during a kd_psmr training experience (teacher forward, PSMR memory) and a one-pass
evaluation of the seen test data, with the runner's evaluator; once with twice as many
mini-batches as the other. Per-experience reads (the metrics' results) are the same in
both; a read per mini-batch would differ.
"""

from __future__ import annotations

import sys
import warnings
from collections import Counter

import pytest
import torch

from cfer.experiments.config.sections import EvaluationConfig
from cfer.experiments.run.evaluation import build_evaluator
from cfer.plugins.speed.one_pass import one_pass
from cfer.strategies.builder import build
from cfer.strategies.models import ModelConfig, build_model
from cfer.strategies.training import TrainingConfig
from tests.test_speed import tiny_bm

READS = ("item", "__float__", "__int__", "__bool__", "tolist", "cpu", "numpy")


@pytest.fixture
def count_reads(monkeypatch):
    """A Counter of tensor reads, by method name, while ``counting[0]`` is True."""
    calls, counting = Counter(), [False]
    for name in READS:
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, _original=original, _name=name, **kwargs):
            # torch.optim reads its step counters, host tensors on a GPU too (not capturable).
            if counting[0] and "torch/optim/" not in sys._getframe(1).f_code.co_filename:
                calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, wrapper)
    return calls, counting


def kd_psmr(tmp_path, *, batch_size: int, eval_batch_size: int):
    from avalanche.training.determinism.rng_manager import RNGManager

    RNGManager.set_random_seeds(0)
    bm = tiny_bm()
    model = build_model(ModelConfig(name="small_cnn"), n_classes=bm.info.n_basic)
    evaluator, collector, closers = build_evaluator(EvaluationConfig(), info=bm.info,
                                                    log_dir=tmp_path / f"logs{batch_size}")
    cfg = TrainingConfig(batch_size=batch_size, continual_batch_size=batch_size,
                         eval_batch_size=eval_batch_size, basic_epochs=1, epochs=1, patience=0,
                         lr=1e-3, basic_lr=1e-3, mem_per_class=2)
    strategy = build("kd_psmr", model=model, benchmark=bm, config=cfg, evaluator=evaluator,
                     valid_stream_name="test")
    return bm, strategy, collector, closers


def reads_of_a_step(tmp_path, calls, counting, *, batch_size: int, eval_batch_size: int):
    """Reads while training experience 2 (teacher and memory active) and evaluating
    test[:3] in one pass; also the number of training and evaluation mini-batches."""
    from avalanche.core import SupervisedPlugin

    class Batches(SupervisedPlugin):
        train = evaluated = 0

        def after_training_iteration(self, strategy, **kwargs):
            Batches.train += 1

        def after_eval_iteration(self, strategy, **kwargs):
            Batches.evaluated += 1

    bm, strategy, collector, closers = kd_psmr(tmp_path, batch_size=batch_size,
                                               eval_batch_size=eval_batch_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(2):
            strategy.train(bm.train_stream[i], eval_streams=[])
        strategy.plugins.append(Batches())
        calls.clear()
        counting[0] = True
        strategy.train(bm.train_stream[2], eval_streams=[])
        train_reads = Counter(calls)
        calls.clear()
        strategy.eval(one_pass(bm.test_stream[:3]))
        eval_reads = Counter(calls)
        counting[0] = False
    for close in closers:
        close()
    assert collector.result().y_true.size == sum(len(e.dataset) for e in bm.test_stream[:3])
    return train_reads, eval_reads, Batches.train, Batches.evaluated


def test_kd_psmr_reads_nothing_per_mini_batch(tmp_path, count_reads):
    calls, counting = count_reads
    small = reads_of_a_step(tmp_path, calls, counting, batch_size=2, eval_batch_size=2)
    large = reads_of_a_step(tmp_path, calls, counting, batch_size=4, eval_batch_size=4)
    train_small, eval_small, n_train_small, n_eval_small = small
    train_large, eval_large, n_train_large, n_eval_large = large
    # The halved batch size really gives more mini-batches (training: memory + new class).
    assert n_train_small > n_train_large >= 2 and n_eval_small > n_eval_large >= 3
    assert train_small == train_large, (train_small, train_large)
    assert eval_small == eval_large, (eval_small, eval_large)


def test_the_count_sees_avalanche_s_own_metrics(tmp_path, count_reads):
    """The instrument works: Avalanche's stock loss metric reads the loss every iteration."""
    from avalanche.evaluation.metrics import loss_metrics
    from avalanche.training.plugins import EvaluationPlugin

    calls, counting = count_reads
    seen = []
    for batch_size in (2, 4):
        bm = tiny_bm()
        model = build_model(ModelConfig(name="small_cnn"), n_classes=bm.info.n_basic)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            strategy = build("naive", model=model, benchmark=bm,
                             config=TrainingConfig(batch_size=batch_size, basic_epochs=1, patience=0),
                             evaluator=EvaluationPlugin(loss_metrics(epoch=True), loggers=[]))
            calls.clear()
            counting[0] = True
            strategy.train(bm.train_stream[0], eval_streams=[])
            counting[0] = False
        seen.append(calls["__float__"])
    assert seen[0] > seen[1] > 0
