"""`ModelConfig`: which network to build and how much of it trains.

Defaults left as ``None`` take the value of the registry entry (see
:func:`cfer.strategies.models.registry.register_model`), so that
``name: resnet50v2_paper`` alone gives the paper's network and
``name: small_cnn`` a small from-scratch one.
"""

from __future__ import annotations

from dataclasses import dataclass

FREEZE_LEVELS = ("none", "stem", "layer1", "layer2", "layer3", "layer4", "all")
HEADS = ("paper", "linear")
POOLINGS = ("max", "avg")


@dataclass(frozen=True)
class ModelConfig:
    """The network. A ``freeze_below`` level freezes every backbone stage
    *before* the named one (``"layer4"``: stem and layer1-3 frozen, layer4 and
    the head train; ``"all"``: the whole backbone; ``"none"``/``"stem"``:
    nothing). Frozen stages also keep their batch-norm statistics fixed.

    Reference code (github.com/AngusMaiden/complex-FER: ``src/models/train.py`` and the
    click options of ``src/complex_FER.py``) for the paper's choices quoted below.
    """

    name: str = "small_cnn"  # registry name or "timm:<timm model>"; paper: "resnet50v2_paper"
    # "none" | "imagenet" | "hf-hub:<repo>" (timm models) | path to a state dict or .safetensors
    # file; paper: ImageNet (Keras' ResNet50V2 weights)
    weights: str = "none"
    image_size: int | None = None  # expected input side (checked); paper: 224
    head: str | None = None  # "paper" | "linear"; None: the entry's default
    pooling: str | None = None  # "max" | "avg"; paper: global max pooling
    hidden: tuple[int, ...] = (512, 32)  # paper head: Dense 512 sigmoid -> Dense 32 sigmoid
    dropout: float = 0.2  # paper: Dropout .2 before each Dense of the head
    head_l2: float = 1e-5  # paper: kernel_regularizer=l2(1e-5) on the two hidden Dense layers
    freeze_bn: bool | None = None  # keep all backbone batch norms frozen; paper: True
    # Which stages train. Paper: continual phase trains conv5 (cont_frozen_layers=154 -> "layer4");
    # basic stage 1 freezes the whole backbone; basic stage 2 fine-tunes conv4-5
    # (basic_frozen_layers=86 -> "layer3").
    freeze_below: str | None = None  # continual phase and single-stage basic training
    basic_freeze_below: str | None = None  # basic stage 1 (two-stage basic training only)
    finetune_freeze_below: str | None = None  # basic stage 2 (two-stage basic training only)

    def __post_init__(self) -> None:
        for key in ("freeze_below", "basic_freeze_below", "finetune_freeze_below"):
            value = getattr(self, key)
            if value is not None and value not in FREEZE_LEVELS:
                raise ValueError(f"model.{key}: {value!r} is not one of {', '.join(FREEZE_LEVELS)}")
        if self.head is not None and self.head not in HEADS:
            raise ValueError(f"model.head: {self.head!r} is not one of {', '.join(HEADS)}")
        if self.pooling is not None and self.pooling not in POOLINGS:
            raise ValueError(f"model.pooling: {self.pooling!r} is not one of {', '.join(POOLINGS)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"model.dropout: must be in [0, 1), got {self.dropout}")
        if self.head_l2 < 0:
            raise ValueError(f"model.head_l2: must be >= 0, got {self.head_l2}")
        if any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"model.hidden: layer sizes must be positive, got {list(self.hidden)}")
        if self.image_size is not None and self.image_size < 8:
            raise ValueError(f"model.image_size: must be >= 8 pixels, got {self.image_size}")
        if not self.weights:
            raise ValueError("model.weights: use 'none', 'imagenet', 'hf-hub:<repo>' or a path to a "
                             "state dict")
