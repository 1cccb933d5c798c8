"""Every registered strategy trains and evaluates on the tiny benchmark; schedule and masks;
typed per-strategy hyperparameters; discovery of the zoo."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from cfer.strategies.builder import build
from cfer.strategies.models.classifier import GrowingClassifier
from cfer.strategies.models.config import ModelConfig
from cfer.strategies.models.registry import build_model
from cfer.strategies.registry import available, entry
from cfer.strategies.training import TrainingConfig

TINY = dict(batch_size=4, eval_batch_size=8, basic_epochs=1, epochs=1, patience=0, lr=1e-3,
            basic_lr=1e-3, mem_per_class=1)
# Per-strategy hyperparameters small enough for the tiny benchmark (strategies.params.<name>).
TINY_PARAMS = {"bic": dict(epochs=1, val_fraction=0.5), "agem": dict(patterns_per_exp=4, sample_size=4),
               "gem": dict(patterns_per_exp=4)}


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


def test_registry_lists_the_strategies_by_their_declared_order():
    names = available()
    assert len(set(names)) == len(names)
    assert names == sorted(names, key=lambda n: (entry(n).order, n))
    for name in names:
        assert entry(name).description, f"{name}: no description"
    # the bounds first, the paper's method and its ablations after the baselines (their orders)
    assert names[0] == "naive" and names.index("kd_psmr") > names.index("gdumb")


def test_registry_lists_the_required_strategies():
    # docs/design.md promises these (a new strategy adds to them; none of them may go)
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
    strategy = build(name, model=model, benchmark=bm, config=TrainingConfig(**TINY),
                     params=TINY_PARAMS.get(name), evaluator=evaluator())
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


def _fresh(name, bm, *, plugins=(), seed=0, **config):
    """A model and strategy built exactly as the runner builds them for one run
    (``config``: overrides of the tiny training config)."""
    from avalanche.training.determinism.rng_manager import RNGManager

    RNGManager.set_random_seeds(seed)
    model = build_model(ModelConfig(name="small_cnn"), n_classes=bm.info.n_basic)
    strategy = build(name, model=model, benchmark=bm, config=TrainingConfig(**{**TINY, **config}),
                     params=TINY_PARAMS.get(name), evaluator=evaluator(), plugins=list(plugins),
                     seed=seed)
    return model, strategy


def _weights(strategy) -> dict:
    model = getattr(strategy.model, "_orig_mod", strategy.model)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", [n for n in available() if not entry(n).offline])
def test_a_shared_basic_model_gives_the_numbers_of_a_self_trained_run(name, tiny_benchmark):
    """runner.share_basic is exact: a strategy primed from a basic model trained elsewhere
    ends every later step with the weights and test accuracies, to the last bit, of the
    same run training experience 0 itself (its own state after experience 0, its random
    stream after it)."""
    from cfer.plugins.run.start_from_weights import StartFromWeightsPlugin

    bm = tiny_benchmark
    stream, tests = bm.train_stream, bm.test_stream
    key = "Top1_Acc_Stream/eval_phase/test_stream"
    # Each run is built right before it runs, as the runner does (seed, build, train).
    basic_model, basic = _fresh(name, bm)  # the shared basic model, trained in its own strategy
    basic.train(stream[0], eval_streams=[])
    shared_state = {k: v.detach().clone() for k, v in basic_model.state_dict().items()}

    _, own = _fresh(name, bm)
    own_steps = []
    for i, exp in enumerate(stream):
        own.train(exp, eval_streams=[])
        own_steps.append((_weights(own), own.eval(tests[: i + 1])[key]))

    primer = StartFromWeightsPlugin()
    primed_model, primed = _fresh(name, bm, plugins=[primer])
    for i, exp in enumerate(stream):
        if i == 0:
            primer.prime(primed, exp, state_dict=shared_state, model=primed_model)
        else:
            primed.train(exp, eval_streams=[])
        weights, accuracy = own_steps[i]
        now = _weights(primed)
        assert weights.keys() == now.keys()
        assert all(torch.equal(weights[k], now[k]) for k in now), f"{name}: weights differ after step {i}"
        assert primed.eval(tests[: i + 1])[key] == accuracy, f"{name}: test accuracy differs after step {i}"


def head_width_of(model) -> int:
    return model.classifier.out_features


def test_evaluating_an_unseen_class_is_a_clear_error(tiny_benchmark):
    bm = tiny_benchmark
    model = build_model(ModelConfig(), n_classes=bm.info.n_basic)
    strategy = build("naive", model=model, benchmark=bm, config=TrainingConfig(**TINY))
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
    cfg = TrainingConfig(**{**TINY, "basic_epochs": 2, "finetune_epochs": 1, "epochs": 2,
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
    cfg = TrainingConfig(**{**TINY, "basic_epochs": 6, "patience": 2, "basic_lr": 5e-2})
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
    cfg = TrainingConfig(**{**TINY, "basic_epochs": 2, "patience": 1})
    model = build_model(ModelConfig(), n_classes=bm.info.n_basic)
    strategy = build("naive", model=model, benchmark=bm, config=cfg, valid_stream_name="nowhere")
    with pytest.raises(ValueError, match="nowhere_stream"):
        strategy.train(bm.train_stream[0], eval_streams=[bm.valid_stream[:1]])


def test_build_rejects_bad_inputs(tiny_benchmark):
    bm = tiny_benchmark
    model = build_model(ModelConfig(), n_classes=bm.info.n_basic)
    with pytest.raises(TypeError, match="TrainingConfig"):
        build("naive", model=model, benchmark=bm, config={"lr": 1})
    with pytest.raises(TypeError, match="build_model"):
        build("naive", model=torch.nn.Linear(2, 2), benchmark=bm, config=TrainingConfig())
    with pytest.raises(ValueError, match="model.image_size is 32"):
        build("naive", model=build_model(ModelConfig(image_size=32), n_classes=6), benchmark=bm,
              config=TrainingConfig())
    with pytest.raises(ValueError, match="m = 0 per class"):  # 0.3 * 18 images < 9 classes
        build("replay", model=model, benchmark=bm, config=TrainingConfig())
    with pytest.raises(ValueError, match="training.memory_mode"):
        TrainingConfig(memory_mode="forever")


def test_replay_memory_follows_the_paper_rule(tiny_benchmark):
    bm = tiny_benchmark
    model = build_model(ModelConfig(), n_classes=bm.info.n_basic)
    for mode, expected in (("grow", 2 * 9), ("limit", 2 * 9)):
        cfg = TrainingConfig(**{**TINY, "mem_per_class": 2, "memory_mode": mode})
        strategy = build("replay", model=model, benchmark=bm, config=cfg)
        (plugin,) = [p for p in strategy.plugins if type(p).__name__ == "ReplayPlugin"]
        assert plugin.storage_policy.max_size == expected
        assert plugin.storage_policy.adaptive_size == (mode == "limit")
    strategy = build("replay", model=model, benchmark=bm,
                     config=TrainingConfig(**{**TINY, "mem_per_class": 2}))
    strategy.train(bm.train_stream[0], eval_streams=[])
    groups = strategy.plugins[1].storage_policy.buffer_groups
    assert sorted(groups) == list(range(6)) and all(len(g.buffer) == 2 for g in groups.values())


def test_optimizer_follows_the_growing_head(tiny_benchmark):
    bm = tiny_benchmark
    model = build_model(ModelConfig(name="small_cnn", head="paper", hidden=(16,)), n_classes=bm.info.n_basic)
    strategy = build("naive", model=model, benchmark=bm, config=TrainingConfig(**TINY))
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


# --- per-strategy hyperparameters ---------------------------------------------------------------

# The defaults the committed results were computed with (results must not change): a regression
# table of the strategies it names, not a list of the registry (a new strategy is not in it).
OLD_DEFAULTS = {
    "lwf": dict(alpha=1.0, temperature=2.0),
    "ewc": dict(ewc_lambda=5000.0),
    "agem": dict(patterns_per_exp=100, sample_size=64),
    "gem": dict(patterns_per_exp=100, memory_strength=0.5),
    "der": dict(alpha=0.1, beta=0.5),
    "bic": dict(val_fraction=0.1, epochs=200, lr=0.1, temperature=2.0),
    "gdumb": dict(memory=None),
    **{name: dict(temperature=3.0, gamma=0.1, decay=True, teacher="basic", selection=selection,
                  score="logit", new_class_samples="m", new_class_draw="epoch")
       for name, selection in (("kd_psmr", "predictive"), ("kd_random_replay", "random"),
                               ("kd_herding", "herding"))},
    "kd_only": dict(temperature=3.0, gamma=0.1, decay=True, teacher="basic"),
    "psmr_only": dict(selection="predictive", score="logit", new_class_samples="m", new_class_draw="epoch"),
}


@pytest.mark.parametrize("name", available())
def test_every_strategy_declares_typed_frozen_params(name):
    import dataclasses

    from cfer.core.typed import record

    e = entry(name)
    params = e.resolve_params()
    owners = [params] if e.definition is None else [p for _, p in params.owners()]
    for p in owners:
        assert dataclasses.is_dataclass(p) and type(p).__dataclass_params__.frozen, name
    if e.definition is None:
        assert e.params.method == name  # its errors name strategies.params.<name>.<key>
    assert sorted(record(params)) == sorted(e.param_keys())
    assert e.resolve_params(record(params)) == params  # its own values laid over its defaults
    if name in OLD_DEFAULTS:
        assert record(params) == OLD_DEFAULTS[name]


def test_build_takes_params_as_a_mapping_or_an_instance(tiny_benchmark):
    from cfer.strategies.zoo.lwf import LwFParams

    bm = tiny_benchmark
    model = build_model(ModelConfig(), n_classes=bm.info.n_basic)
    config = TrainingConfig(**TINY)

    def lwf_plugin(strategy):
        (plugin,) = [p for p in strategy.plugins if type(p).__name__ == "LwFPlugin"]
        return plugin.lwf  # Avalanche's LearningWithoutForgetting: alpha, temperature

    plugin = lwf_plugin(build("lwf", model=model, benchmark=bm, config=config))
    assert (plugin.alpha, plugin.temperature) == (1.0, 2.0)
    plugin = lwf_plugin(build("lwf", model=model, benchmark=bm, config=config, params={"alpha": 2}))
    assert (plugin.alpha, plugin.temperature) == (2.0, 2.0)
    plugin = lwf_plugin(build("lwf", model=model, benchmark=bm, config=config,
                              params=LwFParams(temperature=4.0)))
    assert (plugin.alpha, plugin.temperature) == (1.0, 4.0)
    with pytest.raises(ValueError, match=r"unknown key 'strategies.params.lwf.alhpa' "
                                         r"\(known here: alpha, temperature\)"):
        build("lwf", model=model, benchmark=bm, config=config, params={"alhpa": 2})
    with pytest.raises(TypeError, match="key 'strategies.params.lwf.alpha': expected float"):
        build("lwf", model=model, benchmark=bm, config=config, params={"alpha": "two"})
    with pytest.raises(ValueError, match=r"strategies.params.lwf.alpha: must be >= 0"):
        build("lwf", model=model, benchmark=bm, config=config, params={"alpha": -1})
    with pytest.raises(TypeError, match="params must be None, a mapping or a LwFParams"):
        build("lwf", model=model, benchmark=bm, config=config, params=entry("ewc").params())
    with pytest.raises(ValueError, match="strategy 'naive' has no hyperparameters"):
        build("naive", model=model, benchmark=bm, config=config, params={"alpha": 1})


def test_composed_methods_route_their_params_to_their_plugins(tiny_benchmark):
    """strategies.params.<method>.<key> of the paper's method and its ablations: each key goes to
    the plugin that has it, a key the method's plugins lack is unknown, errors name the method."""
    for name in ("kd_psmr", "kd_only", "kd_random_replay", "kd_herding"):
        with pytest.raises(ValueError, match=f"strategies.params.{name}.gamma: must be in \\[0, 1\\]"):
            entry(name).resolve_params({"gamma": 2.0})
    with pytest.raises(ValueError, match=r"key 'strategies.params.kd_psmr.teacher': expected 'basic' \| "
                                         r"'previous'"):
        entry("kd_psmr").resolve_params({"teacher": "nobody"})
    with pytest.raises(ValueError, match=r"unknown key 'strategies.params.kd_only.selection' \(known here: "
                                         r"decay, gamma, teacher, temperature\)"):
        entry("kd_only").resolve_params({"selection": "random"})
    with pytest.raises(ValueError, match="unknown key 'strategies.params.psmr_only.temperature'"):
        entry("psmr_only").resolve_params({"temperature": 5.0})
    with pytest.raises(ValueError, match=r"strategies.params.kd_herding.score: must be left at 'logit'"):
        entry("kd_herding").resolve_params({"score": "probability"})
    nested = entry("kd_psmr").resolve_params({"distillation": {"gamma": 0.2}, "selection": "herding"})
    assert nested.gamma == 0.2 and nested.plugin("psmr").selection == "herding"

    bm = tiny_benchmark
    model = build_model(ModelConfig(), n_classes=bm.info.n_basic)
    strategy = build("kd_psmr", model=model, benchmark=bm, config=TrainingConfig(**TINY),
                     params={"temperature": 5, "gamma": 0.2, "decay": False, "teacher": "previous",
                             "selection": "herding"})
    names = [type(p).__name__ for p in strategy.plugins]
    kd = strategy.plugins[names.index("BasicDistillationPlugin")]
    memory = strategy.plugins[names.index("PredictiveSortingReplayPlugin")]
    assert names.index("BasicDistillationPlugin") < names.index("PredictiveSortingReplayPlugin")
    assert (kd.config.temperature, kd.config.gamma, kd.config.decay, kd.config.teacher) == (
        5.0, 0.2, False, "previous")
    assert memory.config.selection == "herding" and memory.config.mem_per_class == 1


