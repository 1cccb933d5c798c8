"""Knowledge distillation from the frozen basic-expression model (Maiden & Nakisa 2023).

On the continual step ``i`` (``i = 0`` for the first compound experience,
i.e. the experience index minus one) the paper trains with

    L = (1 - g_i) * CE(y, s) + g_i * CE(softmax(t / T), softmax(s / T)),
    g_i = gamma * exp(-i / (1 + e))        (e: Euler's number)

where ``s`` are the student's logits, ``t`` the logits of the teacher (the
frozen model taken after the basic experience) zero-padded to the student's
number of classes, and ``CE(p, q) = -sum_k p_k log q_k`` averaged over the
mini-batch. No ``T**2`` factor multiplies the KD term (as in the reference method).
"""

from __future__ import annotations

import copy
import math

import torch
from avalanche.models import avalanche_forward
from avalanche.training.plugins import SupervisedPlugin

from cfer.plugins.method.params import DistillationParams
from cfer.plugins.method.selection import active_classes
from cfer.plugins.speed.precision import PrecisionPlugin


def gamma_at(i: int, *, gamma: float, decay: bool) -> float:
    """Distillation weight of continual step ``i``: ``gamma * exp(-i / (1 + e))``, or ``gamma``."""
    if i < 0:
        raise ValueError(f"step i must be >= 0, got {i}")
    return gamma * math.exp(-i / (1 + math.e)) if decay else gamma


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *,
                      temperature: float) -> torch.Tensor:
    """``CE(softmax(t / T), softmax(s / T))`` averaged over the batch.

    A teacher with fewer columns than the student is zero-padded on the right
    (the paper's padding for classes the teacher has never seen). Computed in
    float32 whatever the input precision.
    """
    s, t = student_logits.float(), teacher_logits.float()
    if t.shape[1] > s.shape[1]:
        raise ValueError(f"teacher has {t.shape[1]} classes, more than the student's {s.shape[1]}")
    if t.shape[1] < s.shape[1]:
        t = torch.nn.functional.pad(t, (0, s.shape[1] - t.shape[1]))
    p = torch.softmax(t / temperature, dim=1)
    return -(p * torch.log_softmax(s / temperature, dim=1)).sum(dim=1).mean()


class BasicDistillationPlugin(SupervisedPlugin):
    """Distil from a frozen copy of the model taken after the first experience.

    Implements the paper's loss (module docstring). The template's criterion
    has already put ``CE(y, s)`` into ``strategy.loss`` when
    ``before_backward`` runs, so the plugin rescales it there:
    ``strategy.loss = (1 - g_i) * strategy.loss + g_i * KD``. Anything an
    earlier plugin added to ``strategy.loss`` in its own ``before_backward``
    is scaled by ``(1 - g_i)`` too: list this plugin first.

    Only active units take part (the classes seen so far,
    :func:`cfer.plugins.method.selection.active_classes`): Avalanche's
    ``IncrementalClassifier`` fills not-yet-seen units with -1000. The teacher
    contributes its own trained classes; the student's other active classes
    get teacher logit 0 (the zero padding). The step is ``i = experience
    index - 1`` (``strategy.experience.current_experience``), at least 0.

    Keyword arguments (defaults and checks:
    :class:`cfer.plugins.method.params.DistillationParams`, kept as :attr:`config`):

    - ``temperature``: softmax temperature ``T`` (paper: 3);
    - ``gamma``: distillation weight ``gamma`` (paper: 0.1);
    - ``decay``: ``g_i = gamma * exp(-i / (1 + e))`` (paper) or ``g_i = gamma``;
    - ``teacher``: ``"basic"``: the model after the first experience, frozen
      for good (paper); ``"previous"``: the model after the latest
      experience (LwF-style), for comparison.
    """

    def __init__(self, **settings):
        super().__init__()
        self.config = DistillationParams(**settings)
        self.teacher: torch.nn.Module | None = None
        self.teacher_classes: list[int] | None = None  # class ids the teacher was trained on
        self.last_gamma: float | None = None  # g_i of the latest mini-batch (for logging)
        self.last_kd: torch.Tensor | None = None  # its KD term (detached; no .item() sync)
        self._cache_key, self._cache = None, None

    def step(self, strategy) -> int:
        """The paper's step ``i`` of the current experience."""
        return max(int(strategy.experience.current_experience) - 1, 0)

    def after_training_exp(self, strategy, **kwargs):
        if self.teacher is not None and self.config.teacher == "basic":
            return
        teacher = copy.deepcopy(strategy.model)
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        # Channels-last and compiled as the student runs (training.channels_last / compile).
        prec = next((p for p in strategy.plugins if isinstance(p, PrecisionPlugin)), None)
        if prec is not None:
            prec.prepare_copy(teacher)
        seen = getattr(strategy.experience, "classes_seen_so_far", None)
        # None: the experience does not say; then the teacher covers the student's active units.
        self.teacher_classes = sorted(int(c) for c in seen) if seen is not None else None
        self.teacher = teacher
        self._cache_key = None

    def before_training_exp(self, strategy, **kwargs):
        if self.teacher is not None:
            self.teacher.to(strategy.device)

    def before_backward(self, strategy, **kwargs):
        if self.teacher is None:
            return
        g = gamma_at(self.step(strategy), gamma=self.config.gamma, decay=self.config.decay)
        s = strategy.mb_output.float()
        with torch.no_grad():
            t = avalanche_forward(self.teacher, strategy.mb_x, strategy.mb_task_id).float()
            student_cols, teacher_cols, padded_cols = self._columns(
                strategy, student_width=s.shape[1], teacher_width=t.shape[1], device=s.device)
            padded = torch.zeros(len(s), len(student_cols), device=s.device)
            padded[:, padded_cols] = t[:, teacher_cols]
        kd = distillation_loss(s[:, student_cols], padded, temperature=self.config.temperature)
        strategy.loss = (1 - g) * strategy.loss + g * kd
        self.last_gamma, self.last_kd = g, kd.detach()

    def _columns(self, strategy, *, student_width: int, teacher_width: int, device):
        """Index tensors: the student's active units, the teacher's trained units, and where
        those sit among the student's. Cached: they change only between experiences."""
        cols = active_classes(strategy, student_width)
        key = (tuple(cols), teacher_width, str(device))
        if self._cache_key != key:
            t_cls = (self.teacher_classes if self.teacher_classes is not None
                     else list(range(teacher_width)))
            position = {c: j for j, c in enumerate(cols)}
            missing = [c for c in t_cls if c not in position]
            if missing:
                raise ValueError(f"BasicDistillationPlugin: teacher classes {missing} are not among "
                                 f"the student's trained classes {cols}")
            as_tensor = lambda v: torch.tensor(v, dtype=torch.long, device=device)  # noqa: E731
            self._cache_key = key
            self._cache = (as_tensor(cols), as_tensor(list(t_cls)),
                           as_tensor([position[c] for c in t_cls]))
        return self._cache
