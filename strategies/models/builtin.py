"""Built-in backbones: the paper's ResNet-50, torchvision ResNets, and a small CNN.

Registering is light: the factories import torch (:mod:`~cfer.strategies.models.backbones`)
when a model is built, so a config can be checked against the registry in a fraction of a
second, before torch loads.
"""

from __future__ import annotations

from cfer.strategies.models.registry import register_model

# Grad-CAM target layers (Selvaraju et al., ICCV 2017, use the last convolutional layer): a
# ResNet's last stage; the small CNN's last ReLU, before its final max pool halves the map again.
_RESNET_CAM = "feature_extractor.backbone.stages.layer4"


def _torchvision_weights(cfg, arch: str) -> dict | None:
    from cfer.strategies.models.backbones import imagenet_state_dict, read_state_dict

    if cfg.weights == "none":
        return None
    if cfg.weights == "imagenet":
        return imagenet_state_dict(arch)
    return read_state_dict(cfg.weights)


@register_model("resnet50_paper", head="paper", pooling="max", freeze_bn=True,
                freeze_below="layer4", basic_freeze_below="all", finetune_freeze_below="layer3",
                min_image_size=32, gradcam_layer=_RESNET_CAM)
def resnet50_paper(cfg, *, pooling: str):
    """The paper's network: ResNet-50, global max pooling, sigmoid head 512 -> 32.

    torchvision's ResNet-50 (v1.5) with its IMAGENET1K_V2 weights stands in for
    the reference code's Keras ResNet50V2 (pre-activation): the architecture
    differs slightly. Freezing defaults follow the reference code (stage
    levels in :class:`~strategies.models.config.ModelConfig`)."""
    from cfer.strategies.models.backbones import torchvision_resnet

    return torchvision_resnet("resnet50", pooling=pooling, state_dict=_torchvision_weights(cfg, "resnet50"))


@register_model("resnet50", min_image_size=32, gradcam_layer=_RESNET_CAM)
def resnet50(cfg, *, pooling: str):
    """torchvision ResNet-50 with a linear head (average pooling by default)."""
    from cfer.strategies.models.backbones import torchvision_resnet

    return torchvision_resnet("resnet50", pooling=pooling, state_dict=_torchvision_weights(cfg, "resnet50"))


@register_model("resnet18", min_image_size=32, gradcam_layer=_RESNET_CAM)
def resnet18(cfg, *, pooling: str):
    """torchvision ResNet-18 with a linear head (average pooling by default)."""
    from cfer.strategies.models.backbones import torchvision_resnet

    return torchvision_resnet("resnet18", pooling=pooling, state_dict=_torchvision_weights(cfg, "resnet18"))


@register_model("small_cnn", min_image_size=16, gradcam_layer="feature_extractor.backbone.stages.layer3.2")
def small_cnn_model(cfg, *, pooling: str):
    """Four conv blocks (32-64-128-256), from scratch: the CPU quickstart model."""
    from cfer.strategies.models.backbones import load_into, read_state_dict, small_cnn

    if cfg.weights == "imagenet":
        raise ValueError("model.weights: small_cnn has no ImageNet weights; use none or a state-dict path")
    net = small_cnn(pooling=pooling)
    if cfg.weights != "none":
        load_into(net, read_state_dict(cfg.weights), what="small_cnn's backbone")
    return net
