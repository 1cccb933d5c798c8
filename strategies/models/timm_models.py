"""timm backbones: any timm model by name (``model.name: timm:<name>``) and the paper's ResNet50V2.

timm is an optional extra (``pip install "cfer[timm]"``); it is imported when such a model is
first asked for, never at import time. Weights (``model.weights``):

- ``none``: timm's random initialisation;
- ``imagenet``: the model's default pretrained weights in timm (``resnetv2_50``: ``a1h_in1k``),
  downloaded by timm from the Hugging Face Hub on first use and cached where the Hub caches
  (``$HF_HOME``, by default ``~/.cache/huggingface``);
- ``hf-hub:<repo>``: the weights of that Hub repository (for example a FER-trained network),
  loaded into the named architecture, cached the same way;
- a path: a state dict saved with ``torch.save`` or a ``.safetensors`` file, with timm's own
  keys (``timm.create_model(name).state_dict()``, classifier keys ignored) or a backbone's
  (``model.backbone.state_dict()``, keys ``net.*``). This is the offline way.

docs/reference.md says how ``resnet50v2_paper`` maps the reference's Keras layer indices.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cfer.benchmarks.transforms import IMAGENET_MEAN, IMAGENET_STD
from cfer.strategies.models.backbones import Backbone, WeightsUnavailableError, load_into, read_state_dict

# timm's feature_info strides -> our freezing levels, named as torchvision's ResNets name the
# stages that end at those output strides (layer1: 4 ... layer4: 32).
_LEVEL_OF_STRIDE = {1: "stem", 2: "stem", 4: "layer1", 8: "layer2", 16: "layer3", 32: "layer4"}
_CAM_PREFIX = "feature_extractor.backbone.net."  # a TimmBackbone's module path inside the CLModel


def import_timm(model_name: str):
    """The ``timm`` module, or a one-line error saying which extra to install."""
    try:
        import timm
    except ImportError:
        raise ImportError(f'model.name: {model_name} needs timm; pip install "cfer[timm]"') from None
    return timm


def _own_tensors(m: nn.Module) -> bool:
    return any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(recurse=False))


def _under(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def timm_levels(net: nn.Module) -> OrderedDict[str, list[nn.Module]]:
    """``level -> modules`` of a timm model, from its ``feature_info``.

    ``feature_info`` names the modules whose outputs are the model's feature maps and their
    output strides. Walking ``named_modules()`` (forward order for timm models), a module
    belongs to the level of the first feature module at or after it, by that module's stride;
    modules after the last feature module (a final norm) join the last level. A ResNet gets
    stem, layer1-4; a ViT (every block at stride 16) one level, layer3, so that only ``none``
    and ``all`` freeze anything there. Only modules holding their own parameters or buffers
    are listed. timm has no per-stage grouping shared by every model (``group_matcher`` is
    per-architecture, for layer-wise learning rates), hence this walk.
    """
    bounds = [(f["module"], _LEVEL_OF_STRIDE.get(int(f["reduction"]), "layer4"))
              for f in getattr(net, "feature_info", None) or []]
    if not bounds:
        return OrderedDict(layer4=[m for m in net.modules() if _own_tensors(m)])
    levels: OrderedDict[str, list[nn.Module]] = OrderedDict()
    i, entered = 0, False
    for name, m in net.named_modules():
        if entered and not _under(name, bounds[i][0]) and i + 1 < len(bounds):
            i, entered = i + 1, False
        entered = entered or _under(name, bounds[i][0])
        if _own_tensors(m):
            levels.setdefault(bounds[i][1], []).append(m)
    return levels


def cam_module(net: nn.Module) -> str:
    """The module whose output is the model's last feature map (Grad-CAM's target): the last
    ``feature_info`` module, or the model's final 2-D batch norm when one follows it (a
    pre-activation network's ``norm``: BN + ReLU, Keras' ``post_bn``/``post_relu``)."""
    norm = getattr(net, "norm", None)
    if isinstance(norm, nn.BatchNorm2d):
        return "norm"
    info = getattr(net, "feature_info", None) or []
    return info[-1]["module"] if info else ""


class TimmBackbone(Backbone):
    """A timm model without its classifier (``num_classes=0``): images -> its pooled features.

    The model pools with its own global pooling, set to ``pooling`` (``max`` / ``avg``) when it
    is built, so that timm handles channels-last feature maps (Swin) and token models (ViT:
    ``avg`` averages the tokens). Freezing levels: :func:`timm_levels`.

    Our transforms normalise images with ImageNet's mean and std (benchmarks/transforms.py);
    timm's weights may expect another normalisation (``resnetv2_50``: mean = std = 0.5, that is
    [-1, 1], as Keras' ``resnet_v2.preprocess_input``). The input is re-normalised to the
    model's ``pretrained_cfg`` mean and std first (an exact per-channel affine map), so that
    pretrained weights see the inputs they were trained on.
    """

    def __init__(self, net: nn.Module, *, arch: str):
        super().__init__(out_features=int(getattr(net, "head_hidden_size", None) or net.num_features))
        self.net = net
        self.arch = arch
        mean, std = (torch.tensor(net.pretrained_cfg.get(k, d)).view(1, -1, 1, 1)
                     for k, d in (("mean", IMAGENET_MEAN), ("std", IMAGENET_STD)))
        ours_mean, ours_std = (torch.tensor(v).view(1, -1, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
        # x = (raw - ours_mean) / ours_std  ->  (raw - mean) / std = x * scale + shift
        self.register_buffer("input_scale", ours_std / std, persistent=False)
        self.register_buffer("input_shift", (ours_mean - mean) / std, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.addcmul(self.input_shift, x, self.input_scale))

    def levels(self) -> OrderedDict[str, list[nn.Module]]:
        return timm_levels(self.net)


def _backbone_keys(state_dict: dict) -> dict:
    """A backbone's own state dict (keys ``net.*``) as timm's keys; others unchanged."""
    if state_dict and all(k.startswith("net.") for k in state_dict):
        return {k[len("net."):]: v for k, v in state_dict.items()}
    return state_dict


def timm_backbone(arch: str, *, weights: str, pooling: str, model_name: str) -> TimmBackbone:
    """timm's ``arch`` without its classifier, pooling ``pooling``, with ``weights`` (module doc)."""
    timm = import_timm(model_name)
    kwargs = {"num_classes": 0, "global_pool": pooling}
    if weights == "imagenet" or weights.startswith("hf-hub:"):
        hub = weights[len("hf-hub:"):] if weights.startswith("hf-hub:") else None
        try:
            net = timm.create_model(arch, pretrained=True,
                                    pretrained_cfg_overlay={"hf_hub_id": hub} if hub else None, **kwargs)
        except Exception as e:  # noqa: BLE001 - no network, no cache, no such repo: all mean "no weights"
            why = (str(e).strip().splitlines() or [""])[0]
            raise WeightsUnavailableError(
                f"model.weights={weights}: could not fetch the weights of timm {arch} ({type(e).__name__}: "
                f"{why}); offline, pass model.weights: <path to a local state dict or .safetensors file> "
                "or none") from None
        return TimmBackbone(net, arch=arch)
    net = timm.create_model(arch, pretrained=False, **kwargs)
    if weights != "none":
        classifier = net.pretrained_cfg.get("classifier") or ()
        heads = tuple(f"{c}." for c in ((classifier,) if isinstance(classifier, str) else classifier))
        load_into(net, _backbone_keys(read_state_dict(weights)), what=f"timm {arch}", ignore_prefixes=heads)
    return TimmBackbone(net, arch=arch)


def default_cam_layer(arch: str) -> str:
    """The Grad-CAM layer of timm's ``arch`` as a dotted path inside a CLModel ("" if timm
    cannot build it on the meta device; the explain command then asks for ``--layer``)."""
    timm = import_timm(f"timm:{arch}")
    try:
        with torch.device("meta"):  # the module tree only, no memory, no weights
            cam = cam_module(timm.create_model(arch, num_classes=0))
    except Exception:  # noqa: BLE001 - a model that cannot be built on the meta device has no default
        return ""  # Grad-CAM layer; training is unaffected
    return _CAM_PREFIX + cam if cam else ""
