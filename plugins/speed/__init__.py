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

- :mod:`~cfer.plugins.speed.config`: :class:`FastDataConfig`, the ``data`` config
  section, and :class:`PrecisionConfig`, the precision keys of ``training`` (torch-free:
  configs load them before torch);
- :mod:`~cfer.plugins.speed.entries`: the registry entries of these plugins.

The names below are imported from their modules when first used (:mod:`cfer.core.lazy`),
so importing this package imports no torch. The two ``enable`` functions are reached
through their modules (``fast_data.enable``, ``precision.enable``), and so is
:func:`~cfer.plugins.speed.one_pass.one_pass`, whose module has its name (the package
attribute ``one_pass`` is the module once it is imported). Avalanche 0.6 internals the
fast path reads are in :mod:`cfer.plugins.workarounds`.
"""

from cfer.core.lazy import lazy_root

#: Public name -> the module (below ``cfer.plugins.speed``) that defines it.
_MODULES = {
    'DeviceTransform':         "cfer.plugins.speed.device_transforms",
    'affine_batch':            "cfer.plugins.speed.device_transforms",
    'FastDataConfig':          "cfer.plugins.speed.config",
    'FastDataPlugin':          "cfer.plugins.speed.fast_data",
    'make_loader':             "cfer.plugins.speed.fast_data",
    'ImageStore':              "cfer.plugins.speed.image_store",
    'ItemTable':               "cfer.plugins.speed.items",
    'item_table':              "cfer.plugins.speed.items",
    'FastLoader':              "cfer.plugins.speed.loader",
    'OnePassEvaluationPlugin': "cfer.plugins.speed.one_pass",
    'LossScaling':             "cfer.plugins.speed.precision",
    'ModelPrecision':          "cfer.plugins.speed.precision",
    'PrecisionConfig':         "cfer.plugins.speed.config",
    'PrecisionPlugin':         "cfer.plugins.speed.precision",
    'compile_model':           "cfer.plugins.speed.precision",
    'ThroughputPlugin':        "cfer.plugins.speed.throughput",
    'Unsupported':             "cfer.plugins.speed.unsupported",
}
__all__ = sorted(_MODULES)
__getattr__, __dir__ = lazy_root(__name__, _MODULES)
