"""Fast data path for every Avalanche strategy: images held once on the device, batches by index.

Why: Avalanche fetches each item through its dataset tree (flat-data index
lookup, a per-item torchvision transform, the task label) and collates per
batch, in the training process; at 224 px this, not the GPU, sets the pace.
Avalanche has no batched fetch (its ``MultiDatasetDataLoader`` wraps the
datasets in a torch ``ConcatDataset``, which has no ``__getitems__``).

:class:`FastDataPlugin` swaps the loaders a strategy builds (the template's
``TaskBalancedDataLoader``/``SingleDatasetDataLoader``, a plugin's
``ReplayDataLoader``, any torch ``DataLoader``) for a :class:`FastLoader`:

1. once per loader, numpy resolves which image row, label, task label and
   transform chain each item of the loader's dataset(s) has, walking the
   same flat-data tree Avalanche's ``__getitem__`` walks item by item;
2. the benchmark's decoded uint8 images are kept once on the device (or in
   pinned host memory when they do not fit, see :class:`ImageStore`);
3. each batch takes the indices the wrapped loader's *own* batch sampler
   yields (so shuffling, replay balancing and oversampling stay Avalanche's,
   and the random stream is the same), gathers the rows and runs the
   transform chain batched on the device (:class:`DeviceTransform`).

Loaders it cannot reproduce exactly (other item types, such as iCaRL's
tensor memory; unknown transforms; target transforms; custom collate
functions) are left as they are, with a warning: the stock path is always
correct, only slower.

The walk reads Avalanche 0.6's dataset internals (``_flat_data`` levels with
``_datasets``, ``_indices``, ``_cumulative_sizes`` and transform groups, and
``_data_attributes``): Avalanche offers no vectorised access to them. The
resolved labels are checked against the dataset's public ``targets``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from avalanche.core import SupervisedPlugin

from cfer.plugins.fast_data_config import FastDataConfig

log = logging.getLogger(__name__)



class Unsupported(ValueError):
    """A dataset, transform or loader that the fast path cannot reproduce exactly."""


# -- batched device versions of the torchvision v2 transforms ------------------------------------

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
            raise Unsupported(f"{t!r}: a per-type fill dict has no device version")
        mode = t.interpolation.value if isinstance(t.interpolation, InterpolationMode) else t.interpolation
        if mode not in ("nearest", "bilinear"):
            raise Unsupported(f"{t!r}: interpolation {t.interpolation} has no device version")
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
            raise Unsupported("Normalize with a zero std")
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
    if isinstance(t, v2.ToDtype) and isinstance(t.dtype, torch.dtype):
        return [_ToDtype(t.dtype, t.scale)]
    if isinstance(t, v2.Normalize):
        return [_Normalize(t.mean, t.std)]
    raise Unsupported(f"transform {t!r} has no batched device version (supported: torchvision v2 "
                      "Compose, RandomHorizontal/VerticalFlip, RandomAffine, ToDtype, Normalize)")


class DeviceTransform:
    """A chain of torchvision v2 transforms run on a batch (N, C, H, W), random ops per sample."""

    def __init__(self, transforms):
        self.ops = [op for t in transforms for op in _ops(t)]

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for op in self.ops:
            x = op(x, generator)
        return x


# -- which image, label and transforms each item of an Avalanche dataset has ---------------------

def _index_array(indices) -> np.ndarray:
    if isinstance(indices, np.ndarray):
        return indices.astype(np.int64, copy=False)
    if isinstance(indices, (list, tuple, range)):
        return np.asarray(indices, dtype=np.int64)
    # Avalanche's LazyIndices: a Sequence without vectorised access; use its eager array.
    if hasattr(indices, "_to_eager"):
        indices._to_eager()
        if isinstance(getattr(indices, "_eager_list", None), np.ndarray):
            return indices._eager_list
    return np.fromiter(indices, dtype=np.int64, count=len(indices))


def _x_transforms(t) -> list:
    """The input transforms of one Avalanche (normalised) transform-group entry."""
    from avalanche.benchmarks.utils.transforms import MultiParamCompose, TupleTransform

    if t is None:
        return []
    if isinstance(t, TupleTransform):
        if any(other is not None for other in t.transforms[1:]):
            raise Unsupported(f"target transforms ({t!r}) have no device version")
        return [t.transforms[0]] if t.transforms and t.transforms[0] is not None else []
    if isinstance(t, MultiParamCompose):
        return [x for inner in t.transforms for x in _x_transforms(inner)]
    raise Unsupported(f"transform group entry {t!r} has no device version")


def _level_transforms(level, group: str) -> tuple:
    out = []
    for name in ("_frozen_transform_groups", "_transform_groups"):
        groups = getattr(level, name, None)
        if groups is not None:
            try:
                out += _x_transforms(groups[group])
            except KeyError:
                raise Unsupported(f"no transform group {group!r}") from None
    return tuple(out)


def _split(level, idx: np.ndarray):
    """Per child of a flat-data level: (child, positions into ``idx``, local indices)."""
    if getattr(level, "_indices", None) is not None:
        idx = _index_array(level._indices)[idx]
    ends = np.asarray(level._cumulative_sizes, dtype=np.int64)
    which = np.searchsorted(ends, idx, side="right")
    for k, child in enumerate(level._datasets):
        sel = np.flatnonzero(which == k)
        if len(sel):
            yield child, sel, idx[sel] - (ends[k - 1] if k else 0)


def _walk(level, idx, pos, group, outer: tuple, leaves: list) -> None:
    """Collect ``(positions, ImageTensorDataset, local indices, transform chain)`` leaves.

    A level applies its transforms to what its child returns, before the
    levels above it: a leaf's chain is its levels' transforms, innermost first.
    """
    from avalanche.benchmarks.utils.flat_data import FlatData

    from cfer.benchmarks.scenario import ImageTensorDataset

    chain = _level_transforms(level, group) + outer
    for child, sel, local in _split(level, idx):
        if isinstance(child, FlatData):
            _walk(child, local, pos[sel], group, chain, leaves)
        elif isinstance(child, ImageTensorDataset):
            leaves.append((pos[sel], child, local, chain))
        else:
            raise Unsupported(f"items of {type(child).__name__} (the fast path reads "
                              "cfer.benchmarks.scenario.ImageTensorDataset)")


def _values(seq, idx: np.ndarray) -> np.ndarray:
    """Values of a data attribute's flat sequence at ``idx``, vectorised."""
    from avalanche.benchmarks.utils.flat_data import ConstantSequence, FlatData

    if len(idx) == 0:
        return np.empty(0, dtype=np.int64)
    if isinstance(seq, ConstantSequence):
        return np.full(len(idx), seq[0])
    if isinstance(seq, FlatData):
        out = None
        for child, sel, local in _split(seq, idx):
            part = _values(child, local)
            if out is None:
                out = np.empty(len(idx), dtype=part.dtype)
            out[sel] = part
        return out if out is not None else np.empty(0, dtype=np.int64)
    arr = seq.numpy() if isinstance(seq, torch.Tensor) else np.asarray(seq)
    if arr.dtype.kind not in "iub" or arr.ndim != 1:
        raise Unsupported("a non-integer data attribute in the items")
    return arr[idx]


