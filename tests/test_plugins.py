"""The plugin registry: typed params, phases and their callback rules, ordering, and each
plugin's declaration of what it does to experience 0 (inert: trains it as without the plugin)."""

from __future__ import annotations

import dataclasses
import importlib

import pytest
import torch
from avalanche.core import SupervisedPlugin

from cfer.core.typed import ConfigError
from cfer.plugins import registry
from cfer.plugins.registry import PluginParams, available_plugins, order, plugin_entry, register_plugin
from cfer.strategies.builder import build
from cfer.strategies.models.config import ModelConfig
from cfer.strategies.models.registry import build_model
from cfer.strategies.training import TrainingConfig
from tests.test_strategies import TINY, _fresh, _weights

#: The modules that register the plugins the builder and the runner add (the plugin layer's own
#: are loaded by the registry).
REGISTERING = ("cfer.strategies.entries", "cfer.experiments.run.progress")


def registered() -> list[str]:
    for module in REGISTERING:
        importlib.import_module(module)
    return available_plugins()


@pytest.mark.parametrize("name", registered())
def test_every_registered_plugin_loads_and_keeps_its_phase_rule(name):
    entry = plugin_entry(name)
    assert entry.phase in registry.PHASE_NAMES and entry.first_experience in registry.FIRST_EXPERIENCE
    assert entry.description
    params = entry.params
    assert dataclasses.is_dataclass(params) and params.__dataclass_params__.frozen
    assert issubclass(params, PluginParams) and params.plugin == name
    registry.check_callbacks(entry.load(), entry)  # raises when its callbacks break the rule


def test_plugin_params_errors_name_the_plugin_key():
    with pytest.raises(ConfigError, match=r"plugins.distillation.gamma: must be in \[0, 1\], got 2"):
        plugin_entry("distillation").resolve({"gamma": 2})
    with pytest.raises(ConfigError, match=r"unknown key 'plugins.psmr.temprature' \(known here: "
                                          r"new_class_draw, new_class_samples, score, selection\)"):
        plugin_entry("psmr").resolve({"temprature": 3})
    with pytest.raises(ConfigError, match="unknown key 'plugins.throughput.x' \\(known here: none, plugin "
                                          "'throughput' has no settings\\)"):
        plugin_entry("throughput").resolve({"x": 1})
    assert plugin_entry("herding_memory").resolve().selection == "herding"
    with pytest.raises(ValueError, match="unknown plugin 'nope'"):
        plugin_entry("nope")


# -- phases -------------------------------------------------------------------------------------

class _Penalty(SupervisedPlugin):
    """Adds to the loss (a test plugin)."""

    def before_backward(self, strategy, **kwargs):
        strategy.loss = strategy.loss + 0.0


class _Watcher(SupervisedPlugin):
    """Observes (a test plugin)."""

    def after_training_epoch(self, strategy, **kwargs):
        pass


def test_a_plugin_in_the_wrong_phase_is_refused_in_one_line():
    with pytest.raises(ConfigError) as e:
        register_plugin("sneaky_metric", phase="evaluate", first_experience="inert")(_Penalty)
    assert str(e.value) == ("plugins.sneaky_metric: _Penalty defines before_backward, but a plugin of phase "
                            "'evaluate' (observes and scores only: metrics, progress, throughput, output "
                            "masks) defines none of before_forward, after_forward, before_backward, "
                            "after_backward, before_update, after_update, before_train_dataset_adaptation, "
                            "after_train_dataset_adaptation")
    with pytest.raises(ConfigError, match=r"^plugins.lazy_loss: _Watcher defines none of before_backward, "
                                          r"but a plugin of phase 'loss'"):
        register_plugin("lazy_loss", phase="loss", first_experience="inert")(_Watcher)
    with pytest.raises(ValueError, match="phase 'late' is not one of seeding, loss"):
        register_plugin("late", phase="late", first_experience="inert")
    assert "sneaky_metric" not in available_plugins() and "lazy_loss" not in available_plugins()


