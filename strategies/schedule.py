"""`TrainingSchedule`: per-experience learning rate, epoch budget, trainable layers, mini-batch
size, head L2 and early stopping.

Why a plugin of our own:

- The paper trains the basic experience with other hyperparameters than the
  continual ones (Adam 1e-4 with a frozen backbone, then 1e-6 fine-tuning the
  upper layers; later experiences Adam 1e-5, mini-batches of 16 with the last
  partial one dropped, no L2 on the head), so those are set per experience:
  the mini-batch size at ``before_train_dataset_adaptation`` (before any
  loader is built), the rest at ``before_training_exp``.
- The two basic stages run inside one ``train()`` call: stage 2 starts when
  stage 1 has used its epochs or stopped early, with a fresh optimizer state
  (the reference code compiles a new Adam).
- Early stopping follows Keras' ``EarlyStopping``, which the reference code
  uses (docs/reference.md): per phase it watches the validation accuracy
  (higher is better) or loss (lower is better); an epoch improves when it
  beats the best by more than ``min_delta``; ``patience`` epochs without one
  end the stage. The reference calls ``fit`` once per basic stage and Keras
  resets the callback at each ``fit``, so stage 2 tracks its best afresh
  (``finetune_best="fresh"``); ``"carry"`` starts it from stage 1's best.
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
  within an experience, and the best weights come back when a stage ends
  (``restore_best="always"``), or only when early stopping ends it
  (``"on_stop"``, as TF 2.9's ``restore_best_weights`` does).

The loader's ``drop_last`` is an argument of ``train()`` in Avalanche (its
template and its replay plugins read it there), so the schedule only says
which value an experience needs (:meth:`TrainingSchedule.drop_last_for`);
:func:`cfer.strategies.builder.build` passes it.
"""

from __future__ import annotations

import copy
import math
import typing
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from avalanche.core import SupervisedPlugin

from cfer.strategies.models.backbones import Backbone
from cfer.strategies.training import RestoreBest, StageBest, TrainingConfig

# monitor -> (Avalanche stream metric, which direction is better)
MONITORS = {"accuracy": ("Top1_Acc_Stream", "max"), "loss": ("Loss_Stream", "min")}
RESTORE = typing.get_args(RestoreBest)
STAGE_BEST = typing.get_args(StageBest)
HEAD_L2_KEY = "head_l2_decay"  # optimizer param-group key: the decay the head's L2 adds (2c)
BASE_DECAY_KEY = "base_weight_decay"  # that group's weight decay without the head's L2


