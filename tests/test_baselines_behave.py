"""Each baseline does what its name claims, on real data through the registry's strategies:
a strategy whose defining mechanism were silently off (a plugin not applied, a memory not
mixed in, a penalty of zero, a restart from the wrong weights) fails here."""

from __future__ import annotations

import pytest
import torch
from avalanche.core import SupervisedPlugin

from cfer.strategies.registry import available, entry
from tests.test_strategies import _fresh, _weights

KEY = "Top1_Acc_Stream/eval_phase/test_stream"


class Recorder(SupervisedPlugin):
    """Records, per training experience, every minibatch's targets (and the replay
    buffer's, for templates that draw it separately), the loss the template handed to
    backward next to the plain cross-entropy of the same minibatch, and the weights at
    the start of each experience's first epoch."""

    def __init__(self):
        super().__init__()
        self.targets: dict[int, list[torch.Tensor]] = {}
        self.buffer_targets: dict[int, list[torch.Tensor]] = {}
        self.extra_loss: dict[int, list[float]] = {}
        self.first_epoch_weights: dict[int, dict] = {}
        self.train_sizes: dict[int, int] = {}
        self._epoch = 0

    def before_training_exp(self, strategy, **kwargs):
        self._epoch = 0
        e = strategy.experience.current_experience
        self.train_sizes[e] = len(strategy.adapted_dataset)

    def before_training_epoch(self, strategy, **kwargs):
        e = strategy.experience.current_experience
        if self._epoch == 0:
            self.first_epoch_weights[e] = _weights(strategy)
        self._epoch += 1

    def after_backward(self, strategy, **kwargs):
        # After backward: templates such as EWC and LwF append their plugin after ours, so
        # their penalty joins strategy.loss after our before_backward would have run.
        e = strategy.experience.current_experience
        y = strategy.mb_y.detach().cpu()
        self.targets.setdefault(e, []).append(y)
        buf = getattr(strategy, "mb_buffer_y", None)
        if buf is not None:
            self.buffer_targets.setdefault(e, []).append(buf.detach().cpu())
        out = strategy.mb_output[: len(strategy.mb_y)].float()
        ce = torch.nn.functional.cross_entropy(out, strategy.mb_y).item()
        self.extra_loss.setdefault(e, []).append(float(strategy.loss.detach()) - ce)


# Two epochs per experience: on the tiny stream an experience is one minibatch, and at the
# first minibatch of an experience the student still equals its teacher (LwF) and its
# anchor (EWC), so their penalties are exactly zero until the weights move.
EPOCHS = dict(basic_epochs=2, epochs=2)


def run(name, bm, *, experiences=3, recorder=None):
    rec = recorder or Recorder()
    model, strategy = _fresh(name, bm, plugins=[rec], **EPOCHS)
    if entry(name).offline:  # joint: one call over the whole stream
        strategy.train(bm.train_stream[:experiences], eval_streams=[])
        return strategy, rec
    for exp in bm.train_stream[:experiences]:
        strategy.train(exp, eval_streams=[])
    return strategy, rec


@pytest.fixture(scope="module")
def bm():
    from cfer.benchmarks.scenario import compound_benchmark
    from tests.conftest import make_tiny_dataset

    ds, images = make_tiny_dataset()
    return compound_benchmark(ds, images=images, image_size=16, n_folds=3, seed=0,
                              class_order=list(ds.class_names[6:]))


@pytest.fixture(scope="module")
def naive_weights(bm):
    strategy, _ = run("naive", bm)
    return _weights(strategy)


@pytest.mark.parametrize("name", [n for n in available() if n != "naive"])
def test_no_strategy_is_naive_in_disguise(name, bm, naive_weights):
    """Same seed, same stream, same model: every strategy but naive ends elsewhere."""
    strategy, _ = run(name, bm)
    weights = _weights(strategy)
    shared = [k for k in naive_weights if k in weights and weights[k].shape == naive_weights[k].shape]
    assert shared, name
    assert any(not torch.equal(weights[k], naive_weights[k]) for k in shared), \
        f"{name} trained exactly as naive"


@pytest.mark.parametrize("name", ["replay", "bic"])
def test_replay_minibatches_hold_the_memory_in_the_documented_proportion(name, bm):
    """ReplayPlugin-style loaders: every minibatch of a later experience holds
    ``replay_batch_size`` stored samples of earlier classes next to the new ones."""
    strategy, rec = run(name, bm)
    n_mem = 4  # tests.test_strategies.TINY: batch_size 4, no replay_batch_size_mem
    first_new = bm.info.n_basic + 1  # experience 2's class
    for y in rec.targets[2]:
        old = int((y < first_new).sum())
        assert old == n_mem, f"{name}: a minibatch holds {old} memory samples, expected {n_mem}"
    assert len(rec.targets[2]) >= 1


