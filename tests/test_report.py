"""Plots, report.md and `cfer plot` from a small synthetic results.json (`cfer compare`:
tests/test_compare.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from cfer.core import metric_definitions as M
from cfer.core import metrics
from cfer.experiments.report import figures as F
from cfer.experiments.report import heatmaps as H
from cfer.experiments.report import run_report as report

BASIC = ["happy", "sad", "fearful", "angry", "surprised", "disgusted"]
COMPOUND = ["happily surprised", "sadly angry", "awed"]
ORDERS = [COMPOUND, COMPOUND[::-1]]


def _fake_run(order, *, seed: int, skill: float) -> dict:
    """A run record from predictions of a model that is right with probability ``skill``
    and otherwise guesses among the seen classes (3 test images per class)."""
    rng = np.random.default_rng(seed)
    names = BASIC + list(order)
    comp = {6 + k: tuple(BASIC.index(b) for b in
                         {"happily surprised": ("happy", "surprised"), "sadly angry": ("sad", "angry"),
                          "awed": ("fearful", "surprised")}[c]) for k, c in enumerate(order)}
    steps = []
    for i in range(len(order) + 1):
        n_seen = 6 + i
        y = np.repeat(np.arange(n_seen), 3)
        e = np.maximum(y - 5, 0)
        guess = rng.integers(0, n_seen, y.size)
        p = np.where(rng.random(y.size) < skill - 0.1 * i * (y < 6), y, guess)
        steps.append((y, p, e))
    rec = M.run_record(step_predictions=steps, n_basic=6, component_ids=comp, class_names=names)
    rec.update(order=list(order), fold=0, seed=seed, train_seconds=1.5, images_per_second=250.0)
    return rec


def _results(methods=("naive", "kd+psmr"), summary=True) -> dict:
    out = {"config": {"name": "test"},
           "dataset": {"name": "tiny-synth", "n_images": 270, "n_subjects": 10,
                       "class_names": BASIC + COMPOUND, "class_counts": {c: 30 for c in BASIC + COMPOUND}},
           "methods": {}}
    for k, m in enumerate(methods):
        runs = [_fake_run(o, seed=10 * k + s, skill=0.5 + 0.3 * k) for s, o in enumerate(ORDERS)]
        out["methods"][m] = {"runs": runs}
        if summary:
            out["methods"][m]["summary"] = metrics.summarize_runs(runs)
    return out


def _write(run_dir: Path, results) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    text = results if isinstance(results, str) else json.dumps(results)
    (run_dir / "results.json").write_text(text)
    return run_dir


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    run_dir = _write(tmp_path_factory.mktemp("run"), _results())
    path = report.write_report(run_dir, plot_config=F.PlotConfig(dpi=40))
    return run_dir, path


def test_report_writes_every_plot_as_png(reported):
    run_dir, _ = reported
    pngs = sorted(p.name for p in (run_dir / "plots").glob("*.png"))
    want = ["basic_accuracy.png", "step_accuracy.png"] + [
        f"{kind}_{s}.png" for s in ("naive", "kd_psmr")
        for kind in ("forgetting", "accuracy_matrix", "old_new", "confusion")]
    assert pngs == sorted(want)
    for name in pngs:
        data = (run_dir / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    assert not list((run_dir / "plots").glob(".*tmp"))  # atomic writes leave no temp files


def test_report_md_has_table_dataset_and_image_links(reported):
    run_dir, path = reported
    text = path.read_text()
    results = json.loads((run_dir / "results.json").read_text())
    assert "| method | runs | overall acc |" in text
    s = results["methods"]["kd+psmr"]["summary"]["overall_accuracy"]
    cell = f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"  # n only where it differs from runs
    assert f"| kd+psmr | 2 | {cell} |" in text
    assert "tiny-synth" in text and "happily surprised (30)" in text
    for png in (run_dir / "plots").glob("*.png"):
        assert f"(plots/{png.name})" in text
    assert "2 class order(s)" in text


def test_confusion_is_summed_by_class_name_across_orders():
    runs = [{"class_names": ["a", "b", "x", "y"], "n_basic": 2, "accuracy_matrix": [[1]] * 3,
             "confusion_matrix": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 2, 1], [0, 0, 0, 3]]},
            {"class_names": ["a", "b", "y", "x"], "n_basic": 2, "accuracy_matrix": [[1]] * 3,
             "confusion_matrix": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 4, 0], [1, 0, 0, 5]]}]
    names = H.canonical_class_order(runs, dataset_names=["y", "x", "b", "a"])
    assert names == ["a", "b", "y", "x"]  # basic first, then the data set's order
    cm = H.summed_confusion(runs, names)
    # run 1 in canonical order: y row [0,0,3,0], x row [0,0,1,2]; run 2: y [0,0,4,0], x [1,0,0,5]
    assert cm.tolist() == [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 7, 0], [1, 0, 1, 7]]


def test_mean_spread_is_nan_aware_with_sample_std():
    mean, std = F.mean_spread(np.array([[0.2, np.nan], [0.4, 0.5]]))
    assert mean.tolist() == pytest.approx([0.3, 0.5])
    assert std.tolist() == pytest.approx([np.std([0.2, 0.4], ddof=1), 0.0])


def test_format_summary_table(reported):
    run_dir, _ = reported
    results = report.load_results(run_dir)
    table = report.format_summary_table(results)
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["method", "runs", "overall", "acc"]
    assert lines[2].startswith("naive") and lines[3].startswith("kd+psmr")
    s = results["methods"]["naive"]["summary"]["final_accuracy"]
    assert f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}" in lines[2]
    assert max(map(len, lines)) < 160


def test_summary_is_computed_when_missing(tmp_path):
    run_dir = _write(tmp_path / "run", _results(methods=("naive",), summary=False))
    results = report.load_results(run_dir)
    naive = results["methods"]["naive"]
    assert naive["summary"] == metrics.summarize_runs(naive["runs"])


def test_cli_plot(tmp_path, capsys):
    run_dir = _write(tmp_path / "run", _results(methods=("naive",)))
    assert report.cli_plot(argparse.Namespace(run_dir=str(run_dir))) == 0
    assert (run_dir / "report.md").is_file() and len(list((run_dir / "plots").glob("*.png"))) == 6
    assert "report.md" in capsys.readouterr().out


@pytest.mark.parametrize("content, match", [
    (None, r"results\.json: not found"),
    ("{not json", r"results\.json: not valid JSON"),
    ({"config": {}}, r"results\.json: key 'methods' is missing"),
    ({"methods": {"naive": {}}}, r"results\.json: methods\.naive\.runs is missing"),
    ({"methods": {"naive": {"runs": [{"accuracy_matrix": [[0.5, None], [0.4]],
                                      "step_accuracy": [0.5, 0.4]}]}}},
     r"results\.json: methods\.naive\.runs\[0\]: accuracy_matrix row 1"),
    ({"methods": {"naive": {"runs": [{"accuracy_matrix": [[0.5]]}]}}},
     r"methods\.naive\.runs\[0\]: run record has no 'step_accuracy'"),
    ({"methods": {"naive": {"runs": [{"accuracy_matrix": [[0.5]], "step_accuracy": [0.5]}],
                            "summary": {"overall_accuracy": 0.5}}}},
     r"methods\.naive\.summary\.overall_accuracy is missing or not"),
])
def test_malformed_results_is_a_one_line_error(tmp_path, content, match):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    if content is not None:
        _write(run_dir, content)
    with pytest.raises((ValueError, FileNotFoundError), match=match) as info:
        report.cli_plot(argparse.Namespace(run_dir=str(run_dir)))
    assert "\n" not in str(info.value) and str(run_dir / "results.json") in str(info.value)


def test_cfer_plot_command_reports_error_on_one_line(tmp_path, capsys):
    from cfer.experiments.cli import main

    run_dir = _write(tmp_path / "run", {"methods": []})
    assert main(["plot", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cfer plot: error:") and "'methods'" in err and len(err.splitlines()) == 1


def _fewshot_results(phase: str | None) -> dict:
    recs = [{"class": "sadly angry", "shots": n, "seed": 0, "fold": 0, "new_recall": r, "all_accuracy": 0.5,
             "basic_accuracy": 0.6, "harmonic_mean": 0.4} for n, r in ((2, 0.5), (1, 0.3))]
    config = {"name": "fs"} if phase is None else {"name": "fs", "phase": phase}
    return {"config": config, "dataset": {"name": "tiny-synth"}, "methods": {},
            "fewshot": {"method": "kd_only", "records": recs, "basic_models": []}}


def test_the_phase_saved_in_results_picks_the_report(tmp_path):
    fewshot = _write(tmp_path / "fs", _fewshot_results("fewshot"))
    text = report.write_report(fewshot, plot_config=F.PlotConfig(dpi=40)).read_text()
    assert text.startswith("# Few-shot compound expressions") and "new-class recall (paper)" in text
    assert "kd_only" in report.format_summary_table(report.load_results(fewshot))
    # The same file without its phase is read as continual (as files from before the phase was
    # saved), never guessed from its shape.
    for phase, match in ((None, r"key 'methods' is missing"),
                         ("continual", r"key 'methods' is missing"),
                         ("sideways", r"config\.phase: unknown phase 'sideways'")):
        run_dir = _write(tmp_path / f"as_{phase}", _fewshot_results(phase))
        with pytest.raises(ValueError, match=match) as info:
            report.load_results(run_dir)
        assert str(run_dir / "results.json") in str(info.value)


def test_every_phase_has_a_runner_and_a_report():
    from cfer.experiments.cli import PHASE_RUNNERS
    from cfer.experiments.run.results_store import PHASES

    assert PHASES == ("continual", "fewshot", "fscil")
    assert set(PHASE_RUNNERS) == set(report.REPORTS) == set(PHASES)
    for phase, module in report.REPORTS.items():
        assert all(callable(getattr(module, f)) for f in ("check", "summary_table", "write_report",
                                                          "compare_rows")), phase


# --------------------------------------------------------------------------- figures that cannot mislead

def _two_runs(T: int = 4, level: float = 0.6) -> list[dict]:
    rng = np.random.default_rng(0)
    runs = []
    for _ in range(2):
        R = [[float(np.clip(level - 0.05 * (i - j) + rng.normal(0, 0.02), 0, 1)) if j <= i else None
              for j in range(T)] for i in range(T)]
        steps = [float(np.mean([v for v in row if v is not None])) for row in R]
        runs.append({"accuracy_matrix": R, "step_accuracy": steps,
                     "old_class_accuracy": [None] + [float(np.mean(row[:i])) for i, row in enumerate(R) if i],
                     "new_class_f1": [None] + [0.5] * (T - 1), "n_basic": 6})
    return runs


def test_heat_map_colour_bars_are_in_the_cells_unit_percent():
    from matplotlib.ticker import PercentFormatter

    runs = _two_runs()
    fig = H.accuracy_heatmap_figure("m", runs)
    image = fig.axes[0].images[0]
    assert (image.norm.vmin, image.norm.vmax) == (0, 100)  # the cells say "60", the bar 60%
    bar = image.colorbar
    assert isinstance(bar.ax.yaxis.get_major_formatter(), PercentFormatter)
    assert bar.ax.yaxis.get_major_formatter()(60) == "60%"
    cell = next(t for t in fig.axes[0].texts if t.get_position() == (0, 0))
    want = 100 * np.mean([r["accuracy_matrix"][0][0] for r in runs])
    assert float(cell.get_text()) == pytest.approx(want, abs=0.5)
    cm_runs = [{"class_names": ["a", "b", "x"], "n_basic": 2, "accuracy_matrix": [[1]] * 2,
                "confusion_matrix": [[3, 1, 0], [0, 4, 0], [1, 1, 2]]}]
    cm = H.confusion_figure("m", cm_runs).axes[0].images[0]
    assert (cm.norm.vmin, cm.norm.vmax) == (0, 100) and cm.get_array().max() == pytest.approx(100)


def test_methods_whose_curves_coincide_stay_distinguishable():
    from cfer.experiments.report import plots as P

    runs = _two_runs()
    methods = {"naive": runs, "lwf": json.loads(json.dumps(runs)), "replay": _two_runs(level=0.3)}
    for make in (P.step_accuracy_figure, P.basic_accuracy_figure):
        fig = make(methods)
        ax = fig.axes[0]
        labels = {P._label(m, r) for m, r in methods.items()}
        styles = [(line.get_linestyle(), line.get_marker()) for line in ax.get_lines()
                  if line.get_label() in labels]
        assert len(styles) == 3 and len(set(styles)) == 3  # naive is no longer hidden under lwf
        assert "naive and lwf coincide" in ax.get_title() and "replay" not in ax.get_title().split("\n", 1)[1]
    assert P.coinciding({"a": np.array([0.5, np.nan]), "b": np.array([0.505, 0.2])}) == [("a", "b")]
    assert P.coinciding({"a": np.array([0.5, 0.4]), "b": np.array([0.5, 0.38])}) == []


def test_a_method_trained_once_is_not_drawn_after_training_experience_i(tmp_path, monkeypatch):
    from cfer.experiments.report import plots as P

    assert F.trained_once("joint") and not F.trained_once("naive") and not F.trained_once("not registered")
    runs = _two_runs()
    once = P.old_new_figure("joint", runs, once=True)
    assert "after" not in once.axes[0].get_xlabel() and "trained once" in once.axes[0].get_title()
    assert "after" in P.old_new_figure("naive", runs).axes[0].get_xlabel()
    assert "after" not in P.forgetting_figure("joint", runs, once=True).get_supxlabel()
    assert "after" not in H.accuracy_heatmap_figure("joint", runs, once=True).axes[0].get_ylabel()
    # the report decides from the registry: joint's figures are drawn with once=True
    seen = {}
    monkeypatch.setattr(P, "old_new", lambda m, r, path, cfg, once=False: seen.setdefault(m, once) or path)
    results = {"methods": {"joint": {"runs": runs}, "naive": {"runs": runs}}}
    P.plot_all(results, tmp_path, F.PlotConfig(dpi=20))
    assert seen == {"joint": True, "naive": False}
    # and its legend says so in the figures of all methods
    labels = [t.get_text() for t in P.step_accuracy_figure({"joint": runs}).axes[0].get_legend().get_texts()]
    assert labels == ["joint (n=2, trained once)"]


def test_forgetting_end_labels_sit_off_the_curves():
    from cfer.experiments.report import plots as P

    for T in (3, 8, 16):
        runs = _two_runs(T=T)
        fig = P.forgetting_figure("m", runs)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        checked = 0
        for ax in (a for a in fig.axes if a.get_visible()):
            box = next(t for t in ax.texts if t.get_text().endswith("%")).get_window_extent(renderer)
            for line in ax.get_lines()[:1]:  # the curve (the dashed line is a reference)
                x, y = line.get_data()
                # the curve as a dense polyline, in display coordinates
                xs = np.concatenate([np.linspace(a, b, 50) for a, b in zip(x[:-1], x[1:])] or [x])
                ys = np.concatenate([np.linspace(a, b, 50) for a, b in zip(y[:-1], y[1:])] or [y])
                pts = ax.transData.transform(np.c_[xs, ys])
                inside = ((pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1)
                          & (pts[:, 1] >= box.y0) & (pts[:, 1] <= box.y1))
                assert not inside.any(), (T, ax.get_title())
                # and the label stays within the panel
                assert box.x1 <= ax.get_window_extent(renderer).x1 + 1
                checked += 1
        assert checked == T
