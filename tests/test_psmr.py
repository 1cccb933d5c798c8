"""PredictiveSortingReplayPlugin and the exemplar selection strategies."""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

import pytest
import torch
from avalanche.training.plugins import SupervisedPlugin
from torch import nn

from cfer.plugins.method.psmr import PredictiveSortingReplayPlugin, memory_sizes
from cfer.plugins.method.selection import (
    ClosestToCenterSelection,
    HerdingSelection,
    PredictiveSortingSelection,
    selection_strategy,
)
from tests.conftest import make_tiny_dataset, tiny_naive

pytestmark = pytest.mark.filterwarnings("ignore:No loggers specified")


@pytest.fixture(scope="module")
def bench():
    """9 classes; 10 training images per class (60 basic + 3 x 10 compound = N = 90).

    The training transform is a cheap, deterministic stand-in for augmentation (a mirror
    image), so that ranking on augmented instead of evaluation views would show.
    """
    from cfer.benchmarks import compound_benchmark
    from cfer.benchmarks.transforms import eval_transform

    ds, images = make_tiny_dataset(per_class=5)
    to_float = eval_transform()
    return compound_benchmark(ds, images=images, image_size=16, n_folds=3, seed=0,
                              class_order=list(ds.class_names[6:]),
                              train_transform=lambda x: to_float(x).flip(-1))


class SeenData(SupervisedPlugin):
    """Records the training set size and the first mini-batch of every experience."""

    def __init__(self):
        super().__init__()
        self.sizes, self.targets, self.first_batch = [], [], []

    def before_training_exp(self, strategy, **kwargs):
        self.sizes.append(len(strategy.adapted_dataset))
        self.targets.append(sorted({int(t) for t in strategy.adapted_dataset.targets}))

    def before_training_iteration(self, strategy, **kwargs):
        if len(self.first_batch) < len(self.sizes):
            self.first_batch.append(len(strategy.mb_y))


def _strategy(plugins, seed=0):
    return tiny_naive(plugins, seed=seed, dropout=0.2, train_mb_size=8, eval_mb_size=7)


def _true_class_scores(model, dataset, n_seen, score="probability"):
    """Independent ranking input, eval mode, no augmentation: the true class's raw output
    ("logit") or its softmax over the first n_seen units ("probability")."""
    data = dataset.eval()
    x = torch.stack([data[i][0] for i in range(len(data))])
    y = torch.tensor([int(t) for t in data.targets])
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(x)[:, :n_seen]
    model.train(was)
    p = out if score == "logit" else torch.softmax(out, dim=1)
    return p[torch.arange(len(y)), y], y


def _true_class_probs(model, dataset, n_seen):
    return _true_class_scores(model, dataset, n_seen, "probability")


def test_memory_sizes_follow_the_paper():
    assert memory_sizes(fraction=0.3, total_train_size=90, total_classes=9) == (27, 3)
    assert memory_sizes(fraction=0.29, total_train_size=100, total_classes=9) == (29, 3)
    assert memory_sizes(fraction=0.3, total_train_size=None, total_classes=9, mem_per_class=4) == (36, 4)
    with pytest.raises(ValueError, match="m = 0 per class"):
        memory_sizes(fraction=0.3, total_train_size=18, total_classes=9)


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="mode"):
        PredictiveSortingReplayPlugin(mode="fifo")
    with pytest.raises(ValueError, match="fraction"):
        PredictiveSortingReplayPlugin(fraction=0)
    with pytest.raises(ValueError, match="mem_per_class"):
        PredictiveSortingReplayPlugin(mem_per_class=0)
    with pytest.raises(ValueError, match="plugins.psmr.selection: must be one of predictive, random"):
        PredictiveSortingReplayPlugin(selection="best")
    with pytest.raises(ValueError, match="plugins.psmr.selection: must be one of"):
        selection_strategy("best")
    with pytest.raises(ValueError, match="layer_name"):
        selection_strategy("random", layer_name="features")
    with pytest.raises(ValueError, match="new_class_samples"):
        PredictiveSortingReplayPlugin(new_class_samples=0)
    with pytest.raises(ValueError, match="new_class_samples"):
        PredictiveSortingReplayPlugin(new_class_samples="some")
    with pytest.raises(ValueError, match="new_class_draw"):
        PredictiveSortingReplayPlugin(new_class_draw="batch")
    with pytest.raises(ValueError, match="plugins.psmr.score: must be one of logit, probability"):
        PredictiveSortingReplayPlugin(score="margin")
    with pytest.raises(ValueError, match="only for selection 'predictive'"):
        PredictiveSortingReplayPlugin(selection="random", score="probability")
    with pytest.raises(ValueError, match="use new_class_draw='experience'"):
        PredictiveSortingReplayPlugin(batch_size_mem=4)  # per-epoch draw needs the concatenated memory
    with pytest.raises(ValueError, match="seed"):
        PredictiveSortingReplayPlugin(seed=-1)


