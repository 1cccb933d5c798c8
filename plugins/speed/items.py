"""Which image, label and transforms each item of an Avalanche dataset has, for all items at once.

:func:`item_table` resolves every item of a loader's dataset(s) with numpy:
the row of the benchmark's decoded uint8 image tensor, the label, the extra
labels Avalanche appends to an item (task labels) and the chain of
torchvision transforms applied to it. It walks the same flat-data tree that
Avalanche's ``__getitem__`` walks item by item; the reads of Avalanche's
private dataset attributes are in :mod:`cfer.plugins.workarounds`. The resolved
labels are checked against the dataset's public ``targets``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cfer.plugins.speed.unsupported import Unsupported, UnsupportedTransform
from cfer.plugins.workarounds import datasets as avalanche_data


def _x_transforms(t) -> list:
    """The input transforms of one Avalanche (normalised) transform-group entry."""
    from avalanche.benchmarks.utils.transforms import MultiParamCompose, TupleTransform

    if t is None:
        return []
    if isinstance(t, TupleTransform):
        if any(other is not None for other in t.transforms[1:]):
            raise UnsupportedTransform(f"target transforms ({t!r}) have no device version")
        return [t.transforms[0]] if t.transforms and t.transforms[0] is not None else []
    if isinstance(t, MultiParamCompose):
        return [x for inner in t.transforms for x in _x_transforms(inner)]
    raise UnsupportedTransform(f"transform group entry {t!r} has no device version")


def _level_transforms(level, group: str) -> tuple:
    out = []
    for groups in avalanche_data.transform_groups(level):
        try:
            out += _x_transforms(groups[group])
        except KeyError:
            raise Unsupported(f"no transform group {group!r}") from None
    return tuple(out)


def _walk(level, idx, pos, group, outer: tuple, leaves: list) -> None:
    """Collect ``(positions, ImageTensorDataset, local indices, transform chain)`` leaves.

    A level applies its transforms to what its child returns, before the
    levels above it: a leaf's chain is its levels' transforms, innermost first.
    """
    from avalanche.benchmarks.utils.flat_data import FlatData

    from cfer.benchmarks.scenario import ImageTensorDataset

    chain = _level_transforms(level, group) + outer
    for child, sel, local in avalanche_data.flat_data_children(level, idx):
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
        for child, sel, local in avalanche_data.flat_data_children(seq, idx):
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
        flat, group = avalanche_data.dataset_flat_data(ds)
        leaves: list = []
        _walk(flat, np.arange(n, dtype=np.int64), np.arange(n), group, (), leaves)
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
        attrs = avalanche_data.item_attributes(ds)
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
