"""Default image transforms (torchvision v2) on uint8 CHW tensors.

Augmentation follows the paper's reference code: horizontal flip, small
rotation, zoom and translation; none at evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation. Defaults: the paper's Keras ImageDataGenerator
    (``horizontal_flip=True, rotation_range=10, zoom_range=0.1,
    width/height_shift_range=0.1``)."""

    flip: bool = True
    rotation: float = 10.0  # degrees
    zoom: float = 0.1  # scale in [1 - zoom, 1 + zoom]
    translate: float = 0.1  # fraction of the image size


def eval_transform():
    from torchvision.transforms import v2
    import torch

    return v2.Compose([v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def train_transform(cfg: AugmentConfig | None = None):
    from torchvision.transforms import v2
    import torch

    cfg = cfg or AugmentConfig()
    ops = []
    if cfg.flip:
        ops.append(v2.RandomHorizontalFlip())
    if cfg.rotation or cfg.zoom or cfg.translate:
        ops.append(v2.RandomAffine(degrees=cfg.rotation,
                                   translate=(cfg.translate, cfg.translate) if cfg.translate else None,
                                   scale=(1 - cfg.zoom, 1 + cfg.zoom) if cfg.zoom else None))
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return v2.Compose(ops)