def test_stream_size_needed_unless_given():
    no_stream = SimpleNamespace(experience=SimpleNamespace(current_experience=0))
    with pytest.raises(ValueError, match="total_train_size"):
        PredictiveSortingReplayPlugin().policy(no_stream)
    policy = PredictiveSortingReplayPlugin(total_train_size=200, total_classes=9).policy(no_stream)
    assert (policy.memory_size, policy.mem_per_class) == (60, 6)
    assert PredictiveSortingReplayPlugin(mem_per_class=2).policy(no_stream).mem_per_class == 2


def test_too_small_a_memory_is_a_clear_error(tiny_benchmark):
    strategy, _ = _strategy([PredictiveSortingReplayPlugin(fraction=0.3)])
    with pytest.raises(ValueError, match="18 training images gives M = 5 slots for 9 classes"):
        strategy.train(tiny_benchmark.train_stream[0])


@pytest.mark.parametrize("score", [None, "logit", "probability"])  # None: the default (logit)
def test_memory_holds_top_m_by_true_class_score_ranked_once(bench, score):
    kwargs = {} if score is None else {"score": score}
    psmr = PredictiveSortingReplayPlugin(fraction=0.3, **kwargs)  # M = 27, m = 3, mode grow
    strategy, model = _strategy([psmr])
    expected = {}
    for exp in bench.train_stream:
        strategy.train(exp)
        n_seen = len(exp.classes_seen_so_far)
        # over all of the class's training images, not just the ones drawn for training
        probs, y = _true_class_scores(model, exp.dataset, n_seen, score or "logit")
        for c in exp.classes_in_this_experience:
            idx = torch.nonzero(y == c).flatten()
            order = idx[torch.argsort(probs[idx], descending=True, stable=True)]
            expected[c] = order[:3].tolist()
        # old classes keep the exemplars chosen right after their own experience
        assert psmr.memory_indices() == expected
    assert model.training  # ranking put the model back in train mode
    policy = psmr.storage_policy
    for c, memory in policy.buffer_groups.items():
        source = bench.train_stream[memory.experience].dataset.eval()
        stored = memory.buffer.eval()
        assert [int(t) for t in stored.targets] == [c] * 3
        for k, i in enumerate(memory.indices):
            assert torch.equal(stored[k][0], source[i][0])


def test_predictive_selection_ranks_over_active_units_only(bench):
    """After evaluation grows the head to 9 units (-1000 masks), ranking is unchanged."""
    strategy, model = _strategy([])
    exp = bench.train_stream[0]
    strategy.train(exp)
    strategy.experience = exp
    selector = PredictiveSortingSelection()
    before = selector.true_class_probabilities(strategy, exp.dataset)
    strategy.eval(bench.test_stream)
    strategy.experience = exp
    assert model.head.classifier.out_features == 9
    after = selector.true_class_probabilities(strategy, exp.dataset)
    assert torch.allclose(before, after)
    expected, _ = _true_class_probs(model, exp.dataset, 6)
    assert torch.allclose(after, expected, atol=1e-6)
    logits = selector.true_class_logits(strategy, exp.dataset)  # raw outputs, never the -1000 masks
    expected, _ = _true_class_scores(model, exp.dataset, 6, "logit")
    assert torch.allclose(logits, expected, atol=1e-5) and bool((logits > -100).all())


@pytest.mark.parametrize("mode,per_class,totals", [
    ("grow", [{5}, {5}, {5}, {5}], [30, 35, 40, 45]),  # M = floor(.5 * 90) = 45, m = 45 // 9 = 5
    # the reference: the basic classes at floor(45 / K=9) = 5 and never grown; then the new class
    # at floor(45 / n_seen), n_seen = 7, 8, 9 (6, 5, 5), older ones cut to it
    ("limit", [{5}, {5, 6}, {5}, {5}], [30, 36, 40, 45]),
])
def test_memory_sizes_step_by_step(bench, mode, per_class, totals):
    psmr = PredictiveSortingReplayPlugin(fraction=0.5, mode=mode)
    strategy, _ = _strategy([psmr])
    first = {}
    for step, exp in enumerate(bench.train_stream):
        strategy.train(exp)
        mem = psmr.memory_indices()
        assert {len(v) for v in mem.values()} == per_class[step]
        assert sum(len(v) for v in mem.values()) == totals[step] == len(psmr.storage_policy.buffer)
        for c, v in mem.items():
            first.setdefault(c, v)
            assert v == first[c][: len(v)]  # limit: shrunk from the top of the stored ranking


def test_mem_per_class_override(bench):
    psmr = PredictiveSortingReplayPlugin(mem_per_class=2, mode="limit")  # M = 2 * 9 = 18
    strategy, _ = _strategy([psmr])
    strategy.train(bench.train_stream[0])
    assert {len(v) for v in psmr.memory_indices().values()} == {2}  # first store: 18 // K = 9
    assert psmr.storage_policy.memory_size == 18
    strategy.train(bench.train_stream[1])
    assert len(psmr.memory_indices()[6]) == 18 // 7  # later classes: floor(M / n_seen)


