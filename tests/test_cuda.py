"""What only a CUDA device can check (marker ``cuda``: skipped without one; tools/gpu_check.sh
runs them with ``pytest -m cuda``): the device presets of a CUDA run (bf16 autocast,
channels-last, cudnn.benchmark, images resident on the GPU), torch.compile with inductor, the
one-pass evaluation on the device, herding from GPU features, and Ray runs holding a GPU."""

from __future__ import annotations

import pytest

from tests.test_runner import TINY

pytestmark = pytest.mark.cuda


def _run(tmp_path, *extra):
    from cfer.experiments.config.load import load_config
    from cfer.experiments.run.continual import ContinualRunner

    cfg = load_config(None, [*TINY, f"dataset.root={tmp_path / 'synth'}", "runner.device=cuda", *extra])
    return ContinualRunner(cfg, tmp_path / "out").run()


def test_a_cuda_run_takes_the_device_presets(tmp_path):
    import torch

    from cfer.plugins.speed.precision import PrecisionPlugin
    from cfer.strategies import build
    from cfer.strategies.models import ModelConfig, build_model
    from cfer.strategies.training import TrainingConfig
    from tests.test_speed import tiny_bm

    bm = tiny_bm()
    model = build_model(ModelConfig(name="small_cnn"), n_classes=bm.info.n_basic)
    strategy = build("kd_psmr", model=model, benchmark=bm, config=TrainingConfig(), device="cuda")
    plugin = next(p for p in strategy.plugins if isinstance(p, PrecisionPlugin))
    assert plugin.config.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    assert plugin.config.channels_last is True and torch.backends.cudnn.benchmark
    strategy.train(bm.train_stream[0], eval_streams=[])
    conv = next(m for m in strategy.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_a_tiny_run_on_cuda_gives_finite_numbers_with_the_data_on_the_device(tmp_path):
    out = _run(tmp_path, "strategies.methods=[naive, kd_psmr, icarl, joint]")
    for method, block in out["methods"].items():
        for run in block["runs"]:
            assert all(0.0 <= a <= 1.0 for a in run["step_accuracy"]), method


def test_compile_with_inductor_on_cuda(tmp_path):
    out = _run(tmp_path, "strategies.methods=[kd_psmr]", "protocol.orders=1", "training.compile=default")
    assert out["methods"]["kd_psmr"]["runs"][0]["step_accuracy"]


def test_herding_from_gpu_features_ranks_distinct_images():
    import torch

    from cfer.plugins.speed.herding import herding_order

    feats = torch.randn(64, 32, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    order = herding_order(feats, 10)
    assert order.device.type == "cpu" and sorted(order[order > 0].tolist()) == list(range(1, 11))


def test_ray_runs_hold_a_gpu(tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        out = _run(tmp_path, "strategies.methods=[naive]", "runner.backend=ray",
                   "runner.ray.gpus_per_run=0.5")
    finally:
        ray.shutdown()
    assert len(out["methods"]["naive"]["runs"]) == 2
