"""Backbone registry (timm-style): ``@register_model("name", ...)`` and ``build_model``.

A registered factory takes ``(cfg, *, pooling)`` and returns a
:class:`~strategies.models.backbones.Backbone` with ``cfg.weights`` loaded.
The entry's keyword defaults fill the ``None`` fields of a ``ModelConfig``.
Built-in entries live in :mod:`cfer.strategies.models.builtin`; add one there (or
anywhere imported before ``build_model``) with the decorator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from cfer.strategies.models.config import ModelConfig

_BUILTIN = ("cfer.strategies.models.builtin", "cfer.strategies.models.timm_entries")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Callable
    head: str
    pooling: str
    freeze_bn: bool
    freeze_below: str
    basic_freeze_below: str
    finetune_freeze_below: str
    min_image_size: int
    description: str
    #: Grad-CAM's target layer: a dotted module path inside the CLModel ("" if not set).
    gradcam_layer: str = ""
    #: An optional package the factory imports, installed by the cfer extra of the same name
    #: (``"timm"``: ``pip install "cfer[timm]"``); checked before any data is loaded.
    needs: str = ""


_ENTRIES: dict[str, ModelEntry] = {}
_FAMILIES: dict[str, Callable[[str], None]] = {}  # name prefix -> registers that name on first use
_loaded = False


def register_model(name: str, *, head: str = "linear", pooling: str = "avg", freeze_bn: bool = False,
                   freeze_below: str = "none", basic_freeze_below: str = "all",
                   finetune_freeze_below: str = "none", min_image_size: int = 16,
                   description: str = "", gradcam_layer: str = "", needs: str = ""):
    """Decorator registering a backbone factory ``fn(cfg, *, pooling) -> Backbone``."""

    def decorate(fn):
        old = _ENTRIES.get(name)
        if old is not None and old.factory.__qualname__ != fn.__qualname__:
            raise ValueError(f"model {name!r} is already registered by {old.factory.__module__}")
        _ENTRIES[name] = ModelEntry(name, fn, head, pooling, freeze_bn, freeze_below,
                                    basic_freeze_below, finetune_freeze_below, min_image_size,
                                    description or (fn.__doc__ or "").strip().splitlines()[0],
                                    gradcam_layer, needs)
        return fn

    return decorate


def register_family(prefix: str):
    """Decorator registering ``fn(name)``, which registers (with :func:`register_model`) any
    model whose name starts with ``prefix`` when it is first asked for (``timm:<name>``)."""

    def decorate(fn):
        _FAMILIES[prefix] = fn
        return fn

    return decorate


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in _BUILTIN:
            import_module(module)
        _loaded = True


def available_models() -> list[str]:
    _load()
    return sorted(_ENTRIES)


def model_entry(name: str) -> ModelEntry:
    _load()
    family = next((fn for prefix, fn in _FAMILIES.items() if name.startswith(prefix)), None)
    if name not in _ENTRIES and family is not None:
        family(name)
    if name not in _ENTRIES:
        raise ValueError(f"model.name: unknown model {name!r}; available: {', '.join(sorted(_ENTRIES))}"
                         + "".join(f", {prefix}<name>" for prefix in _FAMILIES))
    return _ENTRIES[name]


def gradcam_layer(name: str) -> str:
    """The dotted path, inside the CLModel, of model ``name``'s Grad-CAM target layer."""
    layer = model_entry(name).gradcam_layer
    if not layer:
        raise ValueError(f"model.name: {name!r} has no Grad-CAM layer in the model registry "
                         "(register_model(..., gradcam_layer=...)); pass one with --layer")
    return layer


def resolve(cfg: ModelConfig) -> ModelConfig:
    """``cfg`` with its ``None`` fields filled from the registry entry."""
    e = model_entry(cfg.name)
    defaults = {"head": e.head, "pooling": e.pooling, "freeze_bn": e.freeze_bn,
                "freeze_below": e.freeze_below, "basic_freeze_below": e.basic_freeze_below,
                "finetune_freeze_below": e.finetune_freeze_below}
    return dataclasses.replace(cfg, **{k: v for k, v in defaults.items() if getattr(cfg, k) is None})


def build_model(cfg: ModelConfig, *, n_classes: int):
    """Build ``cfg``'s network with ``n_classes`` initial output units.

    ``n_classes`` is the width before the first experience (the number of
    basic classes); the :class:`~strategies.models.classifier.GrowingClassifier`
    adds a unit for each later class. The backbone stages below
    ``freeze_below`` start frozen.
    """
    import torch.nn as nn

    from cfer.strategies.models.network import CLModel, paper_neck

    if n_classes < 1:
        raise ValueError(f"build_model: n_classes must be >= 1, got {n_classes}")
    cfg = resolve(cfg)
    entry = model_entry(cfg.name)
    if cfg.image_size is not None and cfg.image_size < entry.min_image_size:
        raise ValueError(f"model.image_size: {cfg.name} needs at least {entry.min_image_size} px, "
                         f"got {cfg.image_size}")
    backbone = entry.factory(cfg, pooling=cfg.pooling)
    if cfg.head == "paper":
        neck = paper_neck(backbone.out_features, hidden=tuple(cfg.hidden), dropout=cfg.dropout)
        width = int(cfg.hidden[-1]) if cfg.hidden else backbone.out_features
    else:
        neck, width = nn.Identity(), backbone.out_features
    model = CLModel(backbone=backbone, neck=neck, feature_size=width, n_classes=n_classes, config=cfg)
    for key in ("basic_freeze_below", "finetune_freeze_below"):
        try:
            backbone.stages_below(getattr(cfg, key))
        except ValueError as e:
            raise ValueError(f"model.{key}: {e}") from None
    if cfg.freeze_bn:
        backbone.freeze_batchnorm()
    backbone.freeze_below(cfg.freeze_below)
    return model
