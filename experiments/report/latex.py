"""A booktabs LaTeX table of methods x metrics (``cfer compare --out table.tex``).

Cells are ``$mean \\pm std$`` in percent; the best value of each column (at the
printed precision, ties included) is bold; a marker flags the methods that
differ significantly from a reference method. The table needs
``\\usepackage{booktabs}`` in the paper's preamble and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from cfer.experiments.report.stats import HIGHER_IS_BETTER

#: The marker of a significant difference from the reference method (math mode).
MARKER = r"^{*}"
_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (method names such as ``kd_psmr``)."""
    return "".join(_SPECIAL.get(c, c) for c in str(text))


def _rounded(stat: Mapping | None) -> float | None:
    mean = (stat or {}).get("mean")
    return None if mean is None or not math.isfinite(mean) else round(100 * mean, 1)


def best_rows(rows: Sequence[tuple[str, Mapping]], metric: str) -> set[str]:
    """The labels whose ``metric`` mean is the best of the column at one decimal in percent
    (higher or lower as :data:`~cfer.experiments.report.stats.HIGHER_IS_BETTER` says)."""
    values = {label: v for label, summary in rows if (v := _rounded(summary.get(metric))) is not None}
    if not values:
        return set()
    best = (max if HIGHER_IS_BETTER.get(metric, True) else min)(values.values())
    return {label for label, v in values.items() if v == best}


def _cell(stat: Mapping | None, *, bold: bool, marked: bool) -> str:
    mean = _rounded(stat)
    if mean is None:
        return "--"
    std = stat.get("std")
    text = f"{mean:.1f}" if std is None or not math.isfinite(std) else f"{mean:.1f} \\pm {100 * std:.1f}"
    text = f"\\mathbf{{{text}}}" if bold else text
    return f"${text}{MARKER if marked else ''}$"  # one math group: $a$$b$ would open display math


def results_table(rows: Sequence[tuple[str, Mapping]], *, headers: Mapping[str, str],
                  significant: set[tuple[str, str]] = frozenset(), caption: str,
                  label: str = "tab:cfer-compare") -> str:
    """The LaTeX source of a ``table`` float: one row per ``(label, summary)`` of ``rows``, one
    column per metric of ``headers`` ({metric: column title}); ``significant``: the
    ``(label, metric)`` cells that get :data:`MARKER`; ``caption``: LaTeX text (not escaped)."""
    metrics = list(headers)
    best = {m: best_rows(rows, m) for m in metrics}
    lines = [r"\begin{table}[t]", r"\centering", f"\\caption{{{caption}}}", f"\\label{{{label}}}",
             f"\\begin{{tabular}}{{l{'c' * len(metrics)}}}", r"\toprule",
             " & ".join(["Method"] + [escape(headers[m]) for m in metrics]) + r" \\", r"\midrule"]
    for name, summary in rows:
        cells = [_cell(summary.get(m), bold=name in best[m], marked=(name, m) in significant)
                 for m in metrics]
        lines.append(" & ".join([escape(name), *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
