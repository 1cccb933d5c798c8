"""The fast data path and the precision options: same data as stock Avalanche, clear errors."""

from __future__ import annotations

import json
import warnings
from argparse import Namespace

import numpy as np
import pytest
import torch

from cfer.benchmarks.transforms import train_transform
from cfer.plugins.speed import device_transforms, fast_data, precision
from cfer.plugins.speed.config import FastDataConfig
from cfer.plugins.speed.loader import FastLoader
from cfer.strategies.builder import build
from cfer.strategies.models import ModelConfig, build_model
from cfer.strategies.registry import available, entry
from cfer.strategies.training import TrainingConfig
from tests.conftest import make_tiny_dataset

TINY = dict(batch_size=4, eval_batch_size=8, basic_epochs=1, epochs=1, patience=0, lr=1e-3,
            basic_lr=1e-3, mem_per_class=1, precision="fp32", channels_last=False)  # run() sets them
TINY_PARAMS = {"bic": dict(epochs=1, val_fraction=0.5), "agem": dict(patterns_per_exp=4, sample_size=4),
               "gem": dict(patterns_per_exp=4)}  # strategies.params.<name>


def tiny_bm(*, train_transform=None, size=16):
    """The tiny benchmark; ``train_transform`` None: no augmentation (the eval transform)."""
    from cfer.benchmarks import compound_benchmark
    from cfer.benchmarks.transforms import eval_transform

    ds, images = make_tiny_dataset(size=size)
    return compound_benchmark(ds, images=images, image_size=size, n_folds=3, seed=0,
                              class_order=list(ds.class_names[6:]),
                              train_transform=train_transform or eval_transform())


def quiet_evaluator():
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.training.plugins import EvaluationPlugin

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return EvaluationPlugin(accuracy_metrics(stream=True), loggers=[])


