"""A booktabs LaTeX table of methods x metrics (``cfer compare --out table.tex``).

Cells are ``$mean \\pm std$`` in the metric's unit (percent, or a count; one run shows no
spread); the best value of each column (at the printed precision, ties included) is bold,
among the rows that may be best (:func:`cfer.core.metrics.bold_candidates`: a method is
never bold for forgetting it never had); a marker flags the methods that differ
significantly from a reference method. The table needs
``\\usepackage{booktabs}`` in the paper's preamble and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cfer.core import metrics
from cfer.experiments.report.tables import value_text

#: The marker of a significant difference from the reference method (math mode).
MARKER = r"^{*}"
_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (method names such as ``kd_psmr``)."""
    return "".join(_SPECIAL.get(c, c) for c in str(text))


def best_rows(rows: Sequence[tuple[str, Mapping]], metric: str) -> set[str]:
    """The labels bold in ``metric``'s column: :func:`cfer.core.metrics.best_labels` at one
    decimal (the printed precision)."""
    return metrics.best_labels(rows, metric, decimals=1)


def _cell(stat: Mapping | None, *, metric: str, bold: bool, marked: bool) -> str:
    text = value_text(stat, unit=metrics.get(metric).unit, pm=" \\pm ")
    if text is None:
        return "--"
    text = f"\\mathbf{{{text}}}" if bold else text
    return f"${text}{MARKER if marked else ''}$"  # one math group: $a$$b$ would open display math


def results_table(rows: Sequence[tuple[str, Mapping]], *, headers: Mapping[str, str],
                  significant: set[tuple[str, str]] = frozenset(), caption: str,
                  label: str = "tab:cfer-compare") -> str:
    """The LaTeX source of a ``table`` float: one row per ``(label, summary)`` of ``rows``, one
    column per metric of ``headers`` ({metric: column title}); ``significant``: the
    ``(label, metric)`` cells that get :data:`MARKER`; ``caption``: LaTeX text (not escaped)."""
    columns = list(headers)
    best = {m: best_rows(rows, m) for m in columns}
    lines = [r"\begin{table}[t]", r"\centering", f"\\caption{{{caption}}}", f"\\label{{{label}}}",
             f"\\begin{{tabular}}{{l{'c' * len(columns)}}}", r"\toprule",
             " & ".join(["Method"] + [escape(headers[m]) for m in columns]) + r" \\", r"\midrule"]
    for name, summary in rows:
        cells = [_cell(summary.get(m), metric=m, bold=name in best[m], marked=(name, m) in significant)
                 for m in columns]
        lines.append(" & ".join([escape(name), *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
