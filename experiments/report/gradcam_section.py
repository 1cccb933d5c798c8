"""The Grad-CAM section of report.md and of ``cfer explain``'s output, from results.json's
``gradcam`` entry only (no torch): see :mod:`cfer.experiments.explain.explain` for the scores."""

from __future__ import annotations

from collections.abc import Mapping

from cfer.experiments.report.tables import aligned_table, format_cell, markdown_table

#: Column header per summary key of a method (explain.SUMMARY, plus the AU chance levels).
COLUMNS: dict[str, str] = {
    "overlap_pearson_learnt": "overlap r (learnt)",
    "overlap_pearson_last": "overlap r (last)",
    "overlap_iou_last": "overlap IoU (last)",
    "drift_pearson_last": "drift r",
    "drift_iou_last": "drift IoU",
    "au_share_learnt": "AU share (learnt)",
    "au_share_last": "AU share (last)",
    "au_chance": "AU chance",
    "au_pointing_last": "pointing (last)",
    "basic_au_share": "basic AU share",
    "basic_au_chance": "basic AU chance",
}

NOTES = """\
Mean ± std over the compound classes of each class's mean over its faces (x 100; n classes).
*overlap*: Pearson r and top-{mass}%-mass IoU between the compound class's Grad-CAM and the union
of the basic model's maps for its two components, on the same faces, after the step that learnt
the class (*learnt*) and after the last step (*last*). *drift*: the same between the class's
map after learning and after the last step. *AU share*: share of the map's mass inside the
regions of the face's active action units (synthetic faces only); *AU chance*: those regions'
area share, what a map spread evenly scores; *pointing*: how often the map's maximum falls in
them. *basic AU share*: the basic model's map for a component, inside that component's
active regions (chance: *basic AU chance*). An offline method (joint) trains one model for all
steps: its "basic model" is that model, and its maps cannot drift (r = 100)."""


def _columns(entry: Mapping) -> list[str]:
    keys = [k for k in COLUMNS if any(k in m["summary"] for m in entry["methods"].values())]
    return [k for k in keys if any((m["summary"].get(k) or {}).get("n") for m in entry["methods"].values())]


def _rows(entry: Mapping, keys: list[str], *, with_n: bool) -> list[list[str]]:
    return [[m] + [format_cell(info["summary"].get(k), with_n=with_n) for k in keys]
            for m, info in entry["methods"].items()]


def summary_lines(entry: Mapping) -> list[str]:
    """A text table of the methods' summary scores (what ``cfer explain`` prints)."""
    keys = _columns(entry)
    header = ["method"] + [COLUMNS[k] for k in keys]
    return [aligned_table(header, _rows(entry, keys, with_n=False)),
            f"(x 100; mean ± std over compound classes; {entry['images_per_class']} faces per class, "
            f"layer {entry['layer']})"]


def markdown_section(results: Mapping) -> list[str]:
    """report.md's Grad-CAM section ([] when ``cfer explain`` has not run on these results)."""
    entry = results.get("gradcam")
    if not entry or not entry.get("methods"):
        return []
    keys = _columns(entry)
    lines = ["## Grad-CAM", "",
             f"`cfer explain`: {entry['images_per_class']} test faces per compound class (fold "
             f"{entry['fold']}, seed {entry['seed']}), model {entry['model']}, layer `{entry['layer']}`, "
             f"each method's first run with saved models.", "",
             markdown_table(["method"] + [COLUMNS[k] for k in keys], _rows(entry, keys, with_n=True)), "",
             NOTES.format(mass=round(100 * entry.get("top_mass", 0.2))), ""]
    plots = entry.get("plots") or []
    if plots:
        lines += [f"![Grad-CAM overview]({plots[0]})", "",
                  f"One grid per compound class and method: `plots/gradcam/` ({len(plots) - 1} files).", ""]
    return lines
