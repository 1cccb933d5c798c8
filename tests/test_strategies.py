"""Every registered strategy trains and evaluates on the tiny benchmark; schedule and masks."""

from __future__ import annotations

import math

import pytest
import torch

from cfer.strategies.builder import build
from cfer.strategies.config import StrategyConfig
from cfer.strategies.models import ModelConfig, build_model
from cfer.strategies.models.classifier import GrowingClassifier
from cfer.strategies.registry import available, entry

TINY = dict(batch_size=4, eval_batch_size=8, basic_epochs=1, epochs=1, patience=0, lr=1e-3,
            basic_lr=1e-3, mem_per_class=1, bic_epochs=1, bic_val_fraction=0.5,
            agem_patterns_per_exp=4, agem_sample_size=4, gem_patterns_per_exp=4)


def evaluator():
    import warnings

    from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
    from avalanche.training.plugins import EvaluationPlugin

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return EvaluationPlugin(accuracy_metrics(experience=True, stream=True),
                                loss_metrics(epoch=True, stream=True), loggers=[])


def head_width(strategy) -> int:
    heads = [m for m in strategy.model.modules() if isinstance(m, GrowingClassifier)]
    assert len(heads) == 1
    return heads[0].out_features


def check_eval(result: dict, n_exps: int) -> None:
    for j in range(n_exps):
        acc = result[f"Top1_Acc_Exp/eval_phase/test_stream/Exp{j:03d}"]
        assert 0.0 <= acc <= 1.0
    assert 0.0 <= result["Top1_Acc_Stream/eval_phase/test_stream"] <= 1.0
    assert math.isfinite(result["Loss_Stream/eval_phase/test_stream"])


def test_registry_lists_the_required_strategies():
    required = {"naive", "joint", "cumulative", "replay", "lwf", "icarl", "ewc", "agem", "gem", "der",
                "er_ace", "bic", "gdumb", "kd_psmr", "kd_only", "psmr_only", "kd_random_replay",
                "kd_herding"}
    assert required <= set(available())
    assert entry("joint").offline and not entry("kd_psmr").offline
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        entry("nope")


@pytest.mark.parametrize("name", available())
def test_strategy_trains_and_evaluates(name, tiny_benchmark):
    torch.manual_seed(0)
    bm = tiny_benchmark
    n_basic, n_exps = bm.info.n_basic, len(bm.train_stream)
    model = build_model(ModelConfig(name="small_cnn"), n_classes=n_basic)
    assert head_width_of(model) == n_basic
    strategy = build(name, model=model, benchmark=bm, config=StrategyConfig(**TINY),
                     evaluator=evaluator())
    if entry(name).offline:
        strategy.train(bm.train_stream, eval_streams=[bm.valid_stream])
        assert head_width(strategy) == n_basic + n_exps - 1
        for i in range(n_exps):
            strategy.seen_class_mask.n_seen = n_basic + i
            check_eval(strategy.eval(bm.test_stream[: i + 1]), i + 1)
        return
    for i, exp in enumerate(bm.train_stream):
        result = strategy.train(exp, eval_streams=[bm.valid_stream[: i + 1]])
        assert math.isfinite(result["Loss_Epoch/train_phase/train_stream"])
        assert head_width(strategy) == n_basic + i
        check_eval(strategy.eval(bm.test_stream[: i + 1]), i + 1)


@pytest.mark.parametrize("name", [n for n in available() if not entry(n).offline])
def test_strategy_starts_from_a_shared_basic_model(name, tiny_benchmark):
    """The runner trains experience 0 once and primes each order's strategy from it."""
    from cfer.plugins.primer import PrimerPlugin

    torch.manual_seed(0)
    bm = tiny_benchmark
    trained = build_model(ModelConfig(name="small_cnn"), n_classes=bm.info.n_basic)
    first = build(name, model=trained, benchmark=bm, config=StrategyConfig(**TINY), evaluator=evaluator())
    first.train(bm.train_stream[0], eval_streams=[])
    model = build_model(ModelConfig(name="small_cnn"), n_classes=bm.info.n_basic)
    model.load_state_dict(trained.state_dict())
    primer = PrimerPlugin()
    strategy = build(name, model=model, benchmark=bm, config=StrategyConfig(**TINY),
                     evaluator=evaluator(), plugins=[primer])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    primer.prime(strategy, bm.train_stream[0])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    strategy.train(bm.train_stream[1], eval_streams=[])
    check_eval(strategy.eval(bm.test_stream[:2]), 2)


