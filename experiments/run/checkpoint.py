"""Experience-level checkpoints of a continual run: ``checkpoints/<method>/<run>/`` of the run
directory, written after every finished experience, read by any restart (``--resume``, a
requeued SLURM task), removed once the run's record is in results.json.

What makes a resume exact ("fast-forward priming"): every experience starts by re-seeding all
generators from (seed, experience) (:mod:`cfer.plugins.run.experience_seed`), and a strategy's
state after an experience is made by its own callbacks from the weights its training loop ended
with. So the checkpoint keeps, per finished experience, the model's state where its training loop
ended (``expNN.pt``, before any after-experience work), and a restart runs those experiences
through ``train`` with no epoch, loading the saved weights where the first epoch would start
(:class:`cfer.plugins.run.start_from_weights.StartFromWeightsPlugin`): memories, teachers,
PSMR rankings, EWC importances, iCaRL exemplars and means, BiC layers are rebuilt by the
callbacks that made them. What priming cannot rebuild is saved as is in ``state.pt``: the
predictions of every evaluated step (the rows of the accuracy matrix), the training time, the
optimizer state when it carries over experiences (``training.reset_optimizer: false``), the fp16
loss scale, and the state of plugins that depend on the training trajectory rather than on the
weights (those that define ``trajectory_state()`` / ``load_trajectory_state(state)``, e.g. PSMR's
per-epoch draw history). tests/test_checkpoints.py proves it for every registered strategy: a
run stopped after experience k and resumed gives the numbers of an uninterrupted one, bit for
bit on CPU.

Disk: one model state dict per finished experience (the priming needs each), written once
(an experience's file is never rewritten), plus ``state.pt`` (predictions: a few kB; Adam's
state, when it carries over, twice the model). Measured numbers: docs/clusters.md.

A checkpoint is bound to its run: ``state.pt`` holds the method's config digest
(:func:`cfer.experiments.run.environment.run_config_digests`) and the run's order, fold and seed;
one of another run is refused in one line, never primed from.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from cfer.experiments.run.model_files import ModelFileError, load_state, save_state

STATE = "state.pt"
FORMAT = 1


def weights_file(experience: int) -> str:
    return f"exp{experience:02d}.pt"


@dataclass
class SavedRun:
    """A checkpoint as read back: experiences ``0..experience`` are done."""

    experience: int
    weights: list[dict]  # per finished experience: the model where its training loop ended
    steps: list  # per evaluated step: EvalPredictions (the runner's collector results)
    seconds: float
    images: int
    models: list  # per step: the path output.save_models wrote, or None
    optimizer: dict | None = None
    scaler: dict | None = None
    plugins: dict = field(default_factory=dict)


def _plugin_key(i: int, plugin) -> str:
    return f"{i}:{type(plugin).__name__}"


def _model(strategy):
    return getattr(strategy.model, "_orig_mod", strategy.model)  # not torch.compile's wrapper


def _loss_scaling(strategy):
    return next((p.loss_scaling for p in strategy.plugins if getattr(p, "loss_scaling", None) is not None),
                None)


def _carries_optimizer(strategy) -> bool:
    """Whether the optimizer state survives an experience boundary (else it is not saved)."""
    from cfer.strategies.schedule import TrainingSchedule

    schedules = [p for p in strategy.plugins if isinstance(p, TrainingSchedule)]
    return not schedules or any(not s.reset_optimizer for s in schedules)


class RunCheckpoint:
    """The checkpoint folder of one run, bound to ``digest`` and ``identity`` (order, fold, seed)."""

    def __init__(self, folder: str | Path, *, digest: str, identity: dict, run_dir: str | Path | None = None):
        self.folder = Path(folder)
        self.digest = digest
        self.identity = dict(identity)
        self.run_dir = run_dir
        self._ended: dict | None = None  # the weights where the last training loop ended

    @property
    def state_path(self) -> Path:
        return self.folder / STATE

    # -- while training ----------------------------------------------------------------------
    def watch(self, strategy) -> None:
        """Keep a CPU copy of the model each time one of ``strategy``'s training loops ends,
        before its after-experience work (what :meth:`save` writes for that experience)."""
        from cfer.experiments.run.basic_store import state_to_cpu
        from cfer.plugins.workarounds.templates import call_before_after_training_exp

        def ended() -> None:
            self._ended = state_to_cpu(_model(strategy))

        call_before_after_training_exp(strategy, ended)

    def save(self, strategy, *, experience: int, steps: list, seconds: float, images: int,
             models: list) -> None:
        """Experiences ``0..experience`` are done and evaluated (``steps``): write the weights of
        ``experience`` (the others were written before), then ``state.pt``, each atomically;
        ``state.pt`` last, so that a kill in between leaves the previous checkpoint valid."""
        if self._ended is None:
            raise RuntimeError("RunCheckpoint.save: no training loop ended since watch()")
        save_state(self.folder / weights_file(experience), self._ended, run_dir=self.run_dir)
        scaling = _loss_scaling(strategy)
        state = {"format": FORMAT, "digest": self.digest, "identity": self.identity,
                 "experience": int(experience),
                 "steps": [_predictions_out(p) for p in steps],
                 "seconds": float(seconds), "images": int(images), "models": list(models),
                 "optimizer": strategy.optimizer.state_dict() if _carries_optimizer(strategy) else None,
                 "scaler": scaling.scaler.state_dict() if scaling is not None else None,
                 "plugins": {_plugin_key(i, p): p.trajectory_state() for i, p in enumerate(strategy.plugins)
                             if hasattr(p, "trajectory_state")}}
        save_state(self.state_path, state, run_dir=self.run_dir)

    # -- on a restart ------------------------------------------------------------------------
    def load(self) -> SavedRun | None:
        """The saved checkpoint (None when there is none); one of another run is refused."""
        if not self.state_path.is_file():
            return None
        fix = f"delete {self.folder} to train this run from its first experience"
        state = load_state(self.state_path, run_dir=self.run_dir, fix=fix)
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ModelFileError(f"{self.state_path}: not a checkpoint of this cfer; {fix}")
        if state.get("digest") != self.digest or state.get("identity") != self.identity:
            raise ModelFileError(f"{self.state_path}: a checkpoint of another run or config (digest "
                                 f"{state.get('digest')}, this run's {self.digest}); it is not resumed "
                                 f"from: {fix}, or run into another --out")
        k = int(state["experience"])
        weights = [load_state(self.folder / weights_file(i), run_dir=self.run_dir, fix=fix)
                   for i in range(k + 1)]
        return SavedRun(experience=k, weights=weights, steps=[_predictions_in(p) for p in state["steps"]],
                        seconds=state["seconds"], images=state["images"], models=state["models"],
                        optimizer=state.get("optimizer"), scaler=state.get("scaler"),
                        plugins=state.get("plugins") or {})

    def remove(self) -> None:
        """Delete the checkpoint (the run's record is saved); empty parent folders too."""
        shutil.rmtree(self.folder, ignore_errors=True)
        for parent in (self.folder.parent, self.folder.parent.parent):
            try:
                parent.rmdir()
            except OSError:
                break

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.glob("*.pt")) if self.folder.is_dir() else 0


