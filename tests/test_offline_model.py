"""joint trained once per fold and seed and scored in every class order (runner.share_offline,
experiments/run/offline_model.py): the first order's numbers are those of its own joint model,
every order scores the one model, and renumbering the output layer keeps each class's logit
(to the last bits of the matrix product)."""

from __future__ import annotations

import pytest

from cfer.experiments.config.load import load_config
from cfer.experiments.run.continual import ContinualRunner
from tests.test_backends import _numbers
from tests.test_runner import TINY


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The tiny plan's joint (2 class orders), shared and trained per order."""
    tmp = tmp_path_factory.mktemp("offline")
    args = [*TINY, f"dataset.root={tmp / 'synth'}", "strategies.methods=[joint]"]
    shared = ContinualRunner(load_config(None, args), tmp / "shared").run()
    own = ContinualRunner(load_config(None, [*args, "runner.share_offline=false"]), tmp / "own").run()
    return tmp, _numbers(shared)["joint"], _numbers(own)["joint"], args


def per_class(rec: dict) -> dict:
    """Final-step accuracy per class name, from the record's confusion matrix."""
    import numpy as np

    m = np.asarray(rec["confusion_matrix"])
    return {name: m[k, k] / m[k].sum() for k, name in enumerate(rec["class_names"]) if m[k].sum()}


def test_the_first_order_is_its_own_joint_and_the_model_is_trained_once(runs):
    tmp, shared, own, _ = runs
    assert [r["order_index"] for r in shared] == [0, 1]
    assert shared[0] == own[0]  # trained in the first order's numbering: the same numbers
    assert len(list((tmp / "shared" / "offline").glob("joint_fold0_seed0_*.pt"))) == 1
    assert not (tmp / "own" / "offline").exists()
    # a second order trained its own model before: its last step differs from the first's
    assert per_class(own[1]) != per_class(own[0])


def test_every_order_scores_the_one_model(runs):
    _, shared, _, _ = runs
    first, second = shared
    assert first["order"] != second["order"]
    # The last step sees every class: the same model gives each class the same accuracy,
    # whatever its label in the order.
    assert per_class(second) == per_class(first)
    assert second["step_accuracy"][-1] == first["step_accuracy"][-1]


def test_the_processes_backend_trains_it_once_before_the_runs_to_the_same_numbers(runs):
    tmp, shared, _, args = runs
    cfg = load_config(None, [*args, "runner.backend=processes", "runner.jobs_per_device=2"])
    out = ContinualRunner(cfg, tmp / "processes").run()
    assert _numbers(out)["joint"] == shared
    assert [p.name for p in (tmp / "processes" / "offline").glob("*.pt")] == \
        [p.name for p in (tmp / "shared" / "offline").glob("*.pt")]
    # trained once, by one worker, before both runs: both count the one training's time (two
    # workers that each trained it would each have measured their own)
    seconds = [r["train_seconds"] for r in out["methods"]["joint"]["runs"]]
    assert seconds[0] == seconds[1] > 0


def test_renumbering_the_output_layer_keeps_each_classes_logit():
    import torch

    from cfer.experiments.run.offline_model import load_into
    from cfer.strategies.models import build_model
    from cfer.strategies.models.config import ModelConfig

    cfg = ModelConfig(name="small_cnn")
    torch.manual_seed(0)
    trained = build_model(cfg, n_classes=3)
    trained.classifier.grow(5)
    names = ["a", "b", "c", "d", "e"]
    wanted = ["a", "b", "c", "e", "d"]  # another order of the two later classes
    other = build_model(cfg, n_classes=3)
    load_into(other, {"state_dict": trained.state_dict(), "class_names": names}, class_names=wanted)
    x = torch.rand(4, 3, 32, 32)
    trained.eval(), other.eval()
    with torch.no_grad():
        want, got = trained(x), other(x)
    for k, name in enumerate(wanted):  # to the rounding of the matrix product (its column blocks)
        assert torch.allclose(got[:, k], want[:, names.index(name)], rtol=0, atol=1e-6), name
    assert not torch.allclose(got[:, 3], want[:, 3], rtol=0, atol=1e-3)  # d and e did swap
    with pytest.raises(ValueError, match="trained on classes"):
        load_into(build_model(cfg, n_classes=3), {"state_dict": trained.state_dict(), "class_names": names},
                  class_names=["a", "b", "c", "d", "f"])
