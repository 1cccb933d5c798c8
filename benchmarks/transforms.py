"""Default image transforms (torchvision v2) on uint8 CHW tensors.

Training augmentation: horizontal flip, a small rotation, zoom and translation;
none at evaluation. Two forms of the affine part:

- the defaults (``AugmentConfig()``): torchvision's ``RandomAffine``, one zoom
  for both axes, black fill, whole-pixel shifts, nearest-neighbour sampling;
- the reference code's Keras layers (``RandomFlip("horizontal")``,
  ``RandomRotation(0.01)``, ``RandomZoom(0.05, 0.05)``,
  ``RandomTranslation(0.05, 0.05)``; ``src/complex_FER.py:154-157`` of
  github.com/AngusMaiden/complex-FER), chosen by ``zoom_per_axis`` or
  ``fill="reflect"``: :class:`KerasAffine`, with the rotation, the
  independent height and width zooms and the shifts of those layers, bilinear
  sampling and Keras' default ``fill_mode="reflect"``. Keras' rotation factor
  is a fraction of a full turn: ``RandomRotation(0.01)`` is ``rotation=3.6``
  degrees here. ``experiments/configs/paper_cfee.yaml`` sets these values.

:class:`KerasAffine` composes the three Keras layers into one resampling
(Keras resamples once per layer), so the fill of a rotated corner is taken
from the mirrored image once rather than from an already filled image. The
same functions draw and apply it per item here and per batch on the device
(:mod:`cfer.plugins.speed.device_transforms`).

Inputs are scaled to [0, 1] and normalised with ImageNet's mean and std,
which torchvision's ImageNet weights expect. The reference feeds [0, 1]
images to Keras' ResNet50V2 without its ``preprocess_input`` (docs/reference.md).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

from cfer.core.typed import Checked

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Fill = Literal["zeros", "reflect"]
FILLS = typing.get_args(Fill)


@dataclass(frozen=True)
class AugmentConfig(Checked):
    """Training augmentation (the ``benchmark.augment`` config section; this module imports
    torch only inside its functions, so configs read it without torch). The defaults are the
    toolkit's own (mild, torchvision ``RandomAffine``, one zoom, black fill); the reference
    code's Keras augmentation (src/complex_FER.py:154-157) is ``rotation=3.6, zoom=0.05,
    zoom_per_axis=True, translate=0.05, fill="reflect"``, as experiments/configs/paper_cfee.yaml
    sets it."""

    section = "benchmark.augment"

    flip: bool = True  # random horizontal flip; reference: RandomFlip("horizontal")
    rotation: float = 10.0  # max degrees either way; reference: RandomRotation(0.01) = 3.6 degrees
    zoom: float = 0.1  # scale drawn in [1 - zoom, 1 + zoom]; reference: RandomZoom(0.05, 0.05)
    translate: float = 0.1  # max shift, a fraction of the side; reference: RandomTranslation(0.05, 0.05)
    zoom_per_axis: bool = False  # height and width scales drawn independently; reference: true
    fill: Fill = "zeros"  # pixels from outside the image: "zeros" (black) or "reflect"; reference: reflect

    def __post_init__(self) -> None:
        for key in ("rotation", "zoom", "translate"):
            self.check(key, getattr(self, key) >= 0, ">= 0")
        self.check("zoom", self.zoom < 1, "< 1")
        self.check_choice("fill", FILLS)

    @property
    def keras(self) -> bool:
        """Whether the affine part is :class:`KerasAffine` (else torchvision's RandomAffine)."""
        return self.zoom_per_axis or self.fill == "reflect"


def draw_affine(n: int, *, rotation: float, zoom: float, translate: float, zoom_per_axis: bool,
                generator=None, device=None):
    """Per-image parameters ``(n, 5)`` float64: angle (degrees), height zoom, width zoom,
    vertical and horizontal shift (fractions of the side), each uniform in its range."""
    import torch

    u = torch.rand(n, 5, generator=generator, device=device, dtype=torch.float64) * 2 - 1
    angle = u[:, 0] * rotation
    zoom_h = 1 + u[:, 1] * zoom
    zoom_w = 1 + u[:, 2] * zoom if zoom_per_axis else zoom_h
    return torch.stack([angle, zoom_h, zoom_w, u[:, 3] * translate, u[:, 4] * translate], dim=1)


def affine_theta(params, *, height: int, width: int):
    """``F.affine_grid`` matrices ``(n, 2, 3)`` for :func:`draw_affine`'s parameters.

    As Keras' layers in sequence (rotation, zoom, translation), each mapping an
    output pixel to the input pixel it reads, in pixel units about the centre:
    ``p_in = R @ Z @ (p_out - shift)``, with ``Z = diag(zoom_w, zoom_h)`` (a
    zoom above 1 reads a larger area: the face gets smaller, Keras' "zoom
    out"), then in the [-1, 1] units of ``align_corners=False``.
    """
    import torch

    angle = torch.deg2rad(params[:, 0])
    zoom_h, zoom_w, dy, dx = params[:, 1], params[:, 2], params[:, 3] * height, params[:, 4] * width
    cos, sin = torch.cos(angle), torch.sin(angle)
    # M = R @ Z in pixel units
    m00, m01 = cos * zoom_w, -sin * zoom_h
    m10, m11 = sin * zoom_w, cos * zoom_h
    sx, sy = width / 2.0, height / 2.0  # pixel -> normalised: divide by half the side
    t0 = -(m00 * dx + m01 * dy) / sx
    t1 = -(m10 * dx + m11 * dy) / sy
    theta = torch.stack([m00, m01 * sy / sx, t0, m10 * sx / sy, m11, t1], dim=1)
    return theta.view(-1, 2, 3)


def apply_affine(x, theta, *, fill: str):
    """Resample a float batch ``(n, C, H, W)`` with ``theta`` (bilinear; ``fill`` "zeros" or
    "reflect": mirrored about the border, Keras' ``reflect``, ``d c b a | a b c d``)."""
    import torch.nn.functional as F

    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    padding = "reflection" if fill == "reflect" else "zeros"
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)


