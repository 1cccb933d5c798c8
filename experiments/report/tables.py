"""Table and link primitives every report uses: percent cells, aligned text, markdown."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from cfer.core import metrics


def format_cell(stat: Mapping, *, with_n: bool = True, unit: str = "percent") -> str:
    """``{"mean", "std", "n"}`` as ``71.2 ± 3.4 (10)``; ``n/a`` if undefined.

    ``unit`` (:data:`cfer.core.metrics.SCALE`): "percent" shows fractions in percent, a
    count ("experiences") the value itself (one run's whole count without decimals). One
    value has no spread: it shows no "± 0.0".
    """
    text = value_text(stat, unit=unit)
    if text is None:
        return "n/a"
    return f"{text} ({stat['n']})" if with_n else text


def value_text(stat: Mapping | None, *, unit: str = "percent", pm: str = " ± ") -> str | None:
    """``mean ± std`` of ``{"mean", "std", "n"}`` in ``unit``, one decimal (one run's count
    without), no spread for a single value; None when undefined. ``pm``: the plus-minus sign
    (LaTeX: ``" \\pm "``)."""
    mean = (stat or {}).get("mean")
    if mean is None or not math.isfinite(mean):
        return None
    scale = metrics.SCALE[unit]
    value = scale * mean
    single = (stat.get("n") or 0) <= 1
    whole = unit != "percent" and single and float(value).is_integer()
    text = f"{value:.0f}" if whole else f"{value:.1f}"
    std = stat.get("std")
    if not single and std is not None and math.isfinite(std):
        text += f"{pm}{scale * std:.1f}"
    return text


def metric_cell(summary: Mapping, metric: str, *, runs: int | None = None) -> str:
    """The cell of ``metric`` (a name of :mod:`cfer.core.metrics`) in a summary, in the
    metric's unit; its ``(n)`` only when it differs from ``runs`` (always when ``runs`` is
    None)."""
    stat = summary.get(metric) or {}
    with_n = runs is None or stat.get("n") != runs
    return format_cell(stat, with_n=with_n and stat.get("mean") is not None, unit=metrics.get(metric).unit)


def aligned_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A text table: the first two columns left-aligned, the others right-aligned."""
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
    line = lambda r: "  ".join(str(v).ljust(w) if c < 2 else str(v).rjust(w)  # noqa: E731
                               for c, (v, w) in enumerate(zip(r, widths))).rstrip()
    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    esc = lambda v: str(v).replace("|", "\\|")  # noqa: E731
    out = ["| " + " | ".join(map(esc, header)) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    out += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(out)


def image_link(path: Path, run_dir: Path, alt: str) -> str:
    """A markdown image of ``path``, relative to the report in ``run_dir``."""
    return f"![{alt}]({path.relative_to(run_dir).as_posix()})"
