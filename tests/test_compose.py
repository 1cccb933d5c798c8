"""Methods composed in YAML (a base strategy plus registered plugins): the paper's method and its
ablations equal, bit for bit, the strategies the deleted zoo files built; a config defines its
own; errors name the key."""

from __future__ import annotations

import json

import pytest
import torch

from cfer.core.typed import ConfigError
from cfer.experiments.config.load import load_config
from cfer.strategies.builder import build
from cfer.strategies.models.config import ModelConfig
from cfer.strategies.models.registry import build_model
from cfer.strategies.registry import LAST, StrategyEntry, available, entry
from cfer.strategies.training import TrainingConfig
from tests.test_strategies import TINY, evaluator

#: The plugins each deleted strategies/zoo/<name>.py gave Naive, in its order, and the selection
#: its params dataclass defaulted to.
OLD = {"kd_psmr": (("kd", "psmr"), "predictive"), "kd_only": (("kd",), None),
       "psmr_only": (("psmr",), "predictive"), "kd_random_replay": (("kd", "psmr"), "random"),
       "kd_herding": (("kd", "psmr"), "herding")}


def old_factory(name):
    """The strategy as strategies/zoo/<name>.py built it before the composition (the plugins
    constructed directly, with the old defaults, in the old order)."""
    kinds, selection = OLD[name]

    def factory(ctx):
        from avalanche.training import Naive

        from cfer.plugins.method.distillation import BasicDistillationPlugin
        from cfer.plugins.method.psmr import PredictiveSortingReplayPlugin

        cfg = ctx.config
        made = {"kd": lambda: BasicDistillationPlugin(temperature=3.0, gamma=0.1, decay=True,
                                                      teacher="basic"),
                "psmr": lambda: PredictiveSortingReplayPlugin(
                    fraction=cfg.memory_fraction, mode=cfg.memory_mode, mem_per_class=cfg.mem_per_class,
                    selection=selection, total_train_size=ctx.train_size, total_classes=ctx.n_classes,
                    new_class_samples="m", new_class_draw="epoch", score="logit", seed=ctx.seed)}
        return Naive(**ctx.template_kwargs(*(made[k]() for k in kinds)))

    return StrategyEntry(f"old_{name}", factory)


def run(strategy_name, bm, **config):
    """Train every experience (one epoch each) and score the test prefix after each: the final
    weights, the accuracy matrix R[i][j] and the plugin classes in order."""
    from avalanche.training.determinism.rng_manager import RNGManager

    RNGManager.set_random_seeds(0)
    model = build_model(ModelConfig(name="small_cnn"), n_classes=bm.info.n_basic)
    strategy = build(strategy_name, model=model, benchmark=bm, config=TrainingConfig(**{**TINY, **config}),
                     evaluator=evaluator(), seed=0)
    matrix = []
    for i, exp in enumerate(bm.train_stream):
        strategy.train(exp, eval_streams=[])
        result = strategy.eval(bm.test_stream[: i + 1])
        matrix.append([result[f"Top1_Acc_Exp/eval_phase/test_stream/Exp{j:03d}"] for j in range(i + 1)])
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return weights, matrix, [type(p).__name__ for p in strategy.plugins]


LIMIT = dict(mem_per_class=None, memory_fraction=1.0, memory_mode="limit")


@pytest.mark.parametrize("name", sorted(OLD))
@pytest.mark.parametrize("memory", [dict(), LIMIT], ids=["grow", "limit"])
def test_a_composed_method_equals_the_strategy_its_zoo_file_built(name, memory, tiny_benchmark):
    new_weights, new_matrix, new_plugins = run(name, tiny_benchmark, **memory)
    old_weights, old_matrix, old_plugins = run(old_factory(name), tiny_benchmark, **memory)
    assert new_plugins == old_plugins
    assert new_weights.keys() == old_weights.keys()
    assert all(torch.equal(new_weights[k], old_weights[k]) for k in old_weights), name
    assert new_matrix == old_matrix


