"""Grad-CAM maps of a saved CLModel, through Captum's ``LayerGradCam``.

Captum (https://captum.ai, maintained by the PyTorch team) rather than pytorch-grad-cam
or a hand-written hook pair: it is pure PyTorch (no OpenCV or ttach dependency), takes a
per-image target class, and upsamples with ``LayerAttribution.interpolate``. It is an
optional extra (``pip install "cfer[explain]"``), imported only here, when maps are drawn.

Maps are computed in fp32 with autocast off, whatever precision the model was trained in,
on the model's Grad-CAM layer from the model registry (``register_model(gradcam_layer=...)``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

EXTRA_HINT = 'Grad-CAM needs captum: pip install "cfer[explain]"'


def require_captum():
    """Captum's ``(LayerGradCam, LayerAttribution)``; a one-line ValueError naming the extra
    when captum is not installed."""
    try:
        from captum.attr import LayerAttribution, LayerGradCam
    except ImportError:
        raise ValueError(EXTRA_HINT) from None
    return LayerGradCam, LayerAttribution


def load_model(model_cfg, state_dict: dict, *, device, where: str):
    """A CLModel of ``model_cfg`` with ``state_dict`` loaded (as wide as the saved classifier),
    in fp32 and eval mode on ``device``, its weights frozen (Captum differentiates with respect
    to the layer's output only: no weight gradients, half the time). Builds with
    ``weights: none``: nothing is downloaded."""
    from cfer.strategies.models import build_model

    means = state_dict.get(NCM_MEANS)
    if means is not None:  # iCaRL (Avalanche's TrainEvalModel): train_classifier is our head
        state_dict = {("classifier" + k[len("train_classifier"):] if k.startswith("train_classifier.")
                       else k): v for k, v in state_dict.items() if not k.startswith("eval_classifier.")}
    key = "classifier.linear.weight"
    if key not in state_dict:
        raise ValueError(f"{where}: not a CLModel state dict (no {key})")
    width = int(state_dict[key].shape[0])
    model = build_model(dataclasses.replace(model_cfg, weights="none"), n_classes=width)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        raise ValueError(f"{where}: does not fit model {model_cfg.name} "
                         f"({str(e).splitlines()[0]})") from None
    if means is not None:
        model = nearest_mean_model(model.feature_extractor, means)
    return model.float().to(device).eval().requires_grad_(False)


#: Where an iCaRL state dict keeps its class means (Avalanche's NCMClassifier buffer).
NCM_MEANS = "eval_classifier.class_means"


def nearest_mean_model(feature_extractor, class_means):
    """iCaRL as it predicts: the negative distance of the L2-normalised features to each class
    mean (Rebuffi et al., CVPR 2017, nearest-mean-of-exemplars). Written here because Avalanche's
    ``NCMClassifier.forward`` runs under ``torch.no_grad``, and Grad-CAM needs its gradient; the
    module keeps ``feature_extractor`` at the top, so the registry's layer paths hold."""
    import torch
    from torch import nn

    class NearestMean(nn.Module):
        def __init__(self):
            super().__init__()
            self.feature_extractor = feature_extractor
            self.register_buffer("class_means", class_means.detach().clone())

        def forward(self, x):
            f = self.feature_extractor(x)
            f = f / f.norm(dim=1, keepdim=True)
            return -torch.cdist(f, self.class_means.to(f.dtype))

    return NearestMean()


def target_layer(model, path: str):
    """The submodule at dotted ``path`` of ``model``; a one-line error naming it otherwise."""
    try:
        return model.get_submodule(path)
    except AttributeError:
        raise ValueError(f"Grad-CAM layer {path!r}: no such module in {type(model).__name__}") from None


def gradcam(model, images, targets, *, layer: str, batch_size: int = 128) -> np.ndarray:
    """(N, H, W) float32 Grad-CAM maps (ReLU'd, upsampled bilinearly to the input size) of
    ``model`` for class ``targets[n]`` on normalised ``images`` (N, 3, H, W)."""
    import torch

    LayerGradCam, LayerAttribution = require_captum()
    param = next(model.parameters())
    x_all = torch.as_tensor(images).to(device=param.device, dtype=torch.float32)
    t_all = torch.as_tensor(np.asarray(targets), dtype=torch.long, device=param.device)
    if len(x_all) != len(t_all):
        raise ValueError(f"gradcam: {len(x_all)} images but {len(t_all)} targets")
    cam = LayerGradCam(model, target_layer(model, layer))
    size = tuple(x_all.shape[-2:])
    out = []
    with torch.enable_grad(), torch.autocast(device_type=param.device.type, enabled=False):
        for start in range(0, len(x_all), batch_size):
            x, t = x_all[start:start + batch_size], t_all[start:start + batch_size]
            a = cam.attribute(x, target=t, relu_attributions=True)
            if a.shape[-2:] == (1, 1):
                raise ValueError(f"Grad-CAM layer {layer!r} gives a 1x1 map at {size[0]} px: no "
                                 "spatial information; use larger images or an earlier layer (--layer)")
            up = LayerAttribution.interpolate(a, size, interpolate_mode="bilinear")
            out.append(up[:, 0].detach().float().cpu().numpy())
            model.zero_grad(set_to_none=True)
    return np.concatenate(out) if out else np.zeros((0, *size), dtype=np.float32)


def layer_cells(model, *, layer: str, size: int) -> tuple[int, int]:
    """(rows, columns) of the map that ``layer`` gives at ``size`` px: Grad-CAM's grid of cells,
    before it is upsampled to the image (one forward pass of a blank image)."""
    import torch

    param = next(model.parameters())
    seen = []
    hook = target_layer(model, layer).register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[-2:])))
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size, device=param.device, dtype=param.dtype))
    finally:
        hook.remove()
    return seen[0]


#: Seeds of the randomised-weights models: none of them a training seed of the shipped configs
#: (0, 1, 2), so that no null model starts from a trained model's initial weights.
RANDOM_SEEDS = (1001, 1002, 1003, 1004, 1005)


def random_models(model_cfg, *, n_classes: int, device, seeds=RANDOM_SEEDS) -> list:
    """Models of ``model_cfg`` with freshly initialised weights, one per seed (the model
    randomisation test of Adebayo et al., "Sanity checks for saliency maps", NeurIPS 2018):
    a map that a model without training draws as well says nothing about what training learnt.
    The global random state is left as it was."""
    import torch

    from cfer.strategies.models import build_model

    out = []
    for seed in seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_model(dataclasses.replace(model_cfg, weights="none"), n_classes=n_classes)
        out.append(model.float().to(device).eval().requires_grad_(False))
    return out


def normalised_batch(images_uint8):
    """(N, H, W, 3) uint8 -> (N, 3, H, W) fp32 tensor, as the test stream feeds the model
    (:func:`cfer.benchmarks.transforms.eval_transform`)."""
    import torch

    from cfer.benchmarks.transforms import eval_transform

    x = torch.from_numpy(np.ascontiguousarray(np.asarray(images_uint8).transpose(0, 3, 1, 2)))
    return eval_transform()(x)