def head_width_of(model) -> int:
    return model.classifier.out_features


def test_evaluating_an_unseen_class_is_a_clear_error(tiny_benchmark):
    bm = tiny_benchmark
    model = build_model(ModelConfig(), n_classes=bm.info.n_basic)
    strategy = build("naive", model=model, benchmark=bm, config=StrategyConfig(**TINY))
    strategy.train(bm.train_stream[0], eval_streams=[])
    with pytest.raises(ValueError, match=r"classes \[6\] that the model has not been trained on"):
        strategy.eval(bm.test_stream[:2])


def test_seen_class_mask_restricts_predictions(tiny_benchmark):
    from cfer.strategies.masking import SeenClassMask

    class Strategy:
        mb_output = torch.zeros(3, 9)

    s, mask = Strategy(), SeenClassMask()
    mask.after_eval_forward(s)
    assert torch.isfinite(s.mb_output).all()
    mask.n_seen = 7
    mask.after_eval_forward(s)
    assert torch.isinf(s.mb_output[:, 7:]).all() and torch.isfinite(s.mb_output[:, :7]).all()
    assert (s.mb_output.argmax(1) < 7).all()


def test_schedule_sets_phase_lr_epochs_and_two_stage_freezing(tiny_benchmark):
    from avalanche.core import SupervisedPlugin

    bm = tiny_benchmark
    cfg = StrategyConfig(**{**TINY, "basic_epochs": 2, "finetune_epochs": 1, "epochs": 2,
                            "basic_lr": 1e-2, "finetune_lr": 1e-4, "lr": 1e-3})
    model = build_model(ModelConfig(basic_freeze_below="all", finetune_freeze_below="layer2",
                                    freeze_below="layer1"), n_classes=bm.info.n_basic)
    seen = []

    class Spy(SupervisedPlugin):
        def before_training_epoch(self, strategy, **kwargs):
            seen.append((strategy.experience.current_experience, strategy.optimizer.param_groups[0]["lr"],
                         model.backbone.frozen))

    strategy = build("naive", model=model, benchmark=bm, config=cfg, plugins=[Spy()])
    for i in range(2):
        strategy.train(bm.train_stream[i], eval_streams=[])
    everything = ("stem", "layer1", "layer2", "layer3")
    assert seen == [(0, 1e-2, everything), (0, 1e-2, everything), (0, 1e-4, ("stem", "layer1")),
                    (1, 1e-3, ("stem",)), (1, 1e-3, ("stem",))]
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith("feature_extractor.backbone.stages.stem.") for n in frozen)


def test_early_stopping_restores_the_best_weights(tiny_benchmark):
    bm = tiny_benchmark
    torch.manual_seed(0)
    cfg = StrategyConfig(**{**TINY, "basic_epochs": 6, "patience": 2, "basic_lr": 5e-2})
    model = build_model(ModelConfig(), n_classes=bm.info.n_basic)
    strategy = build("naive", model=model, benchmark=bm, config=cfg, evaluator=evaluator())
    strategy.train(bm.train_stream[0], eval_streams=[bm.valid_stream[:1]])
    sched = strategy.schedule
    assert 1 <= len(sched.history) <= 6  # one validation score per trained epoch
    assert sched.best_value == max(sched.history)
    epochs_run = strategy.clock.train_exp_epochs
    assert epochs_run == len(sched.history)
    if epochs_run < 6:  # stopped early: patience epochs without improvement
        assert epochs_run - sched.best_epoch == 2
    score = strategy.eval(bm.valid_stream[:1])["Top1_Acc_Stream/eval_phase/valid_stream"]
    assert score == pytest.approx(sched.best_value)


