"""Each Grad-CAM score of a method against its empirical nulls: what the score would be if the
maps knew nothing of the face, of the class or of training (docs/gradcam.md).

A score compares a *map under test* (the compound class's map; for drift, its map after the
last step) with a *reference* (the union of the components' basic maps; the map after the
learning step; the face's action-unit regions). A null replaces one of the two:

- ``mean_map``: the map under test replaced by an image-independent one, the mean of the same
  model's maps over all the other faces scored (every compound class, leave-one-out);
- ``centred``: by a centred Gaussian (:func:`cfer.core.attribution_scores.centred_prior`);
- ``random_weights``: by the maps, for the same class and face, of the same network with
  freshly initialised weights, one per seed, averaged over the seeds (Adebayo et al. 2018);
- ``joint`` (drift only, when the run has an offline method): by the map of a model trained
  separately (joint training on every class), for the same class and face;
- ``uniform`` (AU share): by a constant map, which scores the regions' area share; for the
  pointing game the chance level instead, the share of the grid's cell centres in the mask;
- ``shuffled``: the reference replaced by the references of the faces of the other classes
  (their component maps, their maps after learning, their action-unit regions);
- ``non_component`` (overlap only): the reference replaced by the union of the basic model's
  maps for two basic classes that are *not* the compound's components, averaged over the pairs.

Every test pools the faces of all compound classes (n = classes x faces): the effect is the
mean paired difference (score - null) and the share of faces above their null; the p-value
is the paired sign-flip test's, one-sided, its signs flipped per test subject (a subject's faces
of several classes are not independent; :func:`cfer.core.attribution_scores.sign_flip_test`);
pointing against its chance level uses the exact Poisson-binomial tail
(:func:`~cfer.core.attribution_scores.pointing_chance_test`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from cfer.core import attribution_scores as S


@dataclass(frozen=True)
class ClassMaps:
    """The maps of one compound class on its K faces, every map (K, H, W).

    ``compound``: step -> the method's map of the class; ``basic``: every basic class the basic
    model knows -> its map; ``random``: (R, K, H, W) the randomised-weights models' maps of the
    class, ``random_basic``: the same for each component; ``joint``: a separately trained
    model's map of the class (or None); ``expression``: the faces' active action-unit regions,
    ``component_masks``: the regions of each component's units (None: no ground truth);
    ``subjects``: who each face is (faces of one subject count as one unit in the tests)."""

    components: tuple[str, str]
    learnt: int
    compound: dict[int, np.ndarray]
    basic: dict[str, np.ndarray]
    random: np.ndarray
    random_basic: dict[str, np.ndarray]
    joint: np.ndarray | None = None
    expression: np.ndarray | None = None
    component_masks: dict[str, np.ndarray] = field(default_factory=dict)
    subjects: np.ndarray | None = None  # (K,) each face's subject: the unit the signs flip for


#: Summary key -> (score family, similarity or region score, the step it is read at).
TESTS: dict[str, tuple[str, str, str]] = {
    "overlap_pearson_learnt": ("overlap", "pearson", "learnt"),
    "overlap_pearson_last": ("overlap", "pearson", "last"),
    "overlap_iou_last": ("overlap", "iou", "last"),
    "drift_pearson_last": ("drift", "pearson", "last"),
    "drift_iou_last": ("drift", "iou", "last"),
    "au_share_learnt": ("au", "share", "learnt"),
    "au_share_last": ("au", "share", "last"),
    "au_pointing_last": ("au", "pointing", "last"),
    "basic_au_share": ("basic_au", "share", "basic"),
    "basic_au_pointing": ("basic_au", "pointing", "basic"),
}

#: The nulls in table order.
NULLS = ("non_component", "shuffled", "mean_map", "centred", "random_weights", "joint", "uniform")


def _paired(score: str, *, top_mass: float, cells):
    return {"pearson": S.pearson, "iou": lambda a, b: S.top_mass_iou(a, b, mass=top_mass),
            "share": S.mask_share, "pointing": lambda a, b: S.pointing_hit(a, b, cells=cells)}[score]


def _matrix(score: str, *, top_mass: float, cells):
    return {"pearson": S.pearson_matrix, "iou": lambda a, b: S.top_mass_iou_matrix(a, b, mass=top_mass),
            "share": S.mask_share_matrix,
            "pointing": lambda a, b: S.pointing_matrix(a, b, cells=cells)}[score]


def _mean_over_draws(x: np.ndarray) -> np.ndarray:
    """(R, N) -> (N,): the mean over the draws that are defined (NaN where none is)."""
    ok = np.isfinite(x)
    count = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(ok, x, 0.0).sum(axis=0) / count, np.nan)


def leave_one_out_mean(maps: np.ndarray) -> np.ndarray:
    """(N, H, W): for each map, the mean of the *other* maps, each normalised to sum 1 (maps
    without mass left out): an image-independent map that never saw the face it is scored on."""
    p = S.normalise(maps)
    ok = np.isfinite(p).all(axis=(1, 2))
    p = np.where(ok[:, None, None], p, 0.0)
    count = ok.sum() - ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count[:, None, None] > 0, (p.sum(axis=0) - p) / count[:, None, None], np.nan)


def run_test(score: str, maps: np.ndarray, refs: np.ndarray, *, groups: np.ndarray, clusters=None,
             map_nulls: dict[str, np.ndarray], ref_nulls: dict[str, np.ndarray] | None = None,
             chance: np.ndarray | None = None, cells: tuple[int, int] | None = None, top_mass: float = 0.2,
             seed: int = 0) -> dict:
    """One score (``pearson``, ``iou``, ``share`` or ``pointing``) of ``maps`` against ``refs``
    (maps, or masks for the region scores), paired per face, against its nulls.

    ``map_nulls``: name -> what replaces ``maps``, (N, H, W), or (R, N, H, W) draws whose scores
    are averaged per face (their per-draw means are kept as ``draws``); ``ref_nulls``: name ->
    (P, N, H, W) references that replace ``refs``, averaged per face; the shuffled null always;
    ``chance``: (N,) the pointing game's chance level per face; ``cells``: the grid the maps were
    upsampled from (pointing: the cell the map points at). ``groups``: each face's class;
    ``clusters``: each face's subject (None: every face its own unit)."""
    paired = _paired(score, top_mass=top_mass, cells=cells)
    matrix = _matrix(score, top_mass=top_mass, cells=cells)
    observed = paired(maps, refs)
    nulls: dict[str, tuple[np.ndarray, list | None]] = {}
    for name, alt in (ref_nulls or {}).items():
        nulls[name] = (_mean_over_draws(np.stack([paired(maps, r) for r in alt])), None)
    nulls["shuffled"] = (S.shuffled_means(matrix(maps, refs), groups), None)
    for name, alt in map_nulls.items():
        if alt.ndim == 4:
            draws = np.stack([paired(a, refs) for a in alt])
            nulls[name] = (_mean_over_draws(draws), [_mean(d) for d in draws])
        else:
            nulls[name] = (paired(alt, refs), None)
    out = {"n": int(np.isfinite(observed).sum()), "observed": _mean(observed), "nulls": {}}
    for name in NULLS:
        if name == "uniform" and chance is not None:
            test = S.pointing_chance_test(observed, chance)
        elif name in nulls:
            values, draws = nulls[name]
            test = S.sign_flip_test(observed, values, clusters=clusters, seed=seed)
            if draws is not None:
                test["draws"] = draws
        else:
            continue
        if test["n"]:  # left out where undefined (shuffled faces when one class has the score)
            out["nulls"][name] = test
    return out


