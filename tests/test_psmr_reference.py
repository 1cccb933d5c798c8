"""PSMR as the paper's reference code runs it: m new-class images per step, drawn anew each
epoch, the memory ranked by the true-class logit, limit mode's sizes, and the history.

Reference: github.com/AngusMaiden/complex-FER, src/complex_FER.py ``cont()``
(``new_train_ds.shuffle(len(...)).take(m)``; ``m = math.floor(M/num_classes)`` after a step)
and src/models/train.py ``RepresentativeMemoryUpdate`` (``np.argsort(preds[:,idx])[::-1]``).
"""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from avalanche.training.plugins import SupervisedPlugin
from torch import nn

from cfer.plugins.method.psmr import NewClassDrawBatchSampler, PredictiveSortingReplayPlugin
from cfer.plugins.method.selection import PredictiveSortingSelection
from tests.conftest import make_tiny_dataset, tiny_naive

pytestmark = pytest.mark.filterwarnings("ignore:No loggers specified")

# bench: 9 classes, 10 training images each (N = 90); fraction 0.5: M = 45, m = floor(45 / 9) = 5
FRACTION, M, K, PER_CLASS = 0.5, 45, 9, 10


@pytest.fixture(scope="module")
def bench():
    """No augmentation (the evaluation transform trains too), so every training image a
    mini-batch holds can be traced back to its dataset position."""
    from cfer.benchmarks import compound_benchmark
    from cfer.benchmarks.transforms import eval_transform

    ds, images = make_tiny_dataset(per_class=5)
    return compound_benchmark(ds, images=images, image_size=16, n_folds=3, seed=0,
                              class_order=list(ds.class_names[6:]), train_transform=eval_transform())


def _key(x: torch.Tensor) -> bytes:
    return x.detach().cpu().contiguous().numpy().tobytes()


def image_index(bench) -> dict[bytes, tuple[int, int]]:
    """Image bytes -> (experience, position in its training dataset)."""
    out = {}
    for exp in bench.train_stream:
        data = exp.dataset.eval()
        for i in range(len(data)):
            out[_key(data[i][0])] = (exp.current_experience, i)
    assert len(out) == sum(len(e.dataset) for e in bench.train_stream)  # all images distinct
    return out


class Seen(SupervisedPlugin):
    """What the model is trained on: per experience and epoch, the (experience, position) of
    every image of every mini-batch, and the memory right before the experience."""

    def __init__(self, psmr, index):
        super().__init__()
        self.psmr, self.index = psmr, index
        self.epochs: dict[int, list[list[tuple[int, int]]]] = {}
        self.labels: dict[int, list[list[int]]] = {}
        self.batch_sizes: dict[int, list[int]] = {}
        self.memory: dict[int, set[tuple[int, int]]] = {}
        self.dataset_sizes: dict[int, int] = {}
        self.loaders: dict[int, object] = {}

    def before_training_exp(self, strategy, **kwargs):
        e = strategy.experience.current_experience
        policy = self.psmr.storage_policy
        groups = policy.buffer_groups.items() if policy is not None else ()
        self.memory[e] = {(g.experience, i) for _, g in groups for i in g.indices}
        self.epochs[e], self.labels[e], self.batch_sizes[e] = [], [], []
        self.dataset_sizes[e] = len(strategy.adapted_dataset)

    def before_training_epoch(self, strategy, **kwargs):
        e = strategy.experience.current_experience
        self.loaders[e] = strategy.dataloader
        self.epochs[e].append([])
        self.labels[e].append([])

    def before_training_iteration(self, strategy, **kwargs):
        e = strategy.experience.current_experience
        self.epochs[e][-1].extend(self.index[_key(x)] for x in strategy.mb_x)
        self.labels[e][-1].extend(int(y) for y in strategy.mb_y)
        self.batch_sizes[e].append(len(strategy.mb_y))


def _psmr_of(strategy):
    (psmr,) = [p for p in strategy.plugins if isinstance(p, PredictiveSortingReplayPlugin)]
    return psmr


def _kd_psmr(bench, *, mode, fast, epochs=2, **training):
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.training.determinism.rng_manager import RNGManager
    from avalanche.training.plugins import EvaluationPlugin

    from cfer.plugins.speed.config import FastDataConfig
    from cfer.strategies.builder import build
    from cfer.strategies.models import ModelConfig, build_model
    from cfer.strategies.training import TrainingConfig

    RNGManager.set_random_seeds(0)
    model = build_model(ModelConfig(name="small_cnn"), n_classes=bench.info.n_basic)
    config = TrainingConfig(**{"batch_size": 4, "eval_batch_size": 8, "basic_epochs": 1, "epochs": epochs,
                               "patience": 0, "lr": 1e-3, "basic_lr": 1e-3, "memory_fraction": FRACTION,
                               "memory_mode": mode, **training})
    strategy = build("kd_psmr", model=model, benchmark=bench, config=config,
                     evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]),
                     data=FastDataConfig(on_device="auto" if fast else "false"))
    seen = Seen(_psmr_of(strategy), image_index(bench))
    strategy.plugins.insert(len(strategy.plugins) - (1 if fast else 0), seen)  # the fast plugin last
    return strategy, seen


