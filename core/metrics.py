"""One record per metric: the table every report, statistic and check reads.

A :class:`Metric` holds everything the code says about one summary metric: its name (the
key in results.json), its definition (a function of one run record, built on
:mod:`cfer.core.metric_definitions`), the table header, the unit, the direction, the
cross-CPU tolerance floor of tools/check_quickstart.py with its reason, whether it is a
headline metric (the default tables: summary, report.md, ``cfer compare``, LaTeX, and the
paired statistics) and a one-line description. :data:`METRICS` lists them in table order.

Adding a metric touches this file only: append a record to :data:`METRICS`. The summaries
of results.json (:func:`summarize_runs`), the tables (``cfer run``'s summary, report.md,
``cfer compare`` text/markdown/CSV/LaTeX, ``cfer sweep``), the paired statistics, the plots'
labels and the quickstart check read the records through the functions here at call time,
never through copies made at import (tests/test_metric_records.py adds one and follows it).

docs/metrics.md says why the headline metrics were chosen and what each guards against.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from cfer.core import metric_definitions as D

#: Units, and how many of the shown unit one stored unit is: "percent" is stored as a fraction
#: in [0, 1]; "experiences" (a count of experiences) as itself.
SCALE = {"percent": 100.0, "experiences": 1.0}


class RunView:
    """One run record of results.json, read once for every definition: the accuracy matrix
    (checked), the step accuracies, the number of basic classes and the raw record."""

    def __init__(self, run: Mapping):
        for key in ("accuracy_matrix", "step_accuracy"):
            if key not in run:
                raise ValueError(f"run record has no {key!r}")
        self.run = run
        self.R = D.as_matrix(run["accuracy_matrix"])
        self.steps = [math.nan if v is None else float(v) for v in run["step_accuracy"]]
        if len(self.steps) != len(self.R):
            raise ValueError(f"step_accuracy has {len(self.steps)} entries, accuracy_matrix "
                             f"{len(self.R)} rows")

    @cached_property
    def n_basic(self) -> int | None:
        """``n_basic``, else from ``class_names`` and T (one class per compound experience);
        None when the record has neither (learnt-based metrics are then undefined)."""
        return D.n_basic_of(self.run)


@dataclass(frozen=True, kw_only=True)
class Metric:
    """Everything about one summary metric (module docstring)."""

    name: str
    definition: Callable[[RunView], float]  # NaN where undefined
    header: str
    unit: str  # a key of SCALE: "percent" or a count ("experiences")
    higher_is_better: bool
    cross_cpu_floor: float  # in the shown unit (percentage points, experiences)
    floor_reason: str
    headline: bool
    description: str
    #: Rewards never learning (a class never learnt cannot be forgotten): best in a table only
    #: among the rows with every experience learnt (:func:`bold_candidates`).
    best_only_if_all_learnt: bool = False
    #: Defined through the learnt threshold (its tables state the rule).
    uses_learnt: bool = False

    def __post_init__(self):
        if self.unit not in SCALE:
            raise ValueError(f"metric {self.name}: unit {self.unit!r} is not one of {', '.join(SCALE)}")

    @property
    def scale(self) -> float:
        return SCALE[self.unit]

    @property
    def tolerance_floor(self) -> float:
        """:attr:`cross_cpu_floor` in the stored unit (a fraction for percentages)."""
        return self.cross_cpu_floor / self.scale


def _learnt_based(fn):
    def definition(v: RunView) -> float:
        return math.nan if v.n_basic is None else fn(v.R, n_basic=v.n_basic)
    return definition


# The two floors measured or reasoned in docs/results/README.md ("What CI checks"): the one
# measured cross-CPU difference (issue 15) is 3.2 points on a final-step metric of the basic
# block; final-step and per-experience metrics get about twice that.
_PER_EXPERIENCE = "one class per step, few test images each: about twice the 3.2 points measured"
_DIFFERENCES = "differences of per-experience accuracies: about twice the 3.2 points measured"

#: The summary metrics, in table order: the headline metrics first.
METRICS: tuple[Metric, ...] = (
    Metric(name="overall_accuracy", definition=lambda v: D.average_step_accuracy(v.steps),
           header="overall acc", unit="percent", higher_is_better=True, headline=True,
           cross_cpu_floor=3.0, floor_reason="a mean of 16 step accuracies: half the final-step floor",
           description="mean over runs of the average step accuracy (the paper's headline figure)"),
    Metric(name="final_accuracy", definition=lambda v: D.final_accuracy(v.steps),
           header="final acc", unit="percent", higher_is_better=True, headline=True,
           cross_cpu_floor=5.0, floor_reason="all classes' test images after the last step",
           description="step accuracy after the last experience"),
    Metric(name="new_class_f1", definition=lambda v: D.new_class_f1(v.run.get("new_class_f1")),
           header="new-class F1", unit="percent", higher_is_better=True, headline=True,
           cross_cpu_floor=6.0, floor_reason=_PER_EXPERIENCE,
           description="mean over steps i >= 1 of the F1 of experience i's class over the predictions "
                       "on all seen classes' test images after step i"),
    Metric(name="forgetting", definition=_learnt_based(D.forgetting_learnt),
           header="forgetting (learnt)", unit="percent", higher_is_better=False, headline=True,
           cross_cpu_floor=6.0, floor_reason=_DIFFERENCES + "; the set of learnt experiences can change too",
           description="mean over learnt experiences j < T-1 of (accuracy just after learning j - final "
                       "accuracy on j)",
           best_only_if_all_learnt=True, uses_learnt=True),
    Metric(name="not_learnt", definition=_learnt_based(D.not_learnt),
           header="not learnt", unit="experiences", higher_is_better=False, headline=True,
           cross_cpu_floor=1.0, floor_reason="an experience near the threshold may fall on the other side "
                                             "in each run",
           description="experiences never learnt (of T)", uses_learnt=True),
    Metric(name="new_class_recall", definition=lambda v: D.new_class_recall(v.R),
           header="new-class recall", unit="percent", higher_is_better=True, headline=False,
           cross_cpu_floor=6.0, floor_reason=_PER_EXPERIENCE,
           description="mean over steps i >= 1 of the accuracy on the class just learnt (R[i][i]); 100% "
                       "for a model that answers the newest class for every image"),
    Metric(name="forgetting_all", definition=lambda v: D.forgetting(v.R),
           header="forgetting (all)", unit="percent", higher_is_better=False, headline=False,
           cross_cpu_floor=6.0, floor_reason=_DIFFERENCES,
           description="forgetting over every earlier experience, learnt or not (Avalanche's definition)",
           best_only_if_all_learnt=True),
    Metric(name="max_forgetting", definition=lambda v: D.max_forgetting(v.R),
           header="max forgetting", unit="percent", higher_is_better=False, headline=False,
           cross_cpu_floor=6.0, floor_reason=_DIFFERENCES,
           description="the same from each experience's best accuracy (Chaudhry et al. 2018)",
           best_only_if_all_learnt=True),
    Metric(name="bwt", definition=lambda v: D.bwt(v.R),
           header="BWT", unit="percent", higher_is_better=True, headline=False,
           cross_cpu_floor=6.0, floor_reason=_DIFFERENCES,
           description="backward transfer: -forgetting (all)", best_only_if_all_learnt=True),
    Metric(name="basic_accuracy_final", definition=lambda v: float(v.R[-1, 0]),
           header="basic acc (final)", unit="percent", higher_is_better=True, headline=False,
           cross_cpu_floor=6.0, floor_reason="the measured case (issue 15), about twice over",
           description="final accuracy on the basic expressions"),
)


# --------------------------------------------------------------------------- the table, read at call time

def all_metrics() -> tuple[Metric, ...]:
    """Every record, in table order."""
    return METRICS


def names() -> tuple[str, ...]:
    """The summary metrics of results.json, in table order."""
    return tuple(m.name for m in METRICS)


def headline() -> tuple[str, ...]:
    """The metrics of the default tables, in table order."""
    return tuple(m.name for m in METRICS if m.headline)


def others() -> tuple[str, ...]:
    """The metrics that are not headline ones, in table order."""
    return tuple(m.name for m in METRICS if not m.headline)


def paired() -> tuple[str, ...]:
    """The metrics compared pair by pair (cfer.experiments.report.stats): the headline
    percentages (a paired test of a count of classes says little)."""
    return tuple(m.name for m in METRICS if m.headline and m.unit == "percent")


def get(name: str) -> Metric:
    """The record of ``name``; a one-line KeyError naming the known ones otherwise."""
    for m in METRICS:
        if m.name == name:
            return m
    raise KeyError(f"no metric {name!r} (known: {', '.join(names())})")


def headers() -> dict[str, str]:
    """``{name: table header}`` of every metric."""
    return {m.name: m.header for m in METRICS}


# --------------------------------------------------------------------------- per run / per method

def run_scalars(run: Mapping) -> dict[str, float]:
    """Every metric of one run (NaN where undefined), keyed by name; ``overall_accuracy`` of
    one run is its average step accuracy. A one-line ValueError for an unreadable record."""
    view = RunView(run)
    return {m.name: float(m.definition(view)) for m in METRICS}


def summarize_runs(runs: Sequence[Mapping]) -> dict:
    """The method summary of results.json: each metric as ``mean_std`` over runs.

    ``overall_accuracy`` is the mean of the runs' average step accuracy (the paper's
    headline figure). Runs where a metric is undefined (e.g. forgetting with a single
    experience, new-class F1 of a record written before it was recorded) do not count in
    its ``n``.
    """
    if not runs:
        raise ValueError("summarize_runs: no runs")
    per_run = []
    for k, run in enumerate(runs):
        try:
            per_run.append(run_scalars(run))
        except ValueError as e:
            raise ValueError(f"runs[{k}]: {e}") from None
    return {name: D.mean_std(r[name] for r in per_run) for name in names()}


# --------------------------------------------------------------------------- best of a column

def _all_learnt(summary: Mapping) -> bool:
    stat = summary.get("not_learnt") or {}
    return stat.get("mean") == 0 and (stat.get("n") or 0) > 0


def bold_candidates(rows: Sequence[tuple[str, Mapping]], metric: str) -> list[tuple[str, Mapping]]:
    """The rows ``(label, summary)`` that may be best in ``metric``'s column: all of them, or,
    for a metric that rewards never learning (:attr:`Metric.best_only_if_all_learnt`), those
    whose every run learnt every experience (not learnt = 0): a method is never best for
    forgetting it never had."""
    if not get(metric).best_only_if_all_learnt:
        return list(rows)
    return [(label, s) for label, s in rows if _all_learnt(s)]


def best_labels(rows: Sequence[tuple[str, Mapping]], metric: str, *, decimals: int = 1) -> set[str]:
    """The labels whose ``metric`` mean is the best of the column at ``decimals`` decimals in
    the shown unit (ties included), among :func:`bold_candidates`."""
    record = get(metric)
    values = {}
    for label, summary in bold_candidates(rows, metric):
        mean = (summary.get(metric) or {}).get("mean")
        if mean is not None and math.isfinite(mean):
            values[label] = round(record.scale * mean, decimals)
    if not values:
        return set()
    best = (max if record.higher_is_better else min)(values.values())
    return {label for label, v in values.items() if v == best}


def learnt_rule() -> str:
    """The learnt threshold in words, for table notes."""
    return (f"an experience is learnt when its accuracy at its own step reaches "
            f"{D.LEARNT_CHANCE_MULTIPLE:g} x chance, chance being 1 / the number of classes seen then")

