"""The speed path: any Avalanche strategy, same numbers, less time per epoch.

One job per module:

- :mod:`~cfer.plugins.speed.fast_data`: :class:`FastDataPlugin` and its
  ``enable(strategy, config)``: a strategy's loaders replaced by batched,
  on-device ones (``make_loader`` for code that iterates a dataset itself);
- :mod:`~cfer.plugins.speed.loader`: :class:`FastLoader`, the same batches of
  the same items as the loader it wraps;
- :mod:`~cfer.plugins.speed.items`: :func:`item_table`, which image, label and
  transforms each item of an Avalanche dataset has;
- :mod:`~cfer.plugins.speed.image_store`: :class:`ImageStore`, where the decoded
  images live (GPU, pinned host memory, or as they are);
- :mod:`~cfer.plugins.speed.device_transforms`: :class:`DeviceTransform`, the
  torchvision v2 transforms batched on the device;
- :mod:`~cfer.plugins.speed.unsupported`: :class:`Unsupported`, what the fast
  path leaves to the stock loader;
- :mod:`~cfer.plugins.speed.precision`: mixed precision, channels-last and
  ``torch.compile`` (:class:`PrecisionPlugin`, its own ``enable``);
- :mod:`~cfer.plugins.speed.throughput`: :class:`ThroughputPlugin`, training
  images per second;
- :mod:`~cfer.plugins.speed.one_pass`: :func:`one_pass` and
  :class:`OnePassEvaluationPlugin`, several experiences evaluated in one pass with
  Avalanche's per-experience metrics kept.

The two ``enable`` functions are reached through their modules
(``fast_data.enable``, ``precision.enable``). The ``data`` config section,
:class:`cfer.benchmarks.placement.FastDataConfig`, lives in ``cfer.benchmarks``
so that configs load without torch. Avalanche 0.6 internals the fast path reads
are in :mod:`cfer.plugins.workarounds`.
"""

from cfer.plugins.speed.device_transforms import DeviceTransform, affine_batch
from cfer.plugins.speed.fast_data import FastDataPlugin, make_loader
from cfer.plugins.speed.image_store import ImageStore
from cfer.plugins.speed.items import ItemTable, item_table
from cfer.plugins.speed.loader import FastLoader
from cfer.plugins.speed.one_pass import OnePassEvaluationPlugin, one_pass
from cfer.plugins.speed.precision import (
    LossScaling,
    ModelPrecision,
    PrecisionConfig,
    PrecisionPlugin,
    compile_model,
)
from cfer.plugins.speed.throughput import ThroughputPlugin
from cfer.plugins.speed.unsupported import Unsupported

__all__ = [
    "DeviceTransform", "FastDataPlugin", "FastLoader", "ImageStore", "ItemTable", "LossScaling",
    "ModelPrecision", "OnePassEvaluationPlugin", "PrecisionConfig", "PrecisionPlugin", "ThroughputPlugin",
    "Unsupported", "affine_batch", "compile_model", "item_table", "make_loader", "one_pass",
]
