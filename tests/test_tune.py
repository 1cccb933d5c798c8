"""`cfer tune`: every method gets the same budget of trials, chosen on the validation subjects
(a poisoned test stream changes nothing it selects), and `cfer run` lays the best-args file
under --set and records it."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import yaml

from cfer.core.typed import ConfigError
from cfer.experiments.cli import main as cfer
from cfer.experiments.config import best_args
from cfer.experiments.config.load import load_config
from cfer.experiments.config.search_space import Knob, draw, method_space
from tests.test_runner import TINY

METHODS = ["naive", "lwf"]
TUNE = ["tune.budget=3", "tune.space.lr=[1.0e-4, 1.0e-3, 5.0e-2]", "tune.orders=1"]


def _config(tmp_path, name="tiny"):
    """A config file of its own (best/<stem>.yaml is written beside it)."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "protocol": {"name": "heldout"}}))
    return path


def _sets(tmp_path, *extra):
    return [*TINY, f"dataset.root={tmp_path / 'synth'}", f"strategies.methods=[{', '.join(METHODS)}]",
            "output.plots=false", *extra]


def _poisoned(data, cfg):
    """``data`` with every test-subject image replaced by noise and the test labels shuffled."""
    from cfer.benchmarks.splits import subject_folds

    ds = data.dataset
    test = subject_folds(ds.subjects, n_folds=cfg.benchmark.n_folds, fold=cfg.protocol.folds[0])[2]
    rng = np.random.default_rng(0)
    images = data.images.copy()
    images[test] = rng.integers(0, 256, size=images[test].shape, dtype=np.uint8)
    labels = ds.labels.copy()
    labels[test] = rng.permutation(labels[test])
    return dataclasses.replace(data, dataset=dataclasses.replace(ds, labels=labels), images=images)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """The same tuning on clean data and on data whose test subjects are noise."""
    from cfer.experiments.run.data import RunData
    from cfer.experiments.tune.tune import run_tune

    tmp = tmp_path_factory.mktemp("tune")
    path = _config(tmp)
    cfg = load_config(path, _sets(tmp, *TUNE))
    data = RunData(cfg).decoded()
    clean = run_tune(cfg, config_path=path, tune_dir=tmp / "clean")
    poisoned = run_tune(cfg, config_path=path, tune_dir=tmp / "poisoned", data=_poisoned(data, cfg),
                        best_file=tmp / "poisoned.yaml")
    return tmp, path, cfg, clean, poisoned


def test_a_poisoned_test_stream_changes_nothing_tune_selects(tuned):
    _, _, _, clean, poisoned = tuned
    assert clean["values"] == poisoned["values"]
    for m in METHODS:
        assert [s["valid_score"] for s in clean["methods"][m]["scores"]] == \
               [s["valid_score"] for s in poisoned["methods"][m]["scores"]]


def test_the_poison_reaches_the_test_stream(tmp_path):
    """The control: the benchmark built from the poisoned data has other test images and labels
    (and the same validation ones), so the test above would see a tune that read them."""
    import torch

    from cfer.experiments.run.continual import plan_runs
    from cfer.experiments.run.data import RunData

    cfg = load_config(_config(tmp_path), _sets(tmp_path, *TUNE))
    clean = RunData(cfg)
    data = clean.decoded()
    spec = plan_runs(cfg, data.dataset.class_names)[0]

    def first(run_data, stream: str):
        bm = run_data.benchmark(order=spec.order, fold=spec.fold, seed=spec.seed)
        ds = getattr(bm, stream)[0].dataset
        return torch.stack([ds[i][0] for i in range(len(ds))]), [int(ds[i][1]) for i in range(len(ds))]

    poisoned = RunData(cfg, data=_poisoned(data, cfg))
    (x, y), (px, py) = first(clean, "test_stream"), first(poisoned, "test_stream")
    assert not torch.equal(x, px)  # (the labels keep their counts per class: the same list here)
    (x, y), (px, py) = first(clean, "valid_stream"), first(poisoned, "valid_stream")
    assert torch.equal(x, px) and y == py


