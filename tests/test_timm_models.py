"""timm backbones: the reference's pre-activation ResNet-50 (resnet50v2_paper), any timm model
by name (timm:<name>), their freezing per phase, frozen batch norms, weights and errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

pytest.importorskip("timm")

from cfer.strategies.models.config import ModelConfig  # noqa: E402
from cfer.strategies.models.registry import build_model, gradcam_layer  # noqa: E402
from cfer.strategies.models.timm_models import TimmBackbone  # noqa: E402

# Trainable parameters of resnet50v2_paper per phase (docs/reference.md, "ResNet50V2 layer
# indices"): the head (Dense 2048->512, 512->32, 32->6) alone; plus every conv kernel of
# stages.2-3 (Keras conv4-5: layers[86:]); plus those of stages.3 (conv5: layers[154:]).
HEAD = 2048 * 512 + 512 + 512 * 32 + 32 + 32 * 6 + 6
TRAINABLE = {"all": HEAD, "layer3": HEAD + 22_020_096, "layer4": HEAD + 14_942_208}


@pytest.fixture(scope="module")
def v2():
    torch.manual_seed(0)
    return build_model(ModelConfig(name="resnet50v2_paper", image_size=32), n_classes=6)


def capture(module: nn.Module, store: dict, key: str):
    return module.register_forward_hook(lambda m, args, out: store.update({key + "_in": args[0], key: out}))


def test_resnet50v2_paper_blocks_are_pre_activation(v2):
    net = v2.backbone.net
    assert isinstance(v2.backbone, TimmBackbone) and v2.backbone.arch == "resnetv2_50"
    assert [len(s.blocks) for s in net.stages] == [3, 4, 6, 3]  # ResNet50V2: conv2-conv5
    block = net.stages[1].blocks[1]  # an identity-shortcut block
    seen: dict = {}
    hooks = [capture(block, seen, "block"), capture(block.conv1, seen, "conv1"),
             capture(block.conv3, seen, "conv3"), capture(net.norm, seen, "post"),
             capture(v2.backbone, seen, "pooled")]
    v2.eval()
    with torch.no_grad():
        v2(torch.randn(2, 3, 32, 32))
    for h in hooks:
        h.remove()
    x = seen["block_in"]
    # BN + ReLU come before the first convolution (pre-activation) ...
    bn = block.norm1
    preact = torch.relu(nn.functional.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                                 training=False, eps=bn.eps))
    assert torch.allclose(seen["conv1_in"], preact, atol=1e-6)
    assert (seen["conv1_in"] >= 0).all() and not (x >= 0).all()
    # ... and nothing follows the addition: the block's output is input + residual, not ReLU'd
    assert torch.allclose(seen["block"], x + seen["conv3"])
    assert (seen["block"] < 0).any()
    # the final BN + ReLU (Keras' post_bn/post_relu), then global max pooling
    assert (seen["post"] >= 0).all()
    assert torch.equal(seen["pooled"], seen["post"].amax(dim=(2, 3)))


def test_inputs_reach_the_timm_model_normalised_as_its_weights_expect(v2):
    """Our transforms normalise with ImageNet's mean/std; resnetv2_50's weights expect [-1, 1]."""
    from cfer.benchmarks.transforms import IMAGENET_MEAN, IMAGENET_STD

    raw = torch.rand(2, 3, 32, 32)
    ours = (raw - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert v2.backbone.net.pretrained_cfg["mean"] == (0.5, 0.5, 0.5)
    v2.eval()
    with torch.no_grad():
        assert torch.allclose(v2.backbone(ours), v2.backbone.net(raw * 2 - 1), atol=1e-5)
    assert not any("input_" in k for k in v2.state_dict())  # not saved: derived from the architecture


def test_resnet50_paper_blocks_are_post_activation():
    """The torchvision stand-in differs: ReLU after the addition, BN after each conv."""
    model = build_model(ModelConfig(name="resnet50_paper", image_size=32), n_classes=6).eval()
    seen: dict = {}
    hook = capture(model.backbone.stages.layer2[1], seen, "block")
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    hook.remove()
    assert (seen["block"] >= 0).all() and (seen["block"] == 0).any()


def test_resnet50v2_paper_head_matches_the_reference(v2):
    kinds = [type(layer) for layer in v2.neck]
    assert kinds == [nn.Dropout, nn.Linear, nn.Sigmoid, nn.Dropout, nn.Linear, nn.Sigmoid, nn.Dropout]
    assert [(m.in_features, m.out_features) for m in v2.neck if isinstance(m, nn.Linear)] == [(2048, 512),
                                                                                              (512, 32)]
    assert v2.config.pooling == "max" and v2.config.freeze_bn
    assert (v2.config.basic_freeze_below, v2.config.finetune_freeze_below, v2.config.freeze_below) == \
        ("all", "layer3", "layer4")
    assert gradcam_layer("resnet50v2_paper") == "feature_extractor.backbone.net.norm"
    assert "feature_extractor.backbone.net.norm" in dict(v2.named_modules())


@pytest.mark.parametrize("level, stages", [("all", ()), ("layer3", ("stages.2.", "stages.3.")),
                                           ("layer4", ("stages.3.",))])
def test_resnet50v2_paper_trains_exactly_the_mapped_layers_per_phase(v2, level, stages):
    """Basic stage 1 (all), basic stage 2 (Keras layers[86:]: conv4-5), continual (layers[154:]:
    conv5): the convolutions of those stages and the head train; no batch norm ever does."""
    v2.backbone.freeze_below(level)
    try:
        prefix = "feature_extractor.backbone.net."
        trainable = {n for n, p in v2.named_parameters() if p.requires_grad}
        backbone = {n[len(prefix):] for n in trainable if n.startswith(prefix)}
        expected = {n for n, _ in v2.backbone.net.named_parameters()
                    if n.startswith(stages) and ".norm" not in n} if stages else set()
        assert backbone == expected
        assert all(n.endswith("conv.weight") or n.split(".")[-2].startswith("conv") for n in backbone)
        assert trainable - {prefix + n for n in backbone} == {n for n, _ in v2.named_parameters()
                                                              if not n.startswith(prefix)}
        assert sum(p.numel() for p in v2.parameters() if p.requires_grad) == TRAINABLE[level]
    finally:
        v2.backbone.freeze_below(v2.config.freeze_below)


def bn_state(model: nn.Module) -> dict:
    """Every batch norm's statistics and affine parameters, by state-dict key."""
    return {f"{name}.{k}": v.clone() for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)
            for k, v in m.state_dict().items()}


