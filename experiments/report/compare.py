"""``cfer compare RUN_DIR... [--out table.md|table.csv|table.tex]``: methods side by side.

Reads each run directory's results.json only (no torch). What it does:

- refuses results files that this code cannot read (``schema_version``, one line), and run
  directories whose numbers are not comparable: a different data set, number of
  experiences, protocol or phase (``--allow-mixed`` tables them anyway, each row marked
  with its setting, and pairs runs only within a setting);
- warns, on stderr, when the files were computed in different environments (cfer
  commit, torch, device, CPU...; :func:`cfer.experiments.run.environment.differences`);
- prints the summary table (mean ± sample std over runs; the headline metrics of
  :mod:`cfer.core.metrics`, or every metric with ``--metrics all``), what n counts, and the
  paired comparison of :mod:`cfer.experiments.report.stats` (reference method against each
  other, or every pair);
- writes markdown (both tables), CSV (the summary, fractions) or a booktabs LaTeX table
  (:mod:`cfer.experiments.report.latex`) to each ``--out`` file.
"""

from __future__ import annotations

import csv
import io
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cfer.core import metrics
from cfer.core.atomic import atomic_write_text
from cfer.experiments.report import latex, stats
from cfer.experiments.report.continual import PAIRED_REFERENCE, units_note
from cfer.experiments.report.run_report import load_results, report_module
from cfer.experiments.report.tables import aligned_table, markdown_table, metric_cell
from cfer.experiments.run import environment as env
from cfer.experiments.run.results_store import phase_of

FORMATS = {".md": "md", ".csv": "csv", ".tex": "tex"}
#: The default reference method of the paired table and the LaTeX markers (when present).
DEFAULT_REFERENCE = PAIRED_REFERENCE
#: Significance level of the LaTeX markers (Holm-adjusted Wilcoxon p below it).
ALPHA = stats.ALPHA
#: ``--metrics``: which metrics the summary table shows.
METRIC_SETS = ("headline", "all")


@dataclass(frozen=True)
class Row:
    """One method of one run directory."""

    source: str  # the run directory as given
    method: str
    label: str  # the method, or "method (run dir)" when two directories hold the same method
    summary: dict
    runs: list
    setting: int  # index into the comparison's settings


@dataclass(frozen=True)
class Comparison:
    rows: list[Row]
    settings: list[dict]  # what makes numbers comparable, one dict per distinct setting
    sources: list[str]


def setting_of(results: Mapping) -> dict:
    """What two results files must share for their numbers to be comparable."""
    config = results.get("config") or {}
    ds = results.get("dataset") or {}
    runs = [r for e in (results.get("methods") or {}).values() for r in e.get("runs", [])]
    lengths = sorted({len(r["accuracy_matrix"]) for r in runs if r.get("accuracy_matrix")})
    # Which compound classes, not only how many: two runs of 2 experiences each on other
    # classes are not the same setting.
    compounds = {c for r in runs for c in r.get("order") or []}
    compounds |= set((results.get("fewshot") or {}).get("classes") or [])
    return {"data set": f"{ds.get('name', '?')} ({ds.get('n_images', '?')} images)",
            "experiences": "/".join(map(str, lengths)) or "n/a",
            "compound classes": ", ".join(sorted(compounds)) or "n/a",
            "protocol": (config.get("protocol") or {}).get("name", "?"),
            "phase": phase_of(results)}


def _describe(setting: Mapping) -> str:
    return ", ".join(f"{k} {v}" for k, v in setting.items())