def test_every_method_gets_the_same_budget_and_its_best_validation_trial(tuned):
    tmp, path, cfg, clean, _ = tuned
    saved = yaml.safe_load(best_args.best_path_for(path).read_text())
    assert saved["budget"] == 3 and saved["config_digest"] == clean["config_digest"]
    for m in METHODS:
        block = saved["methods"][m]
        assert block["trials"] == len(block["scores"]) == 3
        assert block["scores"][0]["values"] == block["default"]  # the default point is a trial
        best = max(s["valid_score"] for s in block["scores"])
        chosen = block["scores"][block["chosen_trial"]]
        assert chosen["valid_score"] == best and chosen["values"] == block["chosen"]
        assert saved["values"]["strategies"]["overrides"][m]["lr"] == block["chosen"]["lr"]
    assert saved["cost"]["wall_seconds"] > 0 and saved["cost"]["cpu_seconds"] > 0
    assert saved["environment"]["packages"]["torch"]
    # the trials never scored the test subjects: every step was evaluated on valid_stream
    log = (tmp / "clean" / "trial00" / "logs" / "naive" / "order0_fold0_seed0" / "log.txt").read_text()
    assert "valid_stream" in log and "test_stream" not in log


@pytest.mark.parametrize("backend", ["processes", "ray"])
def test_tune_makes_the_same_choice_on_every_backend(tuned, backend, tmp_path, monkeypatch):
    from cfer.experiments.tune.tune import run_tune

    if backend == "ray":
        pytest.importorskip("ray")
        monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # a throwaway local cluster: no token
    tmp, path, _, clean, _ = tuned
    extra = (["runner.backend=processes", "runner.jobs_per_device=2"] if backend == "processes"
             else ["runner.backend=ray", "runner.ray.cpus_per_run=1"])
    cfg = load_config(path, _sets(tmp, *TUNE, *extra))
    out = run_tune(cfg, config_path=path, tune_dir=tmp_path / "trials", best_file=tmp_path / "best.yaml")
    assert out["values"] == clean["values"]
    for m in METHODS:
        assert [s["valid_score"] for s in out["methods"][m]["scores"]] == \
               pytest.approx([s["valid_score"] for s in clean["methods"][m]["scores"]], abs=1e-6)


def test_resume_reads_the_finished_trials_back(tuned):
    from cfer.experiments.tune.tune import run_tune

    tmp, path, cfg, clean, _ = tuned
    again = run_tune(cfg, config_path=path, tune_dir=tmp / "clean", best_file=tmp / "again.yaml", resume=True)
    assert again["methods"] == clean["methods"] and again["values"] == clean["values"]


def test_a_grid_smaller_than_the_budget_runs_every_point():
    space = [Knob("lr", "strategies.overrides.naive.lr", (1e-3,), 1e-4)]
    assert draw(space, budget=5, seed=0, method="naive") == [{"lr": 1e-4}, {"lr": 1e-3}]
    big = [Knob("lr", "k", tuple(range(10)), 0)]
    first = draw(big, budget=4, seed=0, method="naive")
    assert len(first) == 4 and first[0] == {"lr": 0} and first == draw(big, budget=4, seed=0, method="naive")


def test_the_tune_section_does_not_stop_a_run_of_fewer_methods():
    cfg = load_config(None, ["strategies.methods=[kd_psmr]"])  # the quickstart tunes five
    assert cfg.tune.methods == ["naive", "replay", "lwf", "icarl", "kd_psmr"]
    with pytest.raises(ConfigError, match="tune.methods.: naive, replay, lwf, icarl not among"):
        from cfer.experiments.config.search_space import check_tuned

        check_tuned(cfg, where="x")


@pytest.mark.parametrize("name", ["quickstart", "paper_cfee"])
def test_the_shipped_best_args_fit_their_configs(name):
    """A shipped config edited without re-tuning would lose its operating point silently."""
    from cfer.experiments.config.load import resolve_config_path

    path = resolve_config_path(name)
    cfg = best_args.resolve(path, ["dataset.root=somewhere"] if name == "paper_cfee" else [])
    assert Path(cfg.runner.best_args).resolve() == best_args.best_path_for(path).resolve()


