"""The paper's method and its ablations: shared hyperparameters and plugins.

``kd_psmr`` (the paper), ``kd_only``, ``psmr_only``, ``kd_random_replay`` and
``kd_herding`` combine the same two plugins, so they share one hyperparameter
dataclass, :class:`MethodParams` (each strategy subclasses it, so that its errors
name ``strategies.params.<its name>.<key>``). PSMR's memory size is not here: it
is the memory rule shared with the replay baselines (``training.memory_fraction``,
``memory_mode``, ``mem_per_class``; :mod:`cfer.plugins.method.memory`).
Not a strategy itself: the leading underscore keeps it out of the registry.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import ClassVar, Literal

from cfer.strategies.params import StrategyParams

Teacher = Literal["basic", "previous"]
Selection = Literal["predictive", "random", "herding", "closest_to_center"]  # cfer.plugins.method.selection
Score = Literal["logit", "probability"]  # cfer.plugins.method.selection.SCORES
NewClassSamples = Literal["m", "all"] | int  # cfer.plugins.method.psmr.NEW_CLASS_SAMPLES, or n >= 1
NewClassDraw = Literal["epoch", "experience"]  # cfer.plugins.method.psmr.NEW_CLASS_DRAWS
TEACHERS, SELECTIONS = typing.get_args(Teacher), typing.get_args(Selection)
SCORES, DRAWS = typing.get_args(Score), typing.get_args(NewClassDraw)


@dataclass(frozen=True)
class MethodParams(StrategyParams):
    """Distillation from the basic model (Maiden & Nakisa 2023) and PSMR's exemplar selection."""

    temperature: float = 3.0  # paper: T = 3
    gamma: float = 0.1  # paper: g_i = 0.1 * exp(-i / (1 + e))
    decay: bool = True  # paper: g_i decays with the step
    teacher: Teacher = "basic"  # paper: the frozen basic model; "previous": the last one (LwF-style)
    # paper: predictive sorting (rank a class's images by the model's confidence in the true class)
    selection: Selection = "predictive"
    # ranking score of "predictive". reference: src/models/train.py RepresentativeMemoryUpdate,
    # `np.argsort(preds[:,idx])[::-1]` on the linear last layer, i.e. the raw logit (the paper's
    # text says "probability": "probability" ranks by the softmax over the active units)
    score: Score = "logit"
    # new-class images per continual step. reference: src/complex_FER.py cont(),
    # `new_train_ds.shuffle(len(...)).take(m)`: m per new class; "all": every image; n: min(n, all)
    new_class_samples: NewClassSamples = "m"
    # reference: tf.data's `.shuffle` reshuffles every iteration, so `.take(m)` draws anew each
    # epoch ("epoch"); "experience": one draw per step
    new_class_draw: NewClassDraw = "epoch"

    # keys a strategy of the family does not read (setting one is an error, not a silent no-op)
    unused: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        self.check("temperature", self.temperature > 0, "> 0")
        self.check("gamma", 0 <= self.gamma <= 1, "in [0, 1]")
        self.check("teacher", self.teacher in TEACHERS, f"one of {', '.join(TEACHERS)}")
        self.check("selection", self.selection in SELECTIONS, f"one of {', '.join(SELECTIONS)}")
        self.check("score", self.score in SCORES, f"one of {', '.join(SCORES)}")
        n = self.new_class_samples
        self.check("new_class_samples",
                   n in ("m", "all") if isinstance(n, str) else
                   isinstance(n, int) and not isinstance(n, bool) and n >= 1,
                   "'m', 'all' or a positive integer")
        self.check("new_class_draw", self.new_class_draw in DRAWS, f"one of {', '.join(DRAWS)}")
        for f in dataclasses.fields(self):
            if f.name in self.unused:
                self.check(f.name, getattr(self, f.name) == f.default,
                           f"left at {f.default!r} ({self.method} does not use it)")
        if "score" not in self.unused and self.selection != "predictive":
            self.check("score", self.score == "logit",
                       f"left at 'logit' (selection {self.selection!r} ranks by no score)")


def distillation(ctx):
    """The paper's :class:`cfer.plugins.method.distillation.BasicDistillationPlugin` from ``ctx.params``."""
    from cfer.plugins.method.distillation import BasicDistillationPlugin

    p = ctx.params
    return BasicDistillationPlugin(temperature=p.temperature, gamma=p.gamma, decay=p.decay, teacher=p.teacher)


def psmr(ctx):
    """The paper's :class:`cfer.plugins.method.psmr.PredictiveSortingReplayPlugin`: the shared memory
    rule of ``ctx.config``, sized over the whole training stream (N, K), and ``ctx.params``'
    ``selection``, ``score``, ``new_class_samples`` and ``new_class_draw``; the new-class draws
    are seeded by the run seed (``ctx.seed``; 0 where the context has none)."""
    from cfer.plugins.method.psmr import PredictiveSortingReplayPlugin

    cfg, p = ctx.config, ctx.params
    return PredictiveSortingReplayPlugin(fraction=cfg.memory_fraction, mode=cfg.memory_mode,
                                         mem_per_class=cfg.mem_per_class, selection=p.selection,
                                         total_train_size=ctx.train_size, total_classes=ctx.n_classes,
                                         new_class_samples=p.new_class_samples,
                                         new_class_draw=p.new_class_draw, score=p.score,
                                         seed=int(getattr(ctx, "seed", 0) or 0))
