"""Paired comparison of methods over matched runs (same class order, fold and seed).

Two methods run on the same (order, fold, seed) see the same stream, split and
initial seed, so their per-run differences are paired: the tests here are on
those differences, not on the two samples as if independent. For each metric of
:data:`PAIRED_METRICS` and each pair of methods:

- n, the mean and sample std of the per-run differences (first minus second),
  and the 95% confidence interval of the mean difference (Student t, from
  ``scipy.stats.ttest_rel(...).confidence_interval``);
- the effect size d_z = mean / std of the differences (Cohen's d for paired
  samples; Lakens 2013, Front. Psychol. 4:863, eq. 6);
- the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``) and the paired t test
  (``scipy.stats.ttest_rel``), two-sided, each corrected for the multiple
  comparisons of its family (one metric, one test, every pair of the table)
  with Holm's step-down method (:func:`holm`).

With fewer than :data:`MIN_PAIRED_RUNS` pairs the tests have no power (the
smallest two-sided Wilcoxon p with 4 pairs is 0.125): the tables say so
instead of printing a p-value (``powered`` is False).

Pure numpy and scipy: importable without torch, so reports of a results.json
run anywhere.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cfer.core import metric_definitions as M
from cfer.experiments.report.tables import markdown_table

#: The metrics compared pair by pair (keys of ``metric_definitions.run_scalars``).
PAIRED_METRICS: tuple[str, ...] = ("overall_accuracy", "final_accuracy", "basic_accuracy_final",
                                   "forgetting")
#: Fewer paired runs than this: the tests are reported as having no power.
MIN_PAIRED_RUNS = 5
#: Which direction is better, per metric (True: higher is better).
HIGHER_IS_BETTER: dict[str, bool] = {
    "overall_accuracy": True, "final_accuracy": True, "new_class_accuracy": True,
    "basic_accuracy_final": True, "bwt": True, "forgetting": False, "max_forgetting": False,
}
#: The tests, as named in every table.
TESTS = {"wilcoxon": "Wilcoxon signed-rank", "ttest": "paired t"}
CORRECTION = "Holm"


def run_key(run: Mapping) -> tuple:
    """What pairs two runs of different methods: (class order, fold, seed)."""
    return (tuple(run.get("order") or ()), run.get("fold"), run.get("seed"))


def per_run_scalars(runs: Sequence[Mapping]) -> dict[tuple, dict[str, float]]:
    """``{run_key: run_scalars(run)}`` of a method's runs; a one-line ValueError when two runs
    share a key (they could not be paired)."""
    out: dict[tuple, dict[str, float]] = {}
    for run in runs:
        key = run_key(run)
        if key in out:
            raise ValueError(f"two runs with the same order, fold and seed (fold {key[1]}, seed {key[2]})")
        out[key] = M.run_scalars(run)
    return out


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979, Scand. J. Statist. 6:65-70), in input order;
    NaN stays NaN and is not counted in the family.

    Written here because scipy has no Holm correction (``scipy.stats.false_discovery_control``
    is Benjamini-Hochberg/Yekutieli, which controls the false discovery rate, not the
    family-wise error) and statsmodels is not a dependency: sort ascending, multiply the k-th
    smallest by (m - k), take the running maximum, cap at 1.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = idx.size
    if m:
        order = idx[np.argsort(p[idx], kind="stable")]
        adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
        out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


@dataclass(frozen=True)
class PairedDiff:
    """One metric of one pair: differences ``first - second`` over the matched runs."""

    first: str
    second: str
    metric: str
    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    effect_size: float  # d_z; NaN when the differences have no spread
    p_wilcoxon: float  # raw two-sided p (NaN when undefined: n < 2 or all differences 0)
    p_ttest: float
    p_wilcoxon_holm: float = math.nan
    p_ttest_holm: float = math.nan

    @property
    def powered(self) -> bool:
        return self.n >= MIN_PAIRED_RUNS


def paired_diff(a: Sequence[float], b: Sequence[float], *, first: str, second: str,
                metric: str) -> PairedDiff:
    """The paired statistics of ``a - b`` (same length, run-matched: ``first``'s and
    ``second``'s values of ``metric``); pairs with a NaN are dropped."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    d = a - b
    n = int(d.size)
    nan = math.nan
    names = {"first": first, "second": second, "metric": metric, "n": n}
    if n < 2:
        return PairedDiff(**names, mean=float(d.mean()) if n else nan, std=nan, ci_low=nan, ci_high=nan,
                          effect_size=nan, p_wilcoxon=nan, p_ttest=nan)
    from scipy import stats

    std = float(d.std(ddof=1))
    with warnings.catch_warnings():  # zero spread: scipy warns and returns NaN, which we keep
        warnings.simplefilter("ignore", RuntimeWarning)
        t = stats.ttest_rel(a, b)
        ci = t.confidence_interval(0.95)
        p_w = float(stats.wilcoxon(a, b).pvalue) if np.any(d != 0) else nan
    mean = float(d.mean())
    return PairedDiff(**names, mean=mean, std=std, ci_low=float(ci.low), ci_high=float(ci.high),
                      effect_size=mean / std if std > 0 else nan, p_wilcoxon=p_w, p_ttest=float(t.pvalue))


def paired_comparisons(methods: Mapping[str, Sequence[Mapping]], *, reference: str | None = None,
                       metrics: Sequence[str] = PAIRED_METRICS) -> list[PairedDiff]:
    """Every pair of ``methods`` ({name: runs}), or ``reference`` against each other method,
    over the runs they share (same order, fold, seed), with Holm-adjusted p-values per metric
    and test. Ordered by pair, then metric. A pair with no shared runs is left out."""
    if reference is not None and reference not in methods:
        raise ValueError(f"reference method {reference!r} is not among {', '.join(methods)}")
    scalars = {}
    for name, runs in methods.items():
        try:
            scalars[name] = per_run_scalars(runs)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
    names = list(methods)
    if reference is not None:
        pairs = [(reference, m) for m in names if m != reference]
    else:
        pairs = [(x, y) for i, x in enumerate(names) for y in names[i + 1:]]
    rows = []
    for x, y in pairs:
        shared = [k for k in scalars[x] if k in scalars[y]]
        if not shared:
            continue
        for metric in metrics:
            rows.append(paired_diff([scalars[x][k][metric] for k in shared],
                                    [scalars[y][k][metric] for k in shared],
                                    first=x, second=y, metric=metric))
    return _with_holm(rows)


def _with_holm(rows: list[PairedDiff]) -> list[PairedDiff]:
    adjusted = {}
    for metric in {r.metric for r in rows}:
        family = [i for i, r in enumerate(rows) if r.metric == metric]
        for i, pw, pt in zip(family, holm([rows[i].p_wilcoxon for i in family]),
                             holm([rows[i].p_ttest for i in family])):
            adjusted[i] = (pw, pt)
    return [dataclasses.replace(r, p_wilcoxon_holm=adjusted[i][0], p_ttest_holm=adjusted[i][1])
            for i, r in enumerate(rows)]


# --------------------------------------------------------------------------- presentation

def _pct(v: float, *, signed: bool = True) -> str:
    return "n/a" if not math.isfinite(v) else (f"{100 * v:+.1f}" if signed else f"{100 * v:.1f}")


def _p(v: float) -> str:
    if not math.isfinite(v):
        return "n/a"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


PAIRED_HEADER = ["comparison", "metric", "n", "mean diff", "95% CI", "d_z",
                 f"{TESTS['wilcoxon']} p ({CORRECTION})", f"{TESTS['ttest']} p ({CORRECTION})"]


def paired_rows(rows: Sequence[PairedDiff], *, names: Mapping[str, str] | None = None) -> list[list[str]]:
    """Table cells of :func:`paired_comparisons` rows (differences in percentage points;
    ``names``: the metrics' column titles). Below :data:`MIN_PAIRED_RUNS` pairs the p-value
    cells say the test has no power."""
    names = names or {}
    out = []
    for r in rows:
        if r.powered:
            pw, pt = _p(r.p_wilcoxon_holm), _p(r.p_ttest_holm)
        else:
            pw = pt = f"no power (n = {r.n} < {MIN_PAIRED_RUNS})"
        ci = "n/a" if not math.isfinite(r.ci_low) else f"[{_pct(r.ci_low)}, {_pct(r.ci_high)}]"
        effect = "n/a" if not math.isfinite(r.effect_size) else f"{r.effect_size:+.2f}"
        out.append([f"{r.first} - {r.second}", names.get(r.metric, r.metric), str(r.n), _pct(r.mean), ci,
                    effect, pw, pt])
    return out


PAIRED_NOTES = (
    f"Differences (first minus second method) in percentage points over runs matched by class "
    f"order, fold and seed; 95% CI of the mean difference (Student t); d_z = mean / sample std of "
    f"the differences. p: two-sided {TESTS['wilcoxon']} test (scipy.stats.wilcoxon) and "
    f"{TESTS['ttest']} test (scipy.stats.ttest_rel), each {CORRECTION}-corrected over the "
    f"comparisons of one metric. With fewer than {MIN_PAIRED_RUNS} paired runs the tests have no "
    f"power and no p-value is shown. For forgetting, lower is better.")


def markdown_section(methods: Mapping[str, Sequence[Mapping]], *, reference: str,
                     names: Mapping[str, str] | None = None) -> list[str]:
    """The report.md section "<reference> vs each baseline" (lines; [] when ``reference`` is
    not among ``methods`` or has no other method to pair with)."""
    if reference not in methods or len(methods) < 2:
        return []
    lines = [f"## {reference} vs each baseline", ""]
    try:
        rows = paired_comparisons(methods, reference=reference)
    except ValueError as e:  # e.g. a class order listed twice: runs that cannot be told apart
        return lines + [f"Runs cannot be paired: {e}.", ""]
    if not rows:
        return lines + [f"No run of another method shares a class order, fold and seed with {reference}.", ""]
    n = min(r.n for r in rows)
    if n < MIN_PAIRED_RUNS:
        some = " for some comparisons" if any(r.powered for r in rows) else ""
        lines += [f"**{n} paired runs{some}: too few for a test to have power** (it needs at least "
                  f"{MIN_PAIRED_RUNS}; add class orders, folds or seeds); differences and their "
                  "confidence intervals only.", ""]
    return lines + [markdown_table(PAIRED_HEADER, paired_rows(rows, names=names)), "", PAIRED_NOTES, ""]
