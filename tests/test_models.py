"""Backbone registry, the paper's ResNet-50 head, weights, freezing, and the growing classifier."""

from __future__ import annotations

from types import SimpleNamespace
from urllib.error import URLError

import pytest
import torch
from torch import nn

from cfer.strategies.models.classifier import GrowingClassifier
from cfer.strategies.models.config import ModelConfig
from cfer.strategies.models.registry import available_models, build_model, register_model


def experience(classes):
    return SimpleNamespace(classes_in_this_experience=set(classes), task_labels=[0])


@pytest.fixture(scope="module")
def resnet50_paper():
    torch.manual_seed(0)
    return build_model(ModelConfig(name="resnet50_paper", image_size=32), n_classes=6)


def test_registry_lists_builtin_models_and_rejects_unknown_names():
    assert {"resnet50_paper", "resnet50", "resnet18", "small_cnn"} <= set(available_models())
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        build_model(ModelConfig(name="vgg"), n_classes=6)
    with pytest.raises(ValueError, match="model.freeze_below"):
        ModelConfig(freeze_below="layer9")


def test_growing_classifier_keeps_old_units_and_zeroes_new_biases():
    torch.manual_seed(0)
    head = GrowingClassifier(8, 6)
    assert torch.equal(head.linear.bias, torch.zeros(6))  # Keras-style zero bias from the start
    with torch.no_grad():
        head.linear.bias.copy_(torch.arange(6.0))
    old_w, old_b = head.linear.weight.detach().clone(), head.linear.bias.detach().clone()
    head.train()
    head.adaptation(experience([6, 7]))
    assert head.out_features == 8
    assert torch.equal(head.linear.weight[:6], old_w) and torch.equal(head.linear.bias[:6], old_b)
    assert torch.equal(head.linear.bias[6:], torch.zeros(2))
    new_w = head.linear.weight[6:]
    assert (new_w != 0).all() and not torch.equal(new_w[0], new_w[1])
    bound = (6 / (8 + 2)) ** 0.5  # Glorot-uniform over the new (2, 8) block, as the reference code
    assert new_w.abs().max() <= bound
    head.adaptation(experience([3]))  # classes already covered: unchanged
    assert head.out_features == 8
    assert head(torch.randn(5, 8)).shape == (5, 8)


def test_growing_classifier_does_not_grow_in_eval_mode():
    head = GrowingClassifier(4, 6).eval()
    head.adaptation(experience([2, 5]))
    assert head.out_features == 6
    with pytest.raises(ValueError, match=r"classes \[6\] that the model has not been trained on"):
        head.adaptation(experience([6]))


def test_model_grows_through_avalanche_model_adaptation():
    from avalanche.models.dynamic_modules import avalanche_model_adaptation

    model = build_model(ModelConfig(), n_classes=6).train()
    avalanche_model_adaptation(model, experience([6]))
    assert model.classifier.out_features == 7
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 7)
    assert model.features(torch.randn(2, 3, 16, 16)).shape == (2, 256)


def test_resnet50_paper_structure(resnet50_paper):
    m = resnet50_paper
    assert isinstance(m.backbone.pool, nn.AdaptiveMaxPool2d)
    layers = list(m.neck)
    kinds = [type(layer) for layer in layers]
    assert kinds == [nn.Dropout, nn.Linear, nn.Sigmoid, nn.Dropout, nn.Linear, nn.Sigmoid, nn.Dropout]
    assert all(layer.p == 0.2 for layer in layers if isinstance(layer, nn.Dropout))
    assert (layers[1].in_features, layers[1].out_features) == (2048, 512)
    assert (layers[4].in_features, layers[4].out_features) == (512, 32)
    assert (m.classifier.in_features, m.classifier.out_features) == (32, 6)
    m.eval()
    with torch.no_grad():
        features = m.features(torch.randn(2, 3, 32, 32))
        out = m(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, 32) and ((features > 0) & (features < 1)).all()  # sigmoid
    assert out.shape == (2, 6)
    assert [id(p) for p in m.regularized_parameters()] == [id(layers[1].weight), id(layers[4].weight)]


