"""`cfer sweep`: a 2 x 2 grid writes four run directories and a grid table whose best point per
method is chosen on the validation subjects, never on the test subjects."""

from __future__ import annotations

import json
import re

import pytest

from cfer.core.typed import ConfigError
from cfer.experiments.cli import main as cfer
from cfer.experiments.sweep.sweep import best_points, grid_table, parse_grid
from tests.test_runner import TINY

GRID = ["--grid", "training.basic_lr=3e-2,1e-4", "--grid", "training.batch_size=4,16"]
POINTS = ["basic_lr=0.03_batch_size=4", "basic_lr=0.03_batch_size=16", "basic_lr=0.0001_batch_size=4",
          "basic_lr=0.0001_batch_size=16"]
METHODS = ("naive",)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    sets = sum((["--set", a] for a in [*TINY, f"dataset.root={tmp / 'synth'}", "protocol.orders=1",
                                       "strategies.methods=[naive]", "output.plots=false"]), [])
    out = tmp / "grid"
    assert cfer(["sweep", *GRID, "--out", str(out), *sets]) == 0
    return out, sets


def _results(out):
    return [(name, json.loads((out / name / "results.json").read_text())) for name in POINTS]


def test_every_point_is_a_run_directory_with_its_values(sweep):
    out, _ = sweep
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(POINTS)
    for name, res in _results(out):
        lr, bs = re.fullmatch(r"basic_lr=([\d.]+)_batch_size=(\d+)", name).groups()
        assert res["config"]["training"]["basic_lr"] == float(lr)
        assert res["config"]["training"]["batch_size"] == int(bs)
        assert res["config"]["sweep"]["grid"] == {}
        assert tuple(res["methods"]) == METHODS
    saved = json.loads((out / "sweep.json").read_text())
    assert [p["name"] for p in saved["points"]] == POINTS
    assert saved["grid"] == {"training.basic_lr": [0.03, 0.0001], "training.batch_size": [4, 16]}


def test_final_validation_accuracy_is_avalanches_on_the_validation_stream(sweep):
    """Each run records its final model's accuracy on the validation subjects: the number
    Avalanche's own stream accuracy logs for that evaluation of the valid stream."""
    out, _ = sweep
    for name, res in _results(out):
        for method, block in res["methods"].items():
            (run,) = block["runs"]
            log = (out / name / "logs" / method / "order0_fold0_seed0" / "log.txt").read_text()
            logged = re.findall(r"Top1_Acc_Stream/eval_phase/valid_stream = ([\d.]+)", log)
            assert logged, (name, method)
            assert run["final_valid_accuracy"] == pytest.approx(float(logged[-1]), abs=5e-5)


def test_the_table_marks_the_best_validation_point_per_method(sweep):
    out, _ = sweep
    results = _results(out)
    saved = json.loads((out / "sweep.json").read_text())
    for method in METHODS:
        valid = {n: r["methods"][method]["runs"][0]["final_valid_accuracy"] for n, r in results}
        assert valid[saved["best"][method]] == max(valid.values())
        assert saved["best"][method] == next(n for n in POINTS if valid[n] == max(valid.values()))
    rows = [line for line in (out / "grid.md").read_text().splitlines()[2:] if line.startswith("|")]
    assert len(rows) == len(POINTS) * len(METHODS)
    cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
    marked = {(c[0], c[1]) for c in cells if c[3] == "*"}
    assert marked == {(saved["best"][m], m) for m in METHODS}


def test_the_best_point_follows_validation_not_test():
    """Two points where validation and test disagree, per method: each method's choice is its
    validation winner."""
    def results(valid: dict, final: dict) -> dict:
        return {"methods": {m: {"runs": [{
            "order": ["a"], "fold": 0, "seed": 0, "accuracy_matrix": [[0.5, None], [0.4, 0.6]],
            "step_accuracy": [0.5, final[m]], "uar": [0.5, 0.5], "macro_f1": [0.5, 0.5],
            "final_valid_accuracy": valid[m]}]} for m in valid}}

    # naive: p1 is better on validation, p2 on test; lwf the other way round
    points = [("p1", results({"naive": 0.4, "lwf": 0.2}, {"naive": 0.3, "lwf": 0.9})),
              ("p2", results({"naive": 0.3, "lwf": 0.3}, {"naive": 0.9, "lwf": 0.3}))]
    assert best_points(points) == {"naive": "p1", "lwf": "p2"}
    rows = [line.split() for line in grid_table(points).splitlines()[2:6]]
    assert [(r[0], r[1]) for r in rows if "*" in r] == [("p1", "naive"), ("p2", "lwf")]
    assert rows[0][:5] == ["p1", "naive", "40.0", "*", "1"]  # the validation accuracy, one run: no spread


def test_resume_and_refusal(sweep, capsys):
    out, sets = sweep
    before = json.loads((out / "sweep.json").read_text())
    assert cfer(["sweep", *GRID, "--out", str(out), *sets]) == 2
    assert "use --resume" in capsys.readouterr().err
    assert cfer(["sweep", "--resume", str(out)]) == 0  # every run is done: nothing trains again
    after = json.loads((out / "sweep.json").read_text())
    assert after == before


def test_grid_parsing_and_errors(tmp_path):
    assert parse_grid(["training.lr=1e-4,1.0e-5", "strategies.methods=[naive, lwf],[joint]"]) == \
        {"training.lr": [1e-4, 1e-5], "strategies.methods": [["naive", "lwf"], ["joint"]]}
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_grid(["training.lr"])
    assert cfer(["sweep", "--out", str(tmp_path / "s")]) == 2  # no grid
    assert cfer(["sweep", "--grid", "training.lr=1e-3", "--set", "protocol.name=paper",
                 "--out", str(tmp_path / "p")]) == 2


def test_a_point_keeps_the_configs_other_overrides_and_params():
    """A grid key under strategies.overrides (or params) sets that key only: the quickstart's
    joint override (basic_epochs 8) stays."""
    from cfer.experiments.config.load import load_config
    from cfer.experiments.sweep.sweep import Point, point_config

    cfg = point_config(load_config(None), Point({"strategies.overrides.kd_psmr.lr": 1e-3}))
    assert cfg.strategies.overrides == {"joint": {"basic_epochs": 8}, "kd_psmr": {"lr": 1e-3}}