def train_step(model, x, y) -> None:
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


@pytest.mark.parametrize("freeze_bn", [True, False])
def test_batch_norm_statistics_stay_frozen_in_a_training_step(freeze_bn):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="resnet50v2_paper", image_size=32, freeze_bn=freeze_bn),
                        n_classes=6)
    model.backbone.freeze_below("layer3")  # basic stage 2: the most the reference trains
    before = bn_state(model)
    conv = model.backbone.net.stages[2].blocks[0].conv1.weight.detach().clone()
    frozen_conv = model.backbone.net.stages[1].blocks[0].conv1.weight.detach().clone()
    train_step(model, torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]))
    after = bn_state(model)
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert not torch.equal(conv, model.backbone.net.stages[2].blocks[0].conv1.weight)  # it trained
    assert torch.equal(frozen_conv, model.backbone.net.stages[1].blocks[0].conv1.weight)
    if freeze_bn:  # the reference: no batch norm statistic or parameter moves
        assert changed == []
    else:  # control: the trainable stages' batch norms update, the frozen ones' do not
        assert changed and all(k.startswith(("feature_extractor.backbone.net.stages.2.",
                                              "feature_extractor.backbone.net.stages.3.",
                                              "feature_extractor.backbone.net.norm.")) for k in changed)


def tiny_benchmark_32px():
    from cfer.benchmarks import compound_benchmark
    from tests.conftest import make_tiny_dataset

    ds, images = make_tiny_dataset(size=32)
    return compound_benchmark(ds, images=images, image_size=32, n_folds=3, seed=0,
                              class_order=list(ds.class_names[6:]))


def test_a_timm_model_trains_kd_psmr(tmp_path):
    """Any timm model by name: two-stage basic training and one continual step of kd_psmr at 32 px,
    with the reference's freezing; herding's default feature layer is the feature extractor's output."""
    from avalanche.core import SupervisedPlugin

    from cfer.plugins.method.selection import features
    from cfer.strategies.builder import build
    from cfer.strategies.training import TrainingConfig

    torch.manual_seed(0)
    bm = tiny_benchmark_32px()
    model = build_model(ModelConfig(name="timm:test_resnet", head="paper", freeze_bn=True,
                                    basic_freeze_below="all", finetune_freeze_below="layer3",
                                    freeze_below="layer4", image_size=32), n_classes=bm.info.n_basic)
    assert isinstance(model.backbone, TimmBackbone)
    cfg = TrainingConfig(batch_size=4, eval_batch_size=8, basic_epochs=1, finetune_epochs=1, epochs=1,
                         patience=0, lr=1e-2, basic_lr=1e-2, finetune_lr=1e-2, mem_per_class=1)
    seen = []

    class Spy(SupervisedPlugin):
        def before_training_epoch(self, strategy, **kwargs):
            seen.append(model.backbone.frozen)

    strategy = build("kd_psmr", model=model, benchmark=bm, config=cfg, plugins=[Spy()])
    strategy.train(bm.train_stream[0], eval_streams=[])
    net = model.backbone.net
    before, bn_before = {k: v.clone() for k, v in net.state_dict().items()}, bn_state(net)
    strategy.train(bm.train_stream[1], eval_streams=[])
    after, bn_after = net.state_dict(), bn_state(net)
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    levels = ("stem", "layer1", "layer2", "layer3", "layer4")
    assert seen == [levels, levels[:3], levels[:4]]  # basic stage 1, stage 2, continual step
    assert changed == {"layer4"}  # continual phase: only the last stage (and the head) moved
    assert bn_before and all(torch.equal(v, bn_after[k]) for k, v in bn_before.items())
    assert model.classifier.out_features == bm.info.n_basic + 1
    data = bm.train_stream[1].dataset
    default = features(strategy, data)
    assert torch.equal(default, features(strategy, data, layer_name="feature_extractor"))
    assert default.shape == (len(data), 32)