def load(run_dirs: Sequence[str], *, allow_mixed: bool = False, warn=None) -> Comparison:
    """Read and check the run directories; a one-line ValueError when their settings differ
    (unless ``allow_mixed``); ``warn(line)`` for each environment difference (stderr by default)."""
    warn = warn or (lambda line: print(f"cfer compare: warning: {line}", file=sys.stderr))
    seen: dict[Path, str] = {}
    for d in run_dirs:  # the same runs twice would pass for twice as many independent runs
        if Path(d).resolve() in seen:
            raise ValueError(f"{seen[Path(d).resolve()]} and {d} are the same run directory; give it once")
        seen[Path(d).resolve()] = str(d)
    loaded = [(str(d), load_results(d)) for d in run_dirs]
    settings: list[dict] = []
    first_env = (loaded[0][0], loaded[0][1].get("environment")) if loaded else None
    pending = []
    for d, results in loaded:
        s = setting_of(results)
        if s not in settings:
            if settings and not allow_mixed:
                other = next(src for src, r in loaded if setting_of(r) == settings[0])
                keys = [k for k in s if s[k] != settings[0][k]]
                raise ValueError(
                    f"{other} and {d} are not comparable: they differ in "
                    + "; ".join(f"{k} ({settings[0][k]} vs {s[k]})" for k in keys)
                    + " (--allow-mixed tables them anyway, marked by setting)")
            settings.append(s)
        here = results.get("environment")
        diff = env.differences(first_env[1], here)
        if diff:
            what = "; ".join(f"{k}: {env.value(first_env[1], k)} vs {env.value(here, k)}" for k in diff)
            if diff == ["environment"]:
                what = "one has no environment record (written before it was recorded)"
            warn(f"{first_env[0]} and {d} were computed in different environments ({what})")
        for method, summary in report_module(results).compare_rows(results):
            runs = results["methods"].get(method, {}).get("runs", [])
            pending.append((d, method, summary, runs, settings.index(s)))
    counts = Counter(method for _, method, *_ in pending)
    rows = [Row(d, m, m if counts[m] == 1 else f"{m} ({d})", summary, runs, k)
            for d, m, summary, runs, k in pending]
    return Comparison(rows, settings, [d for d, _ in loaded])


def reference_of(comparison: Comparison, reference: str | None) -> str | None:
    """The reference row label: ``reference`` (a label or method name), else kd_psmr when
    present, else the first row's."""
    labels = [r.label for r in comparison.rows]
    if reference is not None:
        matches = [r.label for r in comparison.rows if reference in (r.label, r.method)]
        if len(matches) != 1:
            raise ValueError(f"--reference {reference}: " + (
                f"not among the methods ({', '.join(labels)})" if not matches else
                f"ambiguous ({', '.join(matches)}); give the full label"))
        return matches[0]
    if DEFAULT_REFERENCE in labels:
        return DEFAULT_REFERENCE
    return labels[0] if labels else None


def paired(comparison: Comparison, *, reference: str | None, all_pairs: bool = False) -> list:
    """The paired comparisons of :mod:`~cfer.experiments.report.stats`, within each setting:
    ``reference`` against every other row (or every pair with ``all_pairs``)."""
    out = []
    for k in range(len(comparison.settings)):
        methods = {r.label: r.runs for r in comparison.rows if r.setting == k and r.runs}
        ref = None if all_pairs or reference not in methods else reference
        if len(methods) > 1 and (ref is not None or all_pairs):
            out += stats.paired_comparisons(methods, reference=ref)
    return out


# --------------------------------------------------------------------------- rendering

def _lead(comparison: Comparison, row: Row | None = None) -> list[str]:
    """The first columns (header when ``row`` is None): the setting when settings are mixed,
    the run directory when there are several, the method and its number of runs."""
    mixed, many = len(comparison.settings) > 1, len(comparison.sources) > 1
    if row is None:
        return ["setting"] * mixed + ["run"] * many + ["method", "runs"]
    return [f"[{row.setting + 1}]"] * mixed + [row.source] * many + [row.method, str(len(row.runs))]


def metric_names(metric_set: str = "headline") -> tuple[str, ...]:
    """The metrics of ``--metrics headline|all``."""
    if metric_set not in METRIC_SETS:
        raise ValueError(f"--metrics {metric_set}: expected one of {', '.join(METRIC_SETS)}")
    return metrics.headline() if metric_set == "headline" else metrics.names()


