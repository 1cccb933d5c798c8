"""Scores of attribution maps (Grad-CAM), pure numpy: one definition each.

Below every layer, like :mod:`cfer.core.metric_definitions`, so that reports read the
numbers without torch. A map is a non-negative (H, W) array (Grad-CAM after its
ReLU); batches are (N, H, W). A map with no positive mass (the model found no
evidence for the class), or NaN, has no defined score: NaN, left out of the means.

- ``pearson``: Pearson correlation of two maps' pixels;
- ``top_mass_iou``: intersection over union of the two maps' top-mass regions, the
  fewest highest pixels that hold ``mass`` (default 20%) of each map's total;
- ``mask_share``: share of a map's mass inside a mask (the action-unit score; its
  chance level, a map spread evenly, is the mask's area share);
- ``pointing_hit``: whether the map's maximum falls inside the mask (the pointing game
  of Zhang et al., "Top-down neural attention by excitation backprop", ECCV 2016); given the
  grid of cells the map was upsampled from, the centre of the cell holding the maximum.

Against what a score is judged (docs/gradcam.md, "Against which nulls"):

- ``*_matrix``: a score of every map against every reference (``[i, j]``: map ``i`` with
  reference ``j``), whose off-class entries are the shuffled-faces null (``shuffled_means``);
- ``centred_prior``: a centred Gaussian map, a null that knows only that faces are centred;
- ``cell_chance``: the pointing game's chance level, the share of the map's *cells* (the
  target layer's grid, whose centres are where an upsampled map can peak) inside the mask;
- ``au_refusal``: the one-line reason region scores are refused on a grid under
  ``MIN_AU_CELLS`` cells a side;
- ``sign_flip_test`` and ``pointing_chance_test``: a score's effect and one-sided p-value
  against a null, paired over faces.
"""

from __future__ import annotations

import math

import numpy as np


def _batch(maps, name: str) -> np.ndarray:
    a = np.asarray(maps, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"{name}: expected (H, W) or (N, H, W) maps, got shape {a.shape}")
    if np.isinf(a).any():
        raise ValueError(f"{name}: maps hold inf")
    return np.nan_to_num(a, nan=0.0)  # NaN (an undefined, e.g. normalised all-zero, map): no mass


def normalise(maps) -> np.ndarray:
    """Each map scaled to sum 1 (negative values clipped to 0); all-zero maps become NaN."""
    a = np.clip(_batch(maps, "normalise"), 0.0, None)
    total = a.sum(axis=(1, 2), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, a / total, np.nan)


def union(*maps) -> np.ndarray:
    """The pixel-wise maximum of normalised maps (where any of them looks), renormalised; a map
    without mass adds nothing."""
    return normalise(np.fmax.reduce([normalise(m) for m in maps]))


def pearson(a, b) -> np.ndarray:
    """(N,) Pearson correlation of paired maps' pixels (NaN where a map is constant)."""
    x, y = _batch(a, "pearson"), _batch(b, "pearson")
    x = x.reshape(len(x), -1) - x.reshape(len(x), -1).mean(axis=1, keepdims=True)
    y = y.reshape(len(y), -1) - y.reshape(len(y), -1).mean(axis=1, keepdims=True)
    den = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (x * y).sum(axis=1) / den, np.nan)


def top_mass_region(maps, *, mass: float = 0.2) -> np.ndarray:
    """(N, H, W) bool: per map, the fewest highest pixels whose sum reaches ``mass`` of the
    total (all False for a map without mass)."""
    if not 0.0 < mass <= 1.0:
        raise ValueError(f"mass={mass}: must be in (0, 1]")
    p = normalise(maps)
    flat = p.reshape(len(p), -1)
    order = np.argsort(-np.nan_to_num(flat, nan=0.0), axis=1, kind="stable")
    ranked = np.take_along_axis(flat, order, axis=1)
    # A pixel is in when the mass strictly above it is still short of the target.
    before = np.cumsum(ranked, axis=1) - ranked
    keep_ranked = before < mass - 1e-12
    out = np.zeros_like(keep_ranked)
    np.put_along_axis(out, order, keep_ranked, axis=1)
    out &= np.isfinite(flat)
    return out.reshape(p.shape)


