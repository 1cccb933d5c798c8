"""What a run's data set lacked, in words: for the run summary and report.md.

Reads the ``dataset`` block of results.json only: ``missing_classes`` (a partial
taxonomy, allowed by ``benchmark.partial_taxonomy``) and ``unreadable_images``
(``[path, reason]`` pairs of images that could not be decoded and were left out).
"""

from __future__ import annotations

from collections.abc import Mapping


def dataset_notes(ds: Mapping) -> list[str]:
    """One sentence per thing the run did without (empty when nothing is missing)."""
    notes = []
    missing = ds.get("missing_classes") or []
    if missing:
        notes.append(f"the data set has no image of {', '.join(missing)}: these classes are not in the "
                     "stream (benchmark.partial_taxonomy: true)")
    bad = ds.get("unreadable_images") or []
    if bad:
        first = ", ".join(str(p) for p, *_ in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        notes.append(f"{len(bad)} unreadable image(s) left out: {first}{more} (all in results.json, "
                     "dataset.unreadable_images)")
    return notes


def unreadable_list(ds: Mapping, *, limit: int = 50) -> list[str]:
    """Markdown bullets of the unreadable images and why (the first ``limit``)."""
    bad = ds.get("unreadable_images") or []
    lines = [f"  - `{p}`: {why[0] if why else 'unreadable'}" for p, *why in bad[:limit]]
    if len(bad) > limit:
        lines.append(f"  - ... and {len(bad) - limit} more (results.json: dataset.unreadable_images)")
    return lines
