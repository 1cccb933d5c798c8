"""Sessions: a benchmark, a fresh model and a method's strategy, built for one training run.

Here is the one ``strategies.build`` call of ``cfer.experiments``: the config's training
section (with the method's overrides) and params, the ``data`` section, our evaluator,
the protocol's validation stream, and the run's progress bar. torch and Avalanche are
imported inside the functions that need them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cfer.experiments.config.sections import ExperimentConfig
from cfer.experiments.run.data import RunData


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"runner.device={name}: CUDA is not available on this machine")
    return dev


@dataclass
class Session:
    """A benchmark, a model and its strategy, built for one training run; ``with`` closes
    the evaluator's loggers."""

    benchmark: object
    model: object
    strategy: object
    collector: object  # predictions of the last evaluated stream
    valid: object  # the stream early stopping scores (protocol-dependent)
    closers: list

    def close(self) -> None:
        for close in self.closers:
            close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Sessions:
    """Builds the sessions of a config on its data."""

    def __init__(self, cfg: ExperimentConfig, data: RunData):
        self.cfg = cfg
        self.data = data
        self.active_bar = None  # the open progress bar (training reports its epochs on it)
        # The last session's FinalValidationPlugin (evaluation.final_validation), else None.
        self.final_validation = None

    def strategy(self, method: str, bm, model, *, device, log_dir: Path, seed: int, plugins=()):
        """``(strategy, collector, closers)``: ``method`` built on ``bm`` and ``model`` with the
        config's training and data sections, our evaluator logging under ``log_dir``, and
        ``plugins`` after the strategy's own."""
        from cfer import strategies
        from cfer.experiments.run.evaluation import build_evaluator

        evaluator, collector, closers = build_evaluator(self.cfg.evaluation, info=bm.info, log_dir=log_dir)
        if self.active_bar is not None:  # the epoch and loss on the run's progress bar
            from cfer.experiments.run.progress import epoch_plugin

            plugins = [*plugins, epoch_plugin(self.active_bar)]
        strategy = strategies.build(self.cfg.method_entry(method), model=model, benchmark=bm,
                                    config=self.cfg.training_for(method),
                                    params=self.cfg.params_for(method), evaluator=evaluator,
                                    plugins=list(plugins), device=device,
                                    valid_stream_name=self.data.valid(bm).name, data=self.cfg.data,
                                    seed=seed)
        return strategy, collector, closers

    def session(self, method: str, *, order: Sequence[str], fold: int, seed: int, device,
                log_dir: Path, plugins=(), shots: int | None = None, shot_repeats: int = 1,
                state_dict: dict | None = None, label: str | None = None) -> Session:
        """Seed everything with ``seed``, then build the benchmark, a fresh model (loaded from
        ``state_dict`` if given) and ``method``'s strategy, which stops on a non-finite loss
        naming the run as ``label`` (default: method, fold and seed)."""
        from avalanche.training.determinism.rng_manager import RNGManager

        from cfer.plugins.run.finite_loss import FiniteLossGuard
        from cfer.strategies.models import build_model

        # After the caller's plugins, so after every plugin that adds a loss term.
        plugins = [*plugins, FiniteLossGuard(label or f"{method} fold {fold} seed {seed}")]

        RNGManager.set_random_seeds(seed)
        bm = self.data.benchmark(order=order, fold=fold, seed=seed, shots=shots, shot_repeats=shot_repeats)
        model = build_model(self.cfg.model, n_classes=bm.info.n_basic)
        if state_dict is not None:
            model.load_state_dict(state_dict)
        self.final_validation = None
        if self.cfg.evaluation.final_validation and self.cfg.protocol.name == "heldout":
            from cfer.plugins.run.final_validation import FinalValidationPlugin

            n = len(bm.train_stream)
            self.final_validation = FinalValidationPlugin(bm.valid_stream[:n], last_experience=n - 1,
                                                          offline=self.cfg.method_entry(method).offline)
            plugins = [*plugins, self.final_validation]
        strategy, collector, closers = self.strategy(method, bm, model, device=device, log_dir=log_dir,
                                                     seed=seed, plugins=plugins)
        return Session(bm, model, strategy, collector, self.data.valid(bm), closers)
