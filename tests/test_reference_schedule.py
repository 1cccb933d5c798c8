"""The reference code's training protocol (docs/reference.md): early stopping per phase and
stage, continual mini-batches, head L2 only in the basic phase, Adam's epsilon, and the Keras
augmentation (fraction-of-a-turn rotation, per-axis zoom, reflect fill) on both data paths."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cfer.benchmarks.transforms import AugmentConfig, KerasAffine, train_transform
from cfer.strategies.builder import build
from cfer.strategies.models.config import ModelConfig
from cfer.strategies.models.registry import build_model
from cfer.strategies.schedule import BestTracker, Phase, TrainingSchedule
from cfer.strategies.training import TrainingConfig
from tests.conftest import make_tiny_dataset

TINY = dict(batch_size=4, eval_batch_size=8, basic_epochs=1, epochs=1, patience=0, lr=1e-3,
            basic_lr=1e-3, mem_per_class=1)


def paper_training() -> TrainingConfig:
    from cfer.experiments.config.load import load_config

    return load_config("paper_cfee").training


def evaluator():
    import warnings

    from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
    from avalanche.training.plugins import EvaluationPlugin

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return EvaluationPlugin(accuracy_metrics(stream=True), loss_metrics(stream=True), loggers=[])


# --- early stopping: the decision rule on constructed score sequences ----------------------------

def test_loss_with_min_delta_needs_a_drop_of_more_than_min_delta():
    t = BestTracker("min", 0.01)
    assert t.update(1.0, 1)
    assert not t.update(0.995, 2) and not t.update(0.991, 3)  # less than 0.01 below the best
    assert t.best_value == 1.0 and t.best_epoch == 1
    assert t.update(0.985, 4)  # 0.015 below: an improvement, and the new best is 0.985 itself
    assert not t.update(0.976, 5)  # only 0.009 below 0.985
    assert t.update(0.97, 6)
    assert (t.best_value, t.best_epoch) == (0.97, 6)
    assert not t.update(float("nan"), 7)
    acc = BestTracker("max")
    assert acc.update(0.5, 1) and acc.update(0.5001, 2) and not acc.update(0.5001, 3)


class FakeStrategy:
    """What TrainingSchedule reads of an Avalanche strategy; the model's weight after epoch k is k."""

    def __init__(self, experience: int = 0):
        self.model = torch.nn.Linear(1, 1, bias=False)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1.0)
        self.experience = SimpleNamespace(current_experience=experience)
        self.clock = SimpleNamespace(train_exp_epochs=0)
        self.metrics: dict = {}
        self.evaluator = SimpleNamespace(get_last_metrics=lambda: self.metrics)
        self.train_epochs = 0
        self.stopped = False

    def stop_training(self):
        self.stopped = True


def drive(schedule: TrainingSchedule, scores, *, experience: int = 0):
    """Avalanche's epoch loop with ``scores[k - 1]`` the validation score after epoch k.
    Returns (epochs trained, the model's weight at the end = the epoch its weights are from)."""
    s = FakeStrategy(experience)
    schedule.before_training_exp(s)
    trained = 0
    for e in range(s.train_epochs):
        s.clock.train_exp_epochs = e
        schedule.before_training_epoch(s)
        if s.stopped:
            break
        with torch.no_grad():
            s.model.weight.fill_(e + 1)
        phase = schedule.phases[schedule.stage]
        s.metrics = {schedule.metric_key(phase) + "/Task000": scores[e]}
        trained += 1
    return trained, int(round(s.model.weight.item()))


def loss_phase(epochs, lr=1e-4):
    return Phase(lr, epochs, monitor="loss", min_delta=0.01)