def test_resnet50_paper_freezing_follows_the_reference_code(resnet50_paper):
    m = resnet50_paper
    cfg = m.config
    levels = (cfg.freeze_below, cfg.basic_freeze_below, cfg.finetune_freeze_below)
    assert levels == ("layer4", "all", "layer3")
    trainable = {n.split(".")[3] for n, p in m.named_parameters()
                 if p.requires_grad and n.startswith("feature_extractor.backbone.")}
    assert trainable == {"layer4"}
    # batch norms never train (Keras keeps them frozen when fine-tuning) ...
    bn_params = [p for mod in m.backbone.modules() if isinstance(mod, nn.BatchNorm2d)
                 for p in mod.parameters()]
    assert bn_params and not any(p.requires_grad for p in bn_params)
    m.train()
    assert not any(mod.training for mod in m.backbone.modules() if isinstance(mod, nn.BatchNorm2d))
    assert m.neck.training and m.classifier.training
    # ... and the head always trains
    assert all(p.requires_grad for p in m.neck.parameters())


@pytest.mark.parametrize("level, frozen", [
    ("none", []), ("stem", []), ("layer1", ["stem"]), ("layer3", ["stem", "layer1", "layer2"]),
    ("all", ["stem", "layer1", "layer2", "layer3"])])
def test_freeze_below_freezes_exactly_the_stages_below(level, frozen):
    model = build_model(ModelConfig(freeze_below=level), n_classes=6)
    for name, p in model.named_parameters():
        stage = name.split(".")[3] if name.startswith("feature_extractor.backbone.stages.") else None
        assert p.requires_grad == (stage not in frozen), name
    model.train()
    for name, mod in model.backbone.stages.items():
        bns = [b for b in mod.modules() if isinstance(b, nn.BatchNorm2d)]
        assert all(b.training == (name not in frozen) for b in bns)


def test_freeze_below_rejects_a_stage_the_backbone_lacks():
    with pytest.raises(ValueError, match="'layer4' is not a stage of this backbone"):
        build_model(ModelConfig(freeze_below="layer4"), n_classes=6)


def test_weights_path_loads_a_saved_state_dict(tmp_path):
    torch.manual_seed(1)
    source = build_model(ModelConfig(), n_classes=6)
    path = tmp_path / "backbone.pt"
    torch.save(source.backbone.state_dict(), path)
    torch.manual_seed(2)
    loaded = build_model(ModelConfig(weights=str(path)), n_classes=6)
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(loaded.backbone.state_dict()[key], value)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a state dict of small_cnn"):
        build_model(ModelConfig(weights=str(tmp_path / "other.pt")), n_classes=6)
    with pytest.raises(FileNotFoundError, match="missing.pt does not exist"):
        build_model(ModelConfig(weights=str(tmp_path / "missing.pt")), n_classes=6)


def test_weights_path_loads_a_torchvision_state_dict(tmp_path):
    import torchvision

    torch.manual_seed(3)
    net = torchvision.models.resnet18(weights=None)
    torch.save(net.state_dict(), tmp_path / "r18.pt")  # includes fc.*, which is ignored
    model = build_model(ModelConfig(name="resnet18", weights=str(tmp_path / "r18.pt")), n_classes=6)
    assert torch.equal(model.backbone.stages.stem[0].weight, net.conv1.weight)
    assert torch.equal(model.backbone.stages.layer4[1].conv2.weight, net.layer4[1].conv2.weight)
    assert isinstance(model.neck, nn.Identity)  # resnet18's default: plain linear head


def test_imagenet_weights_offline_fail_with_a_clear_message(tmp_path, monkeypatch):
    import torch.hub

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty cache: a real download is attempted
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(OSError, match="could not download the resnet18 ImageNet weights.*"
                                           "weights=<path to a local state dict> or weights=none"):
        build_model(ModelConfig(name="resnet18", weights="imagenet"), n_classes=6)
    with pytest.raises(ValueError, match="small_cnn has no ImageNet weights"):
        build_model(ModelConfig(weights="imagenet"), n_classes=6)


def test_register_model_adds_a_backbone():
    from collections import OrderedDict

    from cfer.strategies.models.backbones import StagedBackbone

    @register_model("test_tiny_net", pooling="max")
    def tiny(cfg, *, pooling):
        """A one-conv backbone."""
        return StagedBackbone(OrderedDict(stem=nn.Conv2d(3, 4, 3)), out_channels=4, pooling=pooling)

    model = build_model(ModelConfig(name="test_tiny_net"), n_classes=3)
    assert isinstance(model.backbone.pool, nn.AdaptiveMaxPool2d)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 3)
