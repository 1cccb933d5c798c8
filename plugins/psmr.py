"""Predictive Sorting Memory Replay (PSMR, Maiden & Nakisa 2023) as an Avalanche replay plugin.

Memory sizes follow the paper: ``M = floor(fraction * N)`` with ``N`` the
number of training images of all classes in the stream, and
``m = floor(M / K)`` per class with ``K`` the number of classes in the
stream. Mode ``"grow"`` (paper default) keeps ``m`` per class, so the memory
grows by ``m`` with every new class; mode ``"limit"`` keeps the memory at
``M`` and gives each of the ``n`` classes seen so far ``floor(M / n)``.

Each class's exemplars are chosen once, by the model right after it has
been trained on the experience that introduced the class (the paper ranks a
class's training images by the model's predicted probability of their true
class at the end of that step and keeps the top ``m``). Afterwards a class's
memory is only shrunk (mode ``"limit"``), keeping the top of its stored
ranking. Avalanche's ``ParametricBuffer`` would instead re-rank every old
class with the current model after each experience; :class:`PSMRBuffer`
overrides that.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from avalanche.benchmarks.utils.data_loader import ReplayDataLoader
from avalanche.training.plugins import SupervisedPlugin
from avalanche.training.storage_policy import (
    ExemplarsBuffer,
    ExemplarsSelectionStrategy,
    ParametricBuffer,
)

from cfer.plugins.selection import eval_mode, selection_names, selection_strategy


@dataclass(frozen=True)
class PSMRConfig:
    """Settings of :class:`PredictiveSortingReplayPlugin`."""

    fraction: float = 0.3  # paper: M = floor(0.3 * |train set of all 21 classes|)
    mode: str = "grow"  # paper default: m fixed, M grows by m per class; "limit": M fixed
    mem_per_class: int | None = None  # overrides m (paper: m = floor(M / 21))
    selection: str | ExemplarsSelectionStrategy = "predictive"  # paper: predictive sorting
    batch_size: int | None = None  # with batch_size_mem: Avalanche's ReplayDataLoader
    batch_size_mem: int | None = None  # None (and batch_size None): memory concatenated (paper)
    total_train_size: int | None = None  # N; None: counted from the experience's origin_stream
    total_classes: int | None = None  # K; None: counted from the experience's origin_stream
    feature_layer: str | None = None  # feature layer of "herding" / "closest_to_center"

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")
        if self.mode not in ("grow", "limit"):
            raise ValueError(f"mode must be 'grow' or 'limit', got {self.mode!r}")
        for key in ("mem_per_class", "batch_size", "batch_size_mem", "total_train_size",
                    "total_classes"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{key} must be a positive integer or None, got {value!r}")
        if isinstance(self.selection, str) and self.selection not in selection_names():
            raise ValueError(f"unknown selection {self.selection!r}; choose one of "
                             f"{', '.join(selection_names())}")


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


def stream_totals(experience) -> tuple[int, int]:
    """``(N, K)``: training images and classes of the stream ``experience`` comes from."""
    stream = getattr(experience, "origin_stream", None)
    if stream is None:
        raise ValueError("PSMR: the experience has no origin_stream to count the training set; "
                         "pass total_train_size= and total_classes= to PredictiveSortingReplayPlugin")
    classes: set[int] = set()
    n = 0
    for exp in stream:
        n += len(exp.dataset)
        classes.update(int(c) for c in exp.classes_in_this_experience)
    return n, len(classes)


def class_indices(data) -> dict[int, list[int]]:
    """Class id -> indices of its samples in ``data`` (ascending)."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, target in enumerate(data.targets):
        groups[int(target)].append(i)
    return dict(groups)


class ClassMemory(ExemplarsBuffer):
    """One class's exemplars, best first; resizing only cuts the tail (never re-ranks).

    ``indices`` are positions in the training dataset of experience
    ``experience`` (the one that introduced the class), in rank order.
    """

    def __init__(self, *, data, indices: list[int], experience: int):
        super().__init__(max_size=len(indices))
        self.buffer = data
        self.indices = list(indices)
        self.experience = experience

    def resize(self, strategy, new_size: int):
        self.max_size = new_size
        if new_size < len(self.indices):
            self.indices = self.indices[:new_size]
            self.buffer = self.buffer.subset(list(range(new_size)))