def test_config_sets_params_per_method_with_one_line_errors(tmp_path):
    from cfer.core.typed import ConfigError
    from cfer.experiments.config.load import load_config

    p = tmp_path / "quick.yaml"
    p.write_text("strategies:\n  methods: [lwf, kd_psmr]\n  params: {lwf: {alpha: 2}}\n")
    cfg = load_config(p, ["strategies.params.kd_psmr.teacher=previous"])
    assert cfg.params_for("lwf") == entry("lwf").params(alpha=2.0, temperature=2.0)
    assert cfg.params_for("kd_psmr").temperature == 3.0
    assert cfg.params_for("kd_psmr").teacher == "previous" and cfg.params_for("ewc").ewc_lambda == 5000.0
    assert cfg.training_for("lwf") == cfg.training
    bad = {"strategies.params.lwf.alhpa=2": r"quick.yaml: unknown key 'strategies.params.lwf.alhpa' "
                                             r"\(known here: alpha, temperature\)$",
           "strategies.params.lwf.alpha=high": r"key 'strategies.params.lwf.alpha': expected float",
           "strategies.params.lwf.alpha=-1": r"strategies.params.lwf.alpha: must be >= 0",
           "strategies.params.lwff.alpha=1": r"key 'strategies.params.lwff': unknown strategy 'lwff'",
           "strategies.params.kd_psmr.teacher=nobody": r"key 'strategies.params.kd_psmr.teacher': expected",
           "strategies.overrides.lwf.alpha=3": r"set strategies.params.lwf.alpha$",
           "training.lwf_alpha=3": r"unknown key 'training.lwf_alpha'"}
    for override, message in bad.items():
        with pytest.raises(ConfigError, match=message) as e:
            load_config(p, [override])
        assert "\n" not in str(e.value)