# (a) ---------------------------------------------------------------------------------------------

# memory before the step and images of the new class per epoch (the reference's m at that step):
# grow: m = 5 throughout. limit: the basic classes at floor(M / K) = 5 and the first new class
# drawn at 5; after step 1 m = floor(45 / 7) = 6: class 6 stored at 6, class 7 drawn at 6.
EXPECTED = {"grow": {1: (30, 5), 2: (35, 5)}, "limit": {1: (30, 5), 2: (36, 6)}}


@pytest.mark.parametrize("fast", [False, True], ids=["stock_loader", "fast_loader"])
@pytest.mark.parametrize("mode", ["grow", "limit"])
def test_kd_psmr_trains_each_epoch_on_the_memory_plus_m_new_class_images(bench, mode, fast):
    from cfer.plugins.speed.fast_data import FastDataPlugin
    from cfer.plugins.speed.loader import FastLoader

    strategy, seen = _kd_psmr(bench, mode=mode, fast=fast)
    for exp in bench.train_stream[:3]:
        strategy.train(exp, eval_streams=[])
    fast_plugins = [p for p in strategy.plugins if isinstance(p, FastDataPlugin)]
    assert bool(fast_plugins and fast_plugins[0].store is not None) == fast  # the path under test
    psmr = seen.psmr
    for step in (1, 2):  # the per-epoch sampler drives the loader (replayed by the fast one)
        loader = seen.loaders[step]
        assert isinstance(loader, FastLoader) == fast
        inner = loader.loader if fast else loader
        assert isinstance(inner.batch_sampler, NewClassDrawBatchSampler)

    # the basic experience: all its images, once per epoch
    for epoch in seen.epochs[0]:
        assert sorted(epoch) == [(0, i) for i in range(6 * PER_CLASS)]
    for step, (memory_size, m) in EXPECTED[mode].items():
        assert len(seen.memory[step]) == memory_size
        assert len(seen.epochs[step]) == 2
        new_class = 5 + step
        for epoch, items in enumerate(seen.epochs[step]):
            counts = Counter(items)
            assert set(counts.values()) == {1}  # every image once per epoch
            stored = {it for it in counts if it[0] != step}
            new = sorted(i for e, i in counts if e == step)
            assert stored == seen.memory[step]  # the whole memory ...
            assert len(new) == m  # ... plus exactly m images of the new class
            assert len(items) == memory_size + m
            assert Counter(seen.labels[step][epoch])[new_class] == m
            assert new == psmr.history[step]["draws"][epoch]["indices"][new_class]
        # the two epochs drew different subsets (a fresh take(m) per epoch)
        assert sorted(seen.epochs[step][0]) != sorted(seen.epochs[step][1])
    # ranking still ran over all 10 images of the new class, by the model just trained
    assert {len(v) for v in psmr.memory_indices().values()} == {5}  # grow: m; limit: floor(45 / 8)
    assert psmr.history[2]["memory_after"][6] == 5 and psmr.history[1]["memory_after"][6] == (
        5 if mode == "grow" else 6)


def test_continual_batch_size_and_drop_last_reach_the_per_epoch_loader(bench):
    strategy, seen = _kd_psmr(bench, mode="grow", fast=False, epochs=1, continual_batch_size=3,
                              continual_drop_last=True)
    for exp in bench.train_stream[:2]:
        strategy.train(exp, eval_streams=[])
    assert set(seen.batch_sizes[1]) == {3}
    assert len(seen.epochs[1][0]) == (30 + 5) // 3 * 3  # the last partial batch dropped


# (b) ---------------------------------------------------------------------------------------------

def _plain(bench, *, seed, global_seed=0, epochs=3, **kwargs):
    psmr = PredictiveSortingReplayPlugin(fraction=FRACTION, seed=seed, **kwargs)
    strategy, model = tiny_naive([psmr], seed=global_seed, train_mb_size=8, eval_mb_size=7)
    seen = Seen(psmr, image_index(bench))
    strategy.plugins.append(seen)
    strategy.train_epochs = epochs
    for exp in bench.train_stream[:2]:
        strategy.train(exp)
    return psmr, seen, model


