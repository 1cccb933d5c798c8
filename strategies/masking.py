"""`SeenClassMask`: restrict evaluation predictions to the classes seen so far."""

from __future__ import annotations

from avalanche.core import SupervisedPlugin


class SeenClassMask(SupervisedPlugin):
    """Sets the logits of classes ``>= n_seen`` to ``-inf`` after each eval forward.

    Why: the joint upper bound trains once on every class, but step ``i`` of
    the protocol scores a model that only knows the classes of experiences
    ``0..i``; the runner sets ``mask.n_seen`` before each evaluation. With
    ``auto=True`` ``n_seen`` follows the classes trained so far (for
    classifiers such as iCaRL's nearest-class-mean, whose output also covers
    classes it has no exemplars of yet). ``n_seen=None`` leaves outputs as
    they are. Class ids follow the experience order, so the seen classes are
    ``0..n_seen-1``.
    """

    def __init__(self, *, n_seen: int | None = None, auto: bool = False):
        super().__init__()
        self.n_seen = n_seen
        self.auto = auto

    def after_training_exp(self, strategy, **kwargs):
        if self.auto:
            seen = strategy.experience.classes_seen_so_far
            self.n_seen = max(int(c) for c in seen) + 1

    def after_eval_forward(self, strategy, **kwargs):
        out = strategy.mb_output
        if self.n_seen is None or out.shape[1] <= self.n_seen:
            return
        out = out.clone()
        out[:, self.n_seen:] = float("-inf")
        strategy.mb_output = out
