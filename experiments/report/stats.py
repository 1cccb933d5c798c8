"""Paired comparison of methods over matched runs (same class order, fold and seed).

Two methods run on the same (order, fold, seed) see the same stream, split and
initial seed, so their per-run differences are paired: the tests here are on
those differences, not on the two samples as if independent. For each metric of
:func:`cfer.core.metrics.paired` (the headline percentages) and each pair of methods:

- n, the mean and sample std of the per-run differences (first minus second),
  and the 95% confidence interval of the mean difference (Student t, from
  ``scipy.stats.ttest_rel(...).confidence_interval``);
- the effect size d_z = mean / std of the differences (Cohen's d for paired
  samples; Lakens 2013, Front. Psychol. 4:863, eq. 6);
- the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``) and the paired t test
  (``scipy.stats.ttest_rel``), two-sided, each corrected for the multiple
  comparisons of its family (one metric, one test, every pair of the table)
  with Holm's step-down method (:func:`holm`).

A comparison is *testable* only when it can reach significance at all: with n non-zero
paired differences (Wilcoxon drops the zeros) the smallest two-sided p of the exact
signed-rank test is 2 / 2^n (every difference of one sign), and Holm over a family of m
comparisons multiplies the smallest p by m, so the smallest attainable adjusted p is
min(1, m * 2 / 2^n) (:func:`smallest_attainable_p`). Below alpha the test is shown;
otherwise the tables say so and how many non-zero pairs it would need (:func:`pairs_needed`):
with 5 comparisons, n = 5, 6, 7 give 0.31, 0.16, 0.078 and n = 8 gives 0.039. The paired
t test has no such floor (near-constant differences give any p), but with so few pairs
its normality cannot be checked, so it is shown only where the Wilcoxon test is testable.

The tables also say what n counts (:func:`what_n_counts`) and warn when runs share a fold
and a seed (:func:`shared_seed_warning`): such runs start from one basic model, so their
spread is that of class orders, not of seeds.

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

from cfer.core import metrics
from cfer.experiments.report.tables import markdown_table

#: Significance level of the tests (Holm-adjusted p) and of the LaTeX markers.
ALPHA = 0.05
#: The tests, as named in every table.
TESTS = {"wilcoxon": "Wilcoxon signed-rank", "ttest": "paired t"}
CORRECTION = "Holm"


def smallest_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p of the exact Wilcoxon signed-rank test (any sign-flip test)
    over ``n`` non-zero differences: 2 / 2^n, when all have one sign (1 for n = 0)."""
    return min(1.0, 2.0 / 2.0 ** n) if n > 0 else 1.0


def smallest_attainable_p(n: int, family: int) -> float:
    """The smallest Holm-adjusted p a comparison with ``n`` non-zero paired differences can
    get in a family of ``family`` comparisons: Holm multiplies the smallest p by the family
    size, so min(1, family * 2 / 2^n)."""
    return min(1.0, max(family, 1) * smallest_wilcoxon_p(n))


def is_testable(n: int, family: int, *, alpha: float = ALPHA) -> bool:
    """True when :func:`smallest_attainable_p` is below ``alpha``: a star is possible."""
    return smallest_attainable_p(n, family) < alpha


