"""Stock Avalanche plugins and strategies by name (``avalanche:<Class>``): every row of the support
table (plugins/stock/table.py, docs/avalanche.md) that claims to run is built from YAML-like data
alone, trains on the tiny stream, and acts (weights other than Naive's with the same seed), and
a row declared ``inert`` trains experience 0 bit for bit as Naive; the ones that cannot work are
refused in one line; Synaptic Intelligence is fixed, and the unfixed one is caught by the
no-effect warning."""

from __future__ import annotations

import logging

import pytest
import torch

from cfer.core.typed import ConfigError
from cfer.plugins.stock.table import TABLE
from cfer.strategies.registry import define
from tests.test_strategies import _fresh, _weights

#: Two epochs per experience: an experience of the tiny stream is one minibatch an epoch, and at
#: the first step of an experience a quadratic penalty is 0 (the weights equal the anchor).
#: Contiguous (NCHW) weights, as on a GPU or with channels-last off: the stock SI trap below needs
#: them (``.cpu().flatten()`` of a channels-last convolution weight copies instead of viewing, so
#: on the CPU's channels-last default the stock plugin half works, and half is still a trap).
EPOCHS = dict(basic_epochs=1, epochs=2, channels_last=False)
#: Rows whose effect starts later than experience 1 (MIR's memory excludes the classes of the
#: last minibatch of experience 0: all of them here).
ACTS_FROM = {"MIRPlugin": 2, "MIR": 2}
RUNS = sorted(n for n, r in TABLE.items() if r.runs and not r.untested)
#: Rows that train frozen layers in eval mode by design (their note says so); any other row left
#: the model in eval mode would train with BatchNorm frozen and dropout off (stock RWalk does).
EVAL_MODE = {"CWRStarPlugin"}


def definition(name: str) -> dict:
    r = TABLE[name]
    if r.kind == "plugin":
        return {"base": "naive", "plugins": [{f"avalanche:{name}": dict(r.example)}]}
    return {"base": {f"avalanche:{name}": dict(r.example)}}


def train(method, bm, *, experiences: int, plugins=()):
    """Weights after each experience, and the strategy."""
    _, strategy = _fresh(method, bm, plugins=list(plugins), **EPOCHS)
    out = []
    for exp in bm.train_stream[:experiences]:
        strategy.train(exp, eval_streams=[])
        out.append(_weights(strategy))
    return out, strategy


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def stream():
    from cfer.benchmarks import compound_benchmark
    from tests.conftest import make_tiny_dataset

    ds, images = make_tiny_dataset()
    bm = compound_benchmark(ds, images=images, image_size=16, n_folds=3, seed=0,
                            class_order=list(ds.class_names[6:]))
    naive, _ = train("naive", bm, experiences=3)
    return bm, naive


@pytest.mark.parametrize("name", RUNS)
def test_a_stock_class_runs_from_yaml_and_acts(name, stream):
    if name.startswith("GEM"):
        pytest.importorskip("quadprog")
    bm, naive = stream
    row = TABLE[name]
    method = define(f"stock_{name.lower()}", definition(name), where="test", prefix="strategies.define.m")
    n = ACTS_FROM.get(name, 1) + 1
    weights, strategy = train(method, bm, experiences=n)
    if name != "Naive":
        assert not same(weights[-1], naive[n - 1]), f"avalanche:{name} trained as Naive"
    assert strategy.model.training or name in EVAL_MODE, f"avalanche:{name} left the model in eval mode"
    if row.first_experience == "inert":
        assert same(weights[0], naive[0]), f"avalanche:{name} is declared inert but changed experience 0"
    if row.kind == "plugin":  # built through the table's entry: in its phase, fixed if it must be
        plugin = next(p for p in strategy.plugins if getattr(p, "cfer_plugin_entry", None))
        assert plugin.cfer_plugin_entry.phase == (row.phase or plugin.cfer_plugin_entry.phase)
        if row.fix:
            assert type(plugin).__name__ != name and isinstance(plugin, type(plugin).__mro__[1])
    guard = next(p for p in strategy.plugins if type(p).__name__ == "NoEffectWarning")
    assert guard.silent == [], f"avalanche:{name}: the no-effect warning named {guard.silent}"


