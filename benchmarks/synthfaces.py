"""The built-in synthetic face data set, written in the CFEE layout.

Faces are drawn procedurally (numpy + Pillow, no download): every subject has
its own face (shape, skin tone, hair, eye spacing, brow and mouth geometry,
pose, lighting, noise), and every expression is rendered from facial action
units (AUs). Each basic and compound expression is a set of primary AUs plus
optional secondary AUs (Du, Tao & Martinez 2014, Table 1, in :data:`AU_TABLE`),
so a compound expression shares the AUs of its basic components. The output
is ``<out>/<group>/Images<k>/EE_SSS_NNNN.jpg``, read by
:func:`cfer.benchmarks.readers.cfee.load_cfee` like the real CFEE. Results on it say
nothing about real faces; it exists so that everything runs and is tested
anywhere.

Beside the images, ``<out>/au_masks.npz`` (:data:`AU_MASKS`) holds each image's
action-unit regions (:data:`AU_REGIONS`: brows, lids, cheeks, nose wrinkle, upper
lip, lip corners, jaw), drawn with the face's own pose, and its active AUs: ground
truth for attribution maps (:func:`read_au_masks`; at the model's input size
through :func:`cfer.benchmarks.cache.load_region_masks`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from cfer.benchmarks.taxonomy import CFEE_IDS, NEUTRAL

log = logging.getLogger(__name__)

#: Name of the manifest that marks a folder as this generator's output.
MANIFEST = "synthetic.json"
#: Bumped whenever the pictures change for the same parameters (invalidates reuse).
GENERATOR_VERSION = 1


# --------------------------------------------------------------------------- action units

#: FACS action units used by the renderer (number -> name).
AU_NAMES: Mapping[int, str] = MappingProxyType({
    1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser",
    6: "cheek raiser", 7: "lid tightener", 9: "nose wrinkler", 10: "upper lip raiser",
    11: "nasolabial deepener", 12: "lip corner puller", 15: "lip corner depressor",
    17: "chin raiser", 20: "lip stretcher", 23: "lip tightener", 24: "lip pressor",
    25: "lips part", 26: "jaw drop",
})


@dataclass(frozen=True)
class AUPattern:
    """The AUs of one expression: ``primary`` are active in more than 70% of
    CFEE's subjects, ``secondary`` in some subjects only."""

    primary: tuple[int, ...]
    secondary: tuple[int, ...] = ()

    @property
    def all(self) -> frozenset[int]:
        return frozenset(self.primary) | frozenset(self.secondary)


#: Prototypical AUs per expression: Du, Tao & Martinez, "Compound facial
#: expressions of emotion", PNAS 111(15) E1454-E1462, 2014, Table 1 (primary AUs,
#: then the bracketed inter-subject ones). The table's per-AU percentages are
#: replaced by one probability, ``SyntheticConfig.secondary_prob``.
AU_TABLE: Mapping[str, AUPattern] = MappingProxyType({
    NEUTRAL: AUPattern(()),
    "happy": AUPattern((12, 25), (6,)),
    "sad": AUPattern((4, 15), (1, 6, 11, 17)),
    "fearful": AUPattern((1, 4, 20, 25), (2, 5, 26)),
    "angry": AUPattern((4, 7, 24), (10, 17, 23)),
    "surprised": AUPattern((1, 2, 25, 26), (5,)),
    "disgusted": AUPattern((9, 10, 17), (4, 24)),
    "happily surprised": AUPattern((1, 2, 12, 25), (5, 26)),
    "happily disgusted": AUPattern((10, 12, 25), (4, 6, 9)),
    "sadly fearful": AUPattern((1, 4, 20, 25), (2, 5, 6, 15)),
    "sadly angry": AUPattern((4, 15), (6, 7, 11, 17)),
    "sadly surprised": AUPattern((1, 4, 25, 26), (2, 6)),
    "sadly disgusted": AUPattern((4, 10), (1, 6, 9, 11, 15, 17, 25)),
    "fearfully angry": AUPattern((4, 20, 25), (5, 7, 10, 11)),
    "fearfully surprised": AUPattern((1, 2, 5, 20, 25), (4, 10, 11, 26)),
    "fearfully disgusted": AUPattern((1, 4, 10, 20, 25), (2, 5, 6, 9, 15)),
    "angrily surprised": AUPattern((4, 25, 26), (5, 7, 10)),
    "angrily disgusted": AUPattern((4, 10, 17), (7, 9, 24)),
    "disgustedly surprised": AUPattern((1, 2, 5, 10), (9, 17, 24, 26)),
    "appalled": AUPattern((4, 10), (6, 9, 17, 24)),
    "hatred": AUPattern((4, 10), (7, 9, 17, 24)),
    "awed": AUPattern((1, 2, 5, 25), (4, 20, 26)),
})


