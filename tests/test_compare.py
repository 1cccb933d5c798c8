"""Paper-ready comparisons: the environment record of results.json, the paired statistics
(against scipy, Holm included), `cfer compare` (refusals, warnings, text/markdown/CSV/LaTeX),
report.md's paired section and the quickstart reference check of .ci/run."""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from cfer.core import metrics
from cfer.experiments.report import compare, latex, stats
from cfer.experiments.run import environment as env

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import check_quickstart  # noqa: E402

ORDERS = [["awed", "appalled"], ["appalled", "awed"], ["awed", "hatred"], ["hatred", "awed"],
          ["appalled", "hatred"], ["hatred", "appalled"]]


def _run(order, *, seed: int, level: float, rng) -> dict:
    """A hand-made 3-experience run (6 basic classes: every experience learnt from level 0.3
    up): accuracies around ``level`` with noise, the basic block forgotten a little at each
    step, a new-class F1 a little under the new class's accuracy."""
    a = lambda x: float(np.clip(x + rng.normal(0, 0.03), 0, 1))  # noqa: E731
    R = [[a(level + 0.2), None, None], [a(level), a(level + 0.1), None], [a(level - 0.1), a(level), a(level)]]
    steps = [R[0][0], (R[1][0] + R[1][1]) / 2, sum(R[2]) / 3]
    return {"order": list(order), "fold": 0, "seed": seed, "n_basic": 6, "accuracy_matrix": R,
            "step_accuracy": steps, "new_class_f1": [None, a(level), a(level - 0.05)]}