def test_stock_synaptic_intelligence_trains_as_naive_and_is_named_the_fixed_one_does_not(stream, caplog):
    """Avalanche 0.6's SynapticIntelligencePlugin on CPU stores views of the live weights: its
    importances and penalty are 0 and it trains bit for bit as Naive. The no-effect warning says
    so in one line; ``avalanche:SynapticIntelligence`` (the fixed plugin) ends elsewhere."""
    from avalanche.training.plugins import SynapticIntelligencePlugin

    bm, naive = stream
    with caplog.at_level(logging.WARNING, logger="cfer.plugins.run.no_effect"):
        stock, strategy = train("naive", bm, experiences=3,
                                plugins=[SynapticIntelligencePlugin(si_lambda=100.0)])
    assert all(same(w, v) for w, v in zip(stock, naive))  # the trap: Naive in disguise
    guard = next(p for p in strategy.plugins if type(p).__name__ == "NoEffectWarning")
    assert guard.silent == ["SynapticIntelligencePlugin"]
    (line,) = [r.getMessage() for r in caplog.records]
    assert "SynapticIntelligencePlugin has not changed the training loss" in line and "\n" not in line

    caplog.clear()
    method = define("si", {"base": {"avalanche:SynapticIntelligence": {"si_lambda": 100.0}}}, where="test",
                    prefix="strategies.define.si")
    with caplog.at_level(logging.WARNING, logger="cfer.plugins.run.no_effect"):
        fixed, strategy = train(method, bm, experiences=3)
    assert not same(fixed[-1], naive[-1])
    assert same(fixed[0], naive[0])  # nothing to consolidate during experience 0
    assert caplog.records == []
    assert all(torch.isfinite(v).all() for v in fixed[-1].values() if v.is_floating_point())


def test_a_zero_strength_regulariser_is_named(stream, caplog):
    """The warning is about behaviour, not about one broken class: an EWC penalty of strength 0
    changes nothing either."""
    bm, _ = stream
    method = define("ewc0", {"base": "naive", "plugins": [{"avalanche:EWCPlugin": {"ewc_lambda": 0}}]},
                    where="test", prefix="strategies.define.ewc0")
    with caplog.at_level(logging.WARNING, logger="cfer.plugins.run.no_effect"):
        _, strategy = train(method, bm, experiences=3)
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["ewc0"]


@pytest.mark.parametrize("data,message", [
    ({"base": "avalanche:PackNet"}, "avalanche:PackNet cannot work on cfer's class-incremental stream: "
                                    "task-incremental"),
    ({"base": "avalanche:DER"}, "avalanche:DER: use cfer's registered strategy der"),
    ({"base": "naive", "plugins": ["avalanche:LearningToPrompt"]},
     "Avalanche has no plugin 'LearningToPrompt'"),
    ({"base": "avalanche:LearningToPrompt"}, "written for timm 0.x"),
    ({"base": "naive", "plugins": [{"avalanche:EWCPlugin": {"ewc_lamda": 1}}]},
     "unknown key 'strategies.define.m.plugins[0].avalanche:EWCPlugin.ewc_lamda' (known here: decay_factor, "
     "ewc_lambda"),
    ({"base": "naive", "plugins": [{"avalanche:EWCPlugin": {"ewc_lambda": "strong"}}]},
     "avalanche:EWCPlugin.ewc_lambda': expected int | float | 'required', got 'strong'"),
    ({"base": "naive", "plugins": ["avalanche:EWCPlugin"]},
     "key 'plugins.avalanche:EWCPlugin.ewc_lambda' is required (Avalanche's EWCPlugin has no default"),
    ({"base": {"avalanche:Replay": {"mem_size": "papers"}}}, "mem_size': expected int | 'paper'"),
])
def test_a_stock_class_cfer_cannot_run_or_a_bad_key_is_one_line(data, message):
    with pytest.raises(ConfigError) as e:  # a required value may come from strategies.params:
        define("m", data, where="my.yaml", prefix="strategies.define.m").resolve_params(where="my.yaml")
    assert message in str(e.value) and "\n" not in str(e.value)  # checked with the method's params
    assert str(e.value).startswith("my.yaml: ")