def _new_images(seen, step):
    return [sorted(i for e, i in epoch if e == step) for epoch in seen.epochs[step]]


def test_per_epoch_draws_differ_between_epochs_and_repeat_for_a_seed(bench):
    psmr, seen, _ = _plain(bench, seed=7)
    drawn = _new_images(seen, 1)
    assert len(drawn) == 3 and all(len(d) == 5 for d in drawn)
    assert len({tuple(d) for d in drawn}) > 1  # a fresh subset per epoch
    assert drawn == [d["indices"][6] for d in psmr.history[1]["draws"]]
    again, seen_again, _ = _plain(bench, seed=7)
    assert _new_images(seen_again, 1) == drawn and again.history == psmr.history
    # the draw has its own generator: another global seed (other weights, other shuffles) ...
    other_global, seen_global, _ = _plain(bench, seed=7, global_seed=5)
    assert _new_images(seen_global, 1) == drawn
    # ... while another run seed draws other subsets
    _, seen_other, _ = _plain(bench, seed=8)
    assert _new_images(seen_other, 1) != drawn


def test_per_experience_draw_trains_every_epoch_on_one_subset(bench):
    psmr, seen, _ = _plain(bench, seed=7, new_class_draw="experience")
    drawn = _new_images(seen, 1)
    assert drawn[0] == drawn[1] == drawn[2] and len(drawn[0]) == 5
    assert seen.dataset_sizes[1] == 30 + 5  # just the drawn images in strategy.adapted_dataset
    assert psmr.history[1]["draw"] == "experience"
    assert [d["epoch"] for d in psmr.history[1]["draws"]] == [None]
    assert psmr.history[1]["draws"][0]["indices"][6] == drawn[0]


@pytest.mark.parametrize("n,expected", [(2, 2), (50, PER_CLASS)])  # min(n, available)
def test_a_fixed_number_of_new_class_images(bench, n, expected):
    psmr, seen, _ = _plain(bench, seed=0, epochs=1, new_class_samples=n)
    assert [len(d) for d in _new_images(seen, 1)] == [expected]
    assert len(seen.epochs[1][0]) == 30 + expected
    assert psmr.history[1]["new_class_samples"] == n


def test_batch_sampler_lengths_and_batches():
    fixed = list(range(10, 17))

    def draw():
        return {3: [0, 4, 8]}

    for drop_last, n_batches in ((False, 3), (True, 2)):
        sampler = NewClassDrawBatchSampler(draw=draw, fixed=fixed, n_drawn=3, batch_size=4,
                                           shuffle=False, drop_last=drop_last)
        batches = list(sampler)
        assert len(sampler) == len(batches) == n_batches
        assert batches[0] == [10, 11, 12, 13]
    torch.manual_seed(0)
    shuffled = list(NewClassDrawBatchSampler(draw=draw, fixed=fixed, n_drawn=3, batch_size=4,
                                             shuffle=True, drop_last=False))
    assert sorted(i for b in shuffled for i in b) == sorted(fixed + [0, 4, 8])


# (c) ---------------------------------------------------------------------------------------------

def test_logit_ranking_is_the_reference_and_differs_from_the_probability_ranking():
    """Four images of class 0 whose true-class logit and softmax probability disagree."""
    from avalanche.benchmarks.utils import as_classification_dataset
    from torch.utils.data import TensorDataset

    logits = torch.tensor([[5.0, 6.0, -10.0], [1.0, -3.0, -3.0], [3.0, 0.0, 0.0], [4.0, 4.5, 0.0]])
    # a fourth, inactive unit (class 3, never trained) with a large output: it must not count
    x = torch.cat([logits, torch.full((4, 1), 50.0)], dim=1)
    base = TensorDataset(x, torch.zeros(4, dtype=torch.long))
    base.targets = [0, 0, 0, 0]
    data = as_classification_dataset(base)
    model = nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(4))
    strategy = SimpleNamespace(model=model, device=torch.device("cpu"), eval_mb_size=3, plugins=[],
                               experience=SimpleNamespace(classes_seen_so_far=[0, 1, 2]))

    # independent rankings: argsort of the true-class logit (the reference's
    # np.argsort(preds[:, idx])[::-1]) and of the softmax over the active units
    by_logit = torch.argsort(model(x).detach()[:, 0], descending=True).tolist()
    by_probability = torch.argsort(torch.softmax(model(x).detach()[:, :3], dim=1)[:, 0],
                                   descending=True).tolist()
    assert by_logit == [0, 3, 2, 1] and by_probability == [1, 2, 3, 0]

    assert PredictiveSortingSelection().make_sorted_indices(strategy, data) == by_logit  # default
    assert PredictiveSortingSelection("logit").make_sorted_indices(strategy, data) == by_logit
    assert PredictiveSortingSelection("probability").make_sorted_indices(strategy, data) == by_probability
    torch.testing.assert_close(PredictiveSortingSelection().true_class_scores(strategy, data), logits[:, 0])