def _mean(x) -> float | None:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def _model_nulls(maps: np.ndarray, random: np.ndarray, *, extra: dict[str, np.ndarray] | None = None) -> dict:
    """The nulls that replace the map under test: the leave-one-out mean map, the centred prior,
    the randomised-weights maps (and ``extra`` ones)."""
    centred = np.broadcast_to(S.centred_prior(maps.shape[1:]), maps.shape)
    return {"mean_map": leave_one_out_mean(maps), "centred": centred, "random_weights": random,
            **(extra or {})}


def _stack(parts: list[np.ndarray], axis: int = 0) -> np.ndarray:
    return np.concatenate(parts, axis=axis)


def method_tests(classes: dict[str, ClassMaps], *, last: int, offline: bool, cells: tuple[int, int],
                 au: bool, top_mass: float = 0.2) -> dict:
    """Every score of :data:`TESTS` of one method's maps (``classes``: compound class -> its
    maps) against its nulls; region scores only when ``au`` (ground truth present and a grid
    of enough ``cells``); drift neither for an offline method (one model) nor for the classes
    learnt at the last step."""
    names = list(classes)
    out = {}
    for key, (family, score, when) in TESTS.items():
        if family in ("au", "basic_au") and not au:
            continue
        if family == "drift" and offline:
            continue
        rows = _rows(classes, names, family=family, when=when, last=last)
        if rows is None:
            continue
        maps, refs, groups, clusters, random, ref_nulls, extra = rows
        map_nulls = _model_nulls(maps, random, extra=extra)
        chance = None
        if family in ("au", "basic_au"):
            if score == "share":
                map_nulls["uniform"] = np.ones_like(maps)
            else:
                chance = S.cell_chance(refs, cells)
        out[key] = run_test(score, maps, refs, groups=groups, clusters=clusters, map_nulls=map_nulls,
                            ref_nulls=ref_nulls, chance=chance, cells=cells, top_mass=top_mass)
    return out