class PSMRBuffer(ParametricBuffer):
    """Class-grouped ``ParametricBuffer`` that selects a class's exemplars once.

    Args:
        selection_strategy: ranks a class's samples (best first).
        mode: ``"grow"`` (``m`` per class) or ``"limit"`` (``floor(M / n)``
            per class for ``n`` seen classes).
        mem_per_class: ``m``.
        memory_size: ``M`` (needed in mode ``"limit"``).
    """

    def __init__(self, *, selection_strategy: ExemplarsSelectionStrategy, mode: str,
                 mem_per_class: int, memory_size: int | None = None):
        super().__init__(max_size=0, groupby="class", selection_strategy=selection_strategy)
        if mode == "limit" and memory_size is None:
            raise ValueError("PSMRBuffer: mode 'limit' needs memory_size (M)")
        self.mode = mode
        self.mem_per_class = mem_per_class
        self.memory_size = memory_size

    def class_size(self, n_classes: int) -> int:
        """Per-class size when ``n_classes`` classes are stored."""
        if self.mode == "grow":
            return self.mem_per_class
        return self.memory_size // max(n_classes, 1)

    def get_group_lengths(self, num_groups):
        return [self.class_size(num_groups)] * num_groups

    def post_adapt(self, agent, exp):
        self.add_classes(agent, exp.dataset, experience=int(exp.current_experience))

    def add_classes(self, strategy, data, *, experience: int) -> None:
        """Rank and store the classes of ``data`` (just trained), then shrink the others."""
        groups = class_indices(data)
        again = sorted(c for c in groups if c in self.buffer_groups)
        if again:
            raise ValueError(f"PSMR: classes {again} appear again in experience {experience}; "
                             "PSMR selects a class's exemplars once, when it is first trained")
        self.seen_groups.update(groups)
        size = self.class_size(len(self.seen_groups))
        for c, idx in sorted(groups.items()):
            subset = data.subset(idx)
            with eval_mode(strategy.model):
                ranking = self.selection_strategy.make_sorted_indices(strategy=strategy,
                                                                      data=subset.eval())
            keep = [int(r) for r in ranking][:size]
            self.buffer_groups[c] = ClassMemory(data=subset.subset(keep),
                                                indices=[idx[r] for r in keep],
                                                experience=experience)
        self._shrink(strategy)

    def resize(self, strategy, new_size):
        """Change ``M`` (mode ``"limit"``) or ``m`` (mode ``"grow"``: ``new_size`` per class)."""
        if self.mode == "limit":
            self.memory_size = new_size
        else:
            self.mem_per_class = new_size
        self._shrink(strategy)

    def _shrink(self, strategy) -> None:
        size = self.class_size(len(self.buffer_groups))
        for memory in self.buffer_groups.values():
            memory.resize(strategy, size)
        self.max_size = self.memory_size if self.mode == "limit" else size * len(self.buffer_groups)