def sample_notes(comparison: Comparison) -> list[str]:
    """What n counts and the shared-seed warning (:func:`stats.n_lines`), over every row."""
    return stats.n_lines({r.label: r.runs for r in comparison.rows if r.runs})


def summary_table(comparison: Comparison, *, fmt: str, metric_set: str = "headline") -> str:
    """The summary metrics of every row as ``text``, ``md`` or ``csv`` (CSV: every metric,
    stored values - fractions for percentages -, 3 columns a metric, always with run directory
    and method)."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        fields = ("mean", "std", "n")
        names = metrics.names()
        w.writerow(["run_dir", "method", "runs"] + [f"{k}_{s}" for k in names for s in fields])
        for r in comparison.rows:
            w.writerow([r.source, r.method, len(r.runs)]
                       + ["" if (r.summary.get(k) or {}).get(s) is None else r.summary[k][s]
                          for k in names for s in fields])
        return buf.getvalue()
    names = metric_names(metric_set)
    header = _lead(comparison) + [metrics.get(k).header for k in names]
    body = [_lead(comparison, r) + [metric_cell(r.summary, k, runs=len(r.runs)) for k in names]
            for r in comparison.rows]
    legend = [f"[{k + 1}] {_describe(s)}" for k, s in enumerate(comparison.settings)] \
        if len(comparison.settings) > 1 else []
    notes = [units_note(names)] + sample_notes(comparison)
    if any(metrics.get(k).uses_learnt for k in names):
        notes.append(f"Learnt: {metrics.learnt_rule()}.")
    if fmt == "md":
        return markdown_table(header, body) + "\n\n" + "".join(f"{line}  \n" for line in notes + legend)
    return "\n".join([aligned_table(header, body), *[f"({line})" for line in notes], *legend])


def paired_table(rows: Sequence, *, fmt: str) -> str:
    """The paired comparison as ``text`` or ``md``, with its notes ('' when there is none)."""
    if not rows:
        return ""
    cells = stats.paired_rows(rows)
    notes = stats.paired_notes(rows)
    if fmt == "md":
        return markdown_table(stats.PAIRED_HEADER, cells) + "\n\n" + notes + "\n"
    return aligned_table(stats.PAIRED_HEADER, cells) + "\n(" + notes + ")"


def latex_table(comparison: Comparison, rows: Sequence, *, reference: str | None) -> str:
    """The booktabs table of the headline metrics, with markers against ``reference``."""
    headers = {m: metrics.get(m).header for m in metrics.headline()}
    ns = sorted({s["n"] for r in comparison.rows for s in r.summary.values()
                 if isinstance(s, dict) and s.get("n")})
    n_text = "/".join(map(str, ns))
    facts = "; ".join(f"{s['data set']}, {s['experiences']} experiences, protocol {s['protocol']}"
                      + ("" if s["phase"] == "continual" else f", phase {s['phase']}")
                      for s in comparison.settings)
    counted = stats.what_n_counts([run for r in comparison.rows for run in r.runs])
    counted = counted.replace(" x ", " $\\times$ ")
    units = [f"{latex.escape(h)}: {metrics.get(m).unit}" for m, h in headers.items()
             if metrics.get(m).unit != "percent"]
    caption = (f"{latex.escape(facts)}. Mean $\\pm$ sample std over n = {n_text} runs ({counted}), "
               f"in percent" + (f" ({'; '.join(units)})" if units else "") + "; best per column in bold")
    if any(metrics.get(m).best_only_if_all_learnt for m in headers):
        caption += (", forgetting only among the methods that learnt every experience; "
                    f"{latex.escape(metrics.learnt_rule())}")
    caption += "."
    vs_ref = [r for r in rows if r.first == reference]
    significant = {(r.second, r.metric) for r in vs_ref
                   if r.testable and r.p_wilcoxon_holm < ALPHA}
    if vs_ref and all(r.testable for r in vs_ref):
        caption += (f" ${latex.MARKER}$: differs from {latex.escape(reference)} (two-sided "
                    f"{stats.TESTS['wilcoxon']} test over matched runs, {stats.CORRECTION}-corrected "
                    f"over the methods of a column, p < {ALPHA}).")
    elif vs_ref:
        untestable = [r for r in vs_ref if not r.testable]
        counted = [r for r in untestable if r.n] or untestable  # not the metrics no run has
        caption += (f" No significance test against {latex.escape(reference)}"
                    + (" for some columns" if len(untestable) < len(vs_ref) else "")
                    + f": {min(r.n_nonzero for r in counted)} non-zero paired differences, and "
                    f"{stats.CORRECTION}'s correction over {max(r.family for r in counted)} methods "
                    f"needs at least {max(r.needed for r in counted)} to reach p < {ALPHA}.")
        if len(untestable) < len(vs_ref):
            caption += (f" ${latex.MARKER}$: differs from {latex.escape(reference)} where testable "
                        f"({stats.TESTS['wilcoxon']}, {stats.CORRECTION}, p < {ALPHA}).")
    body = [(r.label, r.summary) for r in comparison.rows]
    return latex.results_table(body, headers=headers, significant=significant, caption=caption)


def render(comparison: Comparison, fmt: str, *, reference: str | None, all_pairs: bool = False,
           tables: str = "both", metric_set: str = "headline") -> str:
    """The text of one ``--out`` format (``md``, ``csv``, ``tex``) or of the terminal (``text``);
    ``tables`` (text and md): ``summary``, ``paired`` or ``both``; ``metric_set`` (text and md):
    the summary's metrics, ``headline`` or ``all``."""
    rows = paired(comparison, reference=reference, all_pairs=all_pairs)
    if fmt == "csv":
        return summary_table(comparison, fmt="csv")
    if fmt == "tex":
        return latex_table(comparison, rows, reference=reference)
    parts = [summary_table(comparison, fmt=fmt, metric_set=metric_set) if tables != "paired" else "",
             paired_table(rows, fmt=fmt) if tables != "summary" else ""]
    return "\n\n".join(p.rstrip("\n") for p in parts if p) + "\n"