def _method_runs(level: float, *, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [_run(ORDERS[k % len(ORDERS)], seed=k // len(ORDERS), level=level, rng=rng) for k in range(n)]


def _results(methods: dict, *, name="synthetic", n_images=100, protocol="heldout", environment=None,
             schema=None) -> dict:
    out = {"config": {"name": "t", "phase": "continual", "protocol": {"name": protocol}},
           "dataset": {"name": name, "n_images": n_images},
           "methods": {m: {"runs": runs, "summary": metrics.summarize_runs(runs)}
                       for m, runs in methods.items()}}
    if environment is not None:
        out["environment"] = environment
    if schema is not None:
        out["schema_version"] = schema
    return out


def _write(run_dir: Path, results: dict) -> str:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps(results))
    return str(run_dir)


def _args(run_dirs, **kw) -> argparse.Namespace:
    return argparse.Namespace(run_dirs=list(run_dirs), out=kw.get("out", []), reference=kw.get("reference"),
                              all_pairs=kw.get("all_pairs", False), allow_mixed=kw.get("allow_mixed", False))


# --------------------------------------------------------------------------- environment

def test_environment_block_is_complete_and_true():
    import torch

    block = env.environment(device="cpu", numerics={"precision": "fp32", "compile": "false"})
    assert block["packages"] == {**{p: metadata.version(p) for p in env.PACKAGES}, "torch": torch.__version__}
    assert block["python"] == ".".join(map(str, sys.version_info[:3]))
    assert block["threads"] == torch.get_num_threads() and block["cpu_count"] >= 1
    assert block["device"]["type"] == "cpu" and block["device"]["cpu_capability"]
    assert block["device"]["torch_cuda"] == torch.version.cuda and "cudnn" in block["device"]
    assert block["numerics"]["precision"] == "fp32" and block["numerics"]["float32_matmul_precision"]
    assert block["cpu_model"] and block["cfer"]["version"]
    if (ROOT / ".git").exists():  # run from a checkout: the commit is recorded, and the dirty flag
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        assert block["cfer"]["commit"] == head and isinstance(block["cfer"]["dirty"], bool)
    assert env.git_state(ROOT / "docs") == {"commit": None, "dirty": None}  # not a checkout root


def test_results_head_records_schema_environment_and_a_digest_per_method(tmp_path):
    from cfer.experiments.config.load import load_config
    from cfer.experiments.run.context import RunContext
    from cfer.experiments.run.data import DecodedDataset

    from .conftest import make_tiny_dataset

    ds, images = make_tiny_dataset()
    cfg = load_config(None)
    head = RunContext(cfg, tmp_path, data=DecodedDataset(ds, images, ())).results_head()
    assert head["schema_version"] == env.SCHEMA_VERSION
    assert set(head["environment"]) >= {"cfer", "python", "packages", "device", "numerics", "threads",
                                        "cpu_model"}
    assert head["environment"]["numerics"]["precision"] == cfg.training.precision
    digests = head["config_digests"]
    assert list(digests) == cfg.strategies.methods and len(set(digests.values())) == len(digests)
    # A results-changing key changes the digest of the method it reaches, a cosmetic one none.
    again = env.run_config_digests(load_config(None, ["output.dir=/elsewhere", "runner.progress=false"]))
    assert again == digests
    lwf = env.run_config_digests(load_config(None, ["strategies.params.lwf.alpha=5"]))
    assert {m for m in digests if lwf[m] != digests[m]} == {"lwf"}
    lr = env.run_config_digests(load_config(None, ["training.lr=0.5"]))
    assert all(lr[m] != digests[m] for m in digests)


def test_comparison_modules_load_without_torch():
    code = ("import sys; import cfer.experiments.report.compare, cfer.experiments.report.stats, "
            "cfer.experiments.report.latex, cfer.experiments.run.environment; "
            "print(sorted(m for m in ('torch', 'avalanche', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


# --------------------------------------------------------------------------- paired statistics

def test_holm_matches_the_step_down_definition():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> running max.
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    got = stats.holm([0.5, float("nan"), 0.02])
    assert got[0] == pytest.approx(0.5) and np.isnan(got[1]) and got[2] == pytest.approx(0.04)
    assert stats.holm([0.6, 0.7]) == [1.0, 1.0]


def test_paired_statistics_equal_scipy_on_matched_runs():
    methods = {"kd_psmr": _method_runs(0.6, n=6, seed=1), "naive": _method_runs(0.4, n=6, seed=2),
               "replay": _method_runs(0.58, n=6, seed=3)}
    methods["naive"] = methods["naive"][::-1]  # pairing is by (order, fold, seed), not by position
    rows = stats.paired_comparisons(methods, reference="kd_psmr")
    assert [(r.first, r.second, r.metric) for r in rows] == [
        ("kd_psmr", b, m) for b in ("naive", "replay") for m in metrics.paired()]
    assert metrics.paired() == ("overall_accuracy", "final_accuracy", "new_class_f1", "forgetting")
    key = stats.run_key
    for metric in metrics.paired():
        ref = {key(r): metrics.run_scalars(r)[metric] for r in methods["kd_psmr"]}
        raw = {}
        for other in ("naive", "replay"):
            b = {key(r): metrics.run_scalars(r)[metric] for r in methods[other]}
            x, y = np.array([ref[k] for k in ref]), np.array([b[k] for k in ref])
            row = next(r for r in rows if r.second == other and r.metric == metric)
            t = sps.ttest_rel(x, y)
            ci = t.confidence_interval(0.95)
            d = x - y
            # 6 pairs, Holm over 2 comparisons: at best 2 x 2/2^6 = 0.0625, so not testable
            assert row.n == 6 and row.family == 2 and not row.testable
            assert row.mean == pytest.approx(d.mean()) and row.std == pytest.approx(d.std(ddof=1))
            assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high))
            assert row.effect_size == pytest.approx(d.mean() / d.std(ddof=1))
            assert row.p_ttest == pytest.approx(t.pvalue)
            assert row.p_wilcoxon == pytest.approx(sps.wilcoxon(x, y).pvalue)
            raw[other] = row
        # Holm over the two comparisons of this metric, by hand.
        for test in ("p_wilcoxon", "p_ttest"):
            (lo, lo_row), (hi, hi_row) = sorted(((getattr(r, test), r) for r in raw.values()),
                                                key=lambda t: t[0])
            assert getattr(lo_row, test + "_holm") == pytest.approx(min(1, 2 * lo))
            assert getattr(hi_row, test + "_holm") == pytest.approx(min(1, max(2 * lo, hi)))


def test_identical_methods_have_no_test_rather_than_a_fake_p():
    runs = _method_runs(0.5, n=6, seed=1)
    rows = stats.paired_comparisons({"a": runs, "b": [dict(r) for r in runs]})
    assert all(r.mean == 0 and np.isnan(r.p_wilcoxon) and np.isnan(r.p_ttest_holm) for r in rows)
    cells = stats.paired_rows(rows)
    # no spread: no d_z, no test
    assert cells[0][3:] == ["+0.0", "[+0.0, +0.0]", "n/a", "n/a (no non-zero difference)", "not shown"]


def test_all_pairs_and_runs_without_a_partner():
    methods = {"a": _method_runs(0.5, n=5, seed=1), "b": _method_runs(0.5, n=5, seed=2),
               "c": _method_runs(0.5, n=3, seed=3)}
    rows = stats.paired_comparisons(methods)
    pairs = {(r.first, r.second): r.n for r in rows}
    assert pairs == {("a", "b"): 5, ("a", "c"): 3, ("b", "c"): 3}  # only shared runs are paired
    with pytest.raises(ValueError, match="reference method 'z' is not among a, b, c"):
        stats.paired_comparisons(methods, reference="z")


@pytest.mark.parametrize("n, family, smallest, testable", [
    # The numbers of issue 22: exact two-sided Wilcoxon 2/2^n, times 5 after Holm over 5.
    (5, 1, 0.0625, False), (6, 1, 0.03125, True), (7, 1, 0.015625, True), (8, 1, 0.0078125, True),
    (5, 5, 0.3125, False), (6, 5, 0.15625, False), (7, 5, 0.078125, False), (8, 5, 0.0390625, True),
])
def test_testable_only_when_the_smallest_attainable_holm_p_is_below_alpha(n, family, smallest, testable):
    assert stats.smallest_wilcoxon_p(n) == pytest.approx(2 / 2 ** n)
    assert stats.smallest_attainable_p(n, family) == pytest.approx(smallest)
    assert stats.is_testable(n, family) is testable
    assert stats.pairs_needed(family) == (6 if family == 1 else 8)
    # the floor is real: n differences of one sign give exactly that p in scipy's exact test
    d = np.arange(1, n + 1, dtype=float)
    assert sps.wilcoxon(d, method="exact").pvalue == pytest.approx(2 / 2 ** n)


def test_zero_differences_reduce_n_and_can_make_a_comparison_untestable():
    # 8 matched runs, but 3 of the differences are exactly 0: Wilcoxon ranks 5, whose smallest p
    # (2/2^5) is above alpha even alone; 8 non-zero ones would be testable.
    a = np.linspace(0.5, 0.6, 8)
    b = a - np.r_[0.1, 0.12, 0.14, 0.16, 0.18, 0, 0, 0]
    row = stats._with_holm([stats.paired_diff(a, b, first="x", second="y", metric="final_accuracy")])[0]
    assert (row.n, row.n_nonzero, row.family) == (8, 5, 1) and not row.testable
    assert row.smallest_p == pytest.approx(0.0625) and row.needed == 6
    cell = stats.paired_rows([row])[0]
    assert cell[6] == "not testable (5 of 8 non-zero: p >= 0.062; needs 6)" and cell[7] == "not shown"
    full = stats._with_holm([stats.paired_diff(a, a - 0.1 - np.arange(8) / 100, first="x", second="y",
                                               metric="final_accuracy")])[0]
    assert full.n_nonzero == 8 and full.testable


def test_report_md_says_what_is_testable_and_how_many_runs_it_needs(tmp_path):
    from cfer.experiments.report import continual as continual_report

    def section(n, *others):
        methods = {"kd_psmr": _method_runs(0.6, n=n, seed=1), "naive": _method_runs(0.3, n=n, seed=2)}
        methods.update({o: _method_runs(0.3, n=n, seed=5 + k) for k, o in enumerate(others)})
        return "\n".join(stats.markdown_section(methods, reference="kd_psmr"))

    few = section(3)
    assert few.startswith("## kd_psmr vs each baseline") and "**No comparison is testable**" in few
    assert "needs 6)" in few and "not shown" in few and not re.search(r"\| (0\.\d{3}|<0\.001) \|", few)
    assert "n counts runs: 3 class orders x 1 fold x 1 seed." in few
    assert "needs n >= 6" in few  # the notes state the rule with this table's family size
    many = section(6)
    assert "not testable" not in many and "No comparison" not in many
    assert "Holm" in many and "Wilcoxon" in many
    rows = stats.paired_comparisons({"kd_psmr": _method_runs(0.6, n=6, seed=1),
                                     "naive": _method_runs(0.3, n=6, seed=2)}, reference="kd_psmr")
    assert f"| {rows[0].p_wilcoxon_holm:.3f} |" in many  # 6 pairs all one way: 2/2^6 = 0.031
    # Against 5 baselines, 6 and 7 runs are not enough (0.16, 0.078); 8 are.
    five = ("replay", "lwf", "icarl", "joint")
    assert "**No comparison is testable**" in section(7, *five) and "needs 8)" in section(7, *five)
    assert "No comparison" not in section(8, *five)
    # And report.md carries it (the section is part of the continual report).
    results = _results({"kd_psmr": _method_runs(0.6, n=3, seed=1), "naive": _method_runs(0.3, n=3, seed=2)})
    text = continual_report.render_report(results, {"all": []}, tmp_path)
    assert "## kd_psmr vs each baseline" in text and "| kd_psmr - naive | overall acc | 3 |" in text


def test_tables_say_what_n_counts_and_warn_when_runs_share_a_seed():
    orders_only = _method_runs(0.5, n=3, seed=1)  # 3 orders, fold 0, seed 0
    assert stats.what_n_counts(orders_only) == "3 class orders x 1 fold x 1 seed"
    warning = stats.shared_seed_warning({"m": orders_only})
    assert warning and "3 runs of a method share one fold and one seed" in warning
    seeds = [dict(r, seed=k, order=["awed", "appalled"]) for k, r in enumerate(orders_only)]
    assert stats.what_n_counts(seeds) == "1 class order x 1 fold x 3 seeds"
    assert stats.shared_seed_warning({"m": seeds}) is None
    paired = [dict(r, seed=k) for k, r in enumerate(orders_only)]  # protocol.seed_per_order
    assert stats.what_n_counts(paired) == ("3 (class order, seed) pairs, each run with its own order, "
                                           "seed and basic model x 1 fold")
    assert stats.shared_seed_warning({"m": paired}) is None


# --------------------------------------------------------------------------- LaTeX

def _tex(tmp_path, n=8) -> tuple[str, dict]:
    methods = {"naive": _method_runs(0.3, n=n, seed=2), "kd_psmr": _method_runs(0.6, n=n, seed=1),
               "replay": _method_runs(0.62, n=n, seed=3)}
    run = _write(tmp_path / "run", _results(methods))
    out = tmp_path / "table.tex"
    assert compare.cli_compare(_args([run], out=[str(out)])) == 0
    return out.read_text(), methods


def test_latex_table_structure_best_in_bold_and_markers(tmp_path, capsys):
    text, methods = _tex(tmp_path)
    lines = text.splitlines()
    assert lines[0] == r"\begin{table}[t]" and lines[-1] == r"\end{table}"
    headline = metrics.headline()
    assert text.count("\\begin{tabular}{l" + "c" * len(headline) + "}") == 1
    assert text.count(r"\end{tabular}") == 1
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert text.count(rule) == 1
    body = lines[lines.index(r"\midrule") + 1: lines.index(r"\bottomrule")]
    assert [row.split(" & ")[0] for row in body] == ["naive", r"kd\_psmr", "replay"]  # one row a method
    for row in [lines[lines.index(r"\toprule") + 1], *body]:
        assert row.endswith(r" \\") and row.count(" & ") == len(headline) and row.count("$") % 2 == 0
        assert row.count("{") == row.count("}")
    cells = {row.split(" & ")[0]: row.removesuffix(r" \\").split(" & ")[1:] for row in body}
    summary = {m: metrics.summarize_runs(r) for m, r in methods.items()}
    for col, metric in enumerate(headline):
        if metric == "not_learnt":  # every method learnt everything: all tie at 0, all bold
            assert all(cells[latex.escape(m)][col] == r"$\mathbf{0.0 \pm 0.0}$" for m in summary)
            continue
        pick = max if metrics.get(metric).higher_is_better else min
        best = pick(summary, key=lambda m: summary[m][metric]["mean"])
        for m in summary:
            label = latex.escape(m)
            assert (r"\mathbf{" in cells[label][col]) == (m == best), (metric, m)
        mean = 100 * summary[best][metric]["mean"]
        assert f"\\mathbf{{{mean:.1f} \\pm" in cells[latex.escape(best)][col]
    # Markers against kd_psmr: naive is worse on overall accuracy in all 8 runs (Wilcoxon p = 2/2^8,
    # Holm over 2 comparisons: 0.016 < 0.05); the reference itself is never marked.
    rows = stats.paired_comparisons(methods, reference="kd_psmr")
    for metric in metrics.paired():
        col = headline.index(metric)
        for other in ("naive", "replay"):
            r = next(x for x in rows if x.second == other and x.metric == metric)
            assert (latex.MARKER in cells[other][col]) == (r.p_wilcoxon_holm < compare.ALPHA)
        assert latex.MARKER not in cells[r"kd\_psmr"][col]
    assert any(latex.MARKER in c for c in cells["naive"])
    assert "Holm" in text and r"differs from kd\_psmr" in text and "n = 8 runs" in text


def test_latex_caption_says_no_test_with_three_runs(tmp_path):
    text, _ = _tex(tmp_path, n=3)
    assert "No significance test against kd\\_psmr: 3 non-zero paired differences" in text
    assert "over 2 methods needs at least 7" in text and latex.MARKER not in text
    assert "3 class orders $\\times$ 1 fold $\\times$ 1 seed" in text


# --------------------------------------------------------------------------- cfer compare

def test_compare_text_markdown_csv(tmp_path, capsys):
    first = _write(tmp_path / "a", _results({"naive": _method_runs(0.3, n=3, seed=1),
                                             "kd_psmr": _method_runs(0.6, n=3, seed=2)}))
    second = _write(tmp_path / "b", _results({"lwf": _method_runs(0.35, n=3, seed=3)}))
    md, csv_path = tmp_path / "cmp.md", tmp_path / "cmp.csv"
    assert compare.cli_compare(_args([first, second], out=[str(md), str(csv_path)])) == 0
    printed = capsys.readouterr().out
    assert "kd_psmr - lwf" in printed and "not testable (n = 3: p >= 0.500; needs 7)" in printed
    assert "n counts runs: 3 class orders x 1 fold x 1 seed" in printed
    assert "share one fold and one seed" in printed
    table = md.read_text().splitlines()
    assert table[0].startswith("| run | method | runs | overall acc")
    assert table[2].startswith(f"| {first} | naive | 3 |")
    assert "| kd_psmr - naive | overall acc | 3 |" in md.read_text()
    rows = list(csv.DictReader(csv_path.open()))
    assert [(r["run_dir"], r["method"]) for r in rows] == [(first, "naive"), (first, "kd_psmr"),
                                                           (second, "lwf")]
    want = metrics.summarize_runs(_method_runs(0.35, n=3, seed=3))["bwt"]
    assert float(rows[2]["bwt_mean"]) == pytest.approx(want["mean"]) and rows[2]["bwt_n"] == "3"
    with pytest.raises(ValueError, match=r"--out .*table\.txt: .* \.md .*\.csv or \.tex"):
        compare.cli_compare(_args([first], out=[str(tmp_path / "table.txt")]))


def test_compare_refuses_runs_of_other_settings_and_marks_them_when_allowed(tmp_path, capsys):
    from cfer.experiments.cli import main

    a = _write(tmp_path / "a", _results({"naive": _method_runs(0.3, n=3, seed=1)}))
    short = _results({"kd_psmr": [dict(r, accuracy_matrix=[row[:2] for row in r["accuracy_matrix"][:2]],
                                       step_accuracy=r["step_accuracy"][:2])
                                  for r in _method_runs(0.6, n=3, seed=2)]})
    b = _write(tmp_path / "b", short)
    c = _write(tmp_path / "c", _results({"lwf": _method_runs(0.3, n=3, seed=3)}, protocol="paper",
                                        name="cfee", n_images=5000))
    for other, what in ((b, r"experiences \(3 vs 2\)"), (c, r"data set .* protocol \(heldout vs paper\)")):
        assert main(["compare", a, other]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "not comparable" in err and re.search(what, err), err
    assert main(["compare", a, b, "--allow-mixed"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\[1\]\s+\S+/a\s+naive", out, re.M)
    assert re.search(r"^\[2\]\s+\S+/b\s+kd_psmr", out, re.M)
    assert "[2] data set synthetic (100 images), experiences 2" in out
    assert "kd_psmr - naive" not in out  # never paired across settings


def test_compare_warns_on_another_environment_and_refuses_an_unknown_schema(tmp_path, capsys):
    from cfer.experiments.cli import main

    base = {"cfer": {"version": "0.1.0", "commit": "abc"}, "packages": {"torch": "2.14.1"},
            "device": {"type": "cpu"}, "cpu_model": "Xeon", "threads": 2}
    other = json.loads(json.dumps(base))
    other["packages"]["torch"], other["cpu_model"] = "2.13.0", "EPYC"
    runs = _method_runs(0.3, n=3, seed=1)
    a = _write(tmp_path / "a", _results({"naive": runs}, environment=base, schema=2))
    b = _write(tmp_path / "b", _results({"lwf": runs}, environment=other, schema=2))
    same = _write(tmp_path / "s", _results({"icarl": _method_runs(0.3, n=3, seed=1)}, environment=base))
    assert main(["compare", a, same]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["compare", a, b]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cfer compare: warning:")
    assert "different environments" in err[0]
    assert "packages.torch: 2.14.1 vs 2.13.0" in err[0] and "cpu_model: Xeon vs EPYC" in err[0]
    new = _write(tmp_path / "n", _results({"naive": _method_runs(0.3, n=3, seed=1)}, schema=99))
    assert main(["compare", a, new]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{new}/results.json: schema_version 99 is not one" in err


# --------------------------------------------------------------------------- the CI reference check

def _reference_results() -> dict:
    res = _results({"naive": _method_runs(0.3, n=3, seed=1), "kd_psmr": _method_runs(0.6, n=3, seed=2)},
                   environment={"cpu_model": "Xeon", "device": {"type": "cpu", "cpu_capability": "AVX2"},
                                "threads": 2, "packages": {"torch": "2.14.1"}}, schema=env.SCHEMA_VERSION)
    res["config_digests"] = {"naive": "0123", "kd_psmr": "4567"}
    for block in res["methods"].values():
        for r in block["runs"]:
            r["confusion_matrix"] = [[1, 0], [0, 1]]  # heavy fields are left out of the reference
    return res


def test_quickstart_check_passes_on_the_reference_and_fails_beyond_tolerance(tmp_path, capsys):
    run_dir = tmp_path / "run"
    _write(run_dir, _reference_results())
    ref = tmp_path / "ref" / "results.json"
    assert check_quickstart.main([str(run_dir), "--reference", str(ref), "--write"]) == 0
    stored = json.loads(ref.read_text())
    assert "confusion_matrix" not in stored["methods"]["naive"]["runs"][0]
    assert compare.load([str(ref.parent)]).rows[1].method == "kd_psmr"  # cfer compare reads it
    assert check_quickstart.main([str(run_dir), "--reference", str(ref)]) == 0
    assert "exactly (same machine)" in capsys.readouterr().out

    def perturbed(points: float, *, metric="final_accuracy", cpu="Xeon") -> int:
        res = _reference_results()
        res["environment"]["cpu_model"] = cpu
        res["methods"]["kd_psmr"]["summary"][metric]["mean"] += points / 100
        _write(run_dir, res)
        return check_quickstart.main([str(run_dir), "--reference", str(ref)])

    summary = _reference_results()["methods"]["kd_psmr"]["summary"]["final_accuracy"]
    tol = 100 * check_quickstart.tolerance("final_accuracy", got=summary, ref=summary)
    se = 100 * (2 * summary["std"] ** 2 / summary["n"]) ** 0.5
    assert tol == pytest.approx(max(metrics.get("final_accuracy").cross_cpu_floor, 3 * se))
    assert perturbed(0.01) == 1  # same machine: exact
    assert "kd_psmr.final_accuracy" in capsys.readouterr().err
    assert perturbed(tol - 0.3, cpu="EPYC") == 0  # another CPU model: within tolerance
    capsys.readouterr()
    assert perturbed(tol + 0.3, cpu="EPYC") == 1
    err = capsys.readouterr().err
    assert f"must match within {tol:.2f} points" in err and "kd_psmr.final_accuracy" in err
    assert perturbed(-(tol + 0.3), cpu="EPYC") == 1
    capsys.readouterr()
    res = _reference_results()
    res["config_digests"]["naive"] = "ffff"
    _write(run_dir, res)
    assert check_quickstart.main([str(run_dir), "--reference", str(ref)]) == 1
    assert "the quickstart config changed" in capsys.readouterr().err


def test_docs_tables_are_what_cfer_compare_prints_of_the_committed_reference(capsys):
    # The quickstart tables, the paired table and the LaTeX example of README.md and docs/*.md
    # are generated blocks; regenerate with: python tools/check_quickstart.py --update
    assert check_quickstart.main(["--docs"]) == 0, capsys.readouterr().err
    texts = [p.read_text() for p in check_quickstart.doc_files()]
    assert sum(t.count("<!-- cfer compare docs/results/quickstart") for t in texts) >= 3
    assert "<!-- cfer compare docs/results/quickstart" in (ROOT / "README.md").read_text()


def test_a_stale_docs_block_is_found_and_regenerated(tmp_path, capsys):
    _write(tmp_path / "runs" / "a", _results({"naive": _method_runs(0.3, n=3, seed=1),
                                              "kd_psmr": _method_runs(0.6, n=3, seed=2)}))
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- cfer compare runs/a --tables summary (md) -->\n| old |\n"
                      "<!-- end cfer compare -->\n\n<!-- cfer compare runs/a (tex) -->\n"
                      "<!-- end cfer compare -->\n")
    plain = tmp_path / "plain.md"
    plain.write_text("# no block here\n")
    assert check_quickstart.main(["--docs", str(readme)]) == 1
    assert "cfer compare runs/a --tables summary` is not what it outputs" in capsys.readouterr().err
    assert check_quickstart.main(["--docs", str(plain)]) == 1  # a file named must hold a block
    assert "no generated `cfer compare` block" in capsys.readouterr().err
    assert check_quickstart.main(["--docs", str(readme), str(plain), "--update"]) == 0
    text = readme.read_text()
    assert "| old |" not in text and "| kd_psmr | " in text and "```latex\n\\begin{table}" in text
    assert plain.read_text() == "# no block here\n"
    assert check_quickstart.main(["--docs", str(readme)]) == 0


def test_an_older_reference_leaves_unchecked_only_what_it_cannot_have(tmp_path, capsys):
    # A schema-2 reference has no per-step new-class F1: a run that has it is checked on every
    # other metric, and told that F1 went unchecked; a current reference lacking it fails.
    old = _reference_results()
    old["schema_version"] = 2
    for block in old["methods"].values():
        for r in block["runs"]:
            del r["new_class_f1"]
        block["summary"] = metrics.summarize_runs(block["runs"])
        block["summary"]["new_class_accuracy"] = block["summary"].pop("new_class_recall")
    ref = _write(tmp_path / "ref", old)
    run = _write(tmp_path / "run", _reference_results())
    assert check_quickstart.main([run, "--reference", f"{ref}/results.json"]) == 0
    out = capsys.readouterr().out
    assert "note: new_class_f1: not in the reference (schema version 2" in out and "matches" in out
    current = json.loads(json.dumps(old))
    current["schema_version"] = env.SCHEMA_VERSION
    _write(tmp_path / "ref", current)
    assert check_quickstart.main([run, "--reference", f"{ref}/results.json"]) == 1
    assert "naive.new_class_f1" in capsys.readouterr().err
