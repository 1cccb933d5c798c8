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
  of Zhang et al., "Top-down neural attention by excitation backprop", ECCV 2016).
"""

from __future__ import annotations

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


def pointing_hit(maps, masks) -> np.ndarray:
    """(N,) 1.0 where the map's maximum pixel lies inside the mask, 0.0 where not, NaN for a
    map without mass."""
    a = _batch(maps, "pointing_hit")
    m = _masks(masks, a, "pointing_hit")
    flat = a.reshape(len(a), -1)
    hit = np.take_along_axis(m.reshape(len(m), -1), flat.argmax(axis=1)[:, None], axis=1)[:, 0]
    return np.where(flat.max(axis=1) > 0, hit.astype(np.float64), np.nan)