def _options(args, comparison: Comparison) -> dict:
    """:func:`render`'s options from ``cfer compare``'s parsed arguments."""
    return {"reference": reference_of(comparison, getattr(args, "reference", None)),
            "all_pairs": getattr(args, "all_pairs", False),
            "tables": getattr(args, "tables", "both"),
            "metric_set": getattr(args, "metrics", "headline")}


def render_args(args, fmt: str) -> str:
    """The ``fmt`` output of ``cfer compare``'s parsed arguments (tools/check_quickstart.py
    regenerates the docs' tables with it)."""
    comparison = load(args.run_dirs, allow_mixed=getattr(args, "allow_mixed", False))
    return render(comparison, fmt, **_options(args, comparison))


def cli_compare(args) -> int:
    """``cfer compare RUN_DIR... [--out FILE.md|FILE.csv|FILE.tex ...] [--reference METHOD]
    [--all-pairs] [--allow-mixed] [--tables both|summary|paired] [--metrics headline|all]``."""
    outs = getattr(args, "out", None) or []
    outs = [outs] if isinstance(outs, str) else list(outs)
    formats = []
    for out in outs:
        fmt = FORMATS.get(Path(out).suffix.lower())
        if fmt is None:
            raise ValueError(f"--out {out}: the file name must end in .md (markdown), .csv or .tex (LaTeX)")
        formats.append(fmt)
    comparison = load(args.run_dirs, allow_mixed=getattr(args, "allow_mixed", False))
    options = _options(args, comparison)
    print(render(comparison, "text", **options), end="")
    for out, fmt in zip(outs, formats):
        atomic_write_text(out, render(comparison, fmt, **options))
        print(f"wrote {out}")
    return 0