def test_order_sorts_by_phase_keeps_unregistered_plugins_in_place_and_refuses_a_second_singleton():
    from cfer.plugins.method.distillation import BasicDistillationPlugin
    from cfer.plugins.method.psmr import PredictiveSortingReplayPlugin
    from cfer.plugins.run.experience_seed import ExperienceSeedPlugin
    from cfer.plugins.speed.fast_data import FastDataPlugin
    from cfer.plugins.speed.throughput import ThroughputPlugin

    seeder, kd, memory = ExperienceSeedPlugin(0), BasicDistillationPlugin(), PredictiveSortingReplayPlugin()
    meter, fast, mine = ThroughputPlugin(), FastDataPlugin(), _Watcher()
    assert order([fast, meter, memory, kd, seeder]) == [seeder, kd, memory, meter, fast]
    # an unregistered plugin stays after every plugin given before it
    assert order([seeder, mine, meter, kd]) == [seeder, mine, kd, meter]
    assert order([meter, mine, fast, kd]) == [kd, meter, mine, fast]
    assert registry.phases_of([seeder, mine]) == ["seeding", None]
    with pytest.raises(ConfigError, match="^build: plugins.fast_data: phase 'data' holds one plugin, and "
                                          "plugins.fast_data is already there$"):
        order([seeder, fast, FastDataPlugin()], where="build")


def test_the_builder_orders_every_plugin_of_a_strategy_by_phase(tiny_benchmark):
    from cfer.plugins.run.start_from_weights import StartFromWeightsPlugin
    from cfer.plugins.speed.throughput import ThroughputPlugin

    bm = tiny_benchmark
    model = build_model(ModelConfig(), n_classes=bm.info.n_basic)
    mine = _Watcher()
    strategy = build("kd_psmr", model=model, benchmark=bm, config=TrainingConfig(**TINY),
                     plugins=[ThroughputPlugin(), mine, StartFromWeightsPlugin()])
    names = [type(p).__name__ for p in strategy.plugins]
    assert names[:7] == ["ExperienceSeedPlugin", "BasicDistillationPlugin", "PredictiveSortingReplayPlugin",
                         "TrainingSchedule", "StartFromWeightsPlugin", "SeenClassMask", "ThroughputPlugin"]
    assert names[7] == "_Watcher" and names[-1] == "FastDataPlugin"  # unregistered: its place kept
    phases = [p for p in registry.phases_of(strategy.plugins) if p is not None]
    assert phases == sorted(phases, key=registry.PHASE_NAMES.index)


# -- what a plugin does to experience 0 ---------------------------------------------------------

class _Bar:
    """What EpochProgress writes into (a tqdm bar's postfix)."""

    unit, total = "exp", 3

    def set_postfix_str(self, text):
        self.text = text


def _runner_plugin(name, bm):
    """The plugin objects the builder and the runner construct themselves (no params)."""
    from cfer.experiments.run.epoch_progress import EpochProgress
    from cfer.plugins.run.final_validation import FinalValidationPlugin
    from cfer.plugins.run.no_effect import NoEffectWarning
    from cfer.plugins.run.preemption import StopAtEpochBoundary
    from cfer.plugins.run.start_from_weights import StartFromWeightsPlugin
    from cfer.plugins.speed.throughput import ThroughputPlugin
    from cfer.strategies.masking import SeenClassMask

    return {"start_from_weights": StartFromWeightsPlugin,
            "final_validation": lambda: FinalValidationPlugin(bm.valid_stream[:1], last_experience=0),
            "throughput": ThroughputPlugin,
            "stop_at_epoch_boundary": StopAtEpochBoundary,
            "seen_class_mask": lambda: SeenClassMask(auto=True),
            "no_effect_warning": NoEffectWarning,
            "progress": lambda: EpochProgress(_Bar())}[name]()


