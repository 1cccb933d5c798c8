"""Backbones: images -> pooled feature vector, with named levels that can be frozen.

A :class:`Backbone` groups its modules into ordered levels (``stem``,
``layer1`` ...): a :class:`StagedBackbone` runs its stages in sequence (the
torchvision ResNets, the small CNN); :class:`cfer.strategies.models.timm_models.TimmBackbone`
wraps any timm model. Freezing a level turns off its gradients and keeps its
batch-norm layers in inference mode, as Keras does for non-trainable layers
(the paper's reference code is Keras), so that ``model.train()`` does not
quietly update the running statistics of a frozen ImageNet backbone.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from cfer.strategies.models.config import FREEZE_LEVELS

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class WeightsUnavailableError(OSError):
    """Pretrained weights could not be fetched (no network, nothing cached, no such repository).
    An OSError, so that the command line reports it in one line."""


class Backbone(nn.Module):
    """Images -> feature vector, with named levels (``stem``, ``layer1`` ...) that can be frozen.

    A subclass gives :meth:`levels` (in forward order) and ``forward``; freezing a
    level turns off the gradients of its modules' parameters and keeps its batch
    norms in inference mode.

    Args:
        out_features: size of the feature vector.
    """

    def __init__(self, *, out_features: int):
        super().__init__()
        self.out_features = out_features
        self.frozen: tuple[str, ...] = ()
        self.bn_frozen = False

    def levels(self) -> OrderedDict[str, list[nn.Module]]:
        """``level -> modules``: each module's own parameters belong to that level."""
        raise NotImplementedError

    def stages_below(self, level: str) -> tuple[str, ...]:
        """Names of the levels a ``freeze_below=level`` freezes."""
        names = tuple(self.levels())
        if level in ("none", "stem"):
            return ()
        if level == "all":
            return names
        if level not in names:
            raise ValueError(f"freeze_below: {level!r} is not a stage of this backbone "
                             f"(stages: {', '.join(names)}; or none, all)")
        return names[: names.index(level)]

    def freeze_below(self, level: str) -> None:
        """Freeze exactly the levels below ``level``; unfreeze the others."""
        self.frozen = self.stages_below(level)
        for name, modules in self.levels().items():
            for m in modules:
                for p in m.parameters(recurse=False):
                    p.requires_grad_(name not in self.frozen)
        if self.bn_frozen:
            self.freeze_batchnorm()
        self.train(self.training)

    def freeze_batchnorm(self) -> None:
        """Keep every batch norm of the backbone frozen (the reference code never trains them)."""
        self.bn_frozen = True
        for m in self.modules():
            if isinstance(m, _BN):
                for p in m.parameters():
                    p.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            levels = self.levels()
            frozen = self.modules() if self.bn_frozen else (m for n in self.frozen for m in levels[n])
            for m in frozen:
                if isinstance(m, _BN):
                    m.eval()
        return self


class StagedBackbone(Backbone):
    """Named stages run in sequence, then global max or average pooling.

    Args:
        stages: ``name -> module`` in forward order; names drawn from
            ``stem, layer1, ..., layer4``; each stage is one freezing level.
        out_channels: channels of the last stage (the feature size).
        pooling: ``"max"`` or ``"avg"``.
    """

    def __init__(self, stages: OrderedDict[str, nn.Module], *, out_channels: int, pooling: str):
        super().__init__(out_features=out_channels)
        unknown = [n for n in stages if n not in FREEZE_LEVELS]
        if unknown:
            raise ValueError(f"Backbone: stage names {unknown} are not among {FREEZE_LEVELS}")
        self.stages = nn.ModuleDict(stages)
        self.pool = nn.AdaptiveMaxPool2d(1) if pooling == "max" else nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages.values():
            x = stage(x)
        return torch.flatten(self.pool(x), 1)

    def levels(self) -> OrderedDict[str, list[nn.Module]]:
        return OrderedDict((name, list(stage.modules())) for name, stage in self.stages.items())


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True), nn.MaxPool2d(2))


def small_cnn(*, pooling: str, widths: tuple[int, ...] = (32, 64, 128, 256)) -> Backbone:
    """Four conv-BN-ReLU-maxpool blocks (stem, layer1-3): fast on a CPU at 16-96 px."""
    names = ("stem", "layer1", "layer2", "layer3")
    stages, c_in = OrderedDict(), 3
    for name, width in zip(names, widths):
        stages[name] = _block(c_in, width)
        c_in = width
    return StagedBackbone(stages, out_channels=c_in, pooling=pooling)


def torchvision_resnet(arch: str, *, pooling: str, state_dict: dict | None) -> Backbone:
    """A torchvision ResNet (``resnet18``/``resnet50``) without its fc, as stages."""
    import torchvision

    net = getattr(torchvision.models, arch)(weights=None)
    if state_dict is not None:
        load_into(net, state_dict, what=f"torchvision {arch}", ignore_prefixes=("fc.",))
    stages = OrderedDict(stem=nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool),
                         layer1=net.layer1, layer2=net.layer2, layer3=net.layer3, layer4=net.layer4)
    return StagedBackbone(stages, out_channels=net.fc.in_features, pooling=pooling)


def read_state_dict(path: str) -> dict:
    """A state dict saved with ``torch.save`` (a bare dict or ``{"state_dict": ...}``) or a
    ``.safetensors`` file (what the Hugging Face Hub serves)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"model.weights: {p} does not exist (use 'none', 'imagenet', "
                                "'hf-hub:<repo>' for timm models, or a path to a saved state dict)")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file  # installed with timm

            obj = load_file(p, device="cpu")
        else:
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one-line error
        raise ValueError(f"model.weights: {p} is not a readable torch state dict ({e})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"model.weights: {p} does not hold a state dict (name -> tensor)")
    return obj


def load_into(module: nn.Module, state_dict: dict, *, what: str,
              ignore_prefixes: tuple[str, ...] = ()) -> None:
    """Strictly load ``state_dict`` (minus ``ignore_prefixes`` keys) into ``module``."""
    sd = {k: v for k, v in state_dict.items() if not k.startswith(ignore_prefixes)}
    own = {k: v for k, v in module.state_dict().items() if not k.startswith(ignore_prefixes)}
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shapes = sorted(k for k in set(own) & set(sd) if own[k].shape != sd[k].shape)
    if missing or unexpected or shapes:
        parts = [f"{label} {keys[:3]}{' ...' if len(keys) > 3 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected),
                                     ("wrong shape", shapes)) if keys]
        raise ValueError(f"model.weights: not a state dict of {what}: " + "; ".join(parts))
    module.load_state_dict(sd, strict=False)  # strict over every key not ignored (checked above)


def imagenet_state_dict(arch: str) -> dict:
    """torchvision's ImageNet weights for ``arch`` (downloaded, or from the torch hub cache)."""
    import torchvision

    weights = {"resnet18": torchvision.models.ResNet18_Weights.IMAGENET1K_V1,
               "resnet50": torchvision.models.ResNet50_Weights.IMAGENET1K_V2}[arch]
    try:
        return weights.get_state_dict(progress=False)
    except Exception as e:  # noqa: BLE001 - URLError, OSError, SSL, hash mismatch: all mean "no weights"
        raise WeightsUnavailableError(
            f"model.weights=imagenet: could not download the {arch} ImageNet weights ({type(e).__name__}: "
            f"{e}); pass weights=<path to a local state dict> or weights=none") from None