def recorder():
    """A plugin that keeps every training and evaluation mini-batch and loss."""
    from avalanche.core import SupervisedPlugin

    class Recorder(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.train, self.eval = [], []

        def before_backward(self, strategy, **kwargs):
            self.train.append((strategy.mb_x.clone(), strategy.mb_y.clone(), strategy.mb_task_id.clone(),
                               float(strategy.loss.detach())))

        def after_eval_forward(self, strategy, **kwargs):
            self.eval.append((strategy.mb_x.clone(), strategy.mb_y.clone(), strategy.mb_output.clone()))

    return Recorder()


STOCK = FastDataConfig(on_device="false")


def run(name, bm, *, fast: bool, prec: precision.PrecisionConfig | None = None, n_exps=2, backend=None):
    from avalanche.training.determinism.rng_manager import RNGManager

    RNGManager.set_random_seeds(0)
    model = build_model(ModelConfig(name="small_cnn"), n_classes=bm.info.n_basic)
    rec = recorder()
    # The registry's own speed options are off: this helper applies them itself.
    strategy = build(name, model=model, benchmark=bm, config=TrainingConfig(**TINY),
                     params=TINY_PARAMS.get(name), evaluator=quiet_evaluator(), plugins=[rec], data=STOCK)
    if prec is not None:
        precision.enable(strategy, prec, compile_backend=backend)
    if fast:
        fast_data.enable(strategy, FastDataConfig(on_device="auto"))
    for i in range(n_exps):
        strategy.train(bm.train_stream[i], eval_streams=[])
        strategy.eval(bm.test_stream[: i + 1])
    return strategy, rec


def assert_same_batches(a, b):
    assert len(a) == len(b) and len(a) > 0
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            if isinstance(u, torch.Tensor):
                assert u.dtype == v.dtype and u.shape == v.shape
                assert torch.equal(u, v)


# -- the fast data path yields what Avalanche yields ---------------------------------------------

@pytest.mark.parametrize("name", ["naive", "replay", "kd_psmr"])  # plain, replay loader, PSMR memory
def test_fast_path_trains_on_the_same_batches_as_stock(name):
    bm = tiny_bm()
    stock_strategy, stock = run(name, bm, fast=False)
    fast_strategy, fast = run(name, bm, fast=True)
    assert any(isinstance(p, fast_data.FastDataPlugin) for p in fast_strategy.plugins)
    assert fast_strategy.plugins[-1].store is not None  # the fast path was taken
    assert_same_batches([t[:3] for t in stock.train], [t[:3] for t in fast.train])
    losses = np.array([t[3] for t in stock.train]), np.array([t[3] for t in fast.train])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    assert_same_batches(stock.eval, fast.eval)  # evaluation: same images, labels and outputs


def test_loaders_of_every_kind_give_the_same_items():
    from avalanche.benchmarks.utils.data_loader import (
        ReplayDataLoader,
        SingleDatasetDataLoader,
        TaskBalancedDataLoader,
    )
    from torch.utils.data import DataLoader

    bm = tiny_bm()
    d0, d1 = bm.train_stream[0].dataset.train(), bm.train_stream[1].dataset.train()
    memory = d0.subset([0, 3, 7, 9, 11])
    plugin = fast_data.FastDataPlugin()
    makers = {
        "plain": lambda: TaskBalancedDataLoader(d0, oversample_small_groups=True, batch_size=5, shuffle=True),
        "replay": lambda: ReplayDataLoader(d1, memory, batch_size=2, batch_size_mem=3, shuffle=True,
                                           oversample_small_tasks=True),
        "concat/subset": lambda: DataLoader(d1.concat(memory).subset([4, 0, 2]), batch_size=2, shuffle=True,
                                            collate_fn=d0.collate_fn),
        "evaluation": lambda: SingleDatasetDataLoader(bm.test_stream[1].dataset.eval(), batch_size=4),
    }
    for kind, make in makers.items():
        torch.manual_seed(3)
        stock = list(make())
        torch.manual_seed(3)
        fast = plugin.wrap(make(), device="cpu")
        assert isinstance(fast, FastLoader), kind
        assert len(fast) == len(stock)
        assert_same_batches(stock, list(fast))


def test_exemplar_ranking_loader_matches_the_selection_loader():
    from cfer.plugins.method.selection import PredictiveSortingSelection, _loader

    bm = tiny_bm()
    strategy, _ = run("naive", bm, fast=True, n_exps=1)
    data = bm.train_stream[0].dataset
    loader = fast_data.make_loader(strategy, data.eval(), batch_size=strategy.eval_mb_size)
    assert isinstance(loader, FastLoader)
    assert_same_batches(list(_loader(strategy, data)), list(loader))
    order = PredictiveSortingSelection().make_sorted_indices(strategy, data)
    assert sorted(order) == list(range(len(data)))


def test_device_affine_equals_torchvision_per_image():
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6, 3, 21, 17), dtype=torch.uint8, generator=g)
    angles, shifts = torch.linspace(-20, 20, 6), torch.arange(-3, 3)
    scales, shears = torch.linspace(0.8, 1.2, 6), torch.linspace(-5, 5, 6)
    params = [(float(a), [float(t), -2.0], float(s), [float(h), 3.0])
              for a, t, s, h in zip(angles, shifts, scales, shears)]
    theta = device_transforms._affine_theta(*(torch.tensor(v, dtype=torch.float64) for v in (
        [p[0] for p in params], [p[1][0] for p in params], [p[1][1] for p in params], [p[2] for p in params],
        [p[3][0] for p in params], [p[3][1] for p in params])), cx=0.0, cy=0.0)
    for mode, fill in (("nearest", 0), ("bilinear", [10.0, 20.0, 30.0])):
        got = device_transforms.affine_batch(x, theta, mode=mode, fill=fill)
        ref = torch.stack([F.affine(x[i], angle=a, translate=t, scale=s, shear=h, fill=fill,
                                    interpolation=InterpolationMode(mode))
                           for i, (a, t, s, h) in enumerate(params)])
        assert got.dtype == torch.uint8 and torch.equal(got, ref)