def test_the_memory_is_ranked_over_all_new_class_images_by_logit(bench):
    """Not over the drawn subset: the stored images are the top m of all 10 by logit."""
    psmr, seen, model = _plain(bench, seed=7)
    exp = bench.train_stream[1]
    data = exp.dataset.eval()
    x = torch.stack([data[i][0] for i in range(len(data))])
    model.eval()
    with torch.no_grad():
        true_logit = model(x)[:, 6]
    model.train()
    top = torch.argsort(true_logit, descending=True, stable=True)[:5].tolist()
    assert psmr.memory_indices()[6] == top
    assert set(top) != set(_new_images(seen, 1)[-1])  # the last epoch's draw is another subset


# (d) ---------------------------------------------------------------------------------------------

class LegacyConcat(PredictiveSortingReplayPlugin):
    """The plugin's behaviour before new_class_samples: the whole new experience concatenated
    with the memory, the strategy's own loader."""

    def after_train_dataset_adaptation(self, strategy, **kwargs):
        memory = self.policy(strategy).buffer
        if len(memory):
            strategy.adapted_dataset = strategy.adapted_dataset.concat(memory.train())

    def before_training_exp(self, strategy, **kwargs):
        pass

    def before_training_epoch(self, strategy, **kwargs):
        pass


class Batches(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.batches = []

    def before_training_iteration(self, strategy, **kwargs):
        self.batches.append((strategy.mb_x.clone(), strategy.mb_y.clone()))


@pytest.mark.parametrize("score", ["logit", "probability"])
def test_all_new_class_samples_is_the_old_concatenation(bench, score):
    runs = {}
    for name, cls, kwargs in (("all", PredictiveSortingReplayPlugin, {"new_class_samples": "all"}),
                              ("legacy", LegacyConcat, {}),
                              ("m", PredictiveSortingReplayPlugin, {})):
        psmr, batches = cls(fraction=FRACTION, score=score, **kwargs), Batches()
        strategy, _ = tiny_naive([psmr, batches], seed=0, train_mb_size=8, eval_mb_size=7)
        strategy.train_epochs = 2
        for exp in bench.train_stream:
            strategy.train(exp)
        runs[name] = psmr, batches.batches
    (all_psmr, all_batches), (legacy_psmr, legacy_batches) = runs["all"], runs["legacy"]
    assert len(all_batches) == len(legacy_batches)
    for (x, y), (x2, y2) in zip(all_batches, legacy_batches):
        assert torch.equal(x, x2) and torch.equal(y, y2)  # the same mini-batches, in order
    assert all_psmr.memory_indices() == legacy_psmr.memory_indices()
    assert [h["train_size"] for h in all_psmr.history] == [60, 30 + 10, 35 + 10, 40 + 10]
    assert all(h["draws"] == [] and h["draw"] is None for h in all_psmr.history)
    # the default trains on fewer images: memory + m
    assert sum(len(y) for _, y in runs["m"][1]) < sum(len(y) for _, y in all_batches)


# history ---------------------------------------------------------------------------------------

def test_history_records_memory_and_draws_as_json(bench):
    psmr, seen, _ = _plain(bench, seed=3, epochs=2)
    history = json.loads(json.dumps(psmr.history))  # JSON-friendly
    assert len(history) == 2
    basic, step = psmr.history
    assert basic == {"experience": 0, "memory_size": 0, "memory_per_class": {},
                     "new_classes": {c: 10 for c in range(6)}, "new_class_samples": "all",
                     "draw": None, "train_size": 60, "draws": [],
                     "memory_after": {c: 5 for c in range(6)}}
    assert {k: step[k] for k in step if k != "draws"} == {
        "experience": 1, "memory_size": 30, "memory_per_class": {c: 5 for c in range(6)},
        "new_classes": {6: 10}, "new_class_samples": 5, "draw": "epoch", "train_size": 35,
        "memory_after": {**{c: 5 for c in range(6)}, 6: 5}}
    assert [d["epoch"] for d in step["draws"]] == [0, 1]
    for d, images in zip(step["draws"], _new_images(seen, 1)):
        assert d["counts"] == {6: 5} and d["indices"][6] == images
        assert len(set(images)) == 5 and set(images) <= set(range(10))