def test_early_stopping_needs_the_validation_metric(tiny_benchmark):
    bm = tiny_benchmark
    cfg = StrategyConfig(**{**TINY, "basic_epochs": 2, "patience": 1})
    model = build_model(ModelConfig(), n_classes=bm.info.n_basic)
    strategy = build("naive", model=model, benchmark=bm, config=cfg, valid_stream_name="nowhere")
    with pytest.raises(ValueError, match="nowhere_stream"):
        strategy.train(bm.train_stream[0], eval_streams=[bm.valid_stream[:1]])


def test_build_rejects_bad_inputs(tiny_benchmark):
    bm = tiny_benchmark
    model = build_model(ModelConfig(), n_classes=bm.info.n_basic)
    with pytest.raises(TypeError, match="StrategyConfig"):
        build("naive", model=model, benchmark=bm, config={"lr": 1})
    with pytest.raises(TypeError, match="build_model"):
        build("naive", model=torch.nn.Linear(2, 2), benchmark=bm, config=StrategyConfig())
    with pytest.raises(ValueError, match="model.image_size is 32"):
        build("naive", model=build_model(ModelConfig(image_size=32), n_classes=6), benchmark=bm,
              config=StrategyConfig())
    with pytest.raises(ValueError, match="m = 0 per class"):  # 0.3 * 18 images < 9 classes
        build("replay", model=model, benchmark=bm, config=StrategyConfig())
    with pytest.raises(ValueError, match="training.memory_mode"):
        StrategyConfig(memory_mode="forever")


def test_replay_memory_follows_the_paper_rule(tiny_benchmark):
    bm = tiny_benchmark
    model = build_model(ModelConfig(), n_classes=bm.info.n_basic)
    for mode, expected in (("grow", 2 * 9), ("limit", 2 * 9)):
        cfg = StrategyConfig(**{**TINY, "mem_per_class": 2, "memory_mode": mode})
        strategy = build("replay", model=model, benchmark=bm, config=cfg)
        (plugin,) = [p for p in strategy.plugins if type(p).__name__ == "ReplayPlugin"]
        assert plugin.storage_policy.max_size == expected
        assert plugin.storage_policy.adaptive_size == (mode == "limit")
    strategy = build("replay", model=model, benchmark=bm,
                     config=StrategyConfig(**{**TINY, "mem_per_class": 2}))
    strategy.train(bm.train_stream[0], eval_streams=[])
    groups = strategy.plugins[0].storage_policy.buffer_groups
    assert sorted(groups) == list(range(6)) and all(len(g.buffer) == 2 for g in groups.values())


def test_optimizer_follows_the_growing_head(tiny_benchmark):
    bm = tiny_benchmark
    model = build_model(ModelConfig(name="small_cnn", head="paper", hidden=(16,)), n_classes=bm.info.n_basic)
    strategy = build("naive", model=model, benchmark=bm, config=StrategyConfig(**TINY))
    for i in range(2):
        strategy.train(bm.train_stream[i], eval_streams=[])
    optimized = [p for g in strategy.optimizer.param_groups for p in g["params"]]
    assert len(optimized) == len(list(model.parameters()))
    assert {id(p) for p in optimized} == {id(p) for p in model.parameters()}
    assert model.classifier.linear.weight.shape == (7, 16)
    # the head's hidden Dense weights carry the reference code's L2 (Keras l2(1e-5) -> decay 2e-5)
    (decayed,) = [g for g in strategy.optimizer.param_groups if g["weight_decay"] > 0]
    assert [id(p) for p in decayed["params"]] == [id(model.neck[1].weight)]
    assert decayed["weight_decay"] == pytest.approx(2e-5)
