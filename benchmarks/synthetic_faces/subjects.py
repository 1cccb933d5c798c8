"""One synthetic person (:class:`Subject`): identity, style and how they use their face,
and the action-unit intensities of each image of them (:func:`action_units`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from cfer.benchmarks.synthetic_faces.action_units import AU_NAMES, AU_TABLE
from cfer.benchmarks.synthetic_faces.config import SyntheticConfig
from cfer.benchmarks.taxonomy import NEUTRAL


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


def active_units(expression: str, subject: Subject) -> frozenset[int]:
    """The AUs drawn at full strength on ``subject``'s ``expression``: the primary ones and the
    secondary ones this subject uses (the rest only leak in, below ``SyntheticConfig.leak``)."""
    return frozenset(AU_TABLE[expression].primary) | subject.secondary[expression]
