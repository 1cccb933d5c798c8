"""Batched device versions of the torchvision v2 transforms the benchmarks use.

:class:`DeviceTransform` runs a chain of torchvision v2 transforms on a whole
batch (N, C, H, W) on the training device, drawing each random transform's
parameters per sample from one ``torch.Generator``, as the per-item torchvision
transform would draw them item by item. Supported: ``Compose``,
``RandomHorizontalFlip``/``RandomVerticalFlip``, ``RandomAffine``, ``ToDtype``,
``Normalize`` (and ``Identity``/``ToPureTensor``), and the reference code's Keras
augmentation :class:`cfer.benchmarks.transforms.KerasAffine` (per-axis zoom,
reflect fill), which runs the same functions per batch as per item; anything else
raises :class:`~cfer.plugins.speed.unsupported.Unsupported`.
"""

from __future__ import annotations

import torch

from cfer.benchmarks.transforms import KerasAffine
from cfer.plugins.speed.unsupported import UnsupportedTransform


class _Flip:
    def __init__(self, p: float, dim: int):
        self.p, self.dim = float(p), dim

    def __call__(self, x, gen):
        if self.p <= 0:
            return x
        # As v2.RandomHorizontalFlip / RandomVerticalFlip: flip when rand < p, per sample.
        flip = torch.rand(len(x), generator=gen, device=x.device) < self.p
        return torch.where(flip[:, None, None, None], x.flip(self.dim), x)


def _affine_theta(angle, tx, ty, scale, shear_x, shear_y, *, cx: float, cy: float):
    """torchvision's ``_get_inverse_affine_matrix`` for a batch of parameters (float64): (n, 2, 3)."""
    rot, sx, sy = torch.deg2rad(angle), torch.deg2rad(shear_x), torch.deg2rad(shear_y)
    a = torch.cos(rot - sy) / torch.cos(sy)
    b = -(a * torch.tan(sx) + torch.sin(rot))
    c = torch.sin(rot - sy) / torch.cos(sy)
    d = torch.cos(rot) - c * torch.tan(sx)
    m0, m1, m3, m4 = d / scale, -b / scale, -c / scale, a / scale
    m2 = cx - m0 * (cx + tx) - m1 * (cy + ty)
    m5 = cy - m3 * (cx + tx) - m4 * (cy + ty)
    return torch.stack([m0, m1, m2, m3, m4, m5], dim=1).view(-1, 2, 3)


def affine_batch(x: torch.Tensor, theta: torch.Tensor, *, mode: str = "nearest", fill=0.0) -> torch.Tensor:
    """``torchvision.transforms.v2.functional.affine`` with one inverse matrix per image.

    ``theta``: (n, 2, 3) inverse affine matrices as torchvision builds them.
    Follows torchvision's tensor kernel step by step (its grid, ``grid_sample``
    with zero padding and ``align_corners=False``, the mask that applies
    ``fill``, rounding back to an integer dtype), so results are the same.
    """
    n, _, h, w = x.shape
    fp = x.is_floating_point()
    dtype = x.dtype if fp else torch.float32
    img = x if fp else x.to(dtype)
    theta = theta.to(dtype)
    base = torch.empty(1, h, w, 3, dtype=dtype, device=x.device)
    base[..., 0].copy_(torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w, device=x.device))
    base[..., 1].copy_(torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h, device=x.device)[:, None])
    base[..., 2].fill_(1)
    # Divided column by column with Python scalars: a small device tensor built from a list
    # would be a blocking host-to-device copy on CUDA (torchvision divides by such a tensor).
    rescaled = theta.transpose(1, 2).clone()
    rescaled[..., 0] /= 0.5 * w
    rescaled[..., 1] /= 0.5 * h
    grid = base.view(1, h * w, 3).expand(n, -1, -1).bmm(rescaled).view(n, h, w, 2)
    if fill is not None:
        img = torch.cat([img, torch.ones(n, 1, h, w, dtype=dtype, device=x.device)], dim=1)
    out = torch.nn.functional.grid_sample(img, grid, mode=mode, padding_mode="zeros", align_corners=False)
    if fill is not None:
        out, mask = out[:, :-1], out[:, -1:].expand(-1, out.shape[1] - 1, -1, -1)
        values = [float(v) for v in fill] if isinstance(fill, (list, tuple)) else [float(fill)]
        fills = torch.cat([torch.full((1, 1, 1, 1), v, dtype=dtype, device=x.device) for v in values], dim=1)
        if mode == "nearest":
            out = torch.where(mask < 0.5, fills.expand_as(out), out)
        else:
            out = out.sub(fills).mul(mask).add(fills)
    return out if fp else out.round().to(x.dtype)


