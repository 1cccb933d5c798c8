"""The timm entries of the model registry: ``resnet50v2_paper`` and the ``timm:<name>`` family.

Registering is light (no torch, no timm): the implementation,
:mod:`~cfer.strategies.models.timm_models`, is imported when a model is built or, for
``timm:<name>``, when the name is first asked for (to check timm has it).
"""

from __future__ import annotations

from cfer.strategies.models.registry import register_family, register_model

PREFIX = "timm:"
# Inside a CLModel, a TimmBackbone's network is feature_extractor.backbone.net; timm's
# ResNetV2 ends in a pre-activation BN + ReLU, ``norm``: the last layer of the feature map.
_RESNETV2_CAM = "feature_extractor.backbone.net.norm"


@register_model("resnet50v2_paper", head="paper", pooling="max", freeze_bn=True,
                freeze_below="layer4", basic_freeze_below="all", finetune_freeze_below="layer3",
                min_image_size=32, gradcam_layer=_RESNETV2_CAM, needs="timm")
def resnet50v2_paper(cfg, *, pooling: str):
    """The reference's network: pre-activation ResNet-50 (V2, timm resnetv2_50), global max
    pooling, sigmoid head 512 -> 32.

    Keras' ``ResNet50V2`` layer indices map to stages (docs/reference.md): ``layers[86:]`` is
    conv4 onwards (``layer3``: timm's ``stages.2``), ``layers[154:]`` conv5 onwards (``layer4``:
    ``stages.3`` and the final ``norm``); batch norms stay frozen throughout."""
    from cfer.strategies.models.timm_models import timm_backbone

    return timm_backbone("resnetv2_50", weights=cfg.weights, pooling=pooling, model_name="resnet50v2_paper")


@register_family(PREFIX)
def register_timm_model(name: str) -> None:
    """Register ``timm:<arch>`` (linear head, average pooling, nothing frozen by default)."""
    from cfer.strategies.models.timm_models import default_cam_layer, import_timm

    arch = name[len(PREFIX):]
    if not import_timm(name).is_model(arch):
        raise ValueError(f"model.name: timm has no model {arch!r} (timm.list_models('*{arch}*') "
                         "lists similar names)")

    def factory(cfg, *, pooling: str):
        from cfer.strategies.models.timm_models import timm_backbone

        return timm_backbone(arch, weights=cfg.weights, pooling=pooling, model_name=name)

    register_model(name, min_image_size=32, gradcam_layer=default_cam_layer(arch),
                   description=f"timm {arch}", needs="timm")(factory)