def test_device_augmentation_flips_per_image_and_repeats_for_a_seed():
    from cfer.benchmarks.transforms import AugmentConfig

    bm_flip = tiny_bm(train_transform=train_transform(AugmentConfig(rotation=0, zoom=0, translate=0)))
    data = bm_flip.train_stream[0].dataset.train()
    plain = torch.stack([data.eval()[i][0] for i in range(len(data))])  # no augmentation

    def batches(seed):
        torch.manual_seed(seed)
        loader = torch.utils.data.DataLoader(data, batch_size=len(data), collate_fn=data.collate_fn)
        return list(fast_data.FastDataPlugin().wrap(loader, device="cpu"))

    (x, y, t), = batches(0)
    same, flipped = (x == plain).flatten(1).all(1), (x == plain.flip(-1)).flatten(1).all(1)
    assert bool((same | flipped).all()) and 0 < int(flipped.sum()) < len(x)
    assert torch.equal(batches(0)[0][0], x)  # same seed, same augmentation

    bm_full = tiny_bm(train_transform=train_transform())  # the paper's augmentation
    data = bm_full.train_stream[0].dataset.train()
    loader = torch.utils.data.DataLoader(data, batch_size=len(data), collate_fn=data.collate_fn)
    (x_fast, _, _), = fast_data.FastDataPlugin().wrap(loader, device="cpu")
    x_stock = torch.stack([data[i][0] for i in range(len(data))])
    assert x_fast.shape == x_stock.shape and x_fast.dtype == x_stock.dtype == torch.float32
    assert not torch.equal(x_fast, plain)


def test_unsupported_transforms_keep_the_stock_loader_with_a_warning(caplog):
    from torchvision.transforms import v2

    jitter = v2.Compose([v2.ColorJitter(brightness=0.2), v2.ToDtype(torch.float32, scale=True)])
    bm = tiny_bm(train_transform=jitter)
    data = bm.train_stream[0].dataset.train()
    loader = torch.utils.data.DataLoader(data, batch_size=4, collate_fn=data.collate_fn)
    plugin = fast_data.FastDataPlugin()
    with caplog.at_level("WARNING"):
        assert plugin.wrap(loader, device="cpu") is loader
        assert plugin.wrap(loader, device="cpu") is loader
    assert caplog.text.count("ColorJitter") == 1  # once per reason
    assert plugin.store is None


def test_fast_data_config_and_enable_errors():
    assert FastDataConfig(on_device=True).on_device == "true"
    assert FastDataConfig(on_device=False).on_device == "false"
    with pytest.raises(ValueError, match="data.on_device: must be one of auto, true, false, got 'gpu'"):
        FastDataConfig(on_device="gpu")
    bm = tiny_bm()
    model = build_model(ModelConfig(), n_classes=bm.info.n_basic)
    strategy = build("naive", model=model, benchmark=bm, config=TrainingConfig(**TINY),
                     data=FastDataConfig(on_device="false"))
    with pytest.raises(ValueError, match="data.on_device=true needs a CUDA device"):
        fast_data.enable(strategy, FastDataConfig(on_device="true"))
    assert fast_data.enable(strategy, FastDataConfig(on_device="false")) is None
    assert not any(isinstance(p, fast_data.FastDataPlugin) for p in strategy.plugins)


# -- precision, layout and compile -------------------------------------------------------------