def test_memory_is_concatenated_with_the_new_data(bench):
    seen = SeenData()
    psmr = PredictiveSortingReplayPlugin(fraction=0.3, new_class_samples="all")
    strategy, _ = _strategy([psmr, seen])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        strategy.train(bench.train_stream)
    assert seen.sizes == [60, 10 + 18, 10 + 21, 10 + 24]
    assert seen.targets[1] == list(range(7)) and seen.targets[3] == list(range(9))
    assert seen.first_batch == [8, 8, 8, 8]
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning)
                and "update" in str(w.message)]


@pytest.mark.parametrize("samples,new_images,first_batch", [("all", 10, 8 + 4), ("m", 3, 3 + 4)])
def test_replay_data_loader_when_memory_batch_is_set(bench, samples, new_images, first_batch):
    seen = SeenData()
    psmr = PredictiveSortingReplayPlugin(fraction=0.3, batch_size_mem=4, new_class_samples=samples,
                                         new_class_draw="experience")
    strategy, _ = _strategy([psmr, seen])
    strategy.train(bench.train_stream[:2])
    assert psmr.storage_policy.memory_size == 27  # N, K counted over the whole stream, not the slice
    assert seen.sizes == [60, new_images]  # memory not in the dataset ...
    assert seen.first_batch == [8, first_batch]  # ... but in every mini-batch


@pytest.mark.parametrize("name", ["herding", "closest_to_center"])
def test_feature_selections_match_avalanche_orderings(bench, name):
    from avalanche.training.storage_policy import (
        ClosestToCenterSelectionStrategy,
        HerdingSelectionStrategy,
    )

    psmr = PredictiveSortingReplayPlugin(fraction=0.5, selection=name)
    strategy, model = _strategy([psmr])
    exp = bench.train_stream[0]
    strategy.train(exp)
    assert isinstance(psmr.storage_policy.selection_strategy,
                      HerdingSelection if name == "herding" else ClosestToCenterSelection)
    assert model.training and all(m.training for m in model.modules())
    data = exp.dataset.eval()
    x = torch.stack([data[i][0] for i in range(len(data))])
    y = torch.tensor([int(t) for t in data.targets])
    model.eval()
    with torch.no_grad():
        feats = model.features(x)
    model.train()
    ordering = HerdingSelectionStrategy if name == "herding" else ClosestToCenterSelectionStrategy
    for c, stored in psmr.memory_indices().items():
        idx = torch.nonzero(y == c).flatten()
        ranked = ordering.make_sorted_indices_from_features(None, feats[idx])
        assert stored == [int(idx[r]) for r in ranked][:5]
    # a named layer gives the same features here (the head's input)
    strategy.experience = exp
    by_name = selection_strategy(name, layer_name="features")
    sub = exp.dataset.subset(torch.nonzero(y == 0).flatten().tolist())
    assert by_name.make_sorted_indices(strategy, sub) == \
        psmr.storage_policy.selection_strategy.make_sorted_indices(strategy, sub)


def test_random_selection_is_seeded(bench):
    runs = []
    for _ in range(2):
        psmr = PredictiveSortingReplayPlugin(fraction=0.5, selection="random")
        strategy, _ = _strategy([psmr], seed=3)
        strategy.train(bench.train_stream[0])
        runs.append(psmr.memory_indices())
    assert runs[0] == runs[1]
    assert {len(v) for v in runs[0].values()} == {5}


def test_state_dict_round_trip_and_no_second_selection(bench):
    psmr = PredictiveSortingReplayPlugin(fraction=0.5, mode="limit")
    strategy, _ = _strategy([psmr])
    strategy.train(bench.train_stream[:3])
    state = json.loads(json.dumps(psmr.state_dict()))
    restored = PredictiveSortingReplayPlugin(fraction=0.5, mode="limit")
    restored.load_state_dict(state, bench.train_stream)
    assert restored.memory_indices() == psmr.memory_indices()
    assert restored.history == psmr.history and len(psmr.history) == 3  # int class keys again
    assert restored.storage_policy.current_size == psmr.storage_policy.current_size == 45 // 8
    assert list(restored.storage_policy.buffer.targets) == list(psmr.storage_policy.buffer.targets)
    with pytest.raises(ValueError, match="appear again"):
        strategy.experience = bench.train_stream[0]
        psmr.storage_policy.post_adapt(strategy, bench.train_stream[0])
    bad = json.loads(json.dumps(state))
    bad["classes"]["0"]["indices"] = bad["classes"]["1"]["indices"]
    with pytest.raises(ValueError, match="do not point at class 0"):
        restored.load_state_dict(bad, bench.train_stream)


def test_plain_avalanche_user_code(bench):
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.models import IncrementalClassifier
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin

    from cfer.plugins.method.distillation import BasicDistillationPlugin

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 32), nn.ReLU(),
                          IncrementalClassifier(32, initial_out_features=6))
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
                     criterion=nn.CrossEntropyLoss(), train_mb_size=8, train_epochs=1,
                     evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]),
                     plugins=[BasicDistillationPlugin(), PredictiveSortingReplayPlugin(fraction=0.3)])
    for exp in bench.train_stream:
        strategy.train(exp)
    results = strategy.eval(bench.test_stream)
    acc = results["Top1_Acc_Stream/eval_phase/test_stream"]
    assert 0.0 <= acc <= 1.0
    assert model[-1].classifier.out_features == 9
