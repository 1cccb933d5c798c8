"""The paper's memory rule, in one place (Maiden & Nakisa 2023, the reference code's constants).

``M = floor(fraction * N)`` exemplars in total, with ``N`` the number of training
images of all classes in the training stream, and ``m = floor(M / K)`` per class
with ``K`` the number of classes in the stream (or ``m = mem_per_class``, then
``M = m * K``). ``N`` and ``K`` are counted over the whole training stream, once.
Budget modes:

- ``"grow"`` (paper default): every class keeps ``m``; the memory grows by ``m``
  with each new class, up to ``m * K``;
- ``"limit"``: the memory holds at most ``M``. As the reference code does it
  (src/complex_FER.py ``cont()``: ``m = math.floor(M/len(emotion_list))`` before the
  loop, ``m = math.floor(M/num_classes)`` only *after* a step; src/models/train.py
  ``RepresentativeMemoryUpdate``: old classes ``imgs[:m]``): the classes stored first
  (the basic ones) get ``floor(M / K)`` each, every later class is stored at
  ``floor(M / n)`` with ``n`` the classes seen so far, and a class's memory is only
  ever cut to that size, never grown (:func:`stored_class_size`). So the basic classes
  keep ``floor(M / K)`` for the whole stream. :func:`class_size` is the plain
  ``floor(M / n)`` share.

The settings are one object, :class:`MemoryRule` (the ``training:`` section's
``memory_fraction``, ``memory_mode`` and ``mem_per_class``, checked here once), and ``(M, m)``
for a stream is :meth:`MemoryRule.sizes`, computed once per strategy by the builder
(:meth:`cfer.strategies.builder.BuildContext.memory`) and handed to the PSMR plugin
(:mod:`cfer.plugins.method.psmr`) and the replay baselines, so that every method's memory has
the same size. Pure Python: no torch, no Avalanche.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from cfer.core.typed import Checked

Mode = Literal["grow", "limit"]
MODES = typing.get_args(Mode)


@dataclass(frozen=True)
class MemoryRule(Checked):
    """The memory rule's settings, as the ``training:`` section names them (its errors name
    ``training.<key>``). Reference: github.com/AngusMaiden/complex-FER at 797fd061,
    src/complex_FER.py ``cont()``."""

    section = "training"

    memory_fraction: float = 0.3  # paper: M = floor(0.3 * |train set of all classes|)
    memory_mode: Mode = "grow"  # paper default: m = floor(M / K) per class, fixed; "limit": M fixed
    mem_per_class: int | None = None  # overrides m; paper: floor(M / 21)

    def __post_init__(self) -> None:
        self.check("memory_fraction", 0 < self.memory_fraction <= 1, "in (0, 1]")
        self.check_choice("memory_mode", Mode)
        m = self.mem_per_class
        self.check("mem_per_class", m is None or isinstance(m, int) and not isinstance(m, bool) and m >= 1,
                   ">= 1 or null")

    def sizes(self, *, total_train_size: int | None, total_classes: int | None) -> MemorySizes:
        """``(M, m)`` and the mode for a stream of ``N`` training images of ``K`` classes."""
        total, per_class = memory_sizes(fraction=self.memory_fraction, total_train_size=total_train_size,
                                        total_classes=total_classes, mem_per_class=self.mem_per_class)
        return MemorySizes(total=total, per_class=per_class, mode=self.memory_mode)


@dataclass(frozen=True)
class MemorySizes:
    """``M`` (``total``; None when ``K`` is unknown and ``m`` was given), ``m`` and the mode."""

    total: int | None
    per_class: int
    mode: str

    def budget(self, n_classes: int) -> int:
        """Most exemplars a fixed-size buffer ever holds (:func:`memory_budget`)."""
        return memory_budget(mode=self.mode, total=self.total, per_class=self.per_class,
                             n_classes=n_classes)


def memory_sizes(*, fraction: float, total_train_size: int | None, total_classes: int | None,
                 mem_per_class: int | None = None) -> tuple[int | None, int]:
    """``(M, m)``: total and per-class memory size.

    With ``mem_per_class`` set, ``m`` is it and ``M = m * K`` (None when ``K``
    is unknown). Otherwise ``M = floor(fraction * N)`` and ``m = floor(M / K)``.
    """
    if mem_per_class is not None:
        return (mem_per_class * total_classes if total_classes else None), mem_per_class
    if not total_train_size or not total_classes:
        raise ValueError("PSMR memory size needs total_train_size and total_classes")
    # round() first: 0.29 * 100 is 28.999999999999996 in binary floating point.
    big_m = math.floor(round(fraction * total_train_size, 9))
    m = big_m // total_classes
    if m < 1:
        raise ValueError(f"PSMR: fraction {fraction} of {total_train_size} training images gives "
                         f"M = {big_m} slots for {total_classes} classes, i.e. m = 0 per class; "
                         "raise fraction or set mem_per_class")
    return big_m, m


def class_size(*, mode: str, per_class: int, total: int | None, n_seen: int) -> int:
    """Exemplars per class when ``n_seen`` classes are stored: ``m`` (grow) or ``floor(M / n)``."""
    if mode == "grow":
        return per_class
    if total is None:
        raise ValueError("memory mode 'limit' needs the total memory size M")
    return total // max(n_seen, 1)


def stored_class_size(*, mode: str, per_class: int, total: int | None, n_seen: int,
                      first: bool) -> int:
    """Size at which classes are stored when ``n_seen`` classes are known, ``first`` when the
    memory is still empty (the reference's rule, see the module docstring).

    ``"grow"``: ``m``. ``"limit"``: ``m = floor(M / K)`` for the first classes stored
    (reference: ``m`` is recomputed only after a step), then ``floor(M / n_seen)``;
    already stored classes are cut to it, never grown.
    """
    if mode == "limit" and first:
        return per_class
    return class_size(mode=mode, per_class=per_class, total=total, n_seen=n_seen)


def memory_budget(*, mode: str, total: int | None, per_class: int, n_classes: int) -> int:
    """Most exemplars a fixed-size buffer ever holds: ``m * K`` (grow) or ``M`` (limit)."""
    if mode not in MODES:
        raise ValueError(f"memory mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "grow":
        return per_class * n_classes
    if total is None:
        raise ValueError("memory mode 'limit' needs the total memory size M")
    return total


def stream_totals(stream: Iterable) -> tuple[int, int]:
    """``(N, K)``: training images and classes over the experiences of ``stream``."""
    classes: set[int] = set()
    n = 0
    for exp in stream:
        n += len(exp.dataset)
        classes.update(int(c) for c in exp.classes_in_this_experience)
    return n, len(classes)
