"""`training.compile`: how often torch.compile traces the backbone over a kd_psmr run (CPU).

Counted with ``torch._dynamo``'s counters (backend ``eager``: Dynamo traces and guards as
with inductor, without a C++ build). The paper's two-stage basic training freezes the
whole backbone, then fine-tunes its upper stages, then the continual phase trains others:
the compiled parts must not be traced again for any of that, nor for a partial last batch,
another experience's batch sizes or a head that grew; the teacher runs compiled and
channels-last like the student.
"""

from __future__ import annotations

import warnings

import torch

from cfer.plugins.method.distillation import BasicDistillationPlugin
from cfer.plugins.speed import fast_data, precision
from cfer.plugins.speed.config import FastDataConfig
from cfer.plugins.speed.one_pass import one_pass
from cfer.strategies.builder import build
from cfer.strategies.models import ModelConfig, build_model
from cfer.strategies.training import TrainingConfig
from tests.test_speed import tiny_bm


def test_the_backbone_is_traced_once_per_mode_whatever_the_freezing_and_batch_sizes():
    from avalanche.training.determinism.rng_manager import RNGManager
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    RNGManager.set_random_seeds(0)
    bm = tiny_bm()
    model = build_model(ModelConfig(name="small_cnn", basic_freeze_below="all",
                                    finetune_freeze_below="layer2", freeze_below="layer3"),
                        n_classes=bm.info.n_basic)
    # Batches 4 and 8: partial last batches of 2 to 6 images (Dynamo gives a batch of 1 a graph
    # of its own: it specialises sizes 0 and 1).
    cfg = TrainingConfig(batch_size=4, eval_batch_size=8, basic_epochs=1, finetune_epochs=1, epochs=2,
                         patience=0, lr=1e-3, basic_lr=1e-3, finetune_lr=1e-3, mem_per_class=2,
                         precision="fp32", channels_last=False)  # enabled below
    # As the registry applies training.channels_last / compile, with the eager backend.
    strategy = build("kd_psmr", model=model, benchmark=bm, config=cfg, seed=0,
                     data=FastDataConfig(on_device="false"))
    plugin = precision.enable(strategy, precision.PrecisionConfig(channels_last=True, compile="default"),
                              compile_backend="eager")
    fast_data.enable(strategy, FastDataConfig(on_device="auto"))
    kd = next(p for p in strategy.plugins if isinstance(p, BasicDistillationPlugin))
    graphs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, exp in enumerate(bm.train_stream):
            strategy.train(exp, eval_streams=[])
            strategy.eval(one_pass(bm.test_stream[: i + 1]))
            graphs.append(counters["stats"]["unique_graphs"])
            if i == 0:
                # two basic stages with different frozen stages: not compiled yet
                assert plugin.compiled == [] and graphs[0] == 0
    assert plugin.compiled == ["feature_extractor"]
    # Experience 1 traces the student in training and in evaluation mode and the teacher
    # (no gradients): three graphs. Later experiences change the head, the memory, the
    # sizes of the last batches and nothing else: no more tracing.
    assert graphs[1] == 3, graphs
    assert graphs[1:] == [graphs[1]] * (len(graphs) - 1), graphs
    assert len(bm.train_stream) == 4
    # the teacher is compiled and channels-last, as the student
    teacher = kd.teacher.feature_extractor
    assert teacher._compiled_call_impl is not None
    conv = next(m for m in teacher.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    torch._dynamo.reset()
