"""`TrainingConfig`: the `training:` section, the training knobs shared by every strategy (flat, typed).

The experiment runner fills it from the YAML ``training:`` section (and the
per-method ``strategies.overrides``). A strategy's own hyperparameters are not
here: they are its params dataclass, declared in its ``strategies/zoo/<name>.py``
(:mod:`cfer.strategies.params`).

"paper" marks a value of the paper (Maiden & Nakisa, arXiv:2308.06197) as its
reference code runs it (github.com/AngusMaiden/complex-FER at 797fd061; ``CF`` =
``src/complex_FER.py``, whose click options set the training values, ``TR`` =
``src/models/train.py``; ``src/constants.py`` also lists training values, but
nothing reads them). Where the default here is the toolkit's own, the comment
gives the reference value, and ``experiments/configs/paper_cfee.yaml`` sets it;
docs/reference.md has the whole comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class TrainingConfig:
    # -- optimisation ---------------------------------------------------------------------------
    optimizer: Literal["adam", "sgd"] = "adam"  # paper: Adam (TR:41, TR:60, TR:220)
    lr: float = 1e-5  # continual experiences; paper: 1e-5 (CF --cont_lr)
    basic_lr: float = 1e-4  # basic experience (stage 1, frozen backbone); paper: 1e-4 (CF --basic_lr)
    finetune_lr: float = 1e-6  # basic stage 2 (fine-tune upper layers); paper: 1e-6 (--basic_finetuning_lr)
    adam_eps: float = 1e-8  # torch's default; paper: Keras Adam's epsilon 1e-7
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0  # all but the head's hidden Dense weights (model.head_l2); paper: 0
    # model.head_l2 also in continual experiences; paper: false (the reference's continual
    # train_step builds its loss from CE + KD and never adds model.losses, TR:237-239)
    continual_head_l2: bool = True
    reset_optimizer: bool = True  # fresh optimizer state per experience; paper: a new Adam (TR:220)
    # -- epochs and early stopping --------------------------------------------------------------
    basic_epochs: int = 50  # max epochs, basic stage 1; paper: 1000 (CF --epochs) + early stop
    finetune_epochs: int = 0  # max epochs, basic stage 2; 0: one stage; paper: 1000 (2 fits, TR:49,64)
    epochs: int = 30  # max epochs per continual experience; paper: 1000 (CF --epochs) + early stop
    patience: int = 5  # epochs without improvement, counted per stage; 0: off; paper: 100 (CF --patience)
    # What early stopping watches on the validation stream, per phase: "accuracy" (higher is
    # better) or "loss" (lower is better); an epoch improves when it beats the stage's best by
    # more than min_delta. paper: val_loss with min_delta 0.01 in the basic phase (CF:151),
    # val_accuracy with no min_delta in the continual one (CF:152).
    basic_monitor: Literal["accuracy", "loss"] = "accuracy"  # paper: loss
    basic_min_delta: float = 0.0  # paper: 0.01
    monitor: Literal["accuracy", "loss"] = "accuracy"  # continual experiences; paper: accuracy
    min_delta: float = 0.0  # continual experiences; paper: 0
    # Basic stage 2's best: "fresh" tracks it from scratch (paper: Keras resets EarlyStopping at
    # each fit, TR:52,67); "carry" starts from stage 1's best, so a fine-tune that never beats
    # stage 1 is rolled back to the stage-1 weights.
    finetune_best: Literal["fresh", "carry"] = "carry"  # paper: fresh
    # Best weights back at the end of a stage: "always", or "on_stop" (only when early stopping
    # ends the stage, not when its epoch budget runs out: TF 2.9's restore_best_weights, CF:151).
    restore_best: Literal["always", "on_stop"] = "always"  # paper code: on_stop (see docs/reference.md)
    # -- mini-batches ---------------------------------------------------------------------------
    batch_size: int = 32  # basic experience (all, if the next is null); paper: 32 (CF --basic_batch_size)
    continual_batch_size: int | None = None  # null: batch_size; paper: 16 (CF --cont_batch_size)
    # drop a continual experience's last partial batch; paper: true (CF:595 drop_remainder=True)
    continual_drop_last: bool = False
    eval_batch_size: int = 64  # evaluation mini-batch (test and validation streams)
    num_workers: int = 0  # DataLoader worker processes; 0: load in the training process (Ray tasks: 0)
    # -- speed (plugins/speed/precision.py) --------------------------------------------------------
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # paper: fp32 (Keras default)
    channels_last: bool = False  # NHWC activations: faster convolutions in bf16/fp16 on GPUs
    compile: str | bool = "false"  # false | default | reduce-overhead (CUDA graphs, small batches)
    # -- memory of PSMR and the replay baselines (the rule: cfer.plugins.method.memory) ---------------
    memory_fraction: float = 0.3  # paper: M = floor(0.3 * |train set of all classes|)
    memory_mode: Literal["grow", "limit"] = "grow"  # paper default: m = floor(M / K) per class, fixed
    mem_per_class: int | None = None  # overrides m; paper: floor(M / 21)
    # replay mini-batch of replay/der/er_ace/bic; None: the continual batch size
    replay_batch_size_mem: int | None = None

    def __post_init__(self) -> None:
        positive = ("lr", "basic_lr", "finetune_lr", "adam_eps", "batch_size", "eval_batch_size")
        for key in positive:
            if not getattr(self, key) > 0:
                raise ValueError(f"training.{key}: must be > 0, got {getattr(self, key)!r}")
        at_least = {"basic_epochs": 1, "epochs": 1, "finetune_epochs": 0, "patience": 0,
                    "num_workers": 0}
        for key, low in at_least.items():
            if getattr(self, key) < low:
                raise ValueError(f"training.{key}: must be >= {low}, got {getattr(self, key)!r}")
        nonneg = ("weight_decay", "momentum", "basic_min_delta", "min_delta")
        for key in nonneg:
            if getattr(self, key) < 0:
                raise ValueError(f"training.{key}: must be >= 0, got {getattr(self, key)!r}")
        if not 0 < self.memory_fraction <= 1:
            raise ValueError(f"training.memory_fraction: must be in (0, 1], got {self.memory_fraction}")
        for key in ("mem_per_class", "replay_batch_size_mem", "continual_batch_size"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ValueError(f"training.{key}: must be >= 1 or null, got {value!r}")
        mode = self.compile
        if isinstance(mode, bool):  # YAML reads false/true as booleans
            object.__setattr__(self, "compile", "default" if mode else "false")
        if self.compile not in ("false", "default", "reduce-overhead"):
            raise ValueError(f"training.compile: {mode!r} is not one of false, default, reduce-overhead")
        choices = {"precision": ("fp32", "bf16", "fp16"), "optimizer": ("adam", "sgd"),
                   "memory_mode": ("grow", "limit"), "basic_monitor": ("accuracy", "loss"),
                   "monitor": ("accuracy", "loss"), "finetune_best": ("fresh", "carry"),
                   "restore_best": ("always", "on_stop")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"training.{key}: {getattr(self, key)!r} is not one of {', '.join(allowed)}")
