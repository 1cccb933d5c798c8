"""The table of metric records (cfer.core.metrics): every table, statistic and check reads it, so
adding a metric touches one file; the headline metrics and the rule that no method is best for
forgetting it never had; reading results.json files of schema version 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from cfer.core import metrics
from cfer.experiments.report import compare, latex, stats
from cfer.experiments.report import continual as continual_report
from cfer.experiments.report.tables import metric_cell
from cfer.experiments.run import environment as env
from cfer.experiments.run.results_store import read_results

from .test_compare import _args, _method_runs, _results, _write

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import check_quickstart  # noqa: E402


def test_every_record_is_complete_and_the_headline_leads():
    names = metrics.names()
    assert len(set(names)) == len(names)
    for m in metrics.all_metrics():
        assert m.header and m.description and m.floor_reason and m.cross_cpu_floor > 0, m.name
        assert m.unit in metrics.SCALE and isinstance(m.higher_is_better, bool)
    assert metrics.headline() == ("overall_accuracy", "final_accuracy", "new_class_f1", "forgetting",
                                  "not_learnt")
    assert names[: len(metrics.headline())] == metrics.headline()  # the default tables lead with them
    assert {"new_class_recall", "forgetting_all", "max_forgetting", "bwt",
            "basic_accuracy_final"} == set(metrics.others())
    assert metrics.get("not_learnt").unit == "experiences" and not metrics.get("forgetting").higher_is_better
    with pytest.raises(KeyError, match="no metric 'new_class_accuracy'"):
        metrics.get("new_class_accuracy")


# --------------------------------------------------------------------------- adding a metric

LAST_NEW = metrics.Metric(
    name="last_new_recall", definition=lambda v: float(v.R[-1, -1]), header="last new recall",
    unit="percent", higher_is_better=True, headline=True, cross_cpu_floor=7.0,
    floor_reason="one class, after the last step", description="recall of the last class after the last step")


def test_a_new_record_flows_into_every_table_statistic_and_check(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(metrics, "METRICS", metrics.METRICS + (LAST_NEW,))
    methods = {"naive": _method_runs(0.3, n=8, seed=2), "kd_psmr": _method_runs(0.6, n=8, seed=1)}
    results = _results(methods)
    want = np.mean([r["accuracy_matrix"][-1][-1] for r in methods["naive"]])
    # the summary of results.json
    assert results["methods"]["naive"]["summary"]["last_new_recall"]["mean"] == pytest.approx(want)
    # report.md and the one-screen table
    text = continual_report.render_report(results, {"all": []}, tmp_path)
    assert "| last new recall |" in text and "*last new recall*: recall of the last class" in text
    assert "last new recall" in continual_report.summary_table(results)
    # cfer compare: text, markdown, CSV, LaTeX, and the paired statistics (a headline percentage)
    run = _write(tmp_path / "run", results)
    md, csv_path, tex = tmp_path / "t.md", tmp_path / "t.csv", tmp_path / "t.tex"
    assert compare.cli_compare(_args([run], out=[str(md), str(csv_path), str(tex)])) == 0
    assert "last new recall" in capsys.readouterr().out
    assert "| last new recall |" in md.read_text()
    assert "| kd_psmr - naive | last new recall | 8 |" in md.read_text()
    assert "last_new_recall_mean" in csv_path.read_text().splitlines()[0]
    assert "& last new recall" in tex.read_text()
    assert "last_new_recall" in {r.metric for r in stats.paired_comparisons(methods)}
    # the quickstart check: compared like every other metric, with the record's floor
    reduced = check_quickstart.reduce({**results, "config_digests": {"naive": "1", "kd_psmr": "2"}})
    assert "last_new_recall" in reduced["methods"]["naive"]["summary"]
    moved = json.loads(json.dumps(reduced))
    moved["methods"]["naive"]["summary"]["last_new_recall"]["mean"] += 0.08
    found = check_quickstart.problems(moved, reduced, exact=False)
    assert len(found) == 1 and found[0].startswith("naive.last_new_recall:") and "points" in found[0]
    stat = reduced["methods"]["naive"]["summary"]["last_new_recall"]
    assert check_quickstart.tolerance("last_new_recall", got=stat, ref=stat) >= 0.07
    old = json.loads(json.dumps(reduced))
    del old["methods"]["naive"]["summary"]["last_new_recall"]
    assert any("missing from the reference" in p for p in check_quickstart.problems(reduced, old, exact=True))
    # a results.json written before the record existed is read with it computed from its runs
    older = json.loads(json.dumps(results))
    del older["methods"]["naive"]["summary"]["last_new_recall"]
    row = compare.load([_write(tmp_path / "older", older)]).rows[0]
    assert row.summary["last_new_recall"]["mean"] == pytest.approx(want)


# --------------------------------------------------------------------------- best in a column

def _summary(forgetting: float, not_learnt: float, overall: float = 0.5) -> dict:
    stat = lambda v: {"mean": v, "std": 0.01, "n": 3}  # noqa: E731
    return {"overall_accuracy": stat(overall), "forgetting": stat(forgetting), "not_learnt": stat(not_learnt),
            "forgetting_all": stat(forgetting), "bwt": stat(-forgetting)}


def test_no_method_is_best_for_forgetting_it_never_had():
    rows = [("learns nothing", _summary(-0.185, 9.0, overall=0.53)),   # lowest forgetting, 9 never learnt
            ("replay", _summary(0.46, 0.0)), ("icarl", _summary(0.10, 0.0, overall=0.61)),
            ("one missed", _summary(0.02, 0.3))]
    assert metrics.best_labels(rows, "forgetting") == {"icarl"}
    assert metrics.best_labels(rows, "forgetting_all") == {"icarl"}
    assert metrics.best_labels(rows, "bwt") == {"icarl"}
    assert metrics.best_labels(rows, "not_learnt") == {"replay", "icarl"}  # ties are all best
    assert metrics.best_labels(rows, "overall_accuracy") == {"icarl"}
    # with no row learning everything, nobody is bold for forgetting
    partial = [r for r in rows if r[0] in ("learns nothing", "one missed")]
    assert metrics.best_labels(partial, "forgetting") == set()
    # a summary without the learnt count (a file that cannot tell) is never best either
    unknown = [("x", {"forgetting": {"mean": 0.1, "std": 0.0, "n": 1}})]
    assert metrics.best_labels(unknown, "forgetting") == set()
    # and so the LaTeX table
    headers = {m: metrics.get(m).header for m in ("forgetting", "not_learnt")}
    text = latex.results_table(rows, headers=headers, caption="c")
    bold = [line.split(" & ")[0] for line in text.splitlines() if r"\mathbf{10.0" in line]
    assert bold == ["icarl"] and r"\mathbf{-18.5" not in text


# --------------------------------------------------------------------------- tables

def test_a_one_run_table_shows_no_spread_and_no_count():
    results = _results({"naive": _method_runs(0.3, n=1, seed=1), "kd_psmr": _method_runs(0.6, n=1, seed=2)})
    for text in (continual_report.summary_table(results), continual_report.markdown_summary_table(results),
                 continual_report.markdown_summary_table(results, metrics.others())):
        rows = [line for line in text.splitlines() if "naive" in line or "kd_psmr" in line]
        assert len(rows) == 2 and not any("±" in r or "(1)" in r for r in rows), rows
    cell = metrics.get("not_learnt")
    assert metric_cell(results["methods"]["naive"]["summary"], cell.name, runs=1) == "0"


def test_report_lists_only_the_classes_the_runs_used(tmp_path):
    from cfer.benchmarks.taxonomy import BASIC, COMPOUND

    results = _results({"naive": _method_runs(0.3, n=3, seed=1)})  # orders over awed, appalled, hatred
    names = list(BASIC + COMPOUND)
    results["dataset"].update(class_names=names, class_counts={c: 10 for c in names})
    used = continual_report.used_classes(results)
    assert used == list(BASIC) + ["appalled", "hatred", "awed"]
    text = continual_report.render_report(results, {"all": []}, tmp_path)
    assert f"- 9 classes in the runs (of the data set's {len(BASIC + COMPOUND)})" in text
    assert "sadly angry" not in text and "happily surprised" not in text
    assert f"not in the stream (benchmark.compounds): {len(COMPOUND) - 3} classes" in text
    # with class names in the runs, they are what counts
    for r in results["methods"]["naive"]["runs"]:
        r["class_names"] = list(BASIC) + list(r["order"])
    assert continual_report.used_classes(results) == list(BASIC) + ["appalled", "hatred", "awed"]


# --------------------------------------------------------------------------- schema version 2

def test_a_version_2_file_reads_with_the_renamed_metrics(tmp_path):
    runs = _method_runs(0.3, n=3, seed=1)
    for r in runs:
        del r["new_class_f1"]  # version 2 records had no per-step F1
    v3 = metrics.summarize_runs(runs)
    old = {"new_class_accuracy": v3["new_class_recall"], "forgetting": v3["forgetting_all"]}
    old.update({k: v3[k] for k in ("overall_accuracy", "final_accuracy", "max_forgetting", "bwt",
                                   "basic_accuracy_final")})
    for r in runs:  # experience 1 never learnt: forgetting over learnt ones differs from forgetting_all
        r["accuracy_matrix"][1][1] = 0.01
    old["forgetting"] = metrics.summarize_runs(runs)["forgetting_all"]
    results = _results({"naive": runs}, schema=2)
    results["methods"]["naive"]["summary"] = old
    got = read_results(_write(tmp_path / "run", results))["methods"]["naive"]["summary"]
    assert "new_class_accuracy" not in got and got["new_class_recall"] == old["new_class_accuracy"]
    assert got["forgetting_all"] == old["forgetting"]
    fresh = metrics.summarize_runs(runs)
    assert got["forgetting"] == fresh["forgetting"] != got["forgetting_all"]  # learnt ones only
    assert got["not_learnt"]["mean"] == 1.0 and got["new_class_f1"]["mean"] is None
    assert env.SCHEMA_VERSION == 3 and 2 in env.READABLE_SCHEMAS
    row = compare.load([str(tmp_path / "run")]).rows[0]
    assert row.summary["new_class_recall"] == old["new_class_accuracy"]


def test_the_changelog_states_the_schema_change():
    text = (ROOT / "CHANGELOG.md").read_text()
    unreleased = text.split("## [Unreleased]", 1)[1].split("\n## ", 1)[0]
    for word in ("schema_version", "3", "new_class_recall", "new_class_accuracy", "forgetting_all",
                 "new_class_f1", "not_learnt"):
        assert word in unreleased, word


def test_docs_metrics_defines_every_headline_metric():
    text = (ROOT / "docs" / "metrics.md").read_text()
    for name in metrics.headline():
        assert f"`{name}`" in text, name