def test_shipped_configs_load_and_give_every_method_its_params():
    from cfer.experiments.config.load import CONFIG_DIR, load_config

    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        cfg = load_config(path)
        for method in cfg.strategies.methods:
            assert isinstance(cfg.params_for(method), cfg.method_entry(method).params)


# --- discovery and the light package root --------------------------------------------------------
# (a real new strategy file in a copy of the package: tests/test_new_strategy_file.py)

def test_a_params_dataclass_belongs_to_one_strategy():
    from cfer.strategies.registry import register_strategy

    with pytest.raises(ValueError, match="LwFParams already holds the hyperparameters of 'lwf'"):
        register_strategy("lwf_again", params=entry("lwf").params)
    with pytest.raises(TypeError, match="params must be a StrategyParams dataclass"):
        register_strategy("plain", params=dict)


def test_importing_the_package_and_the_config_stays_free_of_torch():
    code = ("import sys; import cfer.strategies, cfer.strategies.models; "
            "import cfer.experiments.config.load as c; "
            "from cfer.strategies.registry import available; names = available(); "
            "cfg = c.load_config(None, ['strategies.params.lwf.alpha=2']); cfg.params_for('kd_psmr'); "
            "heavy = sorted(m for m in ('torch', 'avalanche', 'torchvision') if m in sys.modules); "
            "print(len(names), heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split(" ", 1)[1].strip() == "[]", out


def test_memory_rule_is_one_module_shared_by_psmr_and_the_replay_baselines(tiny_benchmark):
    from cfer.plugins.method import memory, psmr

    assert psmr.memory_sizes is memory.memory_sizes  # still importable from the plugin
    assert memory.memory_sizes(fraction=0.3, total_train_size=90, total_classes=9) == (27, 3)
    assert memory.memory_budget(mode="grow", total=27, per_class=3, n_classes=9) == 27
    assert memory.memory_budget(mode="limit", total=28, per_class=3, n_classes=9) == 28
    assert memory.class_size(mode="limit", per_class=3, total=28, n_seen=6) == 4
    assert memory.class_size(mode="grow", per_class=3, total=28, n_seen=6) == 3
    bm = tiny_benchmark
    n, k = memory.stream_totals(bm.train_stream)
    assert k == 9 and n == sum(len(e.dataset) for e in bm.train_stream)
    model = build_model(ModelConfig(), n_classes=bm.info.n_basic)
    cfg = TrainingConfig(**{**TINY, "mem_per_class": None, "memory_fraction": 1.0, "memory_mode": "limit"})
    big_m, m = memory.memory_sizes(fraction=1.0, total_train_size=n, total_classes=k)
    replay = build("replay", model=model, benchmark=bm, config=cfg)
    (plugin,) = [p for p in replay.plugins if type(p).__name__ == "ReplayPlugin"]
    assert plugin.storage_policy.max_size == big_m
    kd = build("kd_psmr", model=model, benchmark=bm, config=cfg)
    (plugin,) = [p for p in kd.plugins if type(p).__name__ == "PredictiveSortingReplayPlugin"]
    # computed once, by the builder, over the whole stream's N and K
    assert (plugin.config.sizes.total, plugin.config.sizes.per_class) == (big_m, m)