def test_a_memory_size_takes_the_papers_rule_by_name(tiny_benchmark):
    """``mem_size: paper`` (the default) is the memory every replay method of the run shares."""
    from cfer.strategies.builder import build
    from cfer.strategies.models.config import ModelConfig
    from cfer.strategies.models.registry import build_model
    from cfer.strategies.training import TrainingConfig
    from tests.test_strategies import TINY

    method = define("rp", {"base": "naive", "plugins": ["avalanche:ReplayPlugin"]}, where="t", prefix="m")
    assert method.resolve_params().plugin("avalanche:ReplayPlugin").mem_size == "paper"
    bm = tiny_benchmark
    strategy = build(method, model=build_model(ModelConfig(name="small_cnn"), n_classes=bm.info.n_basic),
                     benchmark=bm, config=TrainingConfig(**{**TINY, "mem_per_class": 3}))
    plugin = next(p for p in strategy.plugins if type(p).__name__ == "ReplayPlugin")
    assert plugin.mem_size == 3 * len(bm.info.class_names)  # m per class over every class of the stream


REFUSED = sorted(n for n, r in TABLE.items() if not r.runs)


@pytest.mark.parametrize("name", REFUSED)
def test_every_row_that_cannot_run_here_is_refused_in_one_line_with_its_reason(name):
    row = TABLE[name]
    data = ({"base": "naive", "plugins": [f"avalanche:{name}"]} if row.kind == "plugin"
            else {"base": f"avalanche:{name}"})
    with pytest.raises(ConfigError) as e:
        define("m", data, where="my.yaml", prefix="strategies.define.m")
    assert row.note in str(e.value) and "\n" not in str(e.value)


def test_docs_avalanche_md_is_the_table_and_its_example_config_loads(tmp_path):
    """The support page is generated from the table this file runs, and its YAML example is a
    config cfer reads (settings checked against the constructors)."""
    import re
    import sys
    from pathlib import Path

    from cfer.experiments.config.load import load_config

    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root / "tools"))
    import avalanche_docs

    text = (root / "docs" / "avalanche.md").read_text(encoding="utf-8")
    assert text == avalanche_docs.render(), "stale: run python tools/avalanche_docs.py --write"
    (example,) = re.findall(r"```yaml\n(.*?)```", text, re.S)
    config = tmp_path / "stock.yaml"
    config.write_text(example)
    cfg = load_config(config)
    assert cfg.params_for("si").si_lambda == 100.0
    assert [p for p, _ in cfg.params_for("ewc_lwf").plugins] == ["avalanche:EWCPlugin", "avalanche:LwFPlugin"]


def test_a_stock_name_in_strategies_methods_says_how_to_run_it():
    from cfer.experiments.config.load import load_config

    with pytest.raises(ConfigError, match=r"'avalanche:EWC' is run through a method of your own: "
                                          r"strategies.define.<name>: \{base: 'avalanche:EWC'\}"):
        load_config(None, ["strategies.methods=[avalanche:EWC]"])


def test_stock_rwalk_trains_in_eval_mode_and_the_fixed_one_does_not(stream):
    """Why RWalkPlugin is built through its workaround: the stock one calls model.eval() before
    every step and never restores training mode (the eval-mode check above would catch it)."""
    from avalanche.training.plugins import RWalkPlugin

    bm, _ = stream
    _, stock = train("naive", bm, experiences=1, plugins=[RWalkPlugin(ewc_lambda=0.1)])
    assert not stock.model.training
    method = define("rwalk", {"base": "naive", "plugins": [{"avalanche:RWalkPlugin": {"ewc_lambda": 0.1}}]},
                    where="test", prefix="m")
    _, fixed = train(method, bm, experiences=1)
    assert fixed.model.training
