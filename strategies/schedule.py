"""`TrainingSchedule`: per-experience learning rate, epoch budget, trainable layers, early stopping.

Why a plugin of our own:

- The paper trains the basic experience with other hyperparameters than the
  continual ones (Adam 1e-4 with a frozen backbone, then 1e-6 fine-tuning the
  upper layers; later experiences Adam 1e-5), so the learning rate, the epoch
  budget and the frozen stages are set at ``before_training_exp``.
- The two basic stages run inside one ``train()`` call: stage 2 starts when
  stage 1 has used its epochs or stopped early, with a fresh optimizer state
  (the reference code compiles a new Adam).
- Avalanche's ``EarlyStoppingPlugin`` (0.6) does not fit this stream, measured
  with ``eval_every=1`` and a ``valid`` stream in ``eval_streams``: at the
  first epoch of experience i it takes the *previous* experience's last
  validation score (a different set of classes) as the best one and the
  untrained model as the best weights, so it can roll the experience back to
  its starting point; it only restores the best weights when it stops
  early, never when the epoch budget runs out; the last epoch's score is
  never looked at; and it warns "not computed yet" on the first real score.
  Here the score of epoch k is read at the start of epoch k + 1 (one extra,
  untrained "check" epoch closes the budget), scores are only compared
  within an experience, and the best weights are restored whenever a stage
  ends.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from avalanche.core import SupervisedPlugin

from cfer.strategies.models.backbones import Backbone


@dataclass(frozen=True)
class Phase:
    """One training stage: learning rate, max epochs, and the frozen backbone stages
    (``freeze_below`` level; None leaves them as they are)."""

    lr: float
    epochs: int
    freeze_below: str | None = None


class TrainingSchedule(SupervisedPlugin):
    """Sets lr / epochs / frozen stages per experience and early-stops on a validation stream.

    Args:
        basic: the phases of experience 0 (one, or two for the paper's
            frozen-then-fine-tune basic training).
        continual: the phase of every later experience.
        patience: epochs without a better validation accuracy before a phase
            ends (and its best weights come back); 0 disables early stopping.
        val_stream_name: name of the stream scored for early stopping (it
            must be among ``train(..., eval_streams=...)``).
        metric_name: the Avalanche metric compared (higher is better).
        reset_optimizer: clear the optimizer state at each experience.
    """

    def __init__(self, *, basic: Sequence[Phase], continual: Phase, patience: int = 0,
                 val_stream_name: str = "valid", metric_name: str = "Top1_Acc_Stream",
                 reset_optimizer: bool = True):
        super().__init__()
        if not basic:
            raise ValueError("TrainingSchedule: basic needs at least one phase")
        self.basic = tuple(basic)
        self.continual = continual
        self.patience = int(patience)
        self.metric_key = f"{metric_name}/eval_phase/{val_stream_name}_stream"
        self.reset_optimizer = reset_optimizer
        self.phases: tuple[Phase, ...] = ()
        self.stage = 0
        self.stage_start = 0
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict | None = None
        self.history: list[float] = []  # validation scores of the current experience

    # -- callbacks -----------------------------------------------------------------------------
    def before_training_exp(self, strategy, **kwargs):
        first = int(strategy.experience.current_experience) == 0
        self.phases = self.basic if first else (self.continual,)
        self.best_value = self.best_epoch = self.best_state = None
        self.history = []
        if self.reset_optimizer:
            strategy.optimizer.state = defaultdict(dict)
        self._begin(strategy, 0, start=0)
        # The +1 "check" epoch only reads the last epoch's score (it trains nothing).
        strategy.train_epochs = sum(p.epochs for p in self.phases) + (1 if self.patience else 0)

    def before_training_epoch(self, strategy, **kwargs):
        done = int(strategy.clock.train_exp_epochs)
        if done == 0:
            return
        if self.patience:
            self._track(strategy, done)
        waited = done - max(self.stage_start, self.best_epoch if self.best_epoch is not None else 0)
        if done < self.stage_end and not (self.patience and waited >= self.patience):
            return
        if self.best_state is not None and self.best_epoch != done:
            strategy.model.load_state_dict(self.best_state)
        if self.stage + 1 < len(self.phases):
            strategy.optimizer.state = defaultdict(dict)
            self._begin(strategy, self.stage + 1, start=done)
        else:
            strategy.stop_training()

    # -- helpers -------------------------------------------------------------------------------
    def _begin(self, strategy, stage: int, *, start: int) -> None:
        phase = self.phases[stage]
        self.stage, self.stage_start, self.stage_end = stage, start, start + phase.epochs
        for group in strategy.optimizer.param_groups:
            group["lr"] = phase.lr
        if phase.freeze_below is not None:
            for m in strategy.model.modules():
                if isinstance(m, Backbone):
                    m.freeze_below(phase.freeze_below)

    def _track(self, strategy, done: int) -> None:
        metrics = strategy.evaluator.get_last_metrics()
        keys = [k for k in metrics if k.startswith(self.metric_key)]
        if not keys:
            raise ValueError(f"early stopping (patience={self.patience}) needs {self.metric_key!r} "
                             "from the evaluator: include accuracy_metrics(stream=True) and pass "
                             "the validation stream in train(..., eval_streams=[...]), or set "
                             "patience to 0")
        value = float(metrics[keys[-1]])
        self.history.append(value)
        if self.best_value is None or value > self.best_value:
            self.best_value, self.best_epoch = value, done
            self.best_state = copy.deepcopy(strategy.model.state_dict())