def top_mass_iou(a, b, *, mass: float = 0.2) -> np.ndarray:
    """(N,) IoU of the top-``mass`` regions of paired maps (NaN where a map has no mass)."""
    ra, rb = top_mass_region(a, mass=mass), top_mass_region(b, mass=mass)
    inter = (ra & rb).sum(axis=(1, 2))
    uni = (ra | rb).sum(axis=(1, 2))
    empty = ~ra.any(axis=(1, 2)) | ~rb.any(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(empty, np.nan, inter / np.maximum(uni, 1))


def _masks(masks, like: np.ndarray, name: str) -> np.ndarray:
    m = np.asarray(masks, dtype=bool)
    if m.ndim == 2:
        m = m[None]
    if m.shape != like.shape:
        raise ValueError(f"{name}: masks of shape {m.shape} do not match maps of shape {like.shape}")
    return m


def mask_share(maps, masks) -> np.ndarray:
    """(N,) share of each map's mass inside its mask."""
    p = normalise(maps)
    m = _masks(masks, p, "mask_share")
    return (p * m).sum(axis=(1, 2))


def area_share(masks) -> np.ndarray:
    """(N,) the masks' area shares: ``mask_share``'s and ``pointing_hit``'s chance level."""
    m = np.asarray(masks, dtype=bool)
    m = m[None] if m.ndim == 2 else m
    return m.reshape(len(m), -1).mean(axis=1)


def pointed_pixel(maps, *, cells: tuple[int, int] | None = None) -> np.ndarray:
    """(N,) the flat index of the pixel each map points at: its maximum (the first one on a tie),
    or with ``cells``, the centre pixel of the grid cell that holds its maximum. A Grad-CAM map
    is a ``cells`` grid upsampled, so its maximum is a cell, and where inside the cell the
    upsampling puts it (at an image border, the outer half of an edge cell is flat) is not a
    choice of the model; the chance level :func:`cell_chance` counts the same centres."""
    a = _batch(maps, "pointed_pixel")
    h, w = a.shape[1:]
    top = a.reshape(len(a), -1).argmax(axis=1)
    if cells is None:
        return top
    rows, cols = cell_centres(cells, (h, w))
    r = rows[np.minimum(top // w * cells[0] // h, cells[0] - 1)]
    c = cols[np.minimum(top % w * cells[1] // w, cells[1] - 1)]
    return r * w + c


def pointing_hit(maps, masks, *, cells: tuple[int, int] | None = None) -> np.ndarray:
    """(N,) 1.0 where the pixel the map points at (:func:`pointed_pixel`) lies inside the mask,
    0.0 where not, NaN for a map without mass."""
    a = _batch(maps, "pointing_hit")
    m = _masks(masks, a, "pointing_hit")
    at = pointed_pixel(a, cells=cells)
    hit = np.take_along_axis(m.reshape(len(m), -1), at[:, None], axis=1)[:, 0]
    return np.where(a.reshape(len(a), -1).max(axis=1) > 0, hit.astype(np.float64), np.nan)


# --------------------------------------------------------------------------- every map x every reference

def _flat(a) -> np.ndarray:
    return a.reshape(len(a), -1)


def pearson_matrix(a, b) -> np.ndarray:
    """(N, M): ``pearson`` of map ``a[i]`` with map ``b[j]``."""
    def z(m):
        x = _flat(_batch(m, "pearson_matrix"))
        x = x - x.mean(axis=1, keepdims=True)
        norm = np.sqrt((x * x).sum(axis=1, keepdims=True))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(norm > 0, x / norm, np.nan)
    return z(a) @ z(b).T


def top_mass_iou_matrix(a, b, *, mass: float = 0.2) -> np.ndarray:
    """(N, M): ``top_mass_iou`` of map ``a[i]`` with map ``b[j]``."""
    ra = _flat(top_mass_region(a, mass=mass)).astype(np.float64)
    rb = _flat(top_mass_region(b, mass=mass)).astype(np.float64)
    inter = ra @ rb.T
    union_ = ra.sum(axis=1)[:, None] + rb.sum(axis=1)[None, :] - inter
    empty = (ra.sum(axis=1) == 0)[:, None] | (rb.sum(axis=1) == 0)[None, :]
    return np.where(empty, np.nan, inter / np.maximum(union_, 1))


def mask_share_matrix(maps, masks) -> np.ndarray:
    """(N, M): ``mask_share`` of map ``maps[i]`` inside mask ``masks[j]``."""
    p = normalise(maps)
    m = np.asarray(masks, dtype=bool)
    m = m[None] if m.ndim == 2 else m
    if m.shape[1:] != p.shape[1:]:
        raise ValueError(f"mask_share_matrix: masks of shape {m.shape} do not match maps of shape {p.shape}")
    return _flat(p) @ _flat(m).T.astype(np.float64)


def pointing_matrix(maps, masks, *, cells: tuple[int, int] | None = None) -> np.ndarray:
    """(N, M): ``pointing_hit`` of map ``maps[i]`` in mask ``masks[j]``."""
    a = _batch(maps, "pointing_matrix")
    m = np.asarray(masks, dtype=bool)
    m = _flat(m[None] if m.ndim == 2 else m)
    if m.shape[1] != a[0].size:
        raise ValueError(f"pointing_matrix: masks of {m.shape[1]} pixels do not match maps of {a[0].size}")
    hit = m[:, pointed_pixel(a, cells=cells)].T.astype(np.float64)
    return np.where((_flat(a).max(axis=1) > 0)[:, None], hit, np.nan)


def shuffled_means(matrix, groups) -> np.ndarray:
    """(N,): per row ``i``, the mean of ``matrix[i, j]`` over the columns ``j`` of another group
    than ``i``'s (NaN left out): row ``i``'s map scored against the references of faces of other
    classes. With equally sized groups, a map that is the same for every face gets exactly its
    paired score's mean here, so it scores no effect against this null."""
    g = np.asarray(groups)
    other = g[:, None] != g[None, :]
    x = np.asarray(matrix, dtype=np.float64)
    use = other & np.isfinite(x)
    count = use.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(use, x, 0.0).sum(axis=1) / count, np.nan)


# --------------------------------------------------------------------------- nulls without a model

#: The centred prior's standard deviation, a share of the image side: a quarter puts two thirds
#: of the map's mass within the middle half of the face, where the synthetic faces' units lie.
CENTRED_SIGMA = 0.25


def centred_prior(size: tuple[int, int], *, sigma: float = CENTRED_SIGMA) -> np.ndarray:
    """(H, W) a Gaussian centred on the image, ``sigma`` a share of each side: where a map
    looks that knows only that faces are centred and their features lie inward."""
    h, w = size
    y = (np.arange(h) + 0.5) / h - 0.5
    x = (np.arange(w) + 0.5) / w - 0.5
    return np.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma ** 2))


def cell_centres(cells: tuple[int, int], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Row and column pixel indices of the centres of a ``cells`` grid upsampled to ``size``
    (the pixel holding each centre; a centre on a pixel border takes the lower-right one)."""
    (gh, gw), (h, w) = cells, size
    rows = np.minimum(((np.arange(gh) + 0.5) * h / gh).astype(int), h - 1)
    cols = np.minimum(((np.arange(gw) + 0.5) * w / gw).astype(int), w - 1)
    return rows, cols


def cell_chance(masks, cells: tuple[int, int]) -> np.ndarray:
    """(N,) the pointing game's chance level: the share of the grid's cell centres inside each
    mask. A Grad-CAM map is a ``cells`` grid upsampled bilinearly, so its maximum lies at (next
    to) a cell centre; a map peaking at a random cell hits with this probability, which differs
    from the mask's area share when the mask is small against a cell."""
    m = np.asarray(masks, dtype=bool)
    m = m[None] if m.ndim == 2 else m
    rows, cols = cell_centres(cells, m.shape[1:])
    return m[:, rows][:, :, cols].reshape(len(m), -1).mean(axis=1)


#: The coarsest grid (cells a side) on which region scores (AU share, pointing) are given. The
#: synthetic faces' regions are 9 to 16 px tall on a 64-px face (14-25% of the side; measured on
#: au_masks.npz): at 8 cells a side a cell is 12.5% of the side, at 4 it is 25%, as tall as the
#: tallest region, so a cell holds a region and its neighbours and the map cannot tell them apart.
MIN_AU_CELLS = 8


def au_refusal(cells: tuple[int, int], *, size: int, minimum: int = MIN_AU_CELLS) -> str | None:
    """None when a ``cells`` grid at ``size`` px supports region scores, else the one-line reason."""
    h, w = cells
    if min(h, w) >= minimum:
        return None
    need = math.ceil(size * minimum / min(h, w))
    return (f"action-unit scores refused: the Grad-CAM layer's map is {h}x{w} cells at {size} px, below "
            f"the {minimum}x{minimum} minimum (a cell spans 1/{min(h, w)} of the image, as much as an action "
            f"unit's region or more); feed the model {need} px or more, or pick an earlier --layer")


# --------------------------------------------------------------------------- effect and p-value

#: Sign-flip draws when the exact enumeration (2^n) is too large.
FLIPS = 20_000
EXACT_UP_TO = 16


def sign_flip_test(observed, null, *, clusters=None, flips: int = FLIPS, seed: int = 0) -> dict:
    """Effect and one-sided p-value of ``observed`` against ``null``, paired per face.

    The differences ``d = observed - null`` (pairs with a NaN left out); ``diff``: their mean,
    the effect in the score's unit; ``above``: the share of faces where the observed score beats
    the null (ties count half); ``p``: the paired sign-flip permutation p-value of the summed
    difference, H1 observed > null. ``clusters`` (one label per face, e.g. the test subject):
    the signs flip per cluster, on the cluster's summed difference, so that faces that are not
    independent (one subject's faces of several classes) count as one unit; ``units`` says how
    many. Exact up to ``EXACT_UP_TO`` units, else ``flips`` random sign vectors with
    p = (1 + hits) / (1 + flips); ``min_p``: the smallest p these units could give (every unit
    above its null): a test whose ``min_p`` is not below the level cannot reject. Exact under
    H0 "observed and null are exchangeable within each unit"; on 0/1 scores (pointing) per face
    it is the exact sign test."""
    o = np.asarray(observed, dtype=np.float64).ravel()
    z = np.asarray(null, dtype=np.float64).ravel()
    if o.shape != z.shape:
        raise ValueError(f"sign_flip_test: {o.size} observed scores but {z.size} null scores")
    keep = np.isfinite(o) & np.isfinite(z)
    d = o[keep] - z[keep]
    n = int(d.size)
    if n == 0:
        return {"n": 0, "units": 0, "observed": None, "null": None, "diff": None, "above": None, "p": None,
                "min_p": None}
    if clusters is None:
        units = d
    else:
        labels = np.asarray(clusters).ravel()
        if labels.size != o.size:
            raise ValueError(f"sign_flip_test: {labels.size} cluster labels for {o.size} faces")
        _, which = np.unique(labels[keep], return_inverse=True)
        units = np.bincount(which, weights=d)
    k = int(units.size)
    t = units.sum()
    nonzero = int((np.abs(units) > 1e-12).sum())
    if k <= EXACT_UP_TO:
        signs = 1.0 - 2.0 * ((np.arange(2 ** k)[:, None] >> np.arange(k)) & 1)
        p = float((signs @ units >= t - 1e-9).mean())
        min_p = 0.5 ** nonzero
    else:
        rng = np.random.default_rng(seed)
        hits, done = 0, 0
        while done < flips:  # in blocks: (flips x k) signs at once would be large for many faces
            b = min(2000, flips - done)
            hits += int(((rng.integers(0, 2, size=(b, k)) * 2 - 1) @ units >= t - 1e-9).sum())
            done += b
        p = (1 + hits) / (1 + flips)
        min_p = max(1 / (1 + flips), 0.5 ** nonzero)
    return {"n": n, "units": k, "observed": float(o[keep].mean()), "null": float(z[keep].mean()),
            "diff": float(d.mean()), "above": float(((d > 0).sum() + 0.5 * (d == 0).sum()) / n),
            "p": float(p), "min_p": float(min_p)}


def pointing_chance_test(hits, chance) -> dict:
    """The pointing game against its chance level: hits (0/1 per face) against independent
    Bernoulli(``chance``) draws; ``p`` = P(as many hits or more), the exact Poisson-binomial tail
    (H0, a map that points at a random cell of each face, makes the faces independent).
    Keys as :func:`sign_flip_test`'s (``above``: the share of faces whose hit, 0 or 1, beats its
    chance level)."""
    h = np.asarray(hits, dtype=np.float64).ravel()
    c = np.asarray(chance, dtype=np.float64).ravel()
    keep = np.isfinite(h) & np.isfinite(c)
    h, c = h[keep], np.clip(c[keep], 0.0, 1.0)
    n = int(h.size)
    if n == 0:
        return {"n": 0, "units": 0, "observed": None, "null": None, "diff": None, "above": None, "p": None,
                "min_p": None}
    dist = np.ones(1)
    for q in c:  # the distribution of the number of hits, one face at a time
        dist = np.concatenate([dist * (1 - q), [0.0]]) + np.concatenate([[0.0], dist * q])
    k = int(round(h.sum()))
    d = h - c
    return {"n": n, "units": n, "observed": float(h.mean()), "null": float(c.mean()), "diff": float(d.mean()),
            "above": float(((d > 0).sum() + 0.5 * (d == 0).sum()) / n), "p": float(min(1.0, dist[k:].sum())),
            "min_p": float(dist[-1])}
