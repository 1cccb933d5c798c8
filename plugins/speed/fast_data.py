"""Fast data path for every Avalanche strategy: images held once on the device, batches by index.

Why: Avalanche fetches each item through its dataset tree (flat-data index
lookup, a per-item torchvision transform, the task label) and collates per
batch, in the training process; at 224 px this, not the GPU, sets the pace.
Avalanche has no batched fetch (its ``MultiDatasetDataLoader`` wraps the
datasets in a torch ``ConcatDataset``, which has no ``__getitems__``).

:class:`FastDataPlugin` swaps the loaders a strategy builds (the template's
``TaskBalancedDataLoader``/``SingleDatasetDataLoader``, a plugin's
``ReplayDataLoader``, any torch ``DataLoader``) for a
:class:`~cfer.plugins.speed.loader.FastLoader`:

1. once per loader, numpy resolves which image row, label, task label and
   transform chain each item of the loader's dataset(s) has, walking the
   same flat-data tree Avalanche's ``__getitem__`` walks item by item
   (:mod:`cfer.plugins.speed.items`);
2. the benchmark's decoded uint8 images are kept once on the device (or in
   pinned host memory when they do not fit,
   :class:`~cfer.plugins.speed.image_store.ImageStore`);
3. each batch takes the indices the wrapped loader's *own* batch sampler
   yields (so shuffling, replay balancing and oversampling stay Avalanche's,
   and the random stream is the same), gathers the rows and runs the
   transform chain batched on the device
   (:class:`~cfer.plugins.speed.device_transforms.DeviceTransform`).

Loaders it cannot reproduce exactly (other item types, such as iCaRL's
tensor memory; unknown transforms; target transforms; custom collate
functions) are left as they are, with a debug log line: the stock path is always
correct, only slower.

The walk reads Avalanche 0.6's dataset internals (``_flat_data`` levels with
``_datasets``, ``_indices``, ``_cumulative_sizes`` and transform groups, and
``_data_attributes``): Avalanche offers no vectorised access to them. Those
reads are in :mod:`cfer.plugins.workarounds`.
"""

from __future__ import annotations

import logging

import torch
from avalanche.core import SupervisedPlugin

from cfer.plugins.speed.config import FastDataConfig
from cfer.plugins.speed.device_transforms import DeviceTransform
from cfer.plugins.speed.image_store import ImageStore, canonical_device
from cfer.plugins.speed.items import item_table
from cfer.plugins.speed.loader import FastLoader, loader_datasets
from cfer.plugins.speed.unsupported import Unsupported, UnsupportedTransform

log = logging.getLogger(__name__)


class FastDataPlugin(SupervisedPlugin):
    """Replaces the strategy's train and eval loaders by :class:`FastLoader` s.

    Add it after every plugin that builds a loader (Avalanche calls plugins in
    list order; ``ReplayPlugin`` builds its loader in ``before_training_exp``):
    :func:`enable` appends it last. Random augmentation draws from its own
    generator, seeded from ``torch.initial_seed()`` at the start of every training
    experience (so runs repeat for a seed, and the global random stream is left as
    the stock path leaves it).
    """

    def __init__(self, config: FastDataConfig | None = None):
        super().__init__()
        self.config = config or FastDataConfig()
        self.store: ImageStore | None = None
        self._generator: torch.Generator | None = None
        self._warned: set[str] = set()

    def before_training_exp(self, strategy, **kwargs):
        strategy.dataloader = self.wrap(strategy.dataloader, device=strategy.device)
        if self._generator is not None:
            # Augmentation draws of an experience depend on the seed in force when it starts
            # (ExperienceSeedPlugin re-seeds every experience), not on how many draws earlier
            # experiences made: a run primed from a shared basic model then matches one that
            # trained experience 0 itself.
            self._generator.manual_seed(torch.initial_seed() % 2**63)

    def before_eval_exp(self, strategy, **kwargs):
        strategy.dataloader = self.wrap(strategy.dataloader, device=strategy.device)

    def wrap(self, loader, *, device):
        """``loader`` as a :class:`FastLoader`, or ``loader`` itself (with a debug log line, once per
        reason) where the fast path cannot reproduce it."""
        if self.config.on_device == "false" or isinstance(loader, FastLoader):
            return loader
        try:
            table = item_table(loader_datasets(loader))
            transforms = [DeviceTransform(ch) for ch in table.chains]
        except Unsupported as e:
            if str(e) not in self._warned:
                self._warned.add(str(e))
                if isinstance(e, UnsupportedTransform):
                    log.warning("fast data path not used for a %s: %s; it trains on the stock loader "
                                "(same batches, slower): use the transforms of cfer.benchmarks.transforms, "
                                "or set data.on_device: false to choose the stock loader",
                                type(loader).__name__, e)
                else:  # nothing a config changes (the datasets a strategy builds, e.g. iCaRL's)
                    log.debug("fast data path not used for a %s: %s", type(loader).__name__, e)
            return loader
        device = canonical_device(device)
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