def _rows(classes: dict[str, ClassMaps], names: list[str], *, family: str, when: str, last: int):
    """The faces of every class stacked for one score family: (maps under test, references, each
    face's class, each face's subject or None, randomised-weights maps (R, N, H, W), reference
    nulls, further map nulls); None when no class has the score (drift of a single class learnt
    last)."""
    maps, refs, groups, subjects, random, non_comp, joint = [], [], [], [], [], [], []
    for g, c in enumerate(names):
        m = classes[c]
        step = m.learnt if when == "learnt" else last
        if family == "basic_au":
            for b in m.components:
                maps.append(m.basic[b])
                refs.append(m.component_masks[b])
                random.append(m.random_basic[b])
                groups.append(np.full(len(m.basic[b]), g))
                subjects.append(m.subjects)
            continue
        if family == "drift" and m.learnt == last:
            continue
        maps.append(m.compound[step])
        random.append(m.random)
        groups.append(np.full(len(m.compound[step]), g))
        subjects.append(m.subjects)
        if family == "overlap":
            refs.append(S.union(*(m.basic[b] for b in m.components)))
            pairs = list(combinations([b for b in m.basic if b not in m.components], 2))
            non_comp.append(np.stack([S.union(m.basic[a], m.basic[b]) for a, b in pairs]) if pairs else None)
        elif family == "drift":
            refs.append(m.compound[m.learnt])
            joint.append(m.joint)
        else:
            refs.append(m.expression)
    if not maps:
        return None
    # Every compound has two basic components, so every class has the same number of pairs.
    has_pairs = family == "overlap" and all(x is not None for x in non_comp)
    ref_nulls = {"non_component": _stack(non_comp, axis=1)} if has_pairs else None
    extra = {"joint": _stack(joint)} if family == "drift" and all(j is not None for j in joint) else None
    clusters = None if any(x is None for x in subjects) else _stack(subjects)
    return _stack(maps), _stack(refs), _stack(groups), clusters, _stack(random, axis=1), ref_nulls, extra


# --------------------------------------------------------------------------- a run's methods

def component_masks(masks, component: str) -> np.ndarray:
    """(K, H, W) bool: the active regions of ``masks`` (a RegionMasks) that hold one of the basic
    expression ``component``'s AUs (primary or secondary, Du et al. 2014, Table 1)."""
    from cfer.benchmarks.synthetic_faces.action_units import AU_TABLE
    from cfer.benchmarks.synthetic_faces.masks import AU_REGIONS

    units = AU_TABLE[component].all
    mine = np.array([bool(units & set(AU_REGIONS[r])) for r in masks.regions])
    return (masks.masks & (masks.active & mine)[:, :, None, None]).any(axis=1)


def attach_tests(entry: dict, all_maps: dict, null_maps: dict, *, masks: dict, subjects: dict,
                 cells: tuple[int, int], au: bool) -> dict:
    """Each method's scores of ``cfer explain`` against their nulls, into
    ``entry["methods"][m]["tests"]``: ``all_maps`` as :func:`~cfer.experiments.explain.explain.
    explain_method` returns them per method, ``null_maps`` the randomised-weights maps per class,
    ``masks`` a RegionMasks (or None) and ``subjects`` the faces' subjects per class. Returns what
    the nulls were made of. The first
    offline method of the run (joint) is the separately trained model of the drift null."""
    from cfer.experiments.explain.gradcam import RANDOM_SEEDS

    offline = [m for m, e in entry["methods"].items() if e.get("offline")]
    joint = offline[0] if offline else None
    joint_last = entry["methods"][joint]["last_step"] if joint else None
    for m, e in entry["methods"].items():
        classes = {}
        for c, maps in all_maps[m].items():
            info = e["classes"][c]
            region = masks[c] if au else None
            classes[c] = ClassMaps(
                components=tuple(info["components"]), learnt=info["learnt_step"], compound=maps["steps"],
                basic=maps["basic_all"], random=null_maps[c]["compound"],
                random_basic={b: null_maps[c][b] for b in info["components"]},
                joint=None if joint in (None, m) else all_maps[joint][c]["steps"][joint_last],
                expression=None if region is None else region.expression_masks(),
                component_masks={} if region is None else {b: component_masks(region, b)
                                                            for b in info["components"]},
                subjects=np.asarray(subjects[c]))
        e["tests"] = method_tests(classes, last=e["last_step"], offline=bool(e.get("offline")), cells=cells,
                                  au=au, top_mass=entry["top_mass"])
    return {"random_seeds": list(RANDOM_SEEDS), "centred_sigma": S.CENTRED_SIGMA, "joint_model": joint,
            "flips": S.FLIPS, "min_au_cells": S.MIN_AU_CELLS}
