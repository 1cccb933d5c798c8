"""`cfer run`: config loading and errors, the results.json contract, resume, determinism."""

from __future__ import annotations

import json

import pytest
import torch

from cfer.core import metrics
from cfer.core.typed import ConfigError
from cfer.experiments.cli import main as cfer
from cfer.experiments.config.load import load_config

TINY = [
    "dataset.subjects=9", "dataset.size=64", "benchmark.image_size=16", "benchmark.n_folds=3",
    "benchmark.compounds=[happily surprised, sadly angry]", "benchmark.augment.rotation=0",
    "training.basic_epochs=1", "training.epochs=1", "training.patience=0",
    "training.batch_size=16", "training.mem_per_class=2", "protocol.orders=2",
    "runner.progress=false", "runner.jobs_per_device=1",  # in this process (tests/test_backends.py: others)
]


def tiny_cfg(tmp_path, *extra):
    return load_config(None, TINY + [f"dataset.root={tmp_path / 'synth'}", *extra])


# --- config ---------------------------------------------------------------------------------

def test_quickstart_is_the_default_and_loads():
    cfg = load_config(None)
    assert cfg.name == "quickstart" and cfg.dataset.kind == "synthetic"
    assert set(cfg.strategies.methods) == {"naive", "replay", "lwf", "icarl", "kd_psmr", "joint"}
    assert cfg.protocol.orders == 3


@pytest.mark.parametrize("name", ["quickstart", "paper_cfee", "baselines_cfee", "rafdb", "folder_example",
                                  "fewshot", "fewshot_cfee", "fscil"])
def test_shipped_configs_load(name):
    load_config(name)


def test_unknown_key_names_key_and_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("training:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown key 'training\.epoch'"):
        load_config(p)


def test_wrong_type_names_key_and_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("protocol:\n  orders: three\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: key 'protocol\.orders': expected int, got 'three'"):
        load_config(p)
    p.write_text("training:\n  memory_mode: forever\n")
    with pytest.raises(ConfigError, match="memory_mode"):
        load_config(p)


def test_set_overrides_and_errors():
    cfg = load_config(None, ["training.epochs=7", "strategies.methods=[naive]"])
    assert cfg.training.epochs == 7 and cfg.strategies.methods == ["naive"]
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(None, ["training.epochs"])
    with pytest.raises(ConfigError, match="unknown strategy 'nope'"):
        load_config(None, ["strategies.methods=[nope]"])
    with pytest.raises(ConfigError, match="dataset.root' is required"):
        load_config(None, ["dataset.kind=cfee"])


def test_floats_without_a_dot_are_floats_wherever_a_value_is_read(tmp_path):
    """YAML 1.1 (PyYAML) reads 1e-4 as a string; configs, --set and sweep grids read it as the
    float it is, and a numeric string given for a float setting is that float."""
    from cfer.experiments.sweep.sweep import parse_grid

    p = tmp_path / "c.yaml"
    p.write_text("training:\n  lr: 1e-4\n  basic_lr: 2E-3\n  finetune_lr: '5e-7'\n"
                 "strategies:\n  methods: [kd_psmr]\n  overrides: {kd_psmr: {lr: 3e-5}}\n")
    cfg = load_config(p, ["training.weight_decay=1e-5", "strategies.params.kd_psmr.gamma=5e-1"])
    t = cfg.training
    assert (t.lr, t.basic_lr, t.finetune_lr, t.weight_decay) == (1e-4, 2e-3, 5e-7, 1e-5)
    assert all(type(v) is float for v in (t.lr, t.basic_lr, t.finetune_lr, t.weight_decay))
    assert cfg.training_for("kd_psmr").lr == 3e-5 and cfg.params_for("kd_psmr").gamma == 0.5
    assert parse_grid(["training.lr=1e-4,1e-5"]) == {"training.lr": [1e-4, 1e-5]}
    with pytest.raises(ConfigError, match="key 'training.lr': expected float, got 'fast'"):
        load_config(p, ["training.lr=fast"])


def test_per_method_overrides():
    cfg = load_config(None, ["strategies.overrides={lwf: {epochs: 3}}"])
    assert cfg.training_for("lwf").epochs == 3 and cfg.training_for("naive").epochs == 2
    with pytest.raises(ConfigError, match="strategies.overrides.lwf"):
        load_config(None, ["strategies.overrides={lwf: {alpha: 3.0}}"])


