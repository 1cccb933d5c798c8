"""The Grad-CAM section of report.md and of ``cfer explain``'s output, from results.json's
``gradcam`` entry only (no torch): see :mod:`cfer.experiments.explain.explain` for the scores
and :mod:`cfer.experiments.explain.nulls` for the nulls they are tested against."""

from __future__ import annotations

import math
from collections.abc import Mapping

from cfer.experiments.report.tables import aligned_table, format_cell, markdown_table

#: Column header per summary key of a method (explain.SUMMARY).
COLUMNS: dict[str, str] = {
    "overlap_pearson_learnt": "overlap r (learnt)",
    "overlap_pearson_last": "overlap r (last)",
    "overlap_iou_last": "overlap IoU (last)",
    "drift_pearson_last": "drift r",
    "drift_iou_last": "drift IoU",
    "au_share_learnt": "AU share (learnt)",
    "au_share_last": "AU share (last)",
    "au_pointing_last": "pointing (last)",
    "basic_au_share": "basic AU share",
}

#: Row label per tested score (explain/nulls.py's TESTS): every summary column, and the basic
#: model's pointing, which is tested but not a column.
TESTS: dict[str, str] = {**COLUMNS, "basic_au_pointing": "basic pointing"}

#: Column header per null (explain/nulls.py's NULLS).
NULLS: dict[str, str] = {
    "non_component": "non-component",
    "shuffled": "shuffled faces",
    "mean_map": "mean map",
    "centred": "centred prior",
    "random_weights": "random weights",
    "joint": "joint model",
    "uniform": "uniform / chance",
}

#: The level of the "beats every null" column (an intersection-union test: each null's own
#: one-sided p below it, no correction needed for that one claim).
ALPHA = 0.05

NOTES = """\
Mean ± std over the compound classes of each class's mean over its faces (x 100; n classes).
*overlap*: Pearson r and top-{mass}%-mass IoU between the compound class's Grad-CAM and the union
of the basic model's maps for its two components, on the same faces, after the step that learnt
the class (*learnt*) and after the last step (*last*). *drift*: the same between the class's
map after learning and after the last step. An offline method (joint) trains one model for all
steps: its "basic model" is that model, and its maps cannot drift (r = 100, not tested)."""

AU_NOTES = """\
*AU share*: share of the map's mass inside the regions of the face's active action units
(synthetic faces only); *pointing*: how often the map points at them (the centre of the grid
cell holding its maximum). *basic AU share*: the basic model's map for a component, inside that
component's active regions."""

TEST_NOTES = """\
Each score against its empirical nulls, pooled over the faces of every compound class: the
score (x 100), then per null its mean and the one-sided p-value that the score beats it, from the
paired sign-flip test whose signs flip per test subject (a subject's faces of several classes are
not independent); the effect is the score minus the null. *non-component*: the
compound map against the union of the basic maps of two basic classes that are not its
components (all such pairs); *shuffled faces*: against the references (component maps, map after
learning{regions}) of faces of the other classes; *mean map*: an image-independent map, the mean
of the same model's maps over the other faces; *centred prior*: a centred Gaussian (sigma {sigma}
of the side); *random weights*: the same network with fresh random weights ({seeds} seeds,
averaged; Adebayo et al. 2018); *joint model*: the map of the separately trained joint model
(drift).{uniform} *beats all*: every null's p < {alpha} (no correction across rows: each row is
its own claim; *untestable (n)*: too few faces for some null's p to reach {alpha}). Definitions:
docs/gradcam.md."""

AU_TEST_NOTES = """ *uniform / chance*: a constant map (AU share: it scores the regions' area share); for
pointing the chance level, the share of the {cells} grid's cell centres inside the regions
(tested with the exact Poisson-binomial tail)."""


def _columns(entry: Mapping) -> list[str]:
    keys = [k for k in COLUMNS if any(k in m["summary"] for m in entry["methods"].values())]
    return [k for k in keys if any((m["summary"].get(k) or {}).get("n") for m in entry["methods"].values())]


def _rows(entry: Mapping, keys: list[str], *, with_n: bool) -> list[list[str]]:
    return [[m] + [format_cell(info["summary"].get(k), with_n=with_n) for k in keys]
            for m, info in entry["methods"].items()]


def _p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return "p<.001" if p < 0.001 else f"p={p:.3f}".replace("0.", ".", 1)