def pairs_needed(family: int, *, alpha: float = ALPHA) -> int:
    """The fewest non-zero paired differences that make a comparison testable in a family of
    ``family`` comparisons."""
    n = 1
    while not is_testable(n, family, alpha=alpha):
        n += 1
    return n


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
        out[key] = metrics.run_scalars(run)
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
    n_nonzero: int = 0  # the pairs whose difference is not 0 (those Wilcoxon ranks)
    p_wilcoxon_holm: float = math.nan
    p_ttest_holm: float = math.nan
    family: int = 1  # comparisons in this one's Holm family (one metric, one table)

    @property
    def smallest_p(self) -> float:
        """The smallest Holm-adjusted Wilcoxon p this comparison could reach."""
        return smallest_attainable_p(self.n_nonzero, self.family)

    @property
    def testable(self) -> bool:
        return is_testable(self.n_nonzero, self.family)

    @property
    def needed(self) -> int:
        """Non-zero paired differences that would make it testable."""
        return pairs_needed(self.family)


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
    names = {"first": first, "second": second, "metric": metric, "n": n,
             "n_nonzero": int(np.count_nonzero(d))}
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
                       metric_names: Sequence[str] | None = None) -> list[PairedDiff]:
    """Every pair of ``methods`` ({name: runs}), or ``reference`` against each other method,
    over the runs they share (same order, fold, seed), with Holm-adjusted p-values per metric
    and test; ``metric_names`` default to :func:`cfer.core.metrics.paired`. Ordered by pair,
    then metric. A pair with no shared runs is left out."""
    metric_names = metrics.paired() if metric_names is None else metric_names
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
        for metric in metric_names:
            rows.append(paired_diff([scalars[x][k][metric] for k in shared],
                                    [scalars[y][k][metric] for k in shared],
                                    first=x, second=y, metric=metric))
    return _with_holm(rows)


def _with_holm(rows: list[PairedDiff]) -> list[PairedDiff]:
    """Holm within each metric's family; ``family``: the comparisons Holm counts there (those
    with a Wilcoxon p: all differences 0 gives none, and no chance of a star either)."""
    adjusted = {}
    for metric in {r.metric for r in rows}:
        family = [i for i, r in enumerate(rows) if r.metric == metric]
        size = sum(not math.isnan(rows[i].p_wilcoxon) for i in family)
        for i, pw, pt in zip(family, holm([rows[i].p_wilcoxon for i in family]),
                             holm([rows[i].p_ttest for i in family])):
            adjusted[i] = (pw, pt, size)
    return [dataclasses.replace(r, p_wilcoxon_holm=adjusted[i][0], p_ttest_holm=adjusted[i][1],
                                family=adjusted[i][2])
            for i, r in enumerate(rows)]


# --------------------------------------------------------------------------- what n counts

def what_n_counts(runs: Sequence[Mapping]) -> str:
    """What the runs of a table are: ``"3 class orders x 1 fold x 1 seed"``."""
    orders = {tuple(r.get("order") or ()) for r in runs}
    folds = {r.get("fold") for r in runs}
    seeds = {r.get("seed") for r in runs}
    word = lambda k, one: f"{k} {one}{'s' if k != 1 else ''}"  # noqa: E731
    pairs = {(tuple(r.get("order") or ()), r.get("seed")) for r in runs}
    if len(orders) > 1 and len(pairs) == len(orders) == len(seeds):  # protocol.seed_per_order
        return (f"{len(orders)} (class order, seed) pairs, each run with its own order, seed and basic "
                f"model x {word(len(folds), 'fold')}")
    return " x ".join([word(len(orders), "class order"), word(len(folds), "fold"), word(len(seeds), "seed")])