@dataclass
class ItemTable:
    """Per item of a loader's dataset: image row, label, extra labels, transform chain."""

    images: torch.Tensor  # (N, 3, H, W) uint8, shared by the whole benchmark
    rows: np.ndarray
    targets: np.ndarray
    extras: list  # values of the data attributes Avalanche appends to each item (task labels)
    chain: np.ndarray  # index into ``chains``
    chains: list  # tuples of torchvision transforms, innermost first

    def __len__(self) -> int:
        return len(self.rows)


def item_table(datasets) -> ItemTable:
    """Resolve every item of ``datasets`` (Avalanche datasets, concatenated in order)."""
    from avalanche.benchmarks.utils.data import AvalancheDataset
    from torch.utils.data.dataloader import default_collate

    images, rows, targets, extras, chain, chains = None, [], [], None, [], []
    for ds in datasets:
        if not isinstance(ds, AvalancheDataset):
            raise Unsupported(f"{type(ds).__name__} is not an Avalanche dataset")
        if ds.collate_fn is not default_collate:
            raise Unsupported(f"custom collate_fn {ds.collate_fn!r}")
        n = len(ds)
        group = ds._flat_data._transform_groups.current_group
        leaves: list = []
        _walk(ds._flat_data, np.arange(n, dtype=np.int64), np.arange(n), group, (), leaves)
        r, y, c = (np.empty(n, dtype=np.int64) for _ in range(3))
        for pos, leaf, local, ch in leaves:
            if images is None:
                images = leaf.images
            elif leaf.images is not images:
                raise Unsupported("items from more than one benchmark's image tensor")
            r[pos] = leaf.indices.numpy()[local]
            y[pos] = leaf.targets.numpy()[local]
            if ch not in chains:
                chains.append(ch)
            c[pos] = chains.index(ch)
        if not np.array_equal(y, _values(ds.targets.data, np.arange(n))):
            # A safety net for the walk over Avalanche internals: never train on wrong labels.
            raise Unsupported("the resolved labels differ from the dataset's targets")
        attrs = [da for da in ds._data_attributes.values() if da.use_in_getitem]
        values = [_values(da.data, np.arange(n)) for da in attrs]
        if extras is None:
            extras = [[] for _ in values]
        elif len(extras) != len(values):
            raise Unsupported("concatenated datasets with different item structure")
        for store, v in zip(extras, values):
            store.append(v)
        rows.append(r)
        targets.append(y)
        chain.append(c)
    if images is None:
        raise Unsupported("an empty dataset")
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise Unsupported(f"images must be a uint8 (N, C, H, W) tensor, got {images.dtype} "
                          f"{tuple(images.shape)}")
    return ItemTable(images=images, rows=np.concatenate(rows), targets=np.concatenate(targets),
                     extras=[np.concatenate(v) for v in extras or []], chain=np.concatenate(chain),
                     chains=chains)