def test_basic_phase_stops_on_a_loss_that_no_longer_drops_by_min_delta():
    # Epoch 1: 1.0; epochs 2-4 improve by less than 0.01 in total: patience 3 ends the stage at
    # epoch 4 and epoch 1's weights come back. Watching accuracy, or with min_delta 0, the
    # falling loss would be (or not be) an improvement every epoch and the stage would go on.
    scores = [1.0, 0.995, 0.993, 0.991, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    sched = TrainingSchedule(basic=[loss_phase(10)], continual=Phase(1e-5, 1), patience=3)
    assert drive(sched, scores) == (4, 1)
    assert sched.stages == [{"stage": 0, "start": 0, "end": 4, "best_epoch": 1, "best_value": 1.0,
                             "stopped_early": True, "restored": True}]
    # the same scores with min_delta 0: every epoch improves, the budget runs out, last weights
    plain = TrainingSchedule(basic=[Phase(1e-4, 10, monitor="loss")], continual=Phase(1e-5, 1), patience=3)
    assert drive(plain, scores) == (10, 10)
    # a drop of more than 0.01 (epoch 3) is the new best and resets the wait; watched as an
    # accuracy (higher is better), epoch 1 would stay the best and the stage end at epoch 4
    keeps = [1.0, 0.995, 0.98, 0.975, 0.972, 0.971, 0.5, 0.4]
    sched = TrainingSchedule(basic=[loss_phase(8)], continual=Phase(1e-5, 1), patience=3)
    assert drive(sched, keeps) == (6, 3)  # then 0.975, 0.972, 0.971: less than 0.01 below 0.98


def test_continual_phase_watches_accuracy_without_min_delta():
    scores = [0.2, 0.3, 0.3005, 0.29, 0.28, 0.27]
    sched = TrainingSchedule(basic=[loss_phase(5)], continual=Phase(1e-5, 6), patience=2)
    assert drive(sched, scores, experience=1) == (5, 3)  # 0.3005 > 0.3 counts (no min_delta)


def test_stage_two_tracks_its_best_afresh():
    # Stage 1 ends at loss 0.5 (epoch 3); stage 2 (fine-tune) starts worse and improves to 0.7 at
    # epoch 6, never beating 0.5. Fresh (Keras: one EarlyStopping per fit): stage 2 keeps its own
    # best, epoch 6. Carry: stage 1's 0.5 stays the best and the fine-tune is rolled back.
    scores = [0.9, 0.7, 0.5, 0.9, 0.8, 0.7, 0.75, 0.76, 0.77]
    phases = [loss_phase(3), loss_phase(6, lr=1e-6)]
    fresh = TrainingSchedule(basic=phases, continual=Phase(1e-5, 1), patience=3, finetune_best="fresh")
    assert drive(fresh, scores) == (9, 6)
    assert [(s["best_epoch"], s["best_value"]) for s in fresh.stages] == [(3, 0.5), (6, 0.7)]
    carry = TrainingSchedule(basic=phases, continual=Phase(1e-5, 1), patience=3, finetune_best="carry")
    assert drive(carry, scores)[1] == 3


def test_restore_on_stop_keeps_the_last_weights_when_the_budget_runs_out():
    scores = [0.5, 0.4, 0.3, 0.35]  # best at epoch 3, budget of 4: no early stop (patience 3)
    always = TrainingSchedule(basic=[loss_phase(4)], continual=Phase(1e-5, 1), patience=3)
    assert drive(always, scores) == (4, 3)
    on_stop = TrainingSchedule(basic=[loss_phase(4)], continual=Phase(1e-5, 1), patience=3,
                               restore_best="on_stop")
    assert drive(on_stop, scores) == (4, 4)
    stopped = [0.5, 0.6, 0.6, 0.6, 0.6]
    on_stop = TrainingSchedule(basic=[loss_phase(5)], continual=Phase(1e-5, 1), patience=3,
                               restore_best="on_stop")
    assert drive(on_stop, stopped) == (4, 1)  # it stops early: the best weights come back


def test_paper_config_builds_the_reference_schedule(tiny_benchmark):
    cfg = paper_training()
    model = build_model(ModelConfig(basic_freeze_below="all", finetune_freeze_below="layer2",
                                    freeze_below="layer1"), n_classes=6)
    s = build("naive", model=model, benchmark=tiny_benchmark, config=cfg)
    basic, continual = s.schedule.basic, s.schedule.continual
    assert [(p.lr, p.epochs, p.monitor, p.min_delta, p.batch_size, p.drop_last, p.head_l2)
            for p in basic] == [(1e-4, 1000, "loss", 0.01, 32, False, True),
                                (1e-6, 1000, "loss", 0.01, 32, False, True)]
    assert (continual.lr, continual.epochs, continual.monitor, continual.min_delta,
            continual.batch_size, continual.drop_last, continual.head_l2) == (
        1e-5, 1000, "accuracy", 0.0, 16, True, False)
    assert (s.schedule.patience, s.schedule.finetune_best, s.schedule.restore_best) == (100, "fresh",
                                                                                        "on_stop")
    assert all(g["eps"] == 1e-7 for g in s.optimizer.param_groups)  # Keras' Adam epsilon
    default = build("naive", model=model, benchmark=tiny_benchmark, config=TrainingConfig(**TINY))
    assert all(g["eps"] == 1e-8 for g in default.optimizer.param_groups)


# --- early stopping in a real (tiny) training ------------------------------------------------------

def test_a_real_basic_training_stops_on_the_validation_loss(tiny_benchmark):
    bm = tiny_benchmark
    torch.manual_seed(0)
    # No drop of the loss can be larger than 1e9: epoch 1 stays the best, patience 2 stops the
    # stage at epoch 3, and epoch 1's weights come back.
    cfg = TrainingConfig(**{**TINY, "basic_epochs": 8, "patience": 2, "basic_lr": 5e-2,
                            "basic_monitor": "loss", "basic_min_delta": 1e9})
    model = build_model(ModelConfig(), n_classes=bm.info.n_basic)
    strategy = build("naive", model=model, benchmark=bm, config=cfg, evaluator=evaluator())
    strategy.train(bm.train_stream[0], eval_streams=[bm.valid_stream[:1]])
    sched = strategy.schedule
    assert strategy.clock.train_exp_epochs == 3 and len(sched.history) == 3
    assert sched.best_epoch == 1 and sched.stages[0]["stopped_early"]
    loss = strategy.eval(bm.valid_stream[:1])["Loss_Stream/eval_phase/valid_stream"]
    assert loss == pytest.approx(sched.history[0])  # the monitored value is the validation loss
    # with min_delta 0 the same run keeps improving its loss and runs longer
    torch.manual_seed(0)
    cfg = TrainingConfig(**{**TINY, "basic_epochs": 8, "patience": 2, "basic_lr": 5e-2,
                            "basic_monitor": "loss"})
    strategy = build("naive", model=build_model(ModelConfig(), n_classes=bm.info.n_basic), benchmark=bm,
                     config=cfg, evaluator=evaluator())
    strategy.train(bm.train_stream[0], eval_streams=[bm.valid_stream[:1]])
    assert strategy.clock.train_exp_epochs > 3
    assert min(strategy.schedule.history) < strategy.schedule.history[0]


# --- continual mini-batches ------------------------------------------------------------------------

@pytest.fixture
def batch_benchmark():
    """20 training images per class (2 subjects x 10), 6 basic classes + 2 compound ones."""
    from cfer.benchmarks import compound_benchmark
    from cfer.benchmarks.taxonomy import CFEE_COMPOUND

    ds, images = make_tiny_dataset(per_class=10, compounds=CFEE_COMPOUND[:2])
    return compound_benchmark(ds, images=images, image_size=16, n_folds=3, seed=0,
                              class_order=list(ds.class_names[6:]))


@pytest.mark.parametrize("on_device", ["false", "auto"])
@pytest.mark.parametrize("method", ["naive", "kd_psmr"])
def test_continual_batches_are_16_with_the_last_partial_one_dropped(batch_benchmark, on_device, method):
    from avalanche.core import SupervisedPlugin

    from cfer.plugins.speed.config import FastDataConfig
    from cfer.plugins.speed.loader import FastLoader

    bm = batch_benchmark
    assert [len(e.dataset) for e in bm.train_stream] == [120, 20, 20]

    def batches(**training) -> tuple[dict, set]:
        seen: dict[int, list[int]] = {}
        loaders = set()

        class Spy(SupervisedPlugin):
            def after_training_iteration(self, strategy, **kwargs):
                seen.setdefault(strategy.experience.current_experience, []).append(len(strategy.mb_x))
                loaders.add(isinstance(strategy.dataloader, FastLoader))

        torch.manual_seed(0)
        cfg = TrainingConfig(**{**TINY, "batch_size": 32, "continual_batch_size": 16, "mem_per_class": 3,
                                **training})
        strategy = build(method, model=build_model(ModelConfig(), n_classes=bm.info.n_basic), benchmark=bm,
                         config=cfg, plugins=[Spy()], data=FastDataConfig(on_device=on_device))
        for exp in list(bm.train_stream)[:2]:
            strategy.train(exp, eval_streams=[])
        return seen, loaders

    dropped, loaders = batches(continual_drop_last=True)
    assert loaders == {on_device == "auto"}  # the fast loader, or Avalanche's own
    assert dropped[0] == [32, 32, 32, 24]  # basic phase: batch 32, the last partial batch kept
    full = len(dropped[1])
    assert full >= 1 and dropped[1] == [16] * full  # continual: 16 each, nothing smaller
    kept, _ = batches(continual_drop_last=False)
    assert kept[0] == [32, 32, 32, 24]
    assert kept[1][:-1] == [16] * full and 0 < kept[1][-1] < 16  # the partial batch that was dropped
    # naive trains on the 20 new images only: one batch of 16, 4 dropped
    if method == "naive":
        assert dropped[1] == [16] and kept[1] == [16, 4]


def test_a_train_call_over_both_phases_needs_one_drop_last(batch_benchmark):
    bm = batch_benchmark
    cfg = TrainingConfig(**{**TINY, "continual_drop_last": True})
    strategy = build("naive", model=build_model(ModelConfig(), n_classes=bm.info.n_basic), benchmark=bm,
                     config=cfg)
    with pytest.raises(ValueError, match="drop_last"):
        strategy.train(bm.train_stream, eval_streams=[])


# --- head L2 -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("continual_head_l2", [False, True])
def test_head_l2_is_on_in_the_basic_phase_and_off_in_continual_ones(tiny_benchmark, continual_head_l2):
    from avalanche.core import SupervisedPlugin

    bm = tiny_benchmark
    decays = []

    class Spy(SupervisedPlugin):
        def before_training_epoch(self, strategy, **kwargs):
            head = [g for g in strategy.optimizer.param_groups if "head_l2_decay" in g]
            decays.append((strategy.experience.current_experience, [g["weight_decay"] for g in head]))

    model = build_model(ModelConfig(name="small_cnn", head="paper", hidden=(16,)), n_classes=bm.info.n_basic)
    cfg = TrainingConfig(**{**TINY, "continual_head_l2": continual_head_l2, "weight_decay": 1e-3})
    strategy = build("naive", model=model, benchmark=bm, config=cfg, plugins=[Spy()])
    for i in range(3):
        strategy.train(bm.train_stream[i], eval_streams=[])
    continual = 1e-3 + 2e-5 if continual_head_l2 else 1e-3
    assert decays == [(0, [pytest.approx(1e-3 + 2e-5)]), (1, [pytest.approx(continual)]),
                      (2, [pytest.approx(continual)])]
    assert paper_training().continual_head_l2 is False


# --- augmentation ------------------------------------------------------------------------------------

def paper_augment(**changes) -> AugmentConfig:
    import dataclasses

    from cfer.experiments.config.load import load_config

    section = load_config("paper_cfee").benchmark.augment
    return AugmentConfig(**{**dataclasses.asdict(section), **changes})


def paths(cfg: AugmentConfig):
    """The transform per item (torchvision path) and per batch (fast data path, on the CPU):
    each a function from a uint8 batch (N, 3, H, W) to the float output."""
    from cfer.plugins.speed.device_transforms import DeviceTransform

    per_item = train_transform(cfg)
    on_device = DeviceTransform([per_item])
    gen = torch.Generator().manual_seed(0)
    return {"item": lambda x: torch.stack([per_item(img) for img in x]),
            "device": lambda x: on_device(x, gen)}


def unnormalise(x: torch.Tensor) -> torch.Tensor:
    from cfer.benchmarks.transforms import IMAGENET_MEAN, IMAGENET_STD

    return x * torch.tensor(IMAGENET_STD).view(-1, 1, 1) + torch.tensor(IMAGENET_MEAN).view(-1, 1, 1)


def bar_angle(img: torch.Tensor) -> float:
    """Degrees of a bright horizontal bar in a float image (C, H, W) to the horizontal."""
    mass = img[0].clamp(min=0)
    h, w = mass.shape
    cols = torch.arange(w, dtype=torch.float64)[4:-4]
    rows = torch.arange(h, dtype=torch.float64)
    centre = (mass[:, 4:-4].double() * rows[:, None]).sum(0) / mass[:, 4:-4].double().sum(0)
    slope = np.polyfit(cols.numpy(), centre.numpy(), 1)[0]
    return math.degrees(math.atan(slope))


@pytest.mark.parametrize("path", ["item", "device"])
def test_rotation_stays_within_the_reference_3_6_degrees(path):
    cfg = paper_augment(zoom=0.0, translate=0.0)  # rotation only, as configured
    assert cfg.rotation == pytest.approx(3.6)  # RandomRotation(0.01): 0.01 of a full turn
    x = torch.zeros(64, 3, 65, 65, dtype=torch.uint8)
    x[:, :, 30:35, :] = 255
    torch.manual_seed(0)
    angles = [abs(bar_angle(img)) for img in unnormalise(paths(cfg)[path](x))]
    assert max(angles) <= 3.6 + 0.15
    assert max(angles) > 3.0  # the range is used (a 10-degree range would exceed the bound)


@pytest.mark.parametrize("path", ["item", "device"])
def test_zoom_is_drawn_per_axis(path):
    cfg = paper_augment(rotation=0.0, translate=0.0, fill="zeros")
    x = torch.zeros(32, 3, 128, 128, dtype=torch.uint8)
    x[:, :, 32:96, 32:96] = 255  # a centred 64-pixel square
    torch.manual_seed(0)
    out = unnormalise(paths(cfg)[path](x))[:, 0]
    width, height = out[:, 64, :].sum(1), out[:, :, 64].sum(1)  # the square's size in pixels
    assert ((width > 64 * 0.95 - 1) & (width < 64 * 1.05 + 1)).all()
    assert (height - width).abs().max() > 1.0  # independent zooms: the square becomes a rectangle
    same = paths(paper_augment(rotation=0.0, translate=0.0, fill="zeros", zoom_per_axis=False))[path]
    out = unnormalise(same(x))[:, 0]
    assert (out[:, 64, :].sum(1) - out[:, :, 64].sum(1)).abs().max() < 0.05  # one zoom: squares


@pytest.mark.parametrize("path", ["item", "device"])
def test_reflect_fill_leaves_no_black_border(path):
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(100, 200, size=(16, 3, 48, 48), dtype=np.uint8))
    big = dict(rotation=20.0, zoom=0.2, translate=0.2)  # moves that uncover the borders
    torch.manual_seed(0)
    reflected = unnormalise(paths(paper_augment(**big))[path](x))
    assert reflected.min() > 90 / 255  # every pixel comes from the image
    torch.manual_seed(0)
    black = unnormalise(paths(paper_augment(**big, fill="zeros"))[path](x))
    assert black.min() < 0.01  # the same moves with the zero fill uncover black


def test_keras_affine_is_used_only_for_the_reference_settings():
    from torchvision.transforms import v2

    default = train_transform(AugmentConfig())
    assert any(isinstance(t, v2.RandomAffine) for t in default.transforms)
    assert not any(isinstance(t, KerasAffine) for t in default.transforms)
    ref = train_transform(paper_augment())
    assert [type(t).__name__ for t in ref.transforms] == ["RandomHorizontalFlip", "ToDtype",
                                                          "KerasAffine", "Normalize"]
    with pytest.raises(ValueError, match="augment.fill"):
        AugmentConfig(fill="black")