class PredictiveSortingReplayPlugin(SupervisedPlugin):
    """PSMR: per-class memory of the most confidently predicted training images, replayed.

    After each experience the new classes' training images are ranked by the
    model just trained (``selection``; default the paper's predicted
    true-class probability, :class:`cfer.plugins.selection.PredictiveSortingSelection`)
    and the top ``m`` are stored (see the module docstring for ``M``, ``m``
    and the modes). On later experiences the memory is mixed with the new
    data. By default it is concatenated with the experience's dataset, so the
    strategy's own loader shuffles one set of new and stored images, as the
    paper trains on the new class's images plus the memory. Setting
    ``batch_size`` or ``batch_size_mem`` uses Avalanche's ``ReplayDataLoader``
    instead (each mini-batch: ``batch_size`` new + ``batch_size_mem`` stored
    samples; defaults: the strategy's ``train_mb_size``).

    ``N`` and ``K`` are counted, at the first experience, over the whole
    stream the experience comes from (``experience.origin_stream``, also when
    training on a slice of it), unless ``total_train_size`` /
    ``total_classes`` are given.

    Args:
        fraction: share of the full training set kept (paper: 0.3).
        mode: ``"grow"`` (paper default) or ``"limit"``.
        mem_per_class: ``m`` directly (``M = m * K`` in mode ``"limit"``).
        selection: ``"predictive"`` (paper), ``"random"``, ``"herding"``,
            ``"closest_to_center"``, or an ``ExemplarsSelectionStrategy``.
        batch_size, batch_size_mem: see above.
        total_train_size, total_classes: ``N`` and ``K`` when the stream
            cannot be read from the experience.
        feature_layer: module name whose output feeds ``"herding"`` /
            ``"closest_to_center"`` (default: the last ``nn.Linear``'s input).
    """

    def __init__(self, *, fraction: float = 0.3, mode: str = "grow",
                 mem_per_class: int | None = None,
                 selection: str | ExemplarsSelectionStrategy = "predictive",
                 batch_size: int | None = None, batch_size_mem: int | None = None,
                 total_train_size: int | None = None, total_classes: int | None = None,
                 feature_layer: str | None = None):
        super().__init__()
        self.config = PSMRConfig(fraction=fraction, mode=mode, mem_per_class=mem_per_class,
                                 selection=selection, batch_size=batch_size,
                                 batch_size_mem=batch_size_mem, total_train_size=total_train_size,
                                 total_classes=total_classes, feature_layer=feature_layer)
        self.storage_policy: PSMRBuffer | None = None

    # -- sizes and buffer ---------------------------------------------------------------------
    def _totals(self, experience) -> tuple[int | None, int | None]:
        cfg = self.config
        needs_n = cfg.mem_per_class is None and cfg.total_train_size is None
        needs_k = (cfg.mem_per_class is None or cfg.mode == "limit") and cfg.total_classes is None
        n, k = cfg.total_train_size, cfg.total_classes
        if needs_n or needs_k:
            counted_n, counted_k = stream_totals(experience)
            n, k = n or counted_n, k or counted_k
        return n, k

    def _build(self, experience) -> PSMRBuffer:
        cfg = self.config
        n, k = self._totals(experience)
        big_m, m = memory_sizes(fraction=cfg.fraction, total_train_size=n, total_classes=k,
                                mem_per_class=cfg.mem_per_class)
        selector = (selection_strategy(cfg.selection, layer_name=cfg.feature_layer)
                    if isinstance(cfg.selection, str) else cfg.selection)
        return PSMRBuffer(selection_strategy=selector, mode=cfg.mode, mem_per_class=m,
                          memory_size=big_m)

    def policy(self, strategy) -> PSMRBuffer:
        """The storage policy, built at the first experience."""
        if self.storage_policy is None:
            self.storage_policy = self._build(strategy.experience)
        return self.storage_policy

    @property
    def _uses_loader(self) -> bool:
        return self.config.batch_size is not None or self.config.batch_size_mem is not None

    # -- Avalanche callbacks ------------------------------------------------------------------
    def after_train_dataset_adaptation(self, strategy, **kwargs):
        memory = self.policy(strategy).buffer  # built here so that a size error shows up at once
        if len(memory) and not self._uses_loader:
            strategy.adapted_dataset = strategy.adapted_dataset.concat(memory.train())

    def before_training_exp(self, strategy, num_workers: int = 0, shuffle: bool = True,
                            drop_last: bool = False, **kwargs):
        memory = self.policy(strategy).buffer
        if not len(memory) or not self._uses_loader:
            return
        strategy.dataloader = ReplayDataLoader(
            strategy.adapted_dataset, memory.train(), oversample_small_tasks=True,
            batch_size=self.config.batch_size or strategy.train_mb_size,
            batch_size_mem=self.config.batch_size_mem or strategy.train_mb_size,
            num_workers=num_workers, shuffle=shuffle, drop_last=drop_last)

    def after_training_exp(self, strategy, **kwargs):
        # post_adapt directly: ReplayPlugin's storage_policy.update is deprecated (warns).
        self.policy(strategy).post_adapt(strategy, strategy.experience)

    # -- inspection and checkpoints -----------------------------------------------------------
    def memory_indices(self) -> dict[int, list[int]]:
        """Class id -> stored samples, as positions in the training dataset of the
        experience that introduced the class, best-ranked first."""
        if self.storage_policy is None:
            return {}
        return {c: list(g.indices) for c, g in sorted(self.storage_policy.buffer_groups.items())}

    def state_dict(self) -> dict:
        """The memory as plain numbers (JSON-friendly): sizes and per-class indices."""
        policy = self.storage_policy
        if policy is None:
            return {}
        return {"mode": policy.mode, "mem_per_class": policy.mem_per_class,
                "memory_size": policy.memory_size,
                "classes": {int(c): {"experience": g.experience, "indices": list(g.indices)}
                            for c, g in sorted(policy.buffer_groups.items())}}

    def load_state_dict(self, state: dict, train_stream) -> None:
        """Rebuild the memory saved by :meth:`state_dict` from the same ``train_stream``."""
        if not state:
            self.storage_policy = None
            return
        if state["mode"] != self.config.mode:
            raise ValueError(f"PSMR state: mode {state['mode']!r} differs from the plugin's "
                             f"{self.config.mode!r}")
        experiences = list(train_stream)
        cfg = self.config
        selector = (selection_strategy(cfg.selection, layer_name=cfg.feature_layer)
                    if isinstance(cfg.selection, str) else cfg.selection)
        policy = PSMRBuffer(selection_strategy=selector, mode=state["mode"],
                            mem_per_class=state["mem_per_class"], memory_size=state["memory_size"])
        for c, entry in sorted(state["classes"].items(), key=lambda kv: int(kv[0])):
            e = int(entry["experience"])
            if not 0 <= e < len(experiences):
                raise ValueError(f"PSMR state: class {c} refers to experience {e}, but the stream "
                                 f"has {len(experiences)}")
            data = experiences[e].dataset
            indices = [int(i) for i in entry["indices"]]
            if any(int(data.targets[i]) != int(c) for i in indices):
                raise ValueError(f"PSMR state: indices of class {c} do not point at class {c} "
                                 f"in experience {e}; is it the same stream?")
            policy.buffer_groups[int(c)] = ClassMemory(data=data.subset(indices), indices=indices,
                                                       experience=e)
            policy.seen_groups.add(int(c))
        policy._shrink(None)
        self.storage_policy = policy
