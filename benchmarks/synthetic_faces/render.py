"""Drawing one synthetic face from its subject and action-unit intensities (numpy + Pillow).

:func:`render_face` draws in face units (face half-width ~1, y pointing down) on a
:class:`Canvas` that maps them through the face's pose, at ``supersample`` times the
size, then adds the subject's light and noise.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cfer.benchmarks.synthetic_faces.config import SyntheticConfig
from cfer.benchmarks.synthetic_faces.subjects import Subject


def _lerp(a, b, t):
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


def _bezier(p0, p1, p2, n: int = 12) -> np.ndarray:
    """Quadratic Bezier through control points, sampled at ``n`` points."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t ** 2 * np.asarray(p2)


def _through(p0, mid, p2, n: int = 12) -> np.ndarray:
    """Quadratic Bezier from ``p0`` to ``p2`` that passes through ``mid`` at t = 0.5."""
    ctrl = 2 * np.asarray(mid, float) - (np.asarray(p0, float) + np.asarray(p2, float)) / 2
    return _bezier(p0, ctrl, p2, n)


def ellipse(cx, cy, rx, ry, n: int = 40) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


class Canvas:
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


def _draw_background(c: Canvas, s: Subject, au: Mapping[int, float]) -> None:
    jaw = 0.14 * au[26]
    c.poly(ellipse(0, 2.45 + jaw / 2, 2.0, 1.0), s.clothes)
    neck = _lerp(s.skin, (0, 0, 0), 0.18)
    w = s.face_w
    c.poly([(-0.42 * w, 0.6), (0.42 * w, 0.6), (0.5 * w, 1.8), (-0.5 * w, 1.8)], neck)
    if s.hair_style == 2:  # long hair falls behind the face
        c.poly(np.concatenate([ellipse(0, -0.25, 1.25 * s.face_w, 1.15 * s.face_h)[20:],
                               [(1.25 * s.face_w, 1.1), (-1.25 * s.face_w, 1.1)]]), s.hair)
        c.poly(ellipse(0, -0.3, 1.25 * s.face_w, 1.1 * s.face_h), s.hair)
    ear = _lerp(s.skin, (0, 0, 0), 0.1)
    for side in (-1, 1):
        c.poly(ellipse(side * 0.97 * s.face_w, s.eye_y + 0.22, 0.11, 0.2, 16), ear)


def _face_outline(s: Subject, au: Mapping[int, float]) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    sin = np.sin(t)
    low = np.clip(sin, 0, None)
    x = s.face_w * np.cos(t) * (1 - s.chin_taper * low ** 2)
    y = s.face_h * sin + 0.14 * au[26] * low ** 2  # the jaw drop lowers the chin
    return np.stack([x, y - 0.05], axis=1)


def _draw_head(c: Canvas, s: Subject, au: Mapping[int, float]) -> None:
    outline = _face_outline(s, au)
    if s.hair_style:
        c.poly(ellipse(0, -0.55, 1.07 * s.face_w, 0.95), s.hair)
    c.poly(outline, s.skin)
    if s.hair_style:  # the hair cap: the outline above the hairline, with a curved fringe
        top = outline[outline[:, 1] < s.hairline + 0.05]
        top = top[np.argsort(np.arctan2(top[:, 1], top[:, 0]))]
        fringe = _through((top[-1, 0], s.hairline), (0, s.hairline + 0.08), (top[0, 0], s.hairline))
        c.poly(np.concatenate([top, fringe]), s.hair)
    mole = _lerp(s.skin, (40, 25, 20), 0.6)
    for mx, my in s.moles:
        c.poly(ellipse(mx * s.face_w, my, 0.018, 0.018, 8), mole)


def _draw_eyes(c: Canvas, s: Subject, au: Mapping[int, float]) -> None:
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
        c.poly(ellipse(cx, cy + 0.008, s.iris_r, s.iris_r, 20), s.iris)
        c.poly(ellipse(cx, cy + 0.008, 0.45 * s.iris_r, 0.45 * s.iris_r, 12), (15, 10, 10))
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
            c.line(np.concatenate([ellipse(side * s.eye_dx, s.eye_y, s.eye_w + 0.07, 0.12, 24),
                                   ellipse(side * s.eye_dx, s.eye_y, s.eye_w + 0.07, 0.12, 24)[:1]]),
                   rim, 0.022)
        c.line([(-s.eye_dx + s.eye_w + 0.07, s.eye_y - 0.02), (s.eye_dx - s.eye_w - 0.07, s.eye_y - 0.02)],
               rim, 0.02)


def _draw_brows(c: Canvas, s: Subject, au: Mapping[int, float]) -> None:
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


def _draw_nose(c: Canvas, s: Subject, au: Mapping[int, float]) -> None:
    a = au.get
    y = s.nose_y - 0.035 * a(9) - 0.015 * a(10)
    w = s.nose_w * (1 + 0.25 * a(9))
    shade = _lerp(s.skin, (40, 25, 20), 0.35)
    c.line(_through((-0.06, s.eye_y + 0.05), (-0.08, (s.eye_y + y) / 2), (-w * 0.8, y - 0.04)), shade, 0.012)
    c.line(_through((-w, y - 0.02), (0, y + 0.075), (w, y - 0.02)), shade, 0.014)
    for side in (-1, 1):
        c.poly(ellipse(side * 0.45 * w, y + 0.03, 0.035, 0.016, 12), _lerp(s.skin, (20, 10, 10), 0.7))
    if a(9) > 0.15:  # wrinkles across the bridge
        col = _lerp(s.skin, (25, 15, 12), min(1.0, 0.9 * a(9)))
        for k in range(3):
            yy = s.eye_y + 0.05 + 0.045 * k
            c.line(_through((-0.1, yy + 0.012), (0, yy - 0.012), (0.1, yy + 0.012)), col, 0.013)


def _draw_mouth(c: Canvas, s: Subject, au: Mapping[int, float]) -> None:
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
            c.poly(ellipse(side * (s.eye_dx + 0.05), s.nose_y - 0.06 - 0.05 * a(6), 0.16, 0.09, 20), blush)

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
            config: SyntheticConfig) -> tuple[np.ndarray, Canvas]:
    """:func:`render_face`'s image and the canvas it was drawn on (its pose transform places
    the action-unit regions of :func:`region_masks`)."""
    from PIL import Image

    ss = size * config.supersample
    s = subject
    dx, dy = s.offset[0] + rng.normal(0, 0.012), s.offset[1] + rng.normal(0, 0.012)
    unit = 0.42 * ss * s.scale * rng.uniform(0.97, 1.03)
    c = Canvas(ss, s.background, ((0.5 + dx) * ss, (0.5 + dy) * ss), unit, s.roll + rng.normal(0, 1.5))
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

