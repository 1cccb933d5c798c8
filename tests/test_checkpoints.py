"""Experience-level checkpoints (experiments/run/checkpoint.py): a run stopped after experience k
and restarted continues from its checkpoint, with the numbers of an uninterrupted run, bit for bit
on CPU, for every registered strategy."""

from __future__ import annotations

import pytest

from cfer.experiments.config.load import load_config
from cfer.strategies.registry import available, entry
from tests.test_runner import TINY

# Experiences 0 (basic), 1 and 2; the kill comes after experience 1, so the restart primes 0
# and 1 and trains 2 with what priming 1 rebuilt (memory, teacher, importances...).
SETTINGS = [*TINY, "protocol.orders=1", "runner.device=cpu"]
KILL_AFTER = 1
CONTINUAL = [m for m in available() if not entry(m).offline]
NUMBERS = ("accuracy_matrix", "step_accuracy", "uar", "macro_f1", "old_class_accuracy", "basic_accuracy",
           "component_confusion", "new_class_f1", "memory", "final_valid_accuracy")


class Killed(BaseException):
    """Stands for a kill: not an Exception, so that nothing on the way catches it."""


def _cfg(root, *extra):
    return load_config(None, [*SETTINGS, f"dataset.root={root / 'synth'}", *extra])


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The module's folder (its synthetic data set is generated once)."""
    return tmp_path_factory.mktemp("ckpt")


@pytest.fixture(scope="module")
def reference(root):
    """One uninterrupted run of every continual strategy."""
    from cfer.experiments.run.continual import ContinualRunner

    tmp = root
    cfg = _cfg(tmp, f"strategies.methods=[{', '.join(CONTINUAL)}]")
    results = ContinualRunner(cfg, tmp / "reference").run()
    assert not (tmp / "reference" / "checkpoints").exists(), "a finished run keeps its checkpoints"
    return tmp, results


def _kill_after(monkeypatch, experience: int) -> dict:
    from cfer.experiments.run.checkpoint import RunCheckpoint

    real = RunCheckpoint.save
    seen = {"saved": []}

    def save(self, strategy, *, experience: int, **kw):
        real(self, strategy, experience=experience, **kw)
        seen["saved"].append(experience)
        if experience == seen["at"]:
            raise Killed

    seen["at"] = experience
    monkeypatch.setattr(RunCheckpoint, "save", save)
    return seen


@pytest.mark.parametrize("method", CONTINUAL)
def test_a_run_killed_after_an_experience_resumes_to_the_same_numbers(method, reference, monkeypatch):
    from cfer.experiments.run.continual import ContinualRunner

    tmp, ref = reference
    out = tmp / f"killed_{method}"
    cfg = _cfg(tmp, f"strategies.methods=[{method}]")
    seen = _kill_after(monkeypatch, KILL_AFTER)
    with pytest.raises(Killed):
        ContinualRunner(cfg, out).run()
    assert seen["saved"] == [0, 1]
    folder = next((out / "checkpoints" / method).iterdir())
    assert sorted(p.name for p in folder.iterdir()) == ["exp00.pt", "exp01.pt", "state.pt"]

    trained = []
    from cfer.plugins.speed.throughput import ThroughputPlugin

    real_step = ThroughputPlugin.after_training_iteration

    def after_training_iteration(self, strategy, *args, **kw):
        trained.append(strategy.experience.current_experience)
        return real_step(self, strategy, *args, **kw)

    monkeypatch.setattr(ThroughputPlugin, "after_training_iteration", after_training_iteration)
    seen["at"] = None
    got = ContinualRunner(cfg, out).run(resume=True)
    # The restart trained only the experiences after the checkpoint...
    assert trained and min(trained) == KILL_AFTER + 1, trained
    assert seen["saved"] == [0, 1, 2]
    # ... to the numbers of the uninterrupted run, and the finished run keeps no checkpoint.
    mine, theirs = got["methods"][method]["runs"][0], ref["methods"][method]["runs"][0]
    for key in NUMBERS:
        assert mine.get(key) == theirs.get(key), (method, key)
    assert not (out / "checkpoints").exists()