def _predictions_out(p) -> tuple:
    import torch

    return tuple(torch.from_numpy(a.copy()) for a in (p.y_true, p.y_pred, p.experience))


def _predictions_in(t) -> object:
    from cfer.plugins.metrics.fer import EvalPredictions

    return EvalPredictions(*(x.numpy() for x in t))


def fast_forward(strategy, saved: SavedRun, *, primer, model, experiences, eval_streams) -> None:
    """Bring a freshly built ``strategy`` (its session seeded as the run's) to its state after
    experience ``saved.experience``: each finished experience runs through ``train`` with no
    epoch, ``primer`` (a StartFromWeightsPlugin among its plugins) loading the weights its
    training loop ended with; then :func:`restore`'s part. ``model``: the model
    the strategy was built with (iCaRL wraps it); ``eval_streams(i)``: experience i's
    ``eval_streams``, as the uninterrupted run passed them."""
    for i in range(saved.experience + 1):
        primer.prime(strategy, experiences[i], state_dict=saved.weights[i], model=model,
                     eval_streams=eval_streams(i))
    restore(strategy, saved)


def restore(strategy, saved: SavedRun) -> None:
    """After priming experiences ``0..saved.experience``: put back what priming does not
    rebuild (optimizer state, loss scale, plugins' trajectory states)."""
    if saved.optimizer is not None:
        strategy.optimizer.load_state_dict(saved.optimizer)
    scaling = _loss_scaling(strategy)
    if scaling is not None and saved.scaler is not None:
        scaling.scaler.load_state_dict(saved.scaler)
    for i, p in enumerate(strategy.plugins):
        key = _plugin_key(i, p)
        if hasattr(p, "load_trajectory_state") and key in saved.plugins:
            p.load_trajectory_state(saved.plugins[key])