def test_timm_models_resolve_their_grad_cam_layer_and_freezing_levels():
    model = build_model(ModelConfig(name="timm:test_resnet"), n_classes=3)
    layer = gradcam_layer("timm:test_resnet")
    assert layer == "feature_extractor.backbone.net.layer4"
    assert tuple(model.backbone.levels()) == ("stem", "layer1", "layer2", "layer3", "layer4")
    seen: dict = {}
    hook = capture(dict(model.named_modules())[layer], seen, "cam")
    model.eval()(torch.randn(1, 3, 64, 64))
    hook.remove()
    assert seen["cam"].shape[-2:] == (2, 2)  # the last feature map, stride 32
    assert model.backbone.out_features == model.classifier.in_features == 96  # linear head
    with pytest.raises(ValueError, match="'layer4' is not a stage of this backbone"):
        build_model(ModelConfig(name="timm:test_vit", freeze_below="layer4"), n_classes=3)


def test_a_state_dict_saved_from_one_build_loads_into_another(tmp_path):
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(1)
    source = build_model(ModelConfig(name="timm:test_resnet"), n_classes=3)
    torch.save(source.backbone.state_dict(), tmp_path / "backbone.pt")  # keys net.*
    raw = timm.create_model("test_resnet")  # timm's own keys, with its classifier (fc.*)
    torch.save(raw.state_dict(), tmp_path / "timm.pt")
    save_file(raw.state_dict(), tmp_path / "timm.safetensors")
    for path, want in (("backbone.pt", source.backbone.net), ("timm.pt", raw), ("timm.safetensors", raw)):
        torch.manual_seed(2)
        loaded = build_model(ModelConfig(name="timm:test_resnet", weights=str(tmp_path / path)), n_classes=3)
        expected = want.state_dict()
        for key, value in loaded.backbone.net.state_dict().items():
            assert torch.equal(value, expected[key]), (path, key)
    torch.save(timm.create_model("test_vit").state_dict(), tmp_path / "vit.pt")
    with pytest.raises(ValueError, match="model.weights: not a state dict of timm test_resnet: missing"):
        build_model(ModelConfig(name="timm:test_resnet", weights=str(tmp_path / "vit.pt")), n_classes=3)


def test_resnet50v2_paper_loads_a_timm_resnetv2_50_state_dict(tmp_path):
    import timm

    torch.manual_seed(3)
    raw = timm.create_model("resnetv2_50")
    torch.save(raw.state_dict(), tmp_path / "resnetv2_50.pt")
    model = build_model(ModelConfig(name="resnet50v2_paper", weights=str(tmp_path / "resnetv2_50.pt")),
                        n_classes=6)
    last = model.backbone.net.stages[3].blocks[2]
    assert torch.equal(last.conv3.weight, raw.stages[3].blocks[2].conv3.weight)
    assert torch.equal(model.backbone.net.norm.running_var, raw.norm.running_var)


@pytest.mark.parametrize("weights", ["imagenet", "hf-hub:someone/fer-resnet"])
def test_hub_weights_offline_fail_with_one_line_naming_the_local_file(weights, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # as without network
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # nothing cached
    with pytest.raises(OSError) as err:
        build_model(ModelConfig(name="timm:test_resnet", weights=weights), n_classes=3)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"model.weights={weights}: could not fetch the weights of timm test_resnet")
    assert message.endswith("offline, pass model.weights: <path to a local state dict or .safetensors "
                            "file> or none")


def test_without_timm_the_v2_model_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` now raises ImportError
    for name in ("resnet50v2_paper", "timm:resnet10t_never_registered"):
        with pytest.raises(ImportError) as err:
            build_model(ModelConfig(name=name), n_classes=6)
        assert str(err.value) == f'model.name: {name} needs timm; pip install "cfer[timm]"'


def test_without_timm_the_config_check_names_the_extra_before_any_data(monkeypatch):
    from cfer.experiments.config.load import load_config

    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(ValueError) as err:
        load_config(None, ["model.name=resnet50v2_paper", "benchmark.image_size=64"])
    assert str(err.value).endswith(
        "key 'model.name': resnet50v2_paper needs timm; pip install \"cfer[timm]\"")


def test_unknown_timm_model_is_one_line():
    with pytest.raises(ValueError, match=r"model.name: timm has no model 'no_such_net' "):
        build_model(ModelConfig(name="timm:no_such_net"), n_classes=3)


def test_the_strategies_root_stays_free_of_torch_and_timm():
    code = ("import sys, cfer.strategies, cfer.strategies.models; "
            "print(sorted(m for m in ('torch', 'timm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
