"""FastLoader: iterates like a strategy's loader, with batches gathered and transformed on the device.

Each batch takes the indices the wrapped loader's *own* batch sampler yields
(so shuffling, replay balancing and oversampling stay Avalanche's, and the
random stream is the same), gathers the image rows from the
:class:`~cfer.plugins.speed.image_store.ImageStore` and runs the item's
transform chain batched (:class:`~cfer.plugins.speed.device_transforms.DeviceTransform`).
Handled loaders: Avalanche's ``MultiDatasetDataLoader`` family (the template's
``TaskBalancedDataLoader``/``SingleDatasetDataLoader``, ``ReplayDataLoader``)
and any torch ``DataLoader`` with batches.
"""

from __future__ import annotations

import torch

from cfer.plugins.speed.image_store import ImageStore
from cfer.plugins.speed.items import ItemTable
from cfer.plugins.speed.unsupported import Unsupported
from cfer.plugins.workarounds import datasets as avalanche_data


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
        return avalanche_data.epoch_loader(loader)
    if isinstance(loader, DataLoader):
        return loader
    raise Unsupported(f"loader {type(loader).__name__}")


def loader_datasets(loader) -> list:
    """The datasets ``loader`` draws items from, in order (:class:`Unsupported` for other loaders)."""
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
