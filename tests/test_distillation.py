"""BasicDistillationPlugin: the paper's loss, hand-computed, and a teacher that stays frozen."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from avalanche.training.plugins import SupervisedPlugin

from cfer.plugins.method.distillation import BasicDistillationPlugin, distillation_loss, gamma_at
from tests.conftest import tiny_naive

pytestmark = pytest.mark.filterwarnings("ignore:No loggers specified")


class Recorder(SupervisedPlugin):
    """A plugin that keeps what it sees in ``before_backward``."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def before_backward(self, strategy, **kwargs):
        self.seen.append({"loss": strategy.loss.detach().clone(), "x": strategy.mb_x.detach().clone(),
                          "out": strategy.mb_output.detach().clone(),
                          "exp": strategy.experience.current_experience})


def _strategy(plugins, seed=0):
    return tiny_naive(plugins, seed=seed)


def _ce_soft(p_rows, q_logit_rows, temperature):
    """-sum_k p_k log softmax(q / T)_k, averaged over rows, in plain Python."""
    total = 0.0
    for p, q in zip(p_rows, q_logit_rows):
        z = [v / temperature for v in q]
        log_norm = math.log(sum(math.exp(v) for v in z))
        total -= sum(pk * (zk - log_norm) for pk, zk in zip(p, z))
    return total / len(p_rows)


def _softmax(row, temperature):
    e = [math.exp(v / temperature) for v in row]
    return [v / sum(e) for v in e]


def test_gamma_schedule_matches_paper_values():
    # 0.1 * exp(-i / (1 + e)) with e = 2.718281828...
    assert gamma_at(0, gamma=0.1, decay=True) == pytest.approx(0.1)
    assert gamma_at(1, gamma=0.1, decay=True) == pytest.approx(0.0764188019, abs=1e-9)
    assert gamma_at(2, gamma=0.1, decay=True) == pytest.approx(0.0583983329, abs=1e-9)
    assert gamma_at(14, gamma=0.1, decay=True) == pytest.approx(0.1 * math.exp(-14 / 3.718281828459045))
    assert gamma_at(7, gamma=0.1, decay=False) == 0.1
    with pytest.raises(ValueError, match="step i"):
        gamma_at(-1, gamma=0.1, decay=True)


@pytest.mark.parametrize("temperature", [1.0, 3.0, 0.5])
def test_distillation_loss_hand_computed_with_zero_padding(temperature):
    student = [[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]]
    teacher = [[2.0, 0.0], [-1.0, 1.5]]  # two classes: padded with a zero logit
    p = [_softmax(row + [0.0], temperature) for row in teacher]
    expected = _ce_soft(p, student, temperature)
    got = distillation_loss(torch.tensor(student), torch.tensor(teacher), temperature=temperature)
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_distillation_loss_casts_half_precision_and_rejects_wider_teacher():
    s = torch.tensor([[1.0, 2.0]], dtype=torch.float16)
    t = torch.tensor([[0.5, 0.0]], dtype=torch.bfloat16)
    assert distillation_loss(s, t, temperature=3.0).dtype == torch.float32
    with pytest.raises(ValueError, match="more than the student"):
        distillation_loss(torch.zeros(1, 2), torch.zeros(1, 3), temperature=3.0)


def test_config_is_validated():
    with pytest.raises(ValueError, match="temperature"):
        BasicDistillationPlugin(temperature=0)
    with pytest.raises(ValueError, match="gamma"):
        BasicDistillationPlugin(gamma=1.5)
    with pytest.raises(ValueError, match="teacher"):
        BasicDistillationPlugin(teacher="oracle")


@pytest.mark.parametrize("temperature,gamma,decay", [(3.0, 0.1, True), (1.0, 0.5, False)])
def test_plugin_loss_is_the_paper_formula(tiny_benchmark, temperature, gamma, decay):
    before, after = Recorder(), Recorder()
    kd = BasicDistillationPlugin(temperature=temperature, gamma=gamma, decay=decay)
    strategy, model = _strategy([before, kd, after])
    stream = tiny_benchmark.train_stream
    strategy.train(stream[0])
    basic = copy.deepcopy(model).eval()  # the test's own copy of the basic model
    # Evaluating on the whole test stream grows the head to all 9 classes, unseen ones at -1000.
    strategy.eval(tiny_benchmark.test_stream)
    assert model.head.classifier.out_features == 9
    before.seen.clear(), after.seen.clear()
    strategy.train(stream[1])
    strategy.train(stream[2])

    assert len(before.seen) == len(after.seen) > 0
    for pre, post in zip(before.seen, after.seen):
        e = pre["exp"]
        n_seen = 6 + e  # basic classes, then one compound per experience
        g = gamma * math.exp(-(e - 1) / (1 + math.e)) if decay else gamma
        with torch.no_grad():
            t = basic(pre["x"])[:, :6]
        p = [_softmax(row + [0.0] * (n_seen - 6), temperature) for row in t.tolist()]
        kd_hand = _ce_soft(p, pre["out"][:, :n_seen].tolist(), temperature)
        assert kd_hand < 10  # the -1000 masked units are left out
        assert float(post["loss"]) == pytest.approx((1 - g) * float(pre["loss"]) + g * kd_hand,
                                                    rel=1e-5)
    assert {s["exp"] for s in before.seen} == {1, 2}
    assert kd.last_gamma == pytest.approx(gamma * math.exp(-1 / (1 + math.e)) if decay else gamma)


def test_no_distillation_during_the_first_experience(tiny_benchmark):
    before, after = Recorder(), Recorder()
    strategy, _ = _strategy([before, BasicDistillationPlugin(), after])
    strategy.train(tiny_benchmark.train_stream[0])
    assert [float(s["loss"]) for s in before.seen] == [float(s["loss"]) for s in after.seen]


def test_basic_teacher_is_frozen_and_never_updated(tiny_benchmark):
    kd = BasicDistillationPlugin()
    strategy, model = _strategy([kd])
    stream = tiny_benchmark.train_stream
    strategy.train(stream[0])
    teacher = kd.teacher
    assert teacher is not None and teacher is not model
    snapshot = {k: v.clone() for k, v in teacher.state_dict().items()}
    model_before = {k: v.clone() for k, v in model.state_dict().items()}
    assert all(torch.equal(snapshot[k], model_before[k]) for k in snapshot)

    strategy.train(stream[1:])
    assert kd.teacher is teacher
    assert not teacher.training and not any(m.training for m in teacher.modules())
    assert all(not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(v, snapshot[k]) for k, v in teacher.state_dict().items())
    assert teacher.head.classifier.out_features == 6
    assert kd.teacher_classes == [0, 1, 2, 3, 4, 5]
    # ... while the student did learn (the head grew and weights moved).
    assert model.head.classifier.out_features == 9
    assert not torch.equal(model.features[1].weight, snapshot["features.1.weight"])


def test_previous_teacher_is_refreshed_after_each_experience(tiny_benchmark):
    kd = BasicDistillationPlugin(teacher="previous")
    strategy, model = _strategy([kd])
    stream = tiny_benchmark.train_stream
    strategy.train(stream[0])
    first = kd.teacher
    strategy.train(stream[1])
    assert kd.teacher is not first
    assert kd.teacher_classes == [0, 1, 2, 3, 4, 5, 6]
    assert torch.equal(kd.teacher.head.classifier.weight, model.head.classifier.weight)
    assert all(not p.requires_grad for p in kd.teacher.parameters())