def _null_cell(test: Mapping | None) -> str:
    if not test or test.get("null") is None:
        return ""
    return f"{100 * test['null']:.1f} ({_p(test['p'])})"


def _verdict(tests) -> str:
    """yes: every null's p < ALPHA; untestable: some null could not reach it with these faces
    (its smallest attainable p is not below ALPHA); no otherwise."""
    tests = list(tests)
    if not tests:
        return ""
    if any((t.get("min_p") or 0.0) >= ALPHA for t in tests):
        return "untestable (n)"
    return "yes" if all(t.get("p") is not None and t["p"] < ALPHA for t in tests) else "no"


def null_rows(entry: Mapping) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the scores against their nulls: a row per tested score and method."""
    tests = {m: info.get("tests") or {} for m, info in entry["methods"].items()}
    nulls = [n for n in NULLS if any(n in t.get("nulls", {}) for mt in tests.values() for t in mt.values())]
    header = (["score", "method", "faces (subjects)", "score x 100"] + [NULLS[n] for n in nulls]
              + [f"beats all (p<{ALPHA})"])
    rows = []
    for key, label in TESTS.items():
        for m, mt in tests.items():
            t = mt.get(key)
            if not t or t.get("observed") is None:
                continue
            units = min((v.get("units") or t["n"] for v in t["nulls"].values()), default=t["n"])
            n = str(t["n"]) if units == t["n"] else f"{t['n']} ({units})"
            rows.append([label, m, n, f"{100 * t['observed']:.1f}"]
                        + [_null_cell(t["nulls"].get(n)) for n in nulls] + [_verdict(t["nulls"].values())])
    return header, rows


def refusal_lines(entry: Mapping) -> list[str]:
    """The one line that says why no action-unit score is given ([] when they are)."""
    return [entry["au_refused"]] if entry.get("au_refused") else []


def summary_lines(entry: Mapping) -> list[str]:
    """A text table of the methods' summary scores and one of the scores against their nulls
    (what ``cfer explain`` prints)."""
    keys = _columns(entry)
    header = ["method"] + [COLUMNS[k] for k in keys]
    lines = [aligned_table(header, _rows(entry, keys, with_n=False)),
             f"(x 100; mean ± std over compound classes; {entry['images_per_class']} faces per class, "
             f"layer {entry['layer']})"]
    lines += refusal_lines(entry)
    head, rows = null_rows(entry)
    if rows:
        lines += ["", "Against the nulls (score x 100, null mean (one-sided p), faces pooled over classes):",
                  aligned_table(head, rows)]
    return lines


def markdown_section(results: Mapping) -> list[str]:
    """report.md's Grad-CAM section ([] when ``cfer explain`` has not run on these results)."""
    entry = results.get("gradcam")
    if not entry or not entry.get("methods"):
        return []
    keys = _columns(entry)
    cells = "x".join(map(str, entry.get("cells") or [])) or "?"
    lines = ["## Grad-CAM", "",
             f"`cfer explain`: {entry['images_per_class']} test faces per compound class (fold "
             f"{entry['fold']}, seed {entry['seed']}), model {entry['model']}, layer `{entry['layer']}` "
             f"({cells} cells), each method's first run with saved models.", "",
             markdown_table(["method"] + [COLUMNS[k] for k in keys], _rows(entry, keys, with_n=True)), ""]
    au = any("basic_au_share" in m["summary"] for m in entry["methods"].values())
    if entry.get("au_refused"):
        lines += [f"**{entry['au_refused']}.**", ""]
    lines += [NOTES.format(mass=round(100 * entry.get("top_mass", 0.2))), ""] + ([AU_NOTES, ""] if au else [])
    head, rows = null_rows(entry)
    if rows:
        info = entry.get("nulls") or {}
        notes = TEST_NOTES.format(sigma=info.get("centred_sigma", "?"), alpha=ALPHA,
                                  seeds=len(info.get("random_seeds", [])),
                                  regions=", action-unit regions" if au else "",
                                  uniform=AU_TEST_NOTES.format(cells=cells) if au else "")
        lines += ["### Against the nulls", "", markdown_table(head, rows), "", notes, ""]
    plots = entry.get("plots") or []
    if plots:
        lines += [f"![Grad-CAM overview]({plots[0]})", "",
                  f"One grid per compound class and method: `plots/gradcam/` ({len(plots) - 1} files).", ""]
    return lines