def test_the_data_section_loads_without_torch():
    # The config module imports FastDataConfig before torch is loaded: a config error must
    # answer in a fraction of a second, not after the 6 s of importing torch and Avalanche.
    import subprocess
    import sys

    code = ("import sys; import cfer.experiments.config.sections as c; from cfer.plugins.speed.config import "
            "FastDataConfig; assert c.ExperimentConfig().data == FastDataConfig(); "
            "print(sorted(m for m in ('torch', 'avalanche', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_precision_config_accepts_and_rejects_clearly(monkeypatch):
    assert precision.PrecisionConfig(compile=True).compile == "default"
    assert precision.PrecisionConfig(precision="fp32", channels_last=False, compile=False).is_default
    # auto: fp32 and channels-last for a convolutional model on the CPU; bf16 on a CUDA device that
    # has it (the device preset)
    auto = precision.PrecisionConfig()
    assert (auto.precision, auto.channels_last) == ("auto", "auto") and not auto.is_default
    cpu = auto.resolved("cpu", convolutional=True)
    assert (cpu.precision, cpu.channels_last) == ("fp32", True)
    assert auto.resolved("cpu", convolutional=False).is_default
    cuda = auto.resolved("cuda", convolutional=True, bf16=True)
    assert (cuda.precision, cuda.channels_last) == ("bf16", True)
    assert auto.resolved("cuda", convolutional=True, bf16=False).precision == "fp32"
    with pytest.raises(ValueError, match="training.precision: must be one of auto, fp32, bf16, fp16, "
                                         "got 'fp8'"):
        precision.PrecisionConfig(precision="fp8")
    with pytest.raises(ValueError, match="training.compile: must be one of false, default, "
                                         "reduce-overhead, got 'max'"):
        precision.PrecisionConfig(compile="max")
    with pytest.raises(ValueError, match="training.channels_last"):
        precision.PrecisionConfig(channels_last="yes")
    with pytest.raises(ValueError, match="autocast is supported here on cuda and cpu"):
        precision.check(precision.PrecisionConfig(precision="bf16"), "meta")
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(ValueError, match="training.compile=default on the CPU needs a C\\+\\+ compiler"):
        precision.check(precision.PrecisionConfig(compile="default"), "cpu")
    precision.check(precision.PrecisionConfig(compile="default"), "cpu", compile_backend="eager")


def test_bf16_runs_the_model_and_its_teacher_in_bf16_with_float32_outputs():
    bm = tiny_bm()
    cfg = precision.PrecisionConfig(precision="bf16", channels_last=True)
    strategy, rec = run("kd_psmr", bm, fast=True, prec=cfg)
    conv_dtypes = []
    first_conv = next(m for m in strategy.model.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_hook(lambda m, a, out: conv_dtypes.append(out.dtype))
    teacher = next(p for p in strategy.plugins if type(p).__name__ == "BasicDistillationPlugin").teacher
    x = bm.train_stream[0].dataset.eval()[0][0][None]
    out, t_out = strategy.model(x), teacher(x)
    assert conv_dtypes == [torch.bfloat16]  # autocast inside the model call
    assert out.dtype == t_out.dtype == torch.float32  # losses and metrics see float32
    assert all(np.isfinite(t[3]) for t in rec.train)
    assert all(o.dtype == torch.float32 for _, _, o in rec.eval)
    assert first_conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_fp16_scales_the_loss_and_rejects_what_it_cannot_scale():
    from avalanche.training import Naive

    bm = tiny_bm()
    strategy, rec = run("replay", bm, fast=True, prec=precision.PrecisionConfig(precision="fp16"), n_exps=1)
    plugin = next(p for p in strategy.plugins if isinstance(p, precision.PrecisionPlugin))
    assert plugin.loss_scaling.backward_calls == len(rec.train) > 0
    assert all(np.isfinite(t[3]) for t in rec.train)

    class OwnBackward(Naive):
        def backward(self):
            self.loss.backward()

    model = build_model(ModelConfig(), n_classes=6)
    own = OwnBackward(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                      evaluator=quiet_evaluator())
    with pytest.raises(ValueError, match="fp16: OwnBackward has its own backward"):
        precision.enable(own, precision.PrecisionConfig(precision="fp16"))

    model = build_model(ModelConfig(), n_classes=6)
    bypass = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), train_mb_size=4,
                   evaluator=quiet_evaluator())
    precision.enable(bypass, precision.PrecisionConfig(precision="fp16"))
    bypass.backward = lambda: bypass.loss.backward()  # a strategy computing gradients itself
    with pytest.raises(ValueError, match="without strategy.backward"):
        bypass.train(bm.train_stream[0])


def test_compile_covers_the_backbone_not_the_growing_head_and_keeps_results():
    model = build_model(ModelConfig(), n_classes=6)
    assert precision.compile_model(model, mode="default", backend="eager") == ["feature_extractor"]
    assert model.feature_extractor._compiled_call_impl is not None
    assert model.classifier._compiled_call_impl is None
    with pytest.raises(ValueError, match="no part with parameters outside its growing head"):
        precision.compile_model(torch.nn.Sequential(torch.nn.ReLU()), mode="default")

    bm = tiny_bm()
    cfg = dict(precision="bf16", channels_last=True)
    _, eager = run("naive", bm, fast=True, prec=precision.PrecisionConfig(**cfg))
    strategy, compiled = run("naive", bm, fast=True, backend="eager",
                             prec=precision.PrecisionConfig(**cfg, compile="reduce-overhead"))
    assert strategy.model.classifier.out_features == 7  # grew through the compiled run
    np.testing.assert_allclose([t[3] for t in compiled.train], [t[3] for t in eager.train], rtol=1e-5)


