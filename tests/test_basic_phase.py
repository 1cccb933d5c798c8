"""One basic model for every method whose experience 0 trains identically (issue 25): the
basic-phase digest groups naive, replay, lwf and the paper's method, keeps iCaRL apart, and the
shared weights equal each method's own experience-0 weights to the bit on the CPU."""

from __future__ import annotations

import pytest

from cfer.experiments.config.load import load_config
from cfer.experiments.run import basic_phase
from cfer.experiments.run.continual import ContinualRunner, plan_runs
from tests.test_runner import TINY

SHARING = ("naive", "replay", "lwf", "kd_psmr")


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("phase")
    methods = f"strategies.methods=[{', '.join((*SHARING, 'icarl', 'joint'))}]"
    cfg = load_config(None, [*TINY, f"dataset.root={tmp / 'synth'}", methods, "protocol.orders=1"])
    return ContinualRunner(cfg, tmp / "out")


def test_the_digest_groups_the_methods_whose_experience_0_trains_alike(runner):
    specs = runner.keyed(plan_runs(runner.cfg, runner.ctx.data().dataset.class_names))
    keys = {s.method: s.basic_key for s in specs}
    assert len({keys[m] for m in SHARING}) == 1
    assert keys["icarl"] not in (None, keys["naive"])  # its own loss, model and plugins
    assert keys["joint"] is None  # offline: no basic model
    # A basic-phase setting separates them; a continual-only one does not.
    assert runner.basic_path(specs[0]).name == f"fold0_seed0_{keys['naive']}.pt"
    for key, same in (("lr", True), ("epochs", True), ("basic_lr", False), ("batch_size", False)):
        value = {"lr": 0.5, "epochs": 3, "basic_lr": 0.5, "batch_size": 8}[key]
        cfg = load_config(None, [*TINY, f"dataset.root={runner.cfg.dataset.root}",
                                 "strategies.methods=[naive, replay]", "protocol.orders=1",
                                 f"strategies.overrides={{replay: {{{key}: {value}}}}}"])
        other = ContinualRunner(cfg, runner.run_dir.parent / f"o_{key}")
        specs = other.keyed(plan_runs(cfg, other.ctx.data().dataset.class_names))
        got = {s.method: s.basic_key for s in specs}
        assert (got["naive"] == got["replay"]) is same, key


def test_a_plugin_nobody_declares_counts_as_acting():
    class Mine:
        pass

    class Later:  # an Avalanche-style plugin class the registry does not know
        def before_training_exp(self, strategy, **kw):
            pass

    assert basic_phase.first_experience(Later()) == "acts"
    assert basic_phase.plain({"a": (1, 2.5), "b": Mine()})["b"].endswith("Mine>")


def test_shared_basic_weights_equal_each_methods_own_to_the_bit(runner):
    """Each method trains its own experience 0 (as before sharing): every tensor equals the
    shared model's, bit for bit; iCaRL's does not."""
    import torch

    spec = runner.keyed(plan_runs(runner.cfg, runner.ctx.data().dataset.class_names))[0]
    assert spec.method == "naive"
    shared = runner.basic_state(spec, device=torch.device("cpu"))["state_dict"]
    for method in SHARING:
        own = runner.ctx.train_basic(method, order=spec.order, fold=spec.fold, seed=spec.seed,
                                     device=torch.device("cpu"), log_dir=runner.run_dir / "own" / method)
        assert own.state_dict.keys() == shared.keys(), method
        for k, v in shared.items():
            assert torch.equal(own.state_dict[k], v), (method, k)
    # one file for the four methods
    assert [p.name for p in (runner.run_dir / "basic").glob("*.pt")] == [runner.basic_path(spec).name]


def test_a_plugin_that_acts_in_experience_0_keeps_its_method_apart(runner):
    """Naive plus Avalanche's MAS plugin trains experience 0 with naive's loop, model, loss and
    optimizer, but MAS acts there (its importance pass after experience 0 runs the model in
    training mode and moves BatchNorm's statistics): only the plugin tells them apart, so the
    digest must read the acting plugins, or MAS would start from naive's basic model."""
    mas = "strategies.define={mas: {base: naive, plugins: [{'avalanche:MASPlugin': {lambda_reg: 1.0}}]}}"
    cfg = load_config(None, [*TINY, f"dataset.root={runner.cfg.dataset.root}", mas,
                             "strategies.methods=[naive, mas]", "protocol.orders=1"])
    other = ContinualRunner(cfg, runner.run_dir.parent / "mas")
    got = {s.method: s.basic_key for s in other.keyed(plan_runs(cfg, other.ctx.data().dataset.class_names))}
    assert None not in got.values() and got["mas"] != got["naive"]
