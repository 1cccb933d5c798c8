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

The memory rule's keys (``memory_*``, ``mem_per_class``) are checked and their defaults
written once in :class:`cfer.plugins.method.memory.MemoryRule`, the precision keys in
:class:`cfer.plugins.speed.config.PrecisionConfig`; this section holds them under its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from cfer.core.typed import Checked
from cfer.plugins.method.memory import MemoryRule, Mode
from cfer.plugins.speed.config import Precision, PrecisionConfig

Optimizer = Literal["adam", "sgd"]
Monitor = Literal["accuracy", "loss"]
StageBest = Literal["fresh", "carry"]
RestoreBest = Literal["always", "on_stop"]


@dataclass(frozen=True)
class TrainingConfig(Checked):
    section = "training"
    #: ``cfer tune``'s default grids of the learning rates (experiments/config/search_space.py): ``lr`` for
    #: every continual method (from the paper's 1e-5 to 1e-3, where naive training collapses on
    #: the quickstart), ``basic_lr`` for an offline method (joint), which trains only the basic
    #: phase's schedule. A config's ``tune.space`` narrows or replaces them.
    search: ClassVar[dict[str, tuple]] = {"lr": (1e-5, 3e-5, 1e-4, 3e-4, 1e-3),
                                          "basic_lr": (1e-4, 3e-4, 1e-3, 3e-3)}

    # -- optimisation ---------------------------------------------------------------------------
    optimizer: Optimizer = "adam"  # paper: Adam (TR:41, TR:60, TR:220)
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
    basic_monitor: Monitor = "accuracy"  # paper: loss
    basic_min_delta: float = 0.0  # paper: 0.01
    monitor: Monitor = "accuracy"  # continual experiences; paper: accuracy
    min_delta: float = 0.0  # continual experiences; paper: 0
    # Basic stage 2's best: "fresh" tracks it from scratch (paper: Keras resets EarlyStopping at
    # each fit, TR:52,67); "carry" starts from stage 1's best, so a fine-tune that never beats
    # stage 1 is rolled back to the stage-1 weights.
    finetune_best: StageBest = "carry"  # paper: fresh
    # Best weights back at the end of a stage: "always", or "on_stop" (only when early stopping
    # ends the stage, not when its epoch budget runs out: TF 2.9's restore_best_weights, CF:151).
    restore_best: RestoreBest = "always"  # paper code: on_stop (see docs/reference.md)
    # -- mini-batches ---------------------------------------------------------------------------
    batch_size: int = 32  # basic experience (all, if the next is null); paper: 32 (CF --basic_batch_size)
    continual_batch_size: int | None = None  # null: batch_size; paper: 16 (CF --cont_batch_size)
    # drop a continual experience's last partial batch; paper: true (CF:595 drop_remainder=True)
    continual_drop_last: bool = False
    eval_batch_size: int = 64  # evaluation mini-batch (test and validation streams)
    num_workers: int = 0  # DataLoader worker processes; 0: load in the training process (Ray tasks: 0)
    # -- speed (defaults and checks: cfer.plugins.speed.config.PrecisionConfig) ------------------
    precision: Precision = PrecisionConfig.precision  # auto (bf16 on CUDA) | fp32 | bf16 | fp16; paper: fp32
    channels_last: bool | Literal["auto"] = PrecisionConfig.channels_last  # NHWC; auto: conv models
    compile: str | bool = PrecisionConfig.compile  # false | default | reduce-overhead (CUDA graphs)
    # -- memory of PSMR and the replay baselines (defaults and checks: the rule's MemoryRule) ----
    memory_fraction: float = MemoryRule.memory_fraction  # M = floor(fraction * N); paper: 0.3
    memory_mode: Mode = MemoryRule.memory_mode  # grow: m per class, fixed (paper); limit: M fixed
    mem_per_class: int | None = MemoryRule.mem_per_class  # overrides m; paper: floor(M / 21)
    # replay mini-batch of replay/der/er_ace/bic; None: the continual batch size
    replay_batch_size_mem: int | None = None

    def __post_init__(self) -> None:
        for key in ("lr", "basic_lr", "finetune_lr", "adam_eps", "batch_size", "eval_batch_size"):
            self.check(key, getattr(self, key) > 0, "> 0")
        at_least = {"basic_epochs": 1, "epochs": 1, "finetune_epochs": 0, "patience": 0, "num_workers": 0}
        for key, low in at_least.items():
            self.check(key, getattr(self, key) >= low, f">= {low}")
        for key in ("weight_decay", "momentum", "basic_min_delta", "min_delta"):
            self.check(key, getattr(self, key) >= 0, ">= 0")
        for key in ("replay_batch_size_mem", "continual_batch_size"):
            self.check(key, getattr(self, key) is None or getattr(self, key) >= 1, ">= 1 or null")
        for key, allowed in (("optimizer", Optimizer), ("basic_monitor", Monitor), ("monitor", Monitor),
                             ("finetune_best", StageBest), ("restore_best", RestoreBest)):
            self.check_choice(key, allowed)
        # The memory rule and the precision keys are checked where they are defined.
        MemoryRule(memory_fraction=self.memory_fraction, memory_mode=self.memory_mode,
                   mem_per_class=self.mem_per_class)
        object.__setattr__(self, "compile", self.precision_config.compile)  # true/false -> default/false

    @property
    def memory_rule(self) -> MemoryRule:
        """The memory rule of PSMR and the replay baselines (``memory_*``, ``mem_per_class``)."""
        return MemoryRule(memory_fraction=self.memory_fraction, memory_mode=self.memory_mode,
                          mem_per_class=self.mem_per_class)

    @property
    def precision_config(self) -> PrecisionConfig:
        """Numeric precision and layout (``precision``, ``channels_last``, ``compile``)."""
        return PrecisionConfig(precision=self.precision, channels_last=self.channels_last,
                               compile=self.compile)