class KerasAffine:
    """Random rotation, zoom and translation as the reference's Keras layers, on a float image
    ``(C, H, W)`` or batch ``(N, C, H, W)`` (parameters drawn per image from torch's global
    random stream). See the module docstring; :func:`train_transform` puts it after the
    conversion to float, since Keras augments float images."""

    def __init__(self, *, rotation: float, zoom: float, translate: float, zoom_per_axis: bool,
                 fill: str = "reflect"):
        if fill not in FILLS:
            raise ValueError(f"KerasAffine: fill {fill!r} is not one of {', '.join(FILLS)}")
        self.rotation, self.zoom, self.translate = float(rotation), float(zoom), float(translate)
        self.zoom_per_axis, self.fill = bool(zoom_per_axis), fill

    def batch(self, x, generator=None):
        """Transform a float batch, parameters drawn from ``generator`` (None: the global one)."""
        n, _, h, w = x.shape
        params = draw_affine(n, rotation=self.rotation, zoom=self.zoom, translate=self.translate,
                             zoom_per_axis=self.zoom_per_axis, generator=generator, device=x.device)
        return apply_affine(x, affine_theta(params, height=h, width=w), fill=self.fill)

    def __call__(self, x):
        if not x.is_floating_point():
            raise TypeError(f"KerasAffine needs a float image (after ToDtype), got {x.dtype}")
        return self.batch(x[None])[0] if x.dim() == 3 else self.batch(x)

    def __repr__(self) -> str:
        return (f"KerasAffine(rotation={self.rotation}, zoom={self.zoom}, translate={self.translate}, "
                f"zoom_per_axis={self.zoom_per_axis}, fill={self.fill!r})")


def eval_transform():
    import torch
    from torchvision.transforms import v2

    return v2.Compose([v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def train_transform(cfg: AugmentConfig | None = None):
    import torch
    from torchvision.transforms import v2

    cfg = cfg or AugmentConfig()
    ops = []
    if cfg.flip:
        ops.append(v2.RandomHorizontalFlip())
    moves = bool(cfg.rotation or cfg.zoom or cfg.translate)
    if moves and not cfg.keras:
        ops.append(v2.RandomAffine(degrees=cfg.rotation,
                                   translate=(cfg.translate, cfg.translate) if cfg.translate else None,
                                   scale=(1 - cfg.zoom, 1 + cfg.zoom) if cfg.zoom else None))
    ops.append(v2.ToDtype(torch.float32, scale=True))
    if moves and cfg.keras:
        ops.append(KerasAffine(rotation=cfg.rotation, zoom=cfg.zoom, translate=cfg.translate,
                               zoom_per_axis=cfg.zoom_per_axis, fill=cfg.fill))
    ops.append(v2.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return v2.Compose(ops)


def rotation_degrees(keras_factor: float) -> float:
    """Keras ``RandomRotation(factor)``'s range in degrees: a fraction of a full turn
    (``rotation_degrees(0.01) == 3.6``)."""
    return float(keras_factor) * 360.0


__all__ = ["AugmentConfig", "IMAGENET_MEAN", "IMAGENET_STD", "KerasAffine", "affine_theta",
           "apply_affine", "draw_affine", "eval_transform", "rotation_degrees", "train_transform"]