def test_search_spaces_come_from_the_params_and_the_tune_section(tmp_path):
    cfg = load_config(_config(tmp_path), ["tune.space.kd_psmr.gamma=[0.2, 0.4]"])
    space = {k.name: k for k in method_space(cfg, "kd_psmr")}
    assert space["gamma"].values == (0.2, 0.4) and space["gamma"].default == 0.1
    assert space["temperature"].values == (1.0, 3.0, 5.0)  # DistillationParams.search
    assert space["lr"].key == "strategies.overrides.kd_psmr.lr"
    assert [k.name for k in method_space(cfg, "joint")] == ["basic_lr"]  # offline: the basic phase's


@pytest.mark.parametrize("setting, named", [
    ("tune.space.kd_psmr.gama=[0.2]", "tune.space.kd_psmr.gama"),
    ("tune.space.gamma=[fast]", "tune.space.gamma"),
    ("tune.space.lr=[-1.0]", "tune.space.lr"),
    ("tune.space.ewc.lamda=[1.0]", "tune.space.ewc.lamda"),
    ("tune.space.nope.lr=[1.0]", "tune.space.nope.lr"),
    ("tune.methods=[nope]", "tune.methods"),
])
def test_a_bad_search_space_is_one_line_naming_it(setting, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")) as e:
        load_config(None, [setting])
    assert "\n" not in str(e.value)


# --- cfer run with a best-args file ----------------------------------------------------------

def _write_best(path, cfg, *, lr=0.0123, digest=None):
    tuned = {"naive": ["lr"]}
    target = best_args.best_path_for(path)
    target.parent.mkdir(exist_ok=True)
    target.write_text(yaml.safe_dump({
        "config_digest": digest or best_args.operating_digest(cfg, tuned), "source": "cfer tune",
        "tuned": tuned, "values": {"strategies": {"overrides": {"naive": {"lr": lr}}}}}))
    return target


def test_run_applies_and_records_the_best_args_and_set_wins(tmp_path, capsys):
    path = _config(tmp_path, "runbest")
    sets = _sets(tmp_path, "strategies.methods=[naive]", "protocol.orders=1")
    target = _write_best(path, load_config(path, sets))
    cfg = best_args.resolve(path, sets)
    assert cfg.training_for("naive").lr == 0.0123 and cfg.runner.best_args == str(target)
    won = best_args.resolve(path, [*sets, "strategies.overrides.naive.lr=0.002"])
    assert won.training_for("naive").lr == 0.002
    assert best_args.record(won)["overridden"] == ["strategies.overrides.naive.lr"]
    assert best_args.resolve(path, [*sets, "runner.best_args=none"]).training_for("naive").lr == 1e-5
    # more orders, another protocol size: the same operating point
    assert best_args.resolve(path, [*sets, "protocol.orders=2"]).training_for("naive").lr == 0.0123

    out = tmp_path / "run"
    assert cfer(["run", str(path), "--out", str(out), *sum((["--set", s] for s in sets), [])]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["best_args"]["path"] == str(target)
    assert res["best_args"]["values"] == {"strategies.overrides.naive.lr": 0.0123}
    assert res["config"]["strategies"]["overrides"]["naive"]["lr"] == 0.0123
    assert f"best-args: {target} applied" in capsys.readouterr().out


def test_a_best_args_file_of_another_config_is_ignored_by_auto_and_refused_by_name(tmp_path, caplog):
    path = _config(tmp_path, "other")
    sets = _sets(tmp_path, "strategies.methods=[naive]")
    target = _write_best(path, load_config(path, sets), digest="0123456789abcdef")
    with caplog.at_level(logging.DEBUG):
        cfg = best_args.resolve(path, sets)
    assert cfg.training_for("naive").lr == 1e-5 and cfg.runner.best_args == "none"
    assert "tuned for config digest 0123456789abcdef" in caplog.text and "not applied" in caplog.text
    with pytest.raises(ConfigError, match="runner.best_args: .*tuned for config digest") as e:
        best_args.resolve(path, [*sets, f"runner.best_args={target}"])
    assert "\n" not in str(e.value)
    # a change of a setting the operating point depends on is another digest
    good = _write_best(path, load_config(path, sets))
    assert best_args.resolve(path, [*sets, "training.epochs=3"]).runner.best_args == "none"
    assert best_args.resolve(path, sets).runner.best_args == str(good)