@dataclass(frozen=True)
class SyntheticConfig:
    """How faces and expressions vary (the data set's difficulty).

    Defaults were tuned so that a small CNN trained on all 21 classes with
    subject-disjoint folds is clearly above chance and clearly below 100%
    (4 conv layers, 64 px, Adam 1e-3, 15 epochs: 76% and 78% test accuracy on
    two folds of 230 subjects; the AU table alone caps it near 86%, because
    close classes differ only in secondary AUs).
    """

    images_per_expression: int = 1  # CFEE: one image per subject and expression
    secondary_prob: float = 0.5  # chance a subject uses a secondary AU (Table 1: ~25-67% for basic ones)
    primary_range: tuple[float, float] = (0.7, 1.0)  # intensity of a primary AU
    secondary_range: tuple[float, float] = (0.25, 0.6)  # intensity of a used secondary AU
    leak: float = 0.06  # largest intensity of an AU outside the expression's pattern
    noise: float = 1.0  # scale of the per-subject pixel noise level
    supersample: int = 2  # draw at this multiple of the size, then downsample
    jpeg_quality: int = 90

    def check(self) -> SyntheticConfig:
        if self.images_per_expression < 1:
            raise ValueError(f"images_per_expression={self.images_per_expression}: must be >= 1")
        if not 0.0 <= self.secondary_prob <= 1.0:
            raise ValueError(f"secondary_prob={self.secondary_prob}: must be in [0, 1]")
        if self.supersample < 1 or not 1 <= self.jpeg_quality <= 95:
            raise ValueError("supersample must be >= 1 and jpeg_quality in 1..95")
        return self


# --------------------------------------------------------------------------- subjects

def _lerp(a, b, t):
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


@dataclass(frozen=True)
class Subject:
    """One synthetic person: identity, style and how they use their face.

    Lengths are in face units (face half-width ~1, y pointing down, origin
    between the eyes and the nose); colours are RGB tuples.
    """

    face_w: float
    face_h: float
    chin_taper: float
    skin: tuple[int, int, int]
    lip: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_style: int  # 0 bald, 1 short, 2 long
    hairline: float
    background: tuple[int, int, int]
    clothes: tuple[int, int, int]
    eye_dx: float
    eye_y: float
    eye_w: float
    eye_up: float
    eye_low: float
    eye_tilt: float
    iris: tuple[int, int, int]
    iris_r: float
    brow_h: float
    brow_arch: float
    brow_thick: float
    brow_len: float
    nose_y: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip_up: float
    lip_low: float
    rest_mouth: float  # resting corner height (+ down)
    rest_brow: float  # resting inner-brow height (+ down)
    glasses: bool
    moustache: bool
    moles: tuple[tuple[float, float], ...]
    offset: tuple[float, float]  # face centre shift, fraction of the image
    scale: float
    roll: float  # degrees
    light_dir: float  # radians
    light: float  # strength of the light gradient
    ambient: float
    tint: tuple[float, float, float]
    noise: float  # pixel noise std (0-255 scale)
    expressiveness: float
    au_gain: Mapping[int, float]
    secondary: Mapping[str, frozenset[int]]  # expression -> secondary AUs this subject uses


def random_subject(rng: np.random.Generator, config: SyntheticConfig) -> Subject:
    """Draw one subject's identity and expressive habits."""
    u = rng.uniform
    dark, light = np.array([88, 56, 40]), np.array([238, 206, 182])
    tone = u(0.0, 1.0)
    skin = np.clip((dark + (light - dark) * tone) * rng.normal(1.0, 0.04, 3), 0, 255)
    lip = np.clip(skin * np.array([0.85, 0.55, 0.55]) + np.array([25, 0, 5]), 0, 255)
    hair_palette = np.array([[25, 20, 18], [70, 45, 30], [130, 90, 50], [200, 170, 110],
                             [150, 70, 35], [160, 160, 160]])
    hair = np.clip(hair_palette[rng.integers(len(hair_palette))] * rng.normal(1.0, 0.08, 3), 0, 255)
    secondary = {name: frozenset(int(a) for a in pat.secondary if rng.random() < config.secondary_prob)
                 for name, pat in AU_TABLE.items()}
    n_moles = int(rng.integers(0, 4))
    return Subject(
        face_w=u(0.88, 1.08), face_h=u(1.22, 1.45), chin_taper=u(0.0, 0.35),
        skin=tuple(int(v) for v in skin), lip=tuple(int(v) for v in lip),
        hair=tuple(int(v) for v in hair),
        hair_style=int(rng.choice(3, p=[0.1, 0.5, 0.4])), hairline=u(-0.95, -0.7),
        background=tuple(int(v) for v in rng.integers(40, 220, 3)),
        clothes=tuple(int(v) for v in rng.integers(20, 235, 3)),
        eye_dx=u(0.36, 0.46), eye_y=u(-0.3, -0.16), eye_w=u(0.17, 0.22),
        eye_up=u(0.055, 0.08), eye_low=u(0.035, 0.055), eye_tilt=u(-0.03, 0.02),
        iris=tuple(int(v) for v in rng.choice([[60, 40, 25], [100, 70, 40], [60, 90, 130],
                                               [80, 110, 80], [35, 25, 20]])),
        iris_r=u(0.05, 0.065), brow_h=u(0.16, 0.24), brow_arch=u(0.0, 0.06),
        brow_thick=u(0.045, 0.08), brow_len=u(0.34, 0.44),
        nose_y=u(0.2, 0.34), nose_w=u(0.11, 0.18),
        mouth_y=u(0.6, 0.72), mouth_w=u(0.28, 0.38), lip_up=u(0.03, 0.055), lip_low=u(0.04, 0.075),
        rest_mouth=u(-0.015, 0.02), rest_brow=u(-0.02, 0.02),
        glasses=bool(rng.random() < 0.12), moustache=bool(rng.random() < 0.08),
        moles=tuple((float(u(-0.8, 0.8)), float(u(-0.6, 1.0))) for _ in range(n_moles)),
        offset=(u(-0.03, 0.03), u(-0.02, 0.04)), scale=u(0.9, 1.05), roll=u(-4.0, 4.0),
        light_dir=u(0, 2 * np.pi), light=u(0.05, 0.3), ambient=u(0.8, 1.1),
        tint=tuple(float(v) for v in rng.normal(1.0, 0.05, 3)),
        noise=u(1.5, 6.0) * config.noise,
        expressiveness=u(0.8, 1.2),
        au_gain=MappingProxyType({a: float(u(0.8, 1.2)) for a in AU_NAMES}),
        secondary=MappingProxyType(secondary),
    )