@pytest.mark.parametrize("name", ["er_ace", "der"])
def test_buffer_templates_draw_a_memory_minibatch_of_earlier_classes(name, bm):
    """ER-ACE draws a separate buffer minibatch per step; DER puts it in front of the new
    samples of the same minibatch. Either way: 4 stored samples, of earlier classes."""
    _, rec = run(name, bm)
    first_new = bm.info.n_basic + 1
    memory = rec.buffer_targets.get(2) if name == "er_ace" else [y[:4] for y in rec.targets.get(2, [])]
    assert memory, f"{name}: no buffer minibatch during experience 2"
    # ER-ACE adds the new experience to its buffer when the experience starts (Avalanche's
    # design): its buffer minibatches may hold the new class too.
    limit = first_new + 1 if name == "er_ace" else first_new
    for y in memory:
        assert len(y) == 4 and bool((y < limit).all()), f"{name}: {y.tolist()}"
    assert any(bool((y < first_new).any()) for y in memory)


@pytest.mark.parametrize("name", ["ewc", "lwf", "kd_only", "kd_psmr", "der"])
def test_penalties_and_distillation_change_the_loss_after_the_first_experience(name, bm):
    """The loss handed to backward differs from the plain cross-entropy once there is
    something to protect (and not before: experience 0 has no penalty)."""
    _, rec = run(name, bm)
    assert max(abs(v) for v in rec.extra_loss[0]) < 1e-6, name
    later = [abs(v) for e in (1, 2) for v in rec.extra_loss[e]]
    assert max(later) > 1e-7, f"{name}: no penalty after the basic experience"


def test_gdumb_retrains_from_its_initial_weights_on_the_memory_alone(bm):
    """Every experience starts from the untrained model and trains on the class-balanced
    memory only (never on the full new experience), also when its basic model is shared."""
    from cfer.plugins.run.start_from_weights import StartFromWeightsPlugin

    _, basic = _fresh("gdumb", bm, **EPOCHS)
    untrained = _weights(basic)
    basic.train(bm.train_stream[0], eval_streams=[])
    shared = {k: v.clone() for k, v in basic.model.state_dict().items()}

    rec, primer = Recorder(), StartFromWeightsPlugin()
    model, strategy = _fresh("gdumb", bm, plugins=[rec, primer], **EPOCHS)
    primer.prime(strategy, bm.train_stream[0], state_dict=shared, model=model)
    for exp in bm.train_stream[1:3]:
        strategy.train(exp, eval_streams=[])
    for e in (1, 2):
        start = rec.first_epoch_weights[e]
        common = [k for k in untrained if k in start and start[k].shape == untrained[k].shape
                  and not k.endswith("num_batches_tracked")]
        assert all(torch.equal(start[k], untrained[k]) for k in common), \
            f"experience {e} did not restart from the initial weights"
        # Trained on the memory: earlier classes next to the new one, far fewer images
        # than all data so far, and within the memory budget.
        trained = set(torch.cat(rec.targets[e]).tolist())
        assert trained <= set(range(bm.info.n_basic + e)) and len(trained) > 1
        budget = strategy.plugins[1].storage_policy.max_size  # GDumbPlugin, after the seeder
        assert rec.train_sizes[e] <= budget
        assert rec.train_sizes[e] < sum(len(x.dataset) for x in bm.train_stream[: e + 1])


def test_icarl_predicts_the_nearest_class_mean_of_its_exemplars(bm):
    """iCaRL scores with the nearest mean of exemplars, not its linear head."""
    strategy, _ = run("icarl", bm)
    model = strategy.model
    ncm = model.eval_classifier
    x = torch.stack([bm.test_stream[0].dataset.eval()[i][0] for i in range(8)])
    model.eval()
    with torch.no_grad():
        feats = torch.nn.functional.normalize(model.feature_extractor(x), dim=1)
        means = ncm.class_means
        expected = torch.cdist(feats, means).argmin(1)
        got = model(x).argmax(1)
        assert torch.equal(got, expected)
        ncm.class_means = means.flip(0)  # other means: other answers
        assert not torch.equal(model(x).argmax(1), got)
        ncm.class_means = means
