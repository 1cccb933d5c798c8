"""The basic model a run starts from: experience 0 trained once, saved atomically, reloaded.

Every class order has the same basic block, so the basic model of a (fold, seed) is shared
by its orders (``runner.share_basic``), by every method whose experience 0 trains identically
(:mod:`cfer.experiments.run.basic_phase`), and by the few-shot steps; the run directory keeps
it under ``basic/`` for ``--resume``.

A saved basic model carries the digest of the settings that trained it (the continual phase:
:func:`cfer.experiments.run.basic_phase.basic_phase_digest`; the few-shot phase:
:func:`basic_model_digest`); one whose digest is not this config's is refused in one line,
never reused: a ``basic/`` folder copied from another run, or left by a run of
another config, would otherwise start every order from a model trained differently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cfer.experiments.run.model_files import ModelFileError, load_state, save_state

log = logging.getLogger(__name__)

#: The key of a saved basic model's dict that holds :func:`basic_model_digest`.
DIGEST_KEY = "settings_digest"


def basic_model_digest(cfg, method: str, *, fold: int, seed: int, shots: int | None = None) -> str:
    """The digest of the settings that train the few-shot phase's basic model of ``method`` on
    (``fold``, ``seed``): the method's basic-phase training keys, the model, the data set and
    benchmark, and the method's whole config digest
    (:func:`~cfer.experiments.run.environment.config_digest`), which is stricter than needed
    (a change of a continual-only key retrains it; the few-shot phase runs one method, so there
    is nothing to share). The continual phase keys its shared basic models by the basic-phase
    digest of :mod:`cfer.experiments.run.basic_phase` instead, which several methods share."""
    import dataclasses

    from cfer.core.typed import to_dict
    from cfer.experiments.run import environment as env

    config = to_dict(cfg)
    training = dataclasses.asdict(cfg.training_for(method))
    basic_keys = {k: v for k, v in training.items() if k.startswith(("basic", "finetune"))}
    return env.digest({"method": method, "fold": fold, "seed": seed, "shots": shots,
                       "training": basic_keys, "model": config["model"], "dataset": config["dataset"],
                       "data": config["data"], "benchmark": config["benchmark"],
                       "config_digest": env.run_config_digests(cfg)[method]})


def check_digest(path: Path, saved: dict, digest: str) -> None:
    """Refuse (one line) the basic model ``saved`` (read from ``path``) unless its settings
    digest is ``digest``."""
    have = saved.get(DIGEST_KEY) if isinstance(saved, dict) else None
    if have == digest:
        return
    what = (f"trained with other settings (digest {have}, this config's {digest})" if have
            else "saved without the digest of its settings (by an older cfer): maybe with other settings")
    raise ModelFileError(f"{path}: {what}; it is not reused: delete it to train it again, or run into "
                         "another --out")


def state_to_cpu(model) -> dict:
    """A detached CPU copy of ``model``'s state dict (what the basic-model files hold)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


@dataclass(frozen=True)
class BasicTraining:
    """Experience 0 trained from scratch: the weights (CPU), the training time and images,
    and the predictions on the basic test images when asked for."""

    state_dict: dict
    seconds: float
    images: int
    predictions: object = None


def train_basic(session: Callable, method: str, *, order: Sequence[str], fold: int, seed: int, device,
                log_dir: Path, shots: int | None = None, evaluate: bool = False) -> BasicTraining:
    """Train experience 0 (the basic block) of (order, fold, seed) from scratch with
    ``method`` in a session opened by ``session`` (:meth:`Sessions.session`'s signature);
    ``evaluate``: also predict the basic test images."""
    from cfer.plugins.speed.throughput import ThroughputPlugin

    meter = ThroughputPlugin()
    label = f"{method} basic model fold {fold} seed {seed}"  # what a non-finite loss names
    with session(method, order=order, fold=fold, seed=seed, shots=shots, device=device,
                 log_dir=log_dir, plugins=[meter], label=label) as s:
        s.strategy.train(s.benchmark.train_stream[0], eval_streams=[s.valid[:1]])
        predictions = None
        if evaluate:
            s.strategy.eval(s.benchmark.test_stream[:1])
            predictions = s.collector.result()
    return BasicTraining(state_to_cpu(s.model), meter.seconds, meter.images, predictions)


class BasicModelStore:
    """Basic models on disk (``torch.save``), or handed over by the caller."""

    def __init__(self):
        # Models handed over by the caller, used by cached() instead of the file at that path
        # (a Ray task gets its shared basic model from the object store, not from disk).
        self.given: dict[Path, dict] = {}

    def cached(self, path: Path, *, keys: set[str], train: Callable[[], dict], reuse: bool = True,
               digest: str | None = None) -> dict:
        """The dict saved at ``path`` (``torch.save``) when ``reuse`` and present (it must hold
        ``keys`` and, when given, the settings ``digest``); else ``train()``'s, saved there
        atomically first (with ``digest``)."""
        if reuse and path in self.given:
            return self.given[path]
        if reuse and path.is_file():
            saved = load_state(path, run_dir=path.parent.parent)
            if not isinstance(saved, dict) or not keys <= saved.keys():
                raise ModelFileError(f"{path}: not a basic model saved by this runner; delete it to retrain")
            if digest is not None:
                check_digest(path, saved, digest)
            log.info("basic model loaded from %s", path)
            return saved
        saved = train()
        if digest is not None:
            saved = {**saved, DIGEST_KEY: digest}
        self.save(path, saved)
        return saved

    @staticmethod
    def save(path: Path, saved: dict) -> None:
        """Write a basic model's dict to ``path`` (atomically; one-line error when the disk is full)."""
        save_state(path, saved, run_dir=path.parent.parent)

    @staticmethod
    def check_saved(path: Path, *, digest: str) -> None:
        """Refuse (one line) the basic model at ``path``, if there is one, when it cannot be read
        or was trained with other settings: read cheaply (memory-mapped), before a run writes
        anything."""
        if path.is_file():
            check_digest(path, load_state(path, mmap=True, run_dir=path.parent.parent), digest)