def action_units(expression: str, subject: Subject, rng: np.random.Generator,
                 config: SyntheticConfig) -> dict[int, float]:
    """AU intensities (0 = absent, ~1 = strong) of one image of ``expression``.

    Primary AUs of the pattern are always on; secondary ones only if this
    subject uses them; every other AU leaks in weakly (up to ``config.leak``).
    """
    if expression not in AU_TABLE:
        raise KeyError(f"expression {expression!r} has no AU pattern (known: {', '.join(AU_TABLE)})")
    pat = AU_TABLE[expression]
    k = subject.expressiveness
    out = {}
    for a in AU_NAMES:
        if a in pat.primary:
            v = k * subject.au_gain[a] * rng.uniform(*config.primary_range)
        elif a in subject.secondary[expression]:
            v = k * subject.au_gain[a] * rng.uniform(*config.secondary_range)
        else:
            v = rng.uniform(0.0, config.leak) if expression != NEUTRAL else rng.uniform(0.0, config.leak / 2)
        out[a] = float(v)
    return out


# --------------------------------------------------------------------------- rendering

def _bezier(p0, p1, p2, n: int = 12) -> np.ndarray:
    """Quadratic Bezier through control points, sampled at ``n`` points."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t ** 2 * np.asarray(p2)


def _through(p0, mid, p2, n: int = 12) -> np.ndarray:
    """Quadratic Bezier from ``p0`` to ``p2`` that passes through ``mid`` at t = 0.5."""
    ctrl = 2 * np.asarray(mid, float) - (np.asarray(p0, float) + np.asarray(p2, float)) / 2
    return _bezier(p0, ctrl, p2, n)


def _ellipse(cx, cy, rx, ry, n: int = 40) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


class _Canvas:
    """Pillow drawing in face units: maps face coordinates through the pose."""

    def __init__(self, size: int, background, center, unit: float, roll_deg: float):
        from PIL import Image, ImageDraw

        self.image = Image.new("RGB", (size, size), background)
        self.draw = ImageDraw.Draw(self.image)
        self.center = np.asarray(center, float)
        self.unit = unit
        r = np.deg2rad(roll_deg)
        self.rot = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]]) * unit

    def xy(self, pts) -> list[float]:
        pts = np.asarray(pts, float).reshape(-1, 2)
        return (pts @ self.rot.T + self.center).ravel().tolist()

    def width(self, w: float) -> int:
        return max(1, int(round(w * self.unit)))

    def poly(self, pts, fill) -> None:
        self.draw.polygon(self.xy(pts), fill=fill)

    def line(self, pts, fill, w: float) -> None:
        self.draw.line(self.xy(pts), fill=fill, width=self.width(w), joint="curve")


def _mouth_shape(s: Subject, au: Mapping[int, float]) -> dict:
    """Mouth corner and lip curve positions after the AUs (face units)."""
    a = au.get
    width = s.mouth_w * (1 + 0.22 * a(12) + 0.3 * a(20) - 0.12 * a(23) - 0.12 * a(24) - 0.05 * a(26))
    corner = s.mouth_y + s.rest_mouth - 0.12 * a(12) + 0.1 * a(15) + 0.02 * a(20) + 0.025 * a(17)
    opening = (0.045 * a(25) + 0.2 * a(26) * min(1.0, 0.4 + a(25))) * max(0.0, 1 - a(24) - 0.5 * a(23))
    thin = 1 - 0.45 * a(23) - 0.45 * a(24) - 0.2 * a(20)
    upper_in = s.mouth_y - 0.3 * opening - 0.045 * a(10) - 0.025 * a(17)
    lower_in = s.mouth_y + 0.7 * opening - 0.025 * a(17)
    return {
        "width": width, "corner": corner, "upper_in": upper_in, "lower_in": lower_in,
        "upper_out": upper_in - s.lip_up * max(0.25, thin) - 0.025 * a(10),
        "lower_out": lower_in + s.lip_low * max(0.25, thin + 0.3 * a(17)),
        "opening": opening,
    }


def _draw_background(c: _Canvas, s: Subject, au: Mapping[int, float]) -> None:
    jaw = 0.14 * au[26]
    c.poly(_ellipse(0, 2.45 + jaw / 2, 2.0, 1.0), s.clothes)
    neck = _lerp(s.skin, (0, 0, 0), 0.18)
    w = s.face_w
    c.poly([(-0.42 * w, 0.6), (0.42 * w, 0.6), (0.5 * w, 1.8), (-0.5 * w, 1.8)], neck)
    if s.hair_style == 2:  # long hair falls behind the face
        c.poly(np.concatenate([_ellipse(0, -0.25, 1.25 * s.face_w, 1.15 * s.face_h)[20:],
                               [(1.25 * s.face_w, 1.1), (-1.25 * s.face_w, 1.1)]]), s.hair)
        c.poly(_ellipse(0, -0.3, 1.25 * s.face_w, 1.1 * s.face_h), s.hair)
    ear = _lerp(s.skin, (0, 0, 0), 0.1)
    for side in (-1, 1):
        c.poly(_ellipse(side * 0.97 * s.face_w, s.eye_y + 0.22, 0.11, 0.2, 16), ear)


def _face_outline(s: Subject, au: Mapping[int, float]) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    sin = np.sin(t)
    low = np.clip(sin, 0, None)
    x = s.face_w * np.cos(t) * (1 - s.chin_taper * low ** 2)
    y = s.face_h * sin + 0.14 * au[26] * low ** 2  # the jaw drop lowers the chin
    return np.stack([x, y - 0.05], axis=1)


def _draw_head(c: _Canvas, s: Subject, au: Mapping[int, float]) -> None:
    outline = _face_outline(s, au)
    if s.hair_style:
        c.poly(_ellipse(0, -0.55, 1.07 * s.face_w, 0.95), s.hair)
    c.poly(outline, s.skin)
    if s.hair_style:  # the hair cap: the outline above the hairline, with a curved fringe
        top = outline[outline[:, 1] < s.hairline + 0.05]
        top = top[np.argsort(np.arctan2(top[:, 1], top[:, 0]))]
        fringe = _through((top[-1, 0], s.hairline), (0, s.hairline + 0.08), (top[0, 0], s.hairline))
        c.poly(np.concatenate([top, fringe]), s.hair)
    mole = _lerp(s.skin, (40, 25, 20), 0.6)
    for mx, my in s.moles:
        c.poly(_ellipse(mx * s.face_w, my, 0.018, 0.018, 8), mole)


def _draw_eyes(c: _Canvas, s: Subject, au: Mapping[int, float]) -> None:
    a = au.get
    up = max(0.006, s.eye_up + 0.07 * a(5) - 0.035 * a(7) - 0.015 * a(6) - 0.012 * a(4) - 0.008 * a(9))
    low = max(0.004, s.eye_low + 0.015 * a(5) - 0.035 * a(7) - 0.03 * a(6) - 0.008 * a(9))
    lid, crease = _lerp(s.skin, (20, 12, 10), 0.85), _lerp(s.skin, (30, 20, 15), 0.3)
    fold = _lerp(s.skin, (40, 25, 20), min(1.0, 0.5 * a(6) + 0.5 * a(7)))
    for side in (-1, 1):
        cx, cy = side * s.eye_dx, s.eye_y
        inner, outer = (cx - side * s.eye_w, cy), (cx + side * s.eye_w, cy + s.eye_tilt)
        upper = _through(inner, (cx, cy - up), outer)
        lower = _through(inner, (cx, cy + low), outer)
        c.poly(np.concatenate([upper, lower[::-1]]), (236, 232, 226))
        c.poly(_ellipse(cx, cy + 0.008, s.iris_r, s.iris_r, 20), s.iris)
        c.poly(_ellipse(cx, cy + 0.008, 0.45 * s.iris_r, 0.45 * s.iris_r, 12), (15, 10, 10))
        # Skin over the parts of the iris outside the lids (Pillow cannot clip).
        c.poly(np.concatenate([upper, [(outer[0], cy - 0.12), (inner[0], cy - 0.12)]]), s.skin)
        c.poly(np.concatenate([lower, [(outer[0], cy + 0.12), (inner[0], cy + 0.12)]]), s.skin)
        c.line(upper, lid, 0.026)
        c.line(lower, crease, 0.008)
        c.line(_through(inner, (cx, cy - up - 0.04), outer), crease, 0.008)
        if a(6) + a(7) > 0.15:  # bulge under the lower lid
            c.line(_through((inner[0], cy + 0.03), (cx, cy + low + 0.045), (outer[0], cy + 0.04)), fold, 0.01)
        if a(6) > 0.2:  # crow's feet
            feet = _lerp(s.skin, (40, 25, 20), min(1.0, 0.7 * a(6)))
            ox = outer[0] + side * 0.04
            for dy in (-0.03, 0.0, 0.03):
                c.line([(ox, cy + dy), (ox + side * 0.07, cy + 1.6 * dy)], feet, 0.008)
    if s.glasses:
        rim = (25, 25, 30)
        for side in (-1, 1):
            c.line(np.concatenate([_ellipse(side * s.eye_dx, s.eye_y, s.eye_w + 0.07, 0.12, 24),
                                   _ellipse(side * s.eye_dx, s.eye_y, s.eye_w + 0.07, 0.12, 24)[:1]]),
                   rim, 0.022)
        c.line([(-s.eye_dx + s.eye_w + 0.07, s.eye_y - 0.02), (s.eye_dx - s.eye_w - 0.07, s.eye_y - 0.02)],
               rim, 0.02)


def _draw_brows(c: _Canvas, s: Subject, au: Mapping[int, float]) -> None:
    a = au.get
    color = _lerp(s.hair, (15, 10, 10), 0.4)
    base = s.eye_y - s.brow_h
    wrinkle = (25, 15, 12)
    inner_y = base + s.rest_brow - 0.17 * a(1) + 0.11 * a(4) + 0.035 * a(9)
    mid_y = base - s.brow_arch - 0.07 * a(1) - 0.09 * a(2) + 0.06 * a(4)
    outer_y = base - 0.01 - 0.02 * a(1) - 0.16 * a(2) + 0.03 * a(4)
    pull = 0.05 * a(4)
    for side in (-1, 1):
        cx = side * s.eye_dx
        inner = (cx - side * (s.brow_len * 0.45 - pull), inner_y)
        outer = (cx + side * s.brow_len * 0.55, outer_y)
        curve = _through(inner, (cx + side * 0.03, mid_y), outer, 14)
        d = np.gradient(curve, axis=0)
        normal = np.stack([-d[:, 1], d[:, 0]], axis=1) / np.linalg.norm(d, axis=1, keepdims=True)
        half = (s.brow_thick * np.linspace(1.0, 0.45, len(curve)) / 2)[:, None]
        c.poly(np.concatenate([curve + normal * half, (curve - normal * half)[::-1]]), color)
    raise_ = max(a(1), a(2))
    if raise_ > 0.15:  # forehead lines
        col = _lerp(s.skin, wrinkle, min(1.0, 0.8 * raise_))
        span = 0.22 + 0.3 * a(2) / max(raise_, 1e-6)
        for k in range(3):
            y = min(inner_y, mid_y) - 0.1 - 0.06 * k
            c.line(_through((-span, y + 0.015), (0, y - 0.012 * a(1)), (span, y + 0.015)), col, 0.012)
    if a(4) > 0.15:  # vertical furrows between the brows
        col = _lerp(s.skin, wrinkle, min(1.0, 0.9 * a(4)))
        for x in (-0.045, 0.045):
            c.line([(x, inner_y - 0.04), (x * 0.8, inner_y + 0.08)], col, 0.014)


def _draw_nose(c: _Canvas, s: Subject, au: Mapping[int, float]) -> None:
    a = au.get
    y = s.nose_y - 0.035 * a(9) - 0.015 * a(10)
    w = s.nose_w * (1 + 0.25 * a(9))
    shade = _lerp(s.skin, (40, 25, 20), 0.35)
    c.line(_through((-0.06, s.eye_y + 0.05), (-0.08, (s.eye_y + y) / 2), (-w * 0.8, y - 0.04)), shade, 0.012)
    c.line(_through((-w, y - 0.02), (0, y + 0.075), (w, y - 0.02)), shade, 0.014)
    for side in (-1, 1):
        c.poly(_ellipse(side * 0.45 * w, y + 0.03, 0.035, 0.016, 12), _lerp(s.skin, (20, 10, 10), 0.7))
    if a(9) > 0.15:  # wrinkles across the bridge
        col = _lerp(s.skin, (25, 15, 12), min(1.0, 0.9 * a(9)))
        for k in range(3):
            yy = s.eye_y + 0.05 + 0.045 * k
            c.line(_through((-0.1, yy + 0.012), (0, yy - 0.012), (0.1, yy + 0.012)), col, 0.013)


def _draw_mouth(c: _Canvas, s: Subject, au: Mapping[int, float]) -> None:
    a = au.get
    m = _mouth_shape(s, au)
    fold_k = min(1.0, 0.15 + 0.6 * a(10) + 0.7 * a(11) + 0.4 * a(12) + 0.3 * a(9))
    fold = _lerp(s.skin, (30, 18, 14), 0.8 * fold_k)
    for side in (-1, 1):  # nasolabial folds
        start = (side * (s.nose_w + 0.05), s.nose_y - 0.02 - 0.02 * a(9))
        end = (side * (m["width"] + 0.06), m["corner"] + 0.07 - 0.03 * a(12))
        bend = (side * (m["width"] + 0.1), (start[1] + end[1]) / 2)
        c.line(_through(start, bend, end), fold, 0.016)
    if a(6) + a(12) > 0.3:  # raised cheeks
        blush = _lerp(s.skin, (255, 200, 190), 0.25 * min(1.0, a(6) + 0.5 * a(12)))
        for side in (-1, 1):
            c.poly(_ellipse(side * (s.eye_dx + 0.05), s.nose_y - 0.06 - 0.05 * a(6), 0.16, 0.09, 20), blush)

    x = np.linspace(-1.0, 1.0, 25)
    bow = 0.012 * np.exp(-(x / 0.18) ** 2)  # the dip of the cupid's bow

    def curve(center, extra=0.0):
        return np.stack([x * m["width"], center + (m["corner"] - center) * x ** 2 + extra], axis=1)

    upper_out, upper_in = curve(m["upper_out"], bow), curve(m["upper_in"])
    lower_in, lower_out = curve(m["lower_in"]), curve(m["lower_out"])
    if s.moustache:
        low, high = curve(m["upper_out"] - 0.01)[3:-3], curve(m["upper_out"] - 0.09)[3:-3]
        c.poly(np.concatenate([low, high[::-1]]), s.hair)
    c.poly(np.concatenate([upper_out, lower_out[::-1]]), s.lip)
    dark = (55, 18, 22)
    if m["opening"] > 0.008:
        c.poly(np.concatenate([upper_in, lower_in[::-1]]), dark)
        teeth_h = 0.035 + 0.02 * a(10)
        mid = np.abs(x) < 0.75
        top = upper_in[mid]
        bottom = np.stack([top[:, 0], np.minimum(top[:, 1] + teeth_h, lower_in[mid, 1])], axis=1)
        c.poly(np.concatenate([top, bottom[::-1]]), (235, 232, 220))
        if m["opening"] > 0.08:  # lower teeth when the jaw drops
            bot = lower_in[mid]
            topl = np.stack([bot[:, 0], np.maximum(bot[:, 1] - 0.025, top[:, 1])], axis=1)
            c.poly(np.concatenate([topl, bot[::-1]]), (220, 216, 205))
    else:
        c.line(upper_in, _lerp(s.lip, dark, 0.7), 0.014)
    if a(17) > 0.2:  # chin boss
        col = _lerp(s.skin, (30, 18, 14), min(1.0, 0.8 * a(17)))
        yb = m["lower_out"] + 0.08
        c.line(_through((-0.12, yb + 0.02), (0, yb - 0.02), (0.12, yb + 0.02)), col, 0.014)
    if a(24) + a(23) > 0.3:  # pressed lips bulge the skin around them
        col = _lerp(s.skin, (30, 18, 14), min(1.0, 0.6 * (a(23) + a(24))))
        c.line(curve(m["upper_out"] - 0.03)[6:-6], col, 0.012)


def render_face(subject: Subject, au: Mapping[int, float], *, size: int, rng: np.random.Generator,
                config: SyntheticConfig) -> np.ndarray:
    """Draw ``subject`` with AU intensities ``au``: a (size, size, 3) uint8 array.

    Per-image jitter of pose and light, then the subject's lighting and noise.
    """
    return _render(subject, au, size=size, rng=rng, config=config)[0]


def _render(subject: Subject, au: Mapping[int, float], *, size: int, rng: np.random.Generator,
            config: SyntheticConfig) -> tuple[np.ndarray, _Canvas]:
    """:func:`render_face`'s image and the canvas it was drawn on (its pose transform places
    the action-unit regions of :func:`region_masks`)."""
    from PIL import Image

    ss = size * config.supersample
    s = subject
    dx, dy = s.offset[0] + rng.normal(0, 0.012), s.offset[1] + rng.normal(0, 0.012)
    unit = 0.42 * ss * s.scale * rng.uniform(0.97, 1.03)
    c = _Canvas(ss, s.background, ((0.5 + dx) * ss, (0.5 + dy) * ss), unit, s.roll + rng.normal(0, 1.5))
    _draw_background(c, s, au)
    _draw_head(c, s, au)
    _draw_eyes(c, s, au)
    _draw_brows(c, s, au)
    _draw_nose(c, s, au)
    _draw_mouth(c, s, au)
    img = c.image.resize((size, size), Image.Resampling.BOX) if config.supersample > 1 else c.image

    arr = np.asarray(img, dtype=np.float32)
    g = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    phi = s.light_dir + rng.normal(0, 0.2)
    ramp = np.cos(phi) * g[None, :] + np.sin(phi) * g[:, None]
    gain = s.ambient * rng.uniform(0.95, 1.05) * (1 + s.light * ramp)
    arr = arr * gain[:, :, None] * np.asarray(s.tint, np.float32)
    arr += rng.normal(0.0, s.noise, arr.shape).astype(np.float32)
    return np.clip(arr, 0, 255).astype(np.uint8), c


# --------------------------------------------------------------------------- action-unit regions

#: Face regions the renderer changes, and the AUs that change each, read off the ``_draw_*``
#: functions (an AU that moves several parts is in several regions: AU 9 also lowers the inner
#: brows, AU 12 also raises the cheeks). The ground truth for attribution maps: an expression's
#: evidence lies in the regions of its active AUs.
AU_REGIONS: Mapping[str, tuple[int, ...]] = MappingProxyType({
    "brows": (1, 2, 4, 9),  # brows, forehead lines, the furrows between the brows
    "lids": (4, 5, 6, 7, 9),  # lids, the bulge under them, crow's feet
    "cheeks": (6, 12),  # the raised, flushed cheeks
    "nose_wrinkle": (9, 10),  # wrinkles across the bridge, the widened, raised nose
    "upper_lip": (9, 10, 11, 12),  # between nose and mouth, the nasolabial folds
    "lip_corners": (10, 11, 12, 15, 17, 20, 23, 24, 25, 26),  # the mouth's width, corners, lips
    "jaw": (17, 25, 26),  # the parted lips, the open jaw, the chin
})
#: The file of per-image region masks that :func:`write_synthetic` writes beside the images.
AU_MASKS = "au_masks.npz"


def _region_ellipses(s: Subject, region: str) -> list[tuple[float, float, float, float]]:
    """(cx, cy, rx, ry) ellipses in face units around where the renderer draws ``region``'s AUs
    (see the ``_draw_*`` functions), generous enough to hold them at full intensity."""
    base = s.eye_y - s.brow_h  # the brows' resting line
    if region == "brows":
        return [(side * 0.85 * s.eye_dx, base - 0.12, s.brow_len * 0.6 + 0.1, 0.24) for side in (-1, 1)]
    if region == "lids":
        return [(side * (s.eye_dx + 0.03), s.eye_y + 0.01, s.eye_w + 0.12, 0.13) for side in (-1, 1)]
    if region == "cheeks":
        return [(side * (s.eye_dx + 0.05), s.nose_y - 0.08, 0.2, 0.14) for side in (-1, 1)]
    if region == "nose_wrinkle":
        top, bottom = s.eye_y + 0.02, s.nose_y + 0.08
        return [(0.0, (top + bottom) / 2, max(0.15, 1.3 * s.nose_w), (bottom - top) / 2 + 0.03)]
    if region == "upper_lip":
        top, bottom = s.nose_y - 0.04, s.mouth_y + 0.02
        return [(0.0, (top + bottom) / 2, s.mouth_w + 0.16, (bottom - top) / 2 + 0.03)]
    if region == "lip_corners":
        return [(0.0, s.mouth_y + 0.02, 1.5 * s.mouth_w + 0.08, 0.16)]
    if region == "jaw":
        top, bottom = s.mouth_y - 0.03, s.face_h + 0.15  # the jaw drop lowers the chin by 0.14
        return [(0.0, (top + bottom) / 2, 0.8 * s.face_w, (bottom - top) / 2)]
    raise KeyError(f"unknown AU region {region!r} (known: {', '.join(AU_REGIONS)})")


def region_masks(canvas: _Canvas, subject: Subject, *, size: int) -> np.ndarray:
    """The AU regions of one rendered face: a (size, size) uint8 array, bit ``r`` set where
    region ``r`` of :data:`AU_REGIONS` lies. Drawn with the face's own pose (``canvas``, the
    one :func:`_render` drew on) and downsampled as the image is (a pixel belongs to a region
    when it covers half of it or more). Uses no random numbers, so images are unchanged."""
    from PIL import Image, ImageDraw

    side = canvas.image.size[0]
    out = np.zeros((size, size), dtype=np.uint8)
    for bit, region in enumerate(AU_REGIONS):
        plane = Image.new("L", (side, side), 0)
        draw = ImageDraw.Draw(plane)
        for cx, cy, rx, ry in _region_ellipses(subject, region):
            draw.polygon(canvas.xy(_ellipse(cx, cy, rx, ry, 32)), fill=255)
        if side != size:
            plane = plane.resize((size, size), Image.Resampling.BOX)
        out |= (np.asarray(plane) >= 128).astype(np.uint8) << bit
    return out


def active_units(expression: str, subject: Subject) -> frozenset[int]:
    """The AUs drawn at full strength on ``subject``'s ``expression``: the primary ones and the
    secondary ones this subject uses (the rest only leak in, below ``SyntheticConfig.leak``)."""
    return frozenset(AU_TABLE[expression].primary) | subject.secondary[expression]


@dataclass(frozen=True)
class AUMasks:
    """The region masks of a generated set (:data:`AU_MASKS`), one entry per image.

    Attributes:
        paths: image path relative to the data set root, per entry.
        masks: (N, size, size) uint8, bit ``r`` = region ``r`` of ``regions``.
        active: (N, len(units)) bool, the image's active AUs (:func:`active_units`).
        units: the AU numbers of ``active``'s columns.
        regions: region names, in bit order.
    """

    paths: tuple[str, ...]
    masks: np.ndarray
    active: np.ndarray
    units: tuple[int, ...]
    regions: tuple[str, ...]

    def active_regions(self) -> np.ndarray:
        """(N, len(regions)) bool: the regions holding at least one active AU of each image."""
        col = {a: j for j, a in enumerate(self.units)}
        return np.stack([self.active[:, [col[a] for a in AU_REGIONS[r]]].any(axis=1)
                         for r in self.regions], axis=1)


def read_au_masks(root: str | Path) -> AUMasks:
    """The :data:`AU_MASKS` file of a generated set; a one-line error naming it otherwise."""
    path = Path(root) / AU_MASKS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no action-unit masks (written by `cfer synth` since masks "
                                "exist; regenerate the set)")
    with np.load(path, allow_pickle=False) as z:
        return AUMasks(paths=tuple(str(p) for p in z["paths"]), masks=z["masks"], active=z["active"],
                       units=tuple(int(a) for a in z["units"]), regions=tuple(str(r) for r in z["regions"]))


# --------------------------------------------------------------------------- writing

def _expressions() -> list[tuple[int, str]]:
    return sorted(CFEE_IDS.items())


def _relpath(subject_id: int, emotion_id: int, number: int) -> Path:
    group, block = (subject_id - 1) // 100 + 1, (subject_id - 1) // 10 + 1
    return Path(f"Group{group}") / f"Images{block}" / f"{emotion_id:02d}_{subject_id:03d}_{number:04d}.jpg"


def _write_subject(job: tuple) -> int:
    """Render and write every image of one subject (runs in a worker process)."""
    from PIL import Image

    root, index, seed, size, config = job
    config = SyntheticConfig(**config)
    # Subject ``index`` always gets the same stream, whatever the number of subjects.
    ident, images = np.random.SeedSequence(seed, spawn_key=(index,)).spawn(2)
    subject = random_subject(np.random.default_rng(ident), config)
    exprs = _expressions()
    k = config.images_per_expression
    img_seeds = images.spawn(len(exprs) * k)
    paths, masks, active = [], [], []
    for e, (eid, name) in enumerate(exprs):
        for r in range(k):
            rng = np.random.default_rng(img_seeds[e * k + r])
            arr, canvas = _render(subject, action_units(name, subject, rng, config), size=size, rng=rng,
                                  config=config)
            number = (index * len(exprs) + e) * k + r + 1
            rel = _relpath(index + 1, eid, number)
            path = Path(root) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(path, quality=config.jpeg_quality)
            paths.append(rel.as_posix())
            masks.append(region_masks(canvas, subject, size=size))
            on = active_units(name, subject)
            active.append([a in on for a in AU_NAMES])
    return paths, np.stack(masks), np.asarray(active, dtype=bool)


def _write_masks(path: Path, parts: list[tuple]) -> None:
    """One :data:`AU_MASKS` file from the workers' (paths, masks, active) parts."""
    np.savez_compressed(path, paths=np.array([p for part in parts for p in part[0]]),
                        masks=np.concatenate([part[1] for part in parts]),
                        active=np.concatenate([part[2] for part in parts]),
                        units=np.array(list(AU_NAMES)), regions=np.array(list(AU_REGIONS)))


