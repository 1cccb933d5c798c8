"""The settings of the paper's two plugins, and their registry entries (light: no torch).

Maiden & Nakisa 2023 (arXiv:2308.06197); "reference" is its code, github.com/AngusMaiden/complex-FER
at 797fd061 (``CF`` = src/complex_FER.py, ``TR`` = src/models/train.py; docs/reference.md has the
whole comparison). Each default is written here once; the plugins
(:class:`cfer.plugins.method.distillation.BasicDistillationPlugin`,
:class:`cfer.plugins.method.psmr.PredictiveSortingReplayPlugin`) take the same keyword
arguments and build these objects from them.

Registered plugins (:mod:`cfer.plugins.registry`):

- ``distillation`` (phase ``loss``): the paper's distillation from the frozen basic model;
- ``psmr`` (phase ``memory``): the Predictive Sorting Memory Replay memory;
- ``random_memory``, ``herding_memory``, ``closest_to_center_memory`` (phase ``memory``): the
  same memory (PSMR's sizes, each class ranked once, the new-class draws) filled by another
  exemplar selection, for the ablations.

All five are ``inert`` on experience 0: there is no teacher before it ends, and the memory is
empty while it trains (it trains on all its images, with no draw); ranking comes after training.
The memory's size is not a plugin setting: it is the rule every replay method shares
(``training.memory_*``, :class:`cfer.plugins.method.memory.MemoryRule`).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import ClassVar, Literal

from cfer.plugins.registry import PluginParams, register_plugin

Teacher = Literal["basic", "previous"]
Selection = Literal["predictive", "random", "herding", "closest_to_center"]  # plugins/method/selection.py
Score = Literal["logit", "probability"]
NewClassSamples = Literal["m", "all"] | int  # or n >= 1 images per new class
NewClassDraw = Literal["epoch", "experience"]
SCORES, SELECTIONS = typing.get_args(Score), typing.get_args(Selection)


@dataclass(frozen=True)
class DistillationParams(PluginParams):
    """Distillation from the basic model: ``(1 - g_i) CE + g_i KD`` (the plugin's docstring)."""

    #: ``cfer tune``'s grid (around the paper's gamma = 0.1, T = 3); inert on experience 0
    search: ClassVar[dict[str, tuple]] = {"gamma": (0.05, 0.1, 0.3, 0.5), "temperature": (1.0, 3.0, 5.0)}

    temperature: float = 3.0  # paper: T = 3 (reference TR:217-223)
    gamma: float = 0.1  # paper: g_i = 0.1 * exp(-i / (1 + e)) (reference TR:217-223)
    decay: bool = True  # paper: g_i decays with the step i; false keeps g_i = gamma
    teacher: Teacher = "basic"  # paper: the frozen basic model (CF:524, CF:605); "previous": LwF-style

    def __post_init__(self) -> None:
        self.check("temperature", self.temperature > 0, "> 0")
        self.check("gamma", 0 <= self.gamma <= 1, "in [0, 1]")
        self.check_choice("decay", (True, False))
        self.check_choice("teacher", Teacher)


@dataclass(frozen=True)
class PSMRParams(PluginParams):
    """Which exemplars the PSMR memory keeps, and which new-class images each step trains on."""

    # paper: predictive sorting (rank a class's images by the model's confidence in the true class)
    selection: Selection = "predictive"
    # ranking score of "predictive". reference: TR RepresentativeMemoryUpdate,
    # `np.argsort(preds[:,idx])[::-1]` on the linear last layer, i.e. the raw logit (the paper's
    # text says "probability": "probability" ranks by the softmax over the active units)
    score: Score = "logit"
    # new-class images per continual step. reference: CF cont(), `new_train_ds.shuffle(len(...)).take(m)`:
    # m per new class; "all": every image; n: min(n, all)
    new_class_samples: NewClassSamples = "m"
    # reference: tf.data's `.shuffle` reshuffles every iteration, so `.take(m)` draws anew each
    # epoch ("epoch"); "experience": one draw per step
    new_class_draw: NewClassDraw = "epoch"

    def __post_init__(self) -> None:
        if isinstance(self.selection, str):  # else an Avalanche ExemplarsSelectionStrategy (Python use)
            self.check_choice("selection", SELECTIONS)
        self.check("score", self.score in SCORES, f"one of {', '.join(SCORES)}")
        n = self.new_class_samples
        self.check("new_class_samples",
                   n in ("m", "all") if isinstance(n, str) else
                   isinstance(n, int) and not isinstance(n, bool) and n >= 1,
                   "'m', 'all' or a positive integer")
        self.check_choice("new_class_draw", NewClassDraw)
        if self.selection != "predictive":
            self.check("score", self.score == "logit",
                       f"left at 'logit': it is only for selection 'predictive' "
                       f"(selection {self.selection!r} ranks by no score)")


@dataclass(frozen=True)
class RandomMemoryParams(PSMRParams):
    """The PSMR memory with random exemplars (Avalanche's RandomExemplarsSelectionStrategy)."""

    selection: Selection = "random"


@dataclass(frozen=True)
class HerdingMemoryParams(PSMRParams):
    """The PSMR memory with exemplars chosen by herding (Rebuffi et al., iCaRL)."""

    selection: Selection = "herding"


@dataclass(frozen=True)
class ClosestToCenterMemoryParams(PSMRParams):
    """The PSMR memory with the exemplars closest to their class mean in feature space."""

    selection: Selection = "closest_to_center"


DISTILLATION = "cfer.plugins.method.distillation:BasicDistillationPlugin"
PSMR = "cfer.plugins.method.psmr:PredictiveSortingReplayPlugin"

register_plugin("distillation", path=DISTILLATION, params=DistillationParams, phase="loss",
                first_experience="inert",
                description="distillation from the frozen basic model, (1 - g_i) CE + g_i KD (the paper)")
register_plugin("psmr", path=PSMR, params=PSMRParams, phase="memory", first_experience="inert",
                description="predictive-sorting memory replay (the paper)")
register_plugin("random_memory", path=PSMR, params=RandomMemoryParams, phase="memory",
                first_experience="inert", description="the PSMR memory filled with random exemplars")
register_plugin("herding_memory", path=PSMR, params=HerdingMemoryParams, phase="memory",
                first_experience="inert", description="the PSMR memory filled by herding")
register_plugin("closest_to_center_memory", path=PSMR, params=ClosestToCenterMemoryParams,
                phase="memory", first_experience="inert",
                description="the PSMR memory filled with the exemplars closest to their class mean")
