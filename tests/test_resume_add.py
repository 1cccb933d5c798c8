"""``--resume`` adds methods to a finished run directory: the saved runs stay byte-identical
(records, summary, digest, saved models), the new method runs, and any other result-changing
edit is still refused."""

from __future__ import annotations

import json

import pytest

from cfer.core.typed import ConfigError
from cfer.experiments.config.load import load_config
from cfer.experiments.run.continual import ContinualRunner
from tests.test_runner import TINY

MINE = ("strategies.define={mine: {base: naive, plugins: [{'avalanche:EWCPlugin': {ewc_lambda: 50}}]}}")


def args(tmp, *extra):
    return [*TINY, f"dataset.root={tmp / 'synth'}", "protocol.orders=1", "output.plots=false",
            "output.save_models=first", *extra]


def test_resume_adds_a_method_and_leaves_the_saved_runs_byte_identical(tmp_path):
    out = tmp_path / "run"
    ContinualRunner(load_config(None, args(tmp_path, "strategies.methods=[naive]")), out).run()
    before = json.loads((out / "results.json").read_text())
    models = {p: p.read_bytes() for p in (out / "models").rglob("*.pt")}
    assert models

    cfg = load_config(None, args(tmp_path, "strategies.methods=[naive, mine]", MINE))
    after = ContinualRunner(cfg, out).run(resume=True)
    assert list(after["methods"]) == ["naive", "mine"] and len(after["methods"]["mine"]["runs"]) == 1
    assert json.dumps(after["methods"]["naive"], sort_keys=True) == json.dumps(before["methods"]["naive"],
                                                                                sort_keys=True)
    assert after["config_digests"]["naive"] == before["config_digests"]["naive"]
    assert all(p.read_bytes() == b for p, b in models.items())
    (resume,) = after["resumes"]
    assert resume["runs_saved_before"] == 1 and "strategies.methods" in resume["changed"]

    refused = {  # still result-changing: a saved method's setting, removing or reordering one
        "training.lr=0.5": "refusing to change training.lr",
        "strategies.methods=[mine]": "refusing to change strategies.methods",
        "strategies.params.mine.ewc_lambda=5": "refusing to change .*strategies.params.mine.ewc_lambda",
    }
    for change, message in refused.items():
        base = args(tmp_path, "strategies.methods=[naive, mine]", MINE, change)
        with pytest.raises(ConfigError, match=message) as e:
            ContinualRunner(load_config(None, base), out).run(resume=True)
        assert "\n" not in str(e.value)
    assert json.loads((out / "results.json").read_text())["methods"]["naive"] == before["methods"]["naive"]


def test_cfer_plot_draws_the_methods_of_several_directories_and_refuses_other_settings(tmp_path, capsys):
    from cfer.experiments.cli import main as cfer
    from tests.test_compare import _method_runs, _results, _write

    a = _write(tmp_path / "a", _results({"naive": _method_runs(0.3, n=2, seed=1),
                                         "kd_psmr": _method_runs(0.6, n=2, seed=2)}))
    b = _write(tmp_path / "b", _results({"mine": _method_runs(0.5, n=2, seed=3),
                                         "naive": _method_runs(0.3, n=2, seed=1)}))
    out = tmp_path / "figures"
    assert cfer(["plot", a, b, "--out", str(out)]) == 0
    names = sorted(p.name for p in out.glob("*.png"))
    assert {"forgetting_kd_psmr.png", "forgetting_mine.png", "step_accuracy.png"} <= set(names)
    # a method both directories ran is drawn once per directory, labelled with it
    assert sum(n.startswith("forgetting_naive") for n in names) == 2
    other = _write(tmp_path / "c", _results({"lwf": _method_runs(0.4, n=2, seed=4)}, name="cfee"))
    capsys.readouterr()
    assert cfer(["plot", a, other, "--out", str(tmp_path / "no")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "are not comparable: they differ in data set" in err[0]
    assert not (tmp_path / "no").exists()