def _read_manifest(root: Path) -> dict | None:
    try:
        info = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("generator") == "cfer-synthetic" else None


def _params(subjects: int, size: int, seed: int, config: SyntheticConfig) -> dict:
    return {"version": GENERATOR_VERSION, "subjects": subjects, "size": size, "seed": seed,
            "config": json.loads(json.dumps(asdict(config)))}


def write_synthetic(out: str | Path, *, subjects: int = 230, size: int = 96, seed: int = 0,
                    config: SyntheticConfig | None = None, workers: int | None = None) -> Path:
    """Generate the synthetic set into ``out`` (CFEE layout) and return ``out``.

    Images are written into a hidden temporary folder beside ``out`` and
    renamed into place at the end, so an interrupted run leaves no half data
    set. A previous synthetic output in ``out`` is replaced; any other
    non-empty folder is refused.

    Args:
        subjects: number of subjects (1..999; CFEE has 230).
        size: image side in pixels (>= 64).
        seed: generator seed (>= 0); subject i is the same for every ``subjects``.
        config: rendering knobs (difficulty); default :class:`SyntheticConfig`.
        workers: processes rendering subjects in parallel (default: CPU count).
    """
    out = Path(out)
    config = (config or SyntheticConfig()).check()
    n_expr = len(_expressions())
    if not 1 <= subjects <= 999:
        raise ValueError(f"subjects={subjects}: must be in 1..999 (CFEE file names have 3 digits)")
    if size < 64:
        raise ValueError(f"size={size}: must be at least 64 pixels")
    if seed < 0:
        raise ValueError(f"seed={seed}: must be >= 0")
    total = subjects * n_expr * config.images_per_expression
    if total > 9999:
        raise ValueError(f"{total} images do not fit CFEE's 4-digit running number; use fewer subjects")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    previous = out.is_dir() and any(out.iterdir())
    if previous and _read_manifest(out) is None:
        raise ValueError(f"{out}: folder is not empty and holds no synthetic data set ({MANIFEST}); "
                         "choose another folder")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        start = time.perf_counter()
        jobs = [(str(tmp), i, seed, size, asdict(config)) for i in range(subjects)]
        n_workers = min(workers or os.cpu_count() or 1, subjects)
        if n_workers > 1:
            with ProcessPoolExecutor(max_workers=n_workers) as pool:
                parts = list(pool.map(_write_subject, jobs, chunksize=max(1, subjects // (4 * n_workers))))
        else:
            parts = list(map(_write_subject, jobs))
        _write_masks(tmp / AU_MASKS, parts)
        written = sum(len(part[0]) for part in parts)
        manifest = {"generator": "cfer-synthetic", **_params(subjects, size, seed, config),
                    "n_images": written, "n_expressions": n_expr, "au_masks": AU_MASKS,
                    "seconds": round(time.perf_counter() - start, 2)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        if out.is_dir():
            old = out.parent / f"{tmp.name}.old"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _masks_current(root: Path) -> bool:
    """Whether ``root`` holds an :data:`AU_MASKS` file with today's regions."""
    try:
        with np.load(root / AU_MASKS, allow_pickle=False) as z:
            return [str(r) for r in z["regions"]] == list(AU_REGIONS)
    except (OSError, KeyError, ValueError):
        return False


def default_root(*, subjects: int = 230, size: int = 96, seed: int = 0) -> Path:
    from cfer.benchmarks.cache import default_cache_dir

    return default_cache_dir() / "synthetic" / f"s{subjects}_px{size}_seed{seed}"


def synthetic(*, root: str | Path | None = None, subjects: int = 230, size: int = 96, seed: int = 0,
              include_neutral: bool = False, config: SyntheticConfig | None = None):
    """The synthetic set as a :class:`~benchmarks.dataset.FaceDataset`.

    Generated into ``root`` (default ``<cache>/synthetic/s{subjects}_px{size}_seed{seed}``)
    unless a generation with the same parameters is already there.
    """
    from cfer.benchmarks.readers.cfee import load_cfee

    config = (config or SyntheticConfig()).check()
    root = Path(root) if root is not None else default_root(subjects=subjects, size=size, seed=seed)
    info = _read_manifest(root)
    want = _params(subjects, size, seed, config)
    # Sets generated before the masks existed (or with other regions) get them by regenerating:
    # the pictures come out the same.
    if info is None or {k: info.get(k) for k in want} != want or not _masks_current(root):
        log.info("generating the synthetic data set into %s", root)
        write_synthetic(root, subjects=subjects, size=size, seed=seed, config=config)
        info = _read_manifest(root)
    ds = load_cfee(root, include_neutral=include_neutral, name="synthetic")
    expected = info["n_images"] // info["n_expressions"] * (info["n_expressions"] - (not include_neutral))
    if len(ds) != expected:
        raise ValueError(f"{root}: holds {len(ds)} images but {MANIFEST} promises {expected}; "
                         "delete the folder to regenerate it")
    return ds


def cli_synth(args) -> int:
    """``cfer synth --out DIR [--subjects N] [--size PX] [--seed S]``."""
    start = time.perf_counter()
    out = write_synthetic(args.out, subjects=args.subjects, size=args.size, seed=args.seed)
    n = _read_manifest(out)["n_images"]
    print(f"wrote {n} images ({args.subjects} subjects, {args.size} px, seed {args.seed}) and their "
          f"action-unit masks ({AU_MASKS}) to {out} in {time.perf_counter() - start:.1f} s")
    return 0