@dataclass(frozen=True)
class Phase:
    """One training stage.

    ``lr``, ``epochs``; ``freeze_below``: the frozen backbone stages (None
    leaves them as they are); ``monitor`` / ``min_delta``: what early stopping
    watches (``"accuracy"`` or ``"loss"`` of the validation stream) and by how
    much an epoch must beat the best; ``head_l2``: whether the optimizer's
    head-L2 group keeps its L2 in this stage. The loader settings are read from
    an experience's first stage: ``batch_size`` (None: the strategy's
    ``train_mb_size`` as built) and ``drop_last``.
    """

    lr: float
    epochs: int
    freeze_below: str | None = None
    monitor: str = TrainingConfig.monitor  # defaults: the training section's
    min_delta: float = TrainingConfig.min_delta
    head_l2: bool = True
    batch_size: int | None = None
    drop_last: bool = False

    def __post_init__(self) -> None:
        if self.monitor not in MONITORS:
            raise ValueError(f"Phase.monitor: {self.monitor!r} is not one of {', '.join(MONITORS)}")
        if self.min_delta < 0:
            raise ValueError(f"Phase.min_delta: must be >= 0, got {self.min_delta}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"Phase.batch_size: must be >= 1 or None, got {self.batch_size}")


class BestTracker:
    """Keras ``EarlyStopping``'s rule for one stage: the best score so far and when it came.

    ``mode`` ``"max"``: an epoch improves when ``value - min_delta > best``;
    ``"min"``: when ``value + min_delta < best``. The first score always
    improves (Keras starts from -inf / +inf); NaN never does. The stored best
    is the improving score itself, not the score minus ``min_delta``.
    """

    def __init__(self, mode: str, min_delta: float = 0.0):
        if mode not in ("max", "min"):
            raise ValueError(f"BestTracker: mode {mode!r} is not max or min")
        self.mode, self.min_delta = mode, float(min_delta)
        self.best_value: float | None = None
        self.best_epoch: int | None = None

    def improves(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best_value is None:
            return True
        if self.mode == "max":
            return value - self.min_delta > self.best_value
        return value + self.min_delta < self.best_value

    def update(self, value: float, epoch: int) -> bool:
        """Record ``value`` of ``epoch``; True when it is the new best."""
        better = self.improves(value)
        if better:
            self.best_value, self.best_epoch = float(value), int(epoch)
        return better

    def waited(self, epoch: int, *, since: int) -> int:
        """Epochs since the best (or since ``since``, the stage start, if that is later)."""
        return epoch - max(since, self.best_epoch if self.best_epoch is not None else since)


class TrainingSchedule(SupervisedPlugin):
    """Sets lr / epochs / frozen stages / batch size / head L2 per experience, early-stops on a
    validation stream.

    Args:
        basic: the phases of experience 0 (one, or two for the paper's
            frozen-then-fine-tune basic training).
        continual: the phase of every later experience.
        patience: epochs without an improvement before a stage ends (and,
            per ``restore_best``, its best weights come back); counted per
            stage; 0 disables early stopping.
        val_stream_name: name of the stream scored for early stopping (it
            must be among ``train(..., eval_streams=...)``).
        reset_optimizer: clear the optimizer state at each experience.
        finetune_best: ``"fresh"``: each stage after the first tracks its
            best from scratch (Keras, one ``fit`` per stage); ``"carry"``: it
            starts from the previous stage's best, so a stage that never beats
            it is rolled back to the previous stage's best weights.
        restore_best: ``"always"``: a stage's best weights come back when it
            ends; ``"on_stop"``: only when early stopping ends it, not when the
            epoch budget runs out (TF 2.9's ``restore_best_weights``).
    """

    def __init__(self, *, basic: Sequence[Phase], continual: Phase, patience: int = 0,
                 val_stream_name: str = "valid", reset_optimizer: bool = TrainingConfig.reset_optimizer,
                 finetune_best: str = TrainingConfig.finetune_best,
                 restore_best: str = TrainingConfig.restore_best):
        super().__init__()
        if not basic:
            raise ValueError("TrainingSchedule: basic needs at least one phase")
        if finetune_best not in STAGE_BEST:
            raise ValueError(f"TrainingSchedule: finetune_best {finetune_best!r} is not one of "
                             f"{', '.join(STAGE_BEST)}")
        if restore_best not in RESTORE:
            raise ValueError(f"TrainingSchedule: restore_best {restore_best!r} is not one of "
                             f"{', '.join(RESTORE)}")
        self.basic = tuple(basic)
        self.continual = continual
        self.patience = int(patience)
        self.val_stream_name = val_stream_name
        self.reset_optimizer = reset_optimizer
        self.finetune_best = finetune_best
        self.restore_best = restore_best
        self.phases: tuple[Phase, ...] = ()
        self.stage = 0
        self.stage_start = 0
        self.stage_end = 0
        self.tracker: BestTracker | None = None
        self.best_state: dict | None = None
        self.history: list[float] = []  # validation scores of the current experience
        # one entry per finished stage of the current experience (what ended it, what came back)
        self.stages: list[dict] = []

    # -- what an experience gets ---------------------------------------------------------------
    def first_experience_state(self) -> dict:
        """What decides experience 0 (cfer.experiments.run.basic_phase): all but the continual
        phase, which experience 0 never reads, so that methods differing in continual settings
        only still share their basic model."""
        return {k: v for k, v in vars(self).items() if k != "continual"}

    def phases_for(self, experience_index: int) -> tuple[Phase, ...]:
        return self.basic if int(experience_index) == 0 else (self.continual,)

    def drop_last_for(self, experience_index: int) -> bool:
        """The ``drop_last`` of the experience's training loader."""
        return self.phases_for(experience_index)[0].drop_last

    @property
    def best_value(self) -> float | None:
        return self.tracker.best_value if self.tracker is not None else None

    @property
    def best_epoch(self) -> int | None:
        return self.tracker.best_epoch if self.tracker is not None else None

    def metric_key(self, phase: Phase) -> str:
        return f"{MONITORS[phase.monitor][0]}/eval_phase/{self.val_stream_name}_stream"

    # -- callbacks -----------------------------------------------------------------------------
    def before_train_dataset_adaptation(self, strategy, **kwargs):
        # Before the template (and any replay plugin) builds this experience's loader.
        phase = self.phases_for(strategy.experience.current_experience)[0]
        if phase.batch_size is not None:
            strategy.train_mb_size = phase.batch_size

    def before_training_exp(self, strategy, **kwargs):
        self.phases = self.phases_for(strategy.experience.current_experience)
        self.tracker, self.best_state = None, None
        self.history, self.stages = [], []
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
        waited = self.tracker.waited(done, since=self.stage_start)
        stopped = bool(self.patience) and waited >= self.patience
        if done < self.stage_end and not stopped:
            return
        restore = (self.best_state is not None and self.best_epoch != done
                   and (stopped or self.restore_best == "always"))
        if restore:
            strategy.model.load_state_dict(self.best_state)
        self.stages.append({"stage": self.stage, "start": self.stage_start, "end": done,
                            "best_epoch": self.best_epoch, "best_value": self.best_value,
                            "stopped_early": stopped, "restored": restore})
        if self.stage + 1 < len(self.phases):
            strategy.optimizer.state = defaultdict(dict)
            self._begin(strategy, self.stage + 1, start=done)
        else:
            strategy.stop_training()

    # -- helpers -------------------------------------------------------------------------------
    def _begin(self, strategy, stage: int, *, start: int) -> None:
        phase = self.phases[stage]
        previous = self.phases[stage - 1] if stage else None
        self.stage, self.stage_start, self.stage_end = stage, start, start + phase.epochs
        fresh = (previous is None or self.finetune_best == "fresh" or previous.monitor != phase.monitor
                 or previous.min_delta != phase.min_delta)
        if fresh:
            self.tracker = BestTracker(MONITORS[phase.monitor][1], phase.min_delta)
            self.best_state = None
        for group in strategy.optimizer.param_groups:
            group["lr"] = phase.lr
            if HEAD_L2_KEY in group:
                group["weight_decay"] = group[BASE_DECAY_KEY] + (group[HEAD_L2_KEY] if phase.head_l2 else 0.0)
        if phase.freeze_below is not None:
            for m in strategy.model.modules():
                if isinstance(m, Backbone):
                    m.freeze_below(phase.freeze_below)

    def _track(self, strategy, done: int) -> None:
        key = self.metric_key(self.phases[self.stage])
        metrics = strategy.evaluator.get_last_metrics()
        keys = [k for k in metrics if k.startswith(key)]
        if not keys:
            kind = "accuracy_metrics" if key.startswith("Top1") else "loss_metrics"
            raise ValueError(f"early stopping (patience={self.patience}) needs {key!r} "
                             f"from the evaluator: include {kind}(stream=True) and pass "
                             "the validation stream in train(..., eval_streams=[...]), or set "
                             "patience to 0")
        value = float(metrics[keys[-1]])
        self.history.append(value)
        if self.tracker.update(value, done):
            self.best_state = copy.deepcopy(strategy.model.state_dict())