class _Affine:
    """v2.RandomAffine with per-sample parameters drawn as its ``make_params`` draws them."""

    def __init__(self, t):
        from torchvision.transforms import InterpolationMode

        if isinstance(t.fill, dict):
            raise UnsupportedTransform(f"{t!r}: a per-type fill dict has no device version")
        mode = t.interpolation.value if isinstance(t.interpolation, InterpolationMode) else t.interpolation
        if mode not in ("nearest", "bilinear"):
            raise UnsupportedTransform(f"{t!r}: interpolation {t.interpolation} has no device version")
        self.mode, self.fill, self.center = mode, t.fill, t.center
        self.degrees = [float(v) for v in t.degrees]
        self.translate = None if t.translate is None else [float(v) for v in t.translate]
        self.scale = None if t.scale is None else [float(v) for v in t.scale]
        self.shear = None if t.shear is None else [float(v) for v in t.shear]

    def __call__(self, x, gen):
        n, _, h, w = x.shape
        u = torch.rand(n, 6, generator=gen, device=x.device, dtype=torch.float64)

        def uniform(k, lo, hi):
            return lo + (hi - lo) * u[:, k]

        zero = torch.zeros(n, dtype=torch.float64, device=x.device)
        angle = uniform(0, *self.degrees)
        if self.translate is not None:
            dx, dy = self.translate[0] * w, self.translate[1] * h
            tx, ty = torch.round(uniform(1, -dx, dx)), torch.round(uniform(2, -dy, dy))
        else:
            tx = ty = zero
        scale = uniform(3, *self.scale) if self.scale is not None else zero + 1.0
        shear_x = uniform(4, self.shear[0], self.shear[1]) if self.shear is not None else zero
        shear_y = uniform(5, self.shear[2], self.shear[3]) if self.shear and len(self.shear) == 4 else zero
        cx = cy = 0.0
        if self.center is not None:
            cx, cy = self.center[0] - w * 0.5, self.center[1] - h * 0.5
        theta = _affine_theta(angle, tx, ty, scale, shear_x, shear_y, cx=cx, cy=cy)
        return affine_batch(x, theta, mode=self.mode, fill=self.fill)


class _KerasAffine:
    """:class:`~cfer.benchmarks.transforms.KerasAffine` on the batch, its parameters drawn per
    sample from the loader's generator."""

    def __init__(self, t: KerasAffine):
        self.t = t

    def __call__(self, x, gen):
        if not x.is_floating_point():
            raise TypeError(f"KerasAffine needs a float batch (after ToDtype), got {x.dtype}")
        return self.t.batch(x, gen)


class _ToDtype:
    def __init__(self, dtype, scale: bool):
        self.dtype, self.scale = dtype, scale

    def __call__(self, x, gen):
        from torchvision.transforms.v2 import functional as F

        return F.to_dtype(x, self.dtype, scale=self.scale)


class _Normalize:
    """v2.Normalize's ``(x - mean) / std`` with mean and std kept on the device (torchvision's
    functional builds them from lists at every call: a blocking copy per batch on CUDA)."""

    def __init__(self, mean, std):
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]
        if not all(self.std):
            raise UnsupportedTransform("Normalize with a zero std")
        self._cache: dict = {}

    def __call__(self, x, gen):
        if not x.is_floating_point():
            raise TypeError(f"Normalize needs a float batch, got {x.dtype}")
        key = (x.device, x.dtype)
        if key not in self._cache:
            self._cache[key] = tuple(torch.tensor(v, dtype=x.dtype).view(-1, 1, 1).to(x.device)
                                     for v in (self.mean, self.std))
        mean, std = self._cache[key]
        return x.sub(mean).div_(std)


def _ops(t) -> list:
    """The batched device ops of one torchvision v2 transform (raises :class:`Unsupported`)."""
    from torchvision.transforms import v2

    if t is None or isinstance(t, (v2.Identity, v2.ToPureTensor)):
        return []
    if isinstance(t, v2.Compose):
        return [op for inner in t.transforms for op in _ops(inner)]
    if isinstance(t, v2.RandomHorizontalFlip):
        return [_Flip(t.p, -1)]
    if isinstance(t, v2.RandomVerticalFlip):
        return [_Flip(t.p, -2)]
    if isinstance(t, v2.RandomAffine):
        return [_Affine(t)]
    if isinstance(t, KerasAffine):
        return [_KerasAffine(t)]
    if isinstance(t, v2.ToDtype) and isinstance(t.dtype, torch.dtype):
        return [_ToDtype(t.dtype, t.scale)]
    if isinstance(t, v2.Normalize):
        return [_Normalize(t.mean, t.std)]
    raise UnsupportedTransform(f"transform {t!r} has no batched device version (supported: torchvision v2 "
                      "Compose, RandomHorizontal/VerticalFlip, RandomAffine, ToDtype, Normalize; "
                      "cfer KerasAffine)")


class DeviceTransform:
    """A chain of torchvision v2 transforms run on a batch (N, C, H, W), random ops per sample."""

    def __init__(self, transforms):
        self.ops = [op for t in transforms for op in _ops(t)]

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for op in self.ops:
            x = op(x, generator)
        return x