# -- where the images live -----------------------------------------------------------------------

class ImageStore:
    """The benchmark's uint8 images, once, where batches are gathered from.

    Placement: ``"device"`` (a copy on the GPU), ``"pinned"`` (a copy in
    page-locked host memory; each batch is gathered on the host and copied
    asynchronously), or ``"host"`` (the images as they are: CPU training).
    """

    def __init__(self, images: torch.Tensor, *, device: torch.device, config: FastDataConfig):
        self.source = images
        self.device = _canonical(device)
        if self.device.type == "cpu":
            self.placement, self.images = "host", images
            return
        need = images.numel() * images.element_size()
        free = torch.cuda.mem_get_info(self.device)[0] if self.device.type == "cuda" else need
        if config.on_device == "true" or need <= config.max_memory_fraction * free:
            if need > free:
                raise ValueError(f"data.on_device=true: the images need {need / 2**30:.2f} GiB but "
                                 f"{self.device} has {free / 2**30:.2f} GiB free; use data.on_device=auto")
            self.placement, self.images = "device", images.to(self.device)
        else:
            log.info("images (%.2f GiB) kept in pinned host memory: more than %.0f%% of %s's free memory",
                     need / 2**30, 100 * config.max_memory_fraction, self.device)
            self.placement, self.images = "pinned", images.pin_memory()

    @property
    def index_device(self) -> torch.device:
        return self.images.device

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """uint8 images at ``rows`` (on :attr:`index_device`), on the training device."""
        batch = self.images.index_select(0, rows)
        if self.placement == "pinned":
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        return batch


# -- the loader ----------------------------------------------------------------------------------

class _Positions(torch.utils.data.Dataset):
    """Item positions only: a DataLoader over it replays a batch sampler's indices."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        return i

    def __getitems__(self, indices):
        return indices


def _as_index_tensor(indices) -> torch.Tensor:
    return torch.as_tensor(indices, dtype=torch.int64)


def _inner_loader(loader):
    """The torch DataLoader (with its batch sampler) that ``loader`` iterates."""
    from avalanche.benchmarks.utils.data_loader import MultiDatasetDataLoader
    from torch.utils.data import DataLoader

    if isinstance(loader, MultiDatasetDataLoader):
        # Builds the samplers exactly as MultiDatasetDataLoader.__iter__ does for this epoch.
        return loader._get_loader()
    if isinstance(loader, DataLoader):
        return loader
    raise Unsupported(f"loader {type(loader).__name__}")


def _loader_datasets(loader) -> list:
    from avalanche.benchmarks.utils.data_loader import MultiDatasetDataLoader
    from torch.utils.data import ConcatDataset, DataLoader

    if isinstance(loader, MultiDatasetDataLoader):
        return list(loader.datasets)
    if isinstance(loader, DataLoader):
        if loader.batch_sampler is None:
            raise Unsupported("a DataLoader without batches (batch_size=None)")
        if isinstance(loader.dataset, ConcatDataset):
            return list(loader.dataset.datasets)
        return [loader.dataset]
    raise Unsupported(f"loader {type(loader).__name__}")


class FastLoader:
    """Iterates like ``loader`` (same batches of the same items), fetching batched on the device.

    Yields ``[x, y, *extras]`` (as Avalanche's default collate: ``x`` float,
    labels int64), already on the training device.
    """

    def __init__(self, loader, *, table: ItemTable, transforms: list, store: ImageStore,
                 generator: torch.Generator):
        self.loader, self.store, self.generator = loader, store, generator
        self._transforms = transforms  # one DeviceTransform per table.chains entry
        dev, idev = store.device, store.index_device
        self._rows = torch.as_tensor(table.rows, device=idev)
        self._labels = [torch.as_tensor(v, dtype=torch.int64, device=dev)
                        for v in [table.targets, *table.extras]]
        self._chain = torch.as_tensor(table.chain)

    def __len__(self) -> int:
        return len(self.loader)

    def _positions(self):
        from torch.utils.data import DataLoader

        inner = _inner_loader(self.loader)
        # Same batch sampler and generator as the stock loader: same random draws, same batches.
        return DataLoader(_Positions(len(self._rows)), batch_sampler=inner.batch_sampler,
                          collate_fn=_as_index_tensor, generator=inner.generator)

    def _to(self, idx: torch.Tensor, device: torch.device) -> torch.Tensor:
        if device.type == "cuda":
            # Pinned, so the copy does not wait for the kernels already queued.
            return idx.pin_memory().to(device, non_blocking=True)
        return idx.to(device)

    def __iter__(self):
        dev, idev = self.store.device, self.store.index_device
        for idx in self._positions():
            at_rows = self._to(idx, idev)
            at_labels = at_rows if idev == dev else self._to(idx, dev)
            rows = self._rows[at_rows]
            yield [self._images(idx, rows), *(v[at_labels] for v in self._labels)]

    def _images(self, idx: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        if len(self._transforms) == 1:
            return self._transforms[0](self.store.gather(rows), self.generator)
        # Items with different transform chains (e.g. datasets in different groups, mixed).
        chain = self._chain[idx]
        out = None
        for c in torch.unique(chain).tolist():
            sel = torch.nonzero(chain == c).squeeze(1)
            part = self._transforms[c](self.store.gather(rows[self._to(sel, rows.device)]), self.generator)
            if out is None:
                out = part.new_empty((len(idx), *part.shape[1:]))
            out[self._to(sel, part.device)] = part
        return out


# -- the plugin ----------------------------------------------------------------------------------

def _canonical(device) -> torch.device:
    """``cuda`` -> ``cuda:<current>``, so that devices compare equal to tensors' devices."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