def shared_seed_warning(methods: Mapping[str, Sequence[Mapping]]) -> str | None:
    """A sentence when some method has several runs with the same fold and seed (they differ
    in class order only): those runs start from one basic model (``runner.share_basic``, or
    the same seed training the same one), so their spread is class-order variation, not
    seed-to-seed variation; None otherwise."""
    shared = 0
    for runs in methods.values():
        keys = [(r.get("fold"), r.get("seed")) for r in runs]
        shared = max(shared, max((keys.count(k) for k in set(keys)), default=0))
    if shared < 2:
        return None
    return (f"up to {shared} runs of a method share one fold and one seed (they differ only in "
            "class order) and so start from one basic model: the spreads, intervals and tests "
            "cover class-order variation, not seed-to-seed variation (add protocol.seeds)")


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
    ``names``: the metrics' column titles, default the records' headers). A comparison that
    is not testable shows, instead of p-values, its smallest attainable p and how many non-zero
    paired differences it would need; the t test is shown only beside a testable Wilcoxon."""
    names = metrics.headers() if names is None else names
    out = []
    for r in rows:
        if r.testable:
            pw, pt = _p(r.p_wilcoxon_holm), _p(r.p_ttest_holm)
        elif r.n == 0:
            pw = pt = "n/a"  # no run pairs with a value (e.g. a metric these files lack)
        elif r.n_nonzero == 0:
            pw, pt = "n/a (no non-zero difference)", "not shown"
        else:
            count = f"n = {r.n_nonzero}" if r.n_nonzero == r.n else f"{r.n_nonzero} of {r.n} non-zero"
            pw = f"not testable ({count}: p >= {_p(r.smallest_p)}; needs {r.needed})"
            pt = "not shown"
        ci = "n/a" if not math.isfinite(r.ci_low) else f"[{_pct(r.ci_low)}, {_pct(r.ci_high)}]"
        effect = "n/a" if not math.isfinite(r.effect_size) else f"{r.effect_size:+.2f}"
        out.append([f"{r.first} - {r.second}", names.get(r.metric, r.metric), str(r.n), _pct(r.mean), ci,
                    effect, pw, pt])
    return out


def paired_notes(rows: Sequence[PairedDiff]) -> str:
    """The notes under a paired table: what is computed, the testable rule with this table's
    family sizes, and the metrics where lower is better."""
    families = sorted({r.family for r in rows if r.family > 0})
    rule = "; ".join(f"with {m} comparison{'s' if m != 1 else ''} a metric needs n >= {pairs_needed(m)}, "
                     f"{m} x 2 / 2^{pairs_needed(m)} = {m * smallest_wilcoxon_p(pairs_needed(m)):.2g}"
                     for m in families)
    lower = [metrics.get(m).header for m in dict.fromkeys(r.metric for r in rows)
             if not metrics.get(m).higher_is_better]
    return (f"Differences (first minus second method) in percentage points over runs matched by class "
            f"order, fold and seed; n: the matched runs; 95% CI of the mean difference (Student t); d_z = "
            f"mean / sample std of the differences. p: two-sided {TESTS['wilcoxon']} test "
            f"(scipy.stats.wilcoxon) and {TESTS['ttest']} test (scipy.stats.ttest_rel), each "
            f"{CORRECTION}-corrected over the comparisons of one metric. A comparison is testable only "
            f"when its smallest attainable {CORRECTION}-adjusted p is below {ALPHA}: with n non-zero "
            f"differences the smallest exact two-sided {TESTS['wilcoxon']} p is 2 / 2^n, and {CORRECTION} "
            f"multiplies the smallest p of a family by its size"
            + (f" ({rule})" if rule else "") + f"; the {TESTS['ttest']} test, which has no such floor "
            f"but whose normality cannot be checked on so few pairs, is shown only where the "
            f"{TESTS['wilcoxon']} test is testable."
            + (f" Lower is better for {', '.join(lower)}." if lower else ""))


def n_lines(methods: Mapping[str, Sequence[Mapping]]) -> list[str]:
    """What n counts in a table of ``methods``' runs, and the shared-seed warning if any."""
    runs = [r for rs in methods.values() for r in rs]
    lines = [f"n counts runs: {what_n_counts(runs)}."]
    warning = shared_seed_warning(methods)
    return lines + ([f"Warning: {warning}."] if warning else [])


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
    lines += [" ".join(n_lines(methods)), ""]
    if not any(r.testable for r in rows):
        worst = max(rows, key=lambda r: r.needed)
        counts = sorted({r.n_nonzero for r in rows if r.n})
        span = "no" if not counts else str(counts[0]) if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
        lines += [f"**No comparison is testable**: {span} non-zero paired differences, and no test can "
                  f"reach p < {ALPHA} after {CORRECTION}'s correction with fewer than {worst.needed} "
                  "(add class orders, folds or seeds); differences and their confidence intervals "
                  "only.", ""]
    elif not all(r.testable for r in rows):
        lines += ["Some comparisons are not testable (too few non-zero paired differences): their "
                  "cells say how many they would need.", ""]
    return lines + [markdown_table(PAIRED_HEADER, paired_rows(rows, names=names)), "", paired_notes(rows), ""]