def test_the_shipped_definitions_are_listed_with_their_description_and_order():
    for name, order in (("kd_psmr", 200), ("kd_only", 210), ("psmr_only", 220), ("kd_random_replay", 230),
                        ("kd_herding", 240)):
        e = entry(name)
        assert e.definition is not None and e.order == order and e.description
        assert e.definition.base == "naive" and not e.offline
    assert [p for p, _ in entry("kd_herding").definition.plugins] == ["distillation", "herding_memory"]


MY_METHOD = """
strategies:
  methods: [naive, my_method]
  define:
    my_method: {base: naive, plugins: [distillation: {gamma: 0.5, decay: false}, psmr: {selection: herding}]}
  params:
    my_method: {temperature: 2.0}
"""


def test_a_config_defines_its_own_method(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text(MY_METHOD)
    cfg = load_config(p)
    e = cfg.method_entry("my_method")
    assert e.order == LAST and "my_method" not in available()  # the config's own, not registered
    params = cfg.params_for("my_method")
    assert (params.gamma, params.decay, params.temperature, params.selection) == (0.5, False, 2.0, "herding")
    bad = {
        "strategies.define.my_method.plugins=[distillation: {gamma: 2}]":
            r"mine.yaml: strategies.define.my_method.plugins\[0\].distillation.gamma: must be in "
            r"\[0, 1\], got 2",
        "strategies.define.my_method.plugins=[psmr: {selection: best}]":
            r"key 'strategies.define.my_method.plugins\[0\].psmr.selection': expected 'predictive' \|",
        "strategies.define.my_method.base=nobody":
            r"key 'strategies.define.my_method.base': unknown strategy 'nobody'",
        "strategies.define.my_method.plugins=[distilation]":
            r"key 'strategies.define.my_method.plugins\[0\]': unknown plugin 'distilation'",
        "strategies.define.my_method.plugins=[psmr, psmr]": "plugins.psmr is listed twice",
        "strategies.define.my_method.plugin=[psmr]":
            r"unknown key 'strategies.define.my_method.plugin' \(known here: base, plugins",
        "strategies.define.kd_psmr={base: naive}": "'kd_psmr' is a registered strategy",
        "strategies.params.my_method.alpha=1":
            r"unknown key 'strategies.params.my_method.alpha' \(known here: decay, gamma, new_class_draw",
        "strategies.define.my_method.base=kd_psmr": "'kd_psmr' is itself a composed method",
    }
    for override, message in bad.items():
        with pytest.raises(ConfigError, match=message) as e:
            load_config(p, [override])
        assert "\n" not in str(e.value), override


def test_a_key_two_plugins_share_is_written_under_the_plugin(tmp_path):
    from cfer.core.typed import record
    from cfer.strategies.registry import define

    e = define("two_memories", {"base": "naive", "plugins": ["psmr", "herding_memory"]}, where="t",
               prefix="m")
    shared = ("key 'strategies.params.two_memories.score' is a setting of psmr and herding_memory: "
              "write strategies.params.two_memories.psmr.score")
    with pytest.raises(ConfigError, match=shared):
        e.resolve_params({"score": "probability"})
    params = e.resolve_params({"psmr": {"score": "probability"}})
    assert params.plugin("psmr").score == "probability" and params.plugin("herding_memory").score == "logit"
    assert record(params)["psmr.score"] == "probability"


def test_a_config_defined_method_runs_through_cfer_run(tmp_path):
    from cfer.experiments.cli import main as cfer
    from tests.test_runner import TINY as RUN

    p = tmp_path / "mine.yaml"
    p.write_text(MY_METHOD)
    out = tmp_path / "out"
    args = [*RUN, f"dataset.root={tmp_path / 'synth'}", "protocol.orders=1", "strategies.methods=[my_method]",
            "output.plots=false", "output.save_models=none"]
    assert cfer(["run", str(p), "--out", str(out), *sum((["--set", a] for a in args), [])]) == 0
    res = json.loads((out / "results.json").read_text())
    assert list(res["methods"]) == ["my_method"] and res["config_digests"]["my_method"]
    (run,) = res["methods"]["my_method"]["runs"]
    assert len(run["accuracy_matrix"]) == 3