class FastDataPlugin(SupervisedPlugin):
    """Replaces the strategy's train and eval loaders by :class:`FastLoader` s.

    Add it after every plugin that builds a loader (Avalanche calls plugins in
    list order; ``ReplayPlugin`` builds its loader in ``before_training_exp``):
    :func:`enable` appends it last. Random augmentation draws from its own
    generator, seeded from ``torch.initial_seed()`` (so runs repeat for a
    seed, and the global random stream is left as the stock path leaves it).
    """

    def __init__(self, config: FastDataConfig | None = None):
        super().__init__()
        self.config = config or FastDataConfig()
        self.store: ImageStore | None = None
        self._generator: torch.Generator | None = None
        self._warned: set[str] = set()

    def before_training_exp(self, strategy, **kwargs):
        strategy.dataloader = self.wrap(strategy.dataloader, device=strategy.device)

    def before_eval_exp(self, strategy, **kwargs):
        strategy.dataloader = self.wrap(strategy.dataloader, device=strategy.device)

    def wrap(self, loader, *, device):
        """``loader`` as a :class:`FastLoader`, or ``loader`` itself (with a warning, once per
        reason) where the fast path cannot reproduce it."""
        if self.config.on_device == "false" or isinstance(loader, FastLoader):
            return loader
        try:
            table = item_table(_loader_datasets(loader))
            transforms = [DeviceTransform(ch) for ch in table.chains]
        except Unsupported as e:
            if str(e) not in self._warned:
                self._warned.add(str(e))
                log.warning("fast data path not used for a %s: %s", type(loader).__name__, e)
            return loader
        device = _canonical(device)
        if self.store is None or self.store.source is not table.images or self.store.device != device:
            self.store = None  # free the previous copy first
            self.store = ImageStore(table.images, device=device, config=self.config)
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(torch.initial_seed() % 2**63)
        return FastLoader(loader, table=table, transforms=transforms, store=self.store,
                          generator=self._generator)


def enable(strategy, config: FastDataConfig | None = None) -> FastDataPlugin | None:
    """Give ``strategy`` the fast data path (``None`` when ``on_device: false``)."""
    config = config or FastDataConfig()
    if config.on_device == "false":
        return None
    if config.on_device == "true" and torch.device(strategy.device).type != "cuda":
        raise ValueError(f"data.on_device=true needs a CUDA device, the strategy runs on {strategy.device}; "
                         "use data.on_device=auto")
    plugin = next((p for p in strategy.plugins if isinstance(p, FastDataPlugin)), None)
    if plugin is None:
        plugin = FastDataPlugin(config)
        strategy.plugins.append(plugin)
    return plugin


def make_loader(strategy, data, *, batch_size: int):
    """A loader over ``data`` in order (no shuffling), fast when ``strategy`` has the fast path.

    For code that iterates a dataset itself, such as exemplar selection.
    """
    from torch.utils.data import DataLoader

    loader = DataLoader(data, batch_size=batch_size, shuffle=False,
                        collate_fn=getattr(data, "collate_fn", None))
    plugin = next((p for p in getattr(strategy, "plugins", ()) if isinstance(p, FastDataPlugin)), None)
    return plugin.wrap(loader, device=strategy.device) if plugin is not None else loader