def _trained_on_experience_0(bm, *, plugins=(), method="naive", evaluator=None, definition=None):
    from cfer.strategies.registry import define

    name = define("only_" + method, definition, where="test", prefix="m") if definition else method
    _, strategy = _fresh(name, bm, plugins=list(plugins), basic_epochs=2)
    if evaluator is not None:  # the evaluator is the template's, not a plugin of the list
        strategy.plugins[strategy.plugins.index(strategy.evaluator)] = evaluator
        strategy.evaluator = evaluator
    strategy.train(bm.train_stream[0], eval_streams=[bm.valid_stream[:1]])
    return _weights(strategy)


def test_every_inert_plugin_trains_experience_0_as_without_it(tiny_benchmark):
    """first_experience="inert" is a promise (methods whose plugins are all inert share their
    base's basic model): each such plugin, alone and all of the method plugins together, leaves
    experience 0's weights bit for bit as naive trains them."""
    from cfer.experiments.run.evaluation import build_evaluator  # noqa: F401 (the runner's evaluator)
    from cfer.plugins.speed.one_pass import OnePassEvaluationPlugin

    bm = tiny_benchmark
    inert = {n for n in registered() if plugin_entry(n).first_experience == "inert"}
    naive = _trained_on_experience_0(bm)
    checked = set()
    for name in sorted(inert):
        if name == "one_pass_evaluation":
            weights = _trained_on_experience_0(bm, evaluator=OnePassEvaluationPlugin(loggers=[]))
        elif plugin_entry(name).params.__dataclass_fields__:  # a plugin a method names: composed
            only = {"base": "naive", "plugins": [name]}
            weights = _trained_on_experience_0(bm, method=name, definition=only)
        else:
            weights = _trained_on_experience_0(bm, plugins=[_runner_plugin(name, bm)])
        assert weights.keys() == naive.keys()
        assert all(torch.equal(weights[k], naive[k]) for k in naive), f"{name} changed experience 0"
        checked.add(name)
    assert checked == inert
    together = _trained_on_experience_0(bm, method="kd_psmr", definition={
        "base": "naive", "plugins": ["distillation", "psmr"]})
    assert all(torch.equal(together[k], naive[k]) for k in naive)


def test_the_plugin_of_docs_extending_registers_composes_and_trains(tiny_benchmark, monkeypatch):
    """docs/extending.md's example plugin, as written there: it registers, a method composes it
    from YAML-like data, and the method trains; registered in the wrong phase it is refused."""
    import re
    from pathlib import Path

    from cfer.strategies.registry import define

    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))  # this test's registrations
    monkeypatch.setattr(registry, "_BY_PATH", dict(registry._BY_PATH))  # stay in this test
    doc = (Path(__file__).resolve().parent.parent / "docs" / "extending.md").read_text()
    (code,) = re.findall(r"cat > my_plugins.py <<'EOF'\n(.*?)\nEOF\n", doc, re.S)  # the walkthrough's file
    namespace = {"__name__": "docs_extending"}
    exec(compile(code, "docs/extending.md", "exec", dont_inherit=True), namespace)  # noqa: S102
    e = define("pulled", {"base": "naive", "plugins": [{"l2_pull": {"strength": 0.5}}]}, where="doc",
               prefix="strategies.define.pulled")
    bm = tiny_benchmark
    model = build_model(ModelConfig(), n_classes=bm.info.n_basic)
    strategy = build(e, model=model, benchmark=bm, config=TrainingConfig(**TINY))
    assert [type(p).__name__ for p in strategy.plugins][:3] == ["ExperienceSeedPlugin", "L2PullPlugin",
                                                                 "TrainingSchedule"]
    for exp in bm.train_stream[:2]:
        strategy.train(exp, eval_streams=[])
    assert plugin_entry("l2_pull").resolve({"strength": 2}).strength == 2.0
    as_metric = register_plugin("l2_pull_metric", phase="evaluate", first_experience="inert")
    with pytest.raises(ConfigError, match="plugins.l2_pull_metric: L2PullPlugin defines before_backward"):
        as_metric(namespace["L2PullPlugin"])