@pytest.mark.parametrize("name", available())
def test_every_registered_strategy_trains_with_fp16_channels_last_and_the_fast_path(name):
    bm = tiny_bm(train_transform=train_transform())
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="small_cnn"), n_classes=bm.info.n_basic)
    strategy = build(name, model=model, benchmark=bm, config=TrainingConfig(**TINY),
                     params=TINY_PARAMS.get(name), evaluator=quiet_evaluator(), data=STOCK)
    plugin = precision.enable(strategy, precision.PrecisionConfig(precision="fp16", channels_last=True))
    fast_data.enable(strategy)
    if entry(name).offline:
        strategy.train(bm.train_stream, eval_streams=[])
        strategy.seen_class_mask.n_seen = bm.info.n_basic + 1
    else:
        for exp in bm.train_stream[:2]:
            strategy.train(exp, eval_streams=[])
    result = strategy.eval(bm.test_stream[:2])
    assert 0 <= result["Top1_Acc_Stream/eval_phase/test_stream"] <= 1
    assert plugin.loss_scaling.backward_calls > 0
    assert all(torch.isfinite(p).all() for p in strategy.model.parameters())


def test_fp32_nchw_changes_nothing():
    bm = tiny_bm()
    model = build_model(ModelConfig(), n_classes=bm.info.n_basic)
    strategy = build("naive", model=model, benchmark=bm, config=TrainingConfig(**TINY), data=STOCK)
    n_plugins = len(strategy.plugins)
    nchw = precision.PrecisionConfig(precision="fp32", channels_last=False)
    assert precision.enable(strategy, nchw) is None
    assert len(strategy.plugins) == n_plugins and not model._forward_pre_hooks
    # the defaults (auto) on the CPU: fp32, channels-last for this convolutional model
    plugin = precision.enable(strategy, precision.PrecisionConfig())
    assert (plugin.config.precision, plugin.config.channels_last) == ("fp32", True)


# -- cfer bench --------------------------------------------------------------------------------

def test_bench_writes_one_record_per_setting():
    from cfer.experiments.bench.cli import run_bench
    from cfer.experiments.bench.config import BenchConfig, config_from_args
    from cfer.experiments.bench.train_path import RECORD_KEYS, format_table

    cfg = BenchConfig(images=64, image_size=16, batch_sizes=(32,), precisions=("bf16",), epochs=1)
    records = run_bench(cfg, progress=lambda *_: None)
    assert [r["setting"] for r in records] == ["small_cnn 16px bs32 bf16 channels-last"]
    for r in records:
        assert tuple(r) == RECORD_KEYS
        assert all(r[k] > 0 for k in RECORD_KEYS[1:])
        assert r["ours_over_bare"] == pytest.approx(r["ours"] / r["bare"], rel=0.02)
    table = format_table(records)
    assert table.count("\n") == 2 and "ours/stock" in table

    args = Namespace(device="cpu", model=None, batch_sizes=[8], precisions=["bf16"], json_out=None)
    assert config_from_args(args) == BenchConfig(batch_sizes=(8,), precisions=("bf16",))
    with pytest.raises(ValueError, match="--batch-size: must be >= 1"):
        BenchConfig(batch_sizes=(0,))
    assert json.loads(json.dumps(records)) == records  # what --json writes


def test_the_registry_applies_the_configured_speed_options():
    bm = tiny_bm()
    model = build_model(ModelConfig(), n_classes=bm.info.n_basic)
    strategy = build("naive", model=model, benchmark=bm,
                     config=TrainingConfig(**{**TINY, "precision": "bf16", "channels_last": True}))
    kinds = [type(p).__name__ for p in strategy.plugins]
    assert "PrecisionPlugin" in kinds and kinds[-1] == "FastDataPlugin"
    with pytest.raises(ValueError, match="training.precision"):
        TrainingConfig(**{**TINY, "precision": "fp8"})
