"""The basic model a run starts from: experience 0 trained once, saved atomically, reloaded.

Every class order has the same basic block, so the basic model of a (method, fold, seed)
is shared by its orders (``runner.share_basic``) and by the few-shot steps; the run
directory keeps it under ``basic/`` for ``--resume``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cfer.core.atomic import atomic_write

log = logging.getLogger(__name__)


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
    with session(method, order=order, fold=fold, seed=seed, shots=shots, device=device,
                 log_dir=log_dir, plugins=[meter]) as s:
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

    def cached(self, path: Path, *, keys: set[str], train: Callable[[], dict], reuse: bool = True) -> dict:
        """The dict saved at ``path`` (``torch.save``) when ``reuse`` and present (it must hold
        ``keys``); else ``train()``'s, saved there atomically first."""
        import torch

        if reuse and path in self.given:
            return self.given[path]
        if reuse and path.is_file():
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if not keys <= saved.keys():
                raise ValueError(f"{path}: not a basic model saved by this runner; delete it to retrain")
            log.info("basic model loaded from %s", path)
            return saved
        saved = train()
        atomic_write(path, lambda f: torch.save(saved, f))
        return saved
