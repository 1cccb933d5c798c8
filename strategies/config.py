"""`StrategyConfig`: training hyperparameters shared by every strategy (flat, typed).

The experiment runner fills it from the YAML ``training:`` section (and
per-method overrides). Values quoted from the paper (Maiden & Nakisa,
arXiv:2308.06197) and its reference code (github.com/AngusMaiden/complex-FER,
``src/constants.py``) are marked "paper"; other defaults are the baselines'
usual ones (FACIL / Avalanche).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class StrategyConfig:
    # -- optimisation ---------------------------------------------------------------------------
    optimizer: Literal["adam", "sgd"] = "adam"  # paper: Adam
    lr: float = 1e-5  # continual experiences; paper: Adam 1e-5
    basic_lr: float = 1e-4  # basic experience (stage 1, frozen backbone); paper: Adam 1e-4
    finetune_lr: float = 1e-6  # basic experience, stage 2 (fine-tune upper layers); paper: 1e-6
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0  # all but the head's hidden Dense weights (model.head_l2); paper: 0
    reset_optimizer: bool = True  # fresh optimizer state per experience; paper: a new Adam per step
    # -- epochs and early stopping --------------------------------------------------------------
    basic_epochs: int = 50  # max epochs, basic experience (stage 1); paper code: 1000 + early stop
    finetune_epochs: int = 0  # max epochs, basic stage 2; 0: one stage; paper code: 1000 + early stop
    epochs: int = 30  # max epochs per continual experience; paper code: 1000 + early stopping
    patience: int = 5  # early stopping on the validation stream, 0 disables; paper code: 100
    batch_size: int = 32  # paper: 32
    eval_batch_size: int = 64
    num_workers: int = 0
    # -- speed (plugins/precision.py) -----------------------------------------------------------
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # paper: fp32 (Keras default)
    channels_last: bool = False  # NHWC activations: faster convolutions in bf16/fp16 on GPUs
    compile: str | bool = "false"  # false | default | reduce-overhead (CUDA graphs, small batches)
    # -- memory (PSMR and the replay baselines) -------------------------------------------------
    memory_fraction: float = 0.3  # paper: M = floor(0.3 * |train set of all classes|)
    memory_mode: Literal["grow", "limit"] = "grow"  # paper default: m = floor(M / K) per class, fixed
    mem_per_class: int | None = None  # overrides m; paper: floor(M / 21)
    selection: Literal["predictive", "random", "herding", "closest_to_center"] = "predictive"  # paper
    # -- distillation from the basic model ------------------------------------------------------
    temperature: float = 3.0  # paper: T = 3
    gamma: float = 0.1  # paper: g_i = 0.1 * exp(-i / (1 + e))
    decay: bool = True  # paper: g_i decays with the step
    teacher: Literal["basic", "previous"] = "basic"  # paper: the frozen basic model
    # -- baselines -------------------------------------------------------------------------------
    lwf_alpha: float = 1.0  # FACIL: lamb = 1
    lwf_temperature: float = 2.0  # FACIL / Li & Hoiem: T = 2
    ewc_lambda: float = 5000.0  # FACIL: lamb = 5000
    agem_patterns_per_exp: int = 100
    agem_sample_size: int = 64
    gem_patterns_per_exp: int = 100
    gem_memory_strength: float = 0.5  # Lopez-Paz & Ranzato: margin 0.5
    der_alpha: float = 0.1  # Buzzega et al. / Avalanche default
    der_beta: float = 0.5  # DER++; 0 gives plain DER
    replay_batch_size_mem: int | None = None  # replay mini-batch for replay/der/er_ace; None: batch_size
    bic_val_fraction: float = 0.1  # Wu et al.: 10% of the memory held out for bias correction
    bic_epochs: int = 200  # bias-correction (stage 2) epochs; Avalanche / FACIL: 200
    bic_lr: float = 0.1
    bic_temperature: float = 2.0  # Wu et al.: T = 2
    gdumb_memory: int | None = None  # None: the memory rule above (M)

    def __post_init__(self) -> None:
        positive = ("lr", "basic_lr", "finetune_lr", "batch_size", "eval_batch_size", "temperature",
                    "lwf_temperature", "agem_patterns_per_exp", "agem_sample_size",
                    "gem_patterns_per_exp", "bic_lr", "bic_temperature")
        for key in positive:
            if not getattr(self, key) > 0:
                raise ValueError(f"training.{key}: must be > 0, got {getattr(self, key)!r}")
        at_least = {"basic_epochs": 1, "epochs": 1, "finetune_epochs": 0, "patience": 0,
                    "num_workers": 0, "bic_epochs": 0}
        for key, low in at_least.items():
            if getattr(self, key) < low:
                raise ValueError(f"training.{key}: must be >= {low}, got {getattr(self, key)!r}")
        nonneg = ("weight_decay", "momentum", "lwf_alpha", "ewc_lambda", "gem_memory_strength",
                  "der_alpha", "der_beta")
        for key in nonneg:
            if getattr(self, key) < 0:
                raise ValueError(f"training.{key}: must be >= 0, got {getattr(self, key)!r}")
        if not 0 < self.memory_fraction <= 1:
            raise ValueError(f"training.memory_fraction: must be in (0, 1], got {self.memory_fraction}")
        if not 0 <= self.gamma <= 1:
            raise ValueError(f"training.gamma: must be in [0, 1], got {self.gamma}")
        if not 0 < self.bic_val_fraction < 1:
            raise ValueError(f"training.bic_val_fraction: must be in (0, 1), got {self.bic_val_fraction}")
        for key in ("mem_per_class", "gdumb_memory", "replay_batch_size_mem"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ValueError(f"training.{key}: must be >= 1 or null, got {value!r}")
        mode = self.compile
        if isinstance(mode, bool):  # YAML reads false/true as booleans
            object.__setattr__(self, "compile", "default" if mode else "false")
        if self.compile not in ("false", "default", "reduce-overhead"):
            raise ValueError(f"training.compile: {mode!r} is not one of false, default, reduce-overhead")
        choices = {"precision": ("fp32", "bf16", "fp16"), "optimizer": ("adam", "sgd"), "memory_mode": ("grow", "limit"),
                   "selection": ("predictive", "random", "herding", "closest_to_center"),
                   "teacher": ("basic", "previous")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"training.{key}: {getattr(self, key)!r} is not one of {', '.join(allowed)}")