def test_cli_reports_config_errors_in_one_line(tmp_path, capsys):
    p = tmp_path / "bad.yaml"
    p.write_text("nonsense: 1\n")
    assert cfer(["run", str(p), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown key 'nonsense'" in err and "bad.yaml" in err


# --- a real (tiny) run ------------------------------------------------------------------------

def _strip_timing(results: dict) -> dict:
    for block in results["methods"].values():
        for r in block["runs"]:
            r.pop("train_seconds"), r.pop("images_per_second")
        block.pop("summary")
    return results


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    out = tmp / "out"
    args = TINY + [f"dataset.root={tmp / 'synth'}", "strategies.methods=[naive, kd_psmr, joint]"]
    assert cfer(["run", "--out", str(out), *sum((["--set", a] for a in args), [])]) == 0
    return tmp, out, args


def test_run_writes_the_contracted_outputs(finished_run):
    _, out, _ = finished_run
    for name in ("config.yaml", "results.json", "metrics.csv", "report.md"):
        assert (out / name).is_file(), name
    assert list((out / "plots").glob("*.png"))
    assert (out / "logs" / "naive" / "order0_fold0_seed0" / "log.txt").stat().st_size > 0
    res = json.loads((out / "results.json").read_text())
    assert set(res) >= {"config", "dataset", "methods"}
    assert res["dataset"]["class_counts"]["happy"] == 9
    assert list(res["methods"]) == ["naive", "kd_psmr", "joint"]
    for block in res["methods"].values():
        assert len(block["runs"]) == 2
        for r in block["runs"]:
            T = 3
            assert len(r["accuracy_matrix"]) == T and all(len(row) == T for row in r["accuracy_matrix"])
            assert r["accuracy_matrix"][0][1] is None
            assert len(r["step_accuracy"]) == len(r["uar"]) == len(r["macro_f1"]) == T
            assert all(0.0 <= a <= 1.0 for a in r["step_accuracy"])
            assert r["train_seconds"] > 0 and r["images_per_second"] > 0
            assert sorted(r["order"]) == ["happily surprised", "sadly angry"]
            # the new class's F1 over all seen classes' predictions, per step, from the run itself
            assert r["new_class_f1"][0] is None and all(0.0 <= v <= 1.0 for v in r["new_class_f1"][1:])
        s = block["summary"]
        assert res["schema_version"] == 3 and list(s) == list(metrics.names())
        for key in metrics.names():
            assert set(s[key]) == {"mean", "std", "n"}
        assert s["final_accuracy"]["n"] == 2 and s["new_class_f1"]["n"] == 2
    # What each PSMR step trained on: the memory plus m drawn new-class images per epoch.
    for r in res["methods"]["kd_psmr"]["runs"]:
        basic_step, step1 = r["memory"][0], r["memory"][1]
        assert basic_step["memory_size"] == 0 and basic_step["draw"] is None
        m = step1["new_class_samples"]
        assert step1["draw"] == "epoch" and 1 <= m < step1["new_class_images"]
        assert step1["memory_size"] == basic_step["memory_after"] == 6 * m
        assert step1["train_size"] == step1["memory_size"] + m
        assert all(n == m for n in step1["drawn_per_epoch"])
    assert "memory" not in res["methods"]["naive"]["runs"][0]
    orders = [r["order"] for r in res["methods"]["naive"]["runs"]]
    assert orders[0] != orders[1]
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert header == "method,order,fold,seed,step,metric,value"


def test_same_config_same_numbers_and_resume_after_a_kill(finished_run, monkeypatch):
    tmp, out, args = finished_run
    reference = _strip_timing(json.loads((out / "results.json").read_text()))

    from cfer.experiments.run.continual import ContinualRunner

    calls = {"n": 0}
    real = ContinualRunner.run_one

    def killed_on_third(self, spec, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, spec, **kw)

    monkeypatch.setattr(ContinualRunner, "run_one", killed_on_third)
    out2 = tmp / "out2"
    # Ctrl-C: exit status 130 with the saved runs kept (the one-line message is tested in
    # tests/test_input_guards.py).
    assert cfer(["run", "--out", str(out2), *sum((["--set", a] for a in args), [])]) == 130
    partial = json.loads((out2 / "results.json").read_text())
    assert sum(len(b["runs"]) for b in partial["methods"].values()) == 2
    monkeypatch.setattr(ContinualRunner, "run_one", real)
    assert cfer(["run", "--resume", str(out2)]) == 0
    assert _strip_timing(json.loads((out2 / "results.json").read_text())) == reference


def test_refuses_to_overwrite_a_run(finished_run, capsys):
    _, out, args = finished_run
    assert cfer(["run", "--out", str(out), *sum((["--set", a] for a in args), [])]) == 2
    assert "use --resume" in capsys.readouterr().err


def test_basic_experience_is_trained_once_and_shared_exactly(finished_run, tmp_path):
    from cfer.experiments.run.continual import ContinualRunner

    tmp, out, args = finished_run
    saved = sorted(p.name for p in (out / "basic").glob("*.pt"))
    # One for naive and kd_psmr (experience 0 trains alike: tests/test_basic_phase.py), none for
    # joint (offline).
    assert len(saved) == 1 and saved[0].startswith("fold0_seed0_")
    res = json.loads((out / "results.json").read_text())
    # Without sharing, order 0 trains experience 0 itself: the same numbers at every step,
    # to the last digit (the basic model, the strategy's state after it, the random stream).
    cfg = load_config(None, args + ["strategies.methods=[naive, kd_psmr]", "protocol.orders=1",
                                    "runner.share_basic=false"])
    unshared = ContinualRunner(cfg, tmp_path / "u").run()
    assert not (tmp_path / "u" / "basic").exists()
    for method in ("naive", "kd_psmr"):
        shared_run = res["methods"][method]["runs"][0]
        own_run = unshared["methods"][method]["runs"][0]
        for key in ("accuracy_matrix", "step_accuracy", "uar", "macro_f1", "memory"):
            assert own_run.get(key) == shared_run.get(key), (method, key)


def test_parallel_runs_write_the_same_results_file_shape(finished_run, tmp_path):
    """runner.jobs_per_device > 1: runs in spawned processes, records written in plan order."""
    _, out, args = finished_run
    reference = json.loads((out / "results.json").read_text())
    out2 = tmp_path / "par"
    assert cfer(["run", "--out", str(out2), *sum((["--set", a] for a in args), []),
                 "--set", "strategies.methods=[naive, joint]", "--set", "runner.jobs_per_device=2"]) == 0
    res = json.loads((out2 / "results.json").read_text())
    for m in ("naive", "joint"):
        assert [r["order"] for r in res["methods"][m]["runs"]] == \
            [r["order"] for r in reference["methods"][m]["runs"]]
        # Step 0 of naive comes from the same shared basic model in both runs.
    assert res["methods"]["naive"]["runs"][0]["accuracy_matrix"][0] == \
        reference["methods"]["naive"]["runs"][0]["accuracy_matrix"][0]
    with pytest.raises(ConfigError, match="jobs_per_device"):
        load_config(None, ["runner.jobs_per_device=0"])


def test_tensorboard_logging_when_asked(tmp_path):
    from cfer.experiments.run.continual import ContinualRunner

    cfg = tiny_cfg(tmp_path, "strategies.methods=[naive]", "protocol.orders=1",
                   "evaluation.tensorboard=true")
    ContinualRunner(cfg, tmp_path / "tb").run()
    assert list((tmp_path / "tb" / "logs" / "naive" / "order0_fold0_seed0" / "tb").glob("events.*"))


def test_a_method_whose_state_follows_the_training_steps_trains_its_own_basic_model(finished_run, tmp_path):
    """Synaptic Intelligence's path integral sums over experience 0's steps: a run primed with
    the shared basic model's weights would skip them (importances 0 after experience 0, the
    penalty off in experience 1) and silently differ from a run that trains experience 0 itself.
    Such a method (a plugin with ``primable = False``) never shares: its numbers are the same
    whether runner.share_basic is on or off, and no basic model is saved for it."""
    from cfer.experiments.run.continual import ContinualRunner

    tmp, _, args = finished_run
    si = ("strategies.define={si: {base: naive, plugins: "
          "[{'avalanche:SynapticIntelligencePlugin': {si_lambda: 1000.0}}]}}")
    # three epochs: a tiny experience is one mini-batch, and SI's penalty has no gradient at the
    # weights an experience starts from
    base = args + [si, "strategies.methods=[naive, si]", "protocol.orders=1", "output.plots=false",
                   "output.save_models=all", "training.epochs=3"]
    shared = ContinualRunner(load_config(None, base), tmp_path / "s").run()
    own = ContinualRunner(load_config(None, base + ["runner.share_basic=false"]), tmp_path / "o").run()
    assert len(list((tmp_path / "s" / "basic").glob("*.pt"))) == 1  # naive's only

    def final(res, root, method):
        return torch.load(root / res["methods"][method]["runs"][0]["models"][-1], weights_only=True)

    si_shared, si_own = final(shared, tmp_path / "s", "si"), final(own, tmp_path / "o", "si")
    assert all(torch.equal(si_shared[k], si_own[k]) for k in si_own)
    # and SI really acted: it ends elsewhere than naive
    naive = final(shared, tmp_path / "s", "naive")
    assert not all(torch.equal(naive[k], si_own[k]) for k in si_own)


def test_seed_per_order_gives_each_order_its_own_seed(tmp_path):
    """protocol.seed_per_order: order k runs with seed seeds[0] + k, so n runs are n orders, n
    seeds and n basic models (the shipped multi-run configs use it)."""
    from cfer.experiments.run.continual import plan_runs

    cfg = tiny_cfg(tmp_path, "protocol.orders=2", "protocol.seeds=[5]", "protocol.seed_per_order=true",
                   "strategies.methods=[naive]")
    names = ("happy", "sad", "fearful", "angry", "surprised", "disgusted", "happily surprised",
             "sadly angry")
    specs = plan_runs(cfg, names)
    assert [(s.order_index, s.seed) for s in specs] == [(0, 5), (1, 6)]
    with pytest.raises(ConfigError, match="protocol.seeds.*give one seed"):
        tiny_cfg(tmp_path, "protocol.seeds=[0, 1]", "protocol.seed_per_order=true")
    for name in ("paper_cfee", "baselines_cfee", "rafdb", "folder_example"):
        assert load_config(name, ["dataset.root=x", "dataset.spec=x"]).protocol.seed_per_order, name