def test_carried_optimizer_state_is_restored(root, monkeypatch):
    """``training.reset_optimizer: false``: Adam's moments carry over experiences; the checkpoint
    saves them (priming makes no optimizer step)."""
    from cfer.experiments.run.continual import ContinualRunner

    tmp = root
    cfg = _cfg(tmp, "strategies.methods=[naive]", "training.reset_optimizer=false", "training.epochs=2")
    whole = ContinualRunner(cfg, tmp / "carry_whole").run()
    _kill_after(monkeypatch, KILL_AFTER)
    with pytest.raises(Killed):
        ContinualRunner(cfg, tmp / "carry_killed").run()
    monkeypatch.undo()
    got = ContinualRunner(cfg, tmp / "carry_killed").run(resume=True)
    assert got["methods"]["naive"]["runs"][0]["accuracy_matrix"] == \
        whole["methods"]["naive"]["runs"][0]["accuracy_matrix"]


def test_a_checkpoint_of_another_config_is_refused_in_one_line(root, monkeypatch):
    from cfer.experiments.run.checkpoint import RunCheckpoint
    from cfer.experiments.run.continual import ContinualRunner, plan_runs
    from cfer.experiments.run.model_files import ModelFileError

    tmp = root
    cfg = _cfg(tmp, "strategies.methods=[naive]")
    _kill_after(monkeypatch, 0)
    with pytest.raises(Killed):
        ContinualRunner(cfg, tmp / "foreign").run()
    monkeypatch.undo()
    runner = ContinualRunner(cfg, tmp / "foreign")
    (spec,) = plan_runs(cfg, runner.ctx.data().dataset.class_names)
    good = runner.checkpoint(spec)
    other = RunCheckpoint(good.folder, digest="0" * 16, identity=good.identity)
    with pytest.raises(ModelFileError, match="another run or config") as err:
        other.load()
    assert "\n" not in str(err.value) and str(good.folder) in str(err.value)
    assert good.load().experience == 0


def test_checkpoints_off_writes_none(root):
    from cfer.experiments.run.continual import ContinualRunner

    tmp = root
    cfg = _cfg(tmp, "strategies.methods=[naive]", "output.checkpoints=false")
    ContinualRunner(cfg, tmp / "off").run()
    assert not (tmp / "off" / "checkpoints").exists()


def test_a_stop_request_ends_the_run_at_an_epoch_boundary_and_resume_continues(root, monkeypatch):
    """What SIGUSR1 does under SLURM (plugins/run/preemption.py), without SLURM: the request
    comes mid-experience 1; the run ends at the next epoch boundary with its experience-0
    checkpoint, and the restart gives the uninterrupted numbers."""
    import signal

    from cfer.experiments.run.continual import ContinualRunner
    from cfer.plugins.run import preemption
    from cfer.plugins.speed.throughput import ThroughputPlugin

    tmp = root
    cfg = _cfg(tmp, "strategies.methods=[naive]", "training.epochs=2")
    whole = ContinualRunner(cfg, tmp / "stop_whole").run()
    real_step = ThroughputPlugin.after_training_iteration

    def after_training_iteration(self, strategy, *args, **kw):
        if strategy.experience.current_experience == 1:
            signal.raise_signal(signal.SIGUSR1)  # handled: a stop request, not the default kill
        return real_step(self, strategy, *args, **kw)

    previous = signal.getsignal(signal.SIGUSR1)
    monkeypatch.setattr(ThroughputPlugin, "after_training_iteration", after_training_iteration)
    preemption.install((signal.SIGUSR1,))
    try:
        with pytest.raises(preemption.Preempted, match="epoch 1 of experience 1"):
            ContinualRunner(cfg, tmp / "stopped").run()
    finally:
        signal.signal(signal.SIGUSR1, previous)
        preemption.clear()
    monkeypatch.undo()
    state = next((tmp / "stopped" / "checkpoints" / "naive").iterdir()) / "state.pt"
    assert state.is_file()
    got = ContinualRunner(cfg, tmp / "stopped").run(resume=True)
    mine, theirs = got["methods"]["naive"]["runs"][0], whole["methods"]["naive"]["runs"][0]
    for key in NUMBERS:
        assert mine.get(key) == theirs.get(key), key
