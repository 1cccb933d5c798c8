"""iCaRL's herding without a device read per exemplar (cfer.plugins.speed.herding) chooses the
exemplars Avalanche's own plugin chooses, in the same order, on the same model."""

from __future__ import annotations

import torch

from cfer.plugins.speed.herding import herding_order
from tests.test_speed import TINY, quiet_evaluator, tiny_bm


def test_herding_order_ranks_n_distinct_images():
    feats = torch.randn(40, 8, generator=torch.Generator().manual_seed(0))
    order = herding_order(feats, 7)
    assert sorted(order[order > 0].tolist()) == list(range(1, 8))
    assert herding_order(feats[:3], 7).gt(0).sum() == 3  # fewer images than wanted: all, then stop


def test_icarl_memory_is_the_one_avalanches_herding_chooses():
    from avalanche.training.determinism.rng_manager import RNGManager
    from avalanche.training.supervised.icarl import _ICaRLPlugin

    from cfer.strategies import build
    from cfer.strategies.models import ModelConfig, build_model
    from cfer.strategies.training import TrainingConfig

    bm = tiny_bm()
    RNGManager.set_random_seeds(0)
    model = build_model(ModelConfig(name="small_cnn"), n_classes=bm.info.n_basic)
    config = TrainingConfig(**{**TINY, "mem_per_class": 3})
    strategy = build("icarl", model=model, benchmark=bm, config=config, evaluator=quiet_evaluator())
    plugin = next(p for p in strategy.plugins if isinstance(p, _ICaRLPlugin))
    assert type(plugin) is not _ICaRLPlugin  # ours
    pairs = []
    ours = plugin.construct_exemplar_set

    def both(strategy):  # Avalanche's first, into fresh lists, then ours, on the same model
        kept = plugin.x_memory, plugin.y_memory, plugin.order
        plugin.x_memory, plugin.y_memory, plugin.order = [], [], []
        _ICaRLPlugin.construct_exemplar_set(plugin, strategy)
        theirs = plugin.x_memory, plugin.y_memory, plugin.order
        plugin.x_memory, plugin.y_memory, plugin.order = kept
        ours(strategy)
        n = len(theirs[0])
        pairs.append((theirs, (plugin.x_memory[-n:], plugin.y_memory[-n:], plugin.order[-n:])))

    plugin.construct_exemplar_set = both
    for i in range(2):
        strategy.train(bm.train_stream[i], eval_streams=[])
    assert len(pairs) == 2
    for theirs, mine in pairs:
        assert mine[1] == theirs[1] and len(mine[0]) == len(theirs[0]) > 0
        for a, b in zip((*mine[0], *mine[2]), (*theirs[0], *theirs[2])):
            assert torch.equal(a, b)
