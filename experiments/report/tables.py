"""Table and link primitives every report uses: percent cells, aligned text, markdown."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path


def format_cell(stat: Mapping, *, with_n: bool = True) -> str:
    """``{"mean", "std", "n"}`` (fractions) as ``71.2 ± 3.4 (10)`` in percent; ``n/a`` if undefined."""
    if not stat or stat.get("mean") is None or not math.isfinite(stat["mean"]):
        return "n/a"
    text = f"{100 * stat['mean']:.1f} ± {100 * (stat.get('std') or 0.0):.1f}"
    return f"{text} ({stat['n']})" if with_n else text


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
