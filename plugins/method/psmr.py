"""Predictive Sorting Memory Replay (PSMR, Maiden & Nakisa 2023) as an Avalanche replay plugin.

Memory sizes follow the paper (the rule itself: :mod:`cfer.plugins.method.memory`):
``M = floor(fraction * N)`` with ``N`` the number of training images of all
classes in the stream, and
``m = floor(M / K)`` per class with ``K`` the number of classes in the
stream. Mode ``"grow"`` (paper default) keeps ``m`` per class, so the memory
grows by ``m`` with every new class; mode ``"limit"`` keeps the memory within
``M``: as in the reference code, the first classes stored (the basic ones) get
``floor(M / K)`` each, a later class is stored at ``floor(M / n)`` for the ``n``
classes seen so far, and stored classes are only ever cut to that size.

Each class's exemplars are chosen once, by the model right after it has
been trained on the experience that introduced the class, ranking all of
the class's training images by the model's score of their true class and
keeping the top ``m``. The paper's text says "predicted probability"; its
reference code ranks by the raw true-class logit, which is the default here
(``score="logit"``; ``"probability"``: softmax over the active units;
:class:`cfer.plugins.method.selection.PredictiveSortingSelection`). Afterwards a
class's memory is only shrunk (mode ``"limit"``), keeping the top of its
stored ranking. Avalanche's ``ParametricBuffer`` would instead re-rank every
old class with the current model after each experience; :class:`PSMRBuffer`
overrides that.

New-class images per step (``new_class_samples``): the reference trains a
continual step on the memory plus only ``m`` randomly drawn images of the
new class (src/complex_FER.py ``cont()``:
``cont_train_ds.concatenate(new_train_ds.shuffle(len(...)).take(m)).shuffle(...)``),
and because ``tf.data`` reshuffles on every iteration, a fresh ``m`` every
epoch. ``"m"`` (default) does that, ``"all"`` trains on every image of the
new classes, an int ``n`` on ``min(n, available)`` per new class. The
experience whose memory is still empty (the basic one) always trains on all
its images, as the reference's basic phase does.

Over 400 lines: the plugin, its config, its buffer (each class ranked once, then only
cut) and its new-class sampler are one mechanism, the paper's memory, read together.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch
from avalanche.benchmarks.utils.data_loader import ReplayDataLoader
from avalanche.training.plugins import SupervisedPlugin
from avalanche.training.storage_policy import (
    ExemplarsBuffer,
    ExemplarsSelectionStrategy,
    ParametricBuffer,
)

from cfer.core.typed import SettingError
from cfer.plugins.method import memory as memory_rule
from cfer.plugins.method.memory import MemoryRule, MemorySizes, memory_sizes  # noqa: F401 (memory_sizes: public here too)
from cfer.plugins.method.params import PSMRParams
from cfer.plugins.method.selection import eval_mode, selection_strategy

_DRAW_STREAM = 0x50534D52  # "PSMR": keeps the draw's random stream apart from others seeded by `seed`
#: The plugin's keyword for each setting of the memory rule (MemoryRule's field).
_RULE_NAMES = {"fraction": "memory_fraction", "mode": "memory_mode", "mem_per_class": "mem_per_class"}


@dataclass(frozen=True)
class PSMRConfig(PSMRParams):
    """Every setting of :class:`PredictiveSortingReplayPlugin`: its params (the config keys
    ``plugins.psmr.*``, :class:`cfer.plugins.method.params.PSMRParams`), the memory rule
    shared with the replay baselines, and what the builder or a Python caller gives."""

    memory: MemoryRule = field(default_factory=MemoryRule)  # M and m (training.memory_*)
    sizes: MemorySizes | None = None  # (M, m) already computed for the stream (the builder's)
    batch_size: int | None = None  # with batch_size_mem: Avalanche's ReplayDataLoader
    batch_size_mem: int | None = None  # None (and batch_size None): memory concatenated (paper)
    total_train_size: int | None = None  # N; None: counted from the experience's origin_stream
    total_classes: int | None = None  # K; None: counted from the experience's origin_stream
    feature_layer: str | None = None  # feature layer of "herding" / "closest_to_center"
    seed: int = 0  # seeds the new-class draws (with the experience and epoch index)

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("batch_size", "batch_size_mem", "total_train_size", "total_classes"):
            value = getattr(self, key)
            self.check(key, value is None or isinstance(value, int) and value >= 1,
                       "a positive integer or None")
        self.check("seed", isinstance(self.seed, int) and not isinstance(self.seed, bool) and self.seed >= 0,
                   "a non-negative integer")
        if self.uses_loader and self.new_class_samples != "all" and self.new_class_draw == "epoch":
            raise SettingError(self.key("new_class_draw"),
                               "'epoch' needs the memory concatenated with the new data (batch_size and "
                               "batch_size_mem None); with Avalanche's ReplayDataLoader use "
                               "new_class_draw='experience'")

    @property
    def mode(self) -> str:
        return self.memory.memory_mode

    @property
    def mem_per_class(self) -> int | None:
        return self.sizes.per_class if self.sizes is not None else self.memory.mem_per_class

    @property
    def uses_loader(self) -> bool:
        """Whether the memory is replayed through Avalanche's ``ReplayDataLoader``."""
        return self.batch_size is not None or self.batch_size_mem is not None


def stream_totals(experience) -> tuple[int, int]:
    """``(N, K)``: training images and classes of the stream ``experience`` comes from."""
    stream = getattr(experience, "origin_stream", None)
    if stream is None:
        raise ValueError("PSMR: the experience has no origin_stream to count the training set; "
                         "pass total_train_size= and total_classes= to PredictiveSortingReplayPlugin")
    return memory_rule.stream_totals(stream)


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
        mode: ``"grow"`` (``m`` per class) or ``"limit"`` (the first classes
            stored get ``floor(M / K) = m``, later ones ``floor(M / n)`` for
            ``n`` seen classes; stored classes are only cut to it).
        mem_per_class: ``m``.
        memory_size: ``M`` (needed in mode ``"limit"``).

    ``current_size`` is the per-class size of the last store (the reference's
    ``m`` during the next step; ``None`` while empty).
    """

    def __init__(self, *, selection_strategy: ExemplarsSelectionStrategy, mode: str,
                 mem_per_class: int, memory_size: int | None = None):
        super().__init__(max_size=0, groupby="class", selection_strategy=selection_strategy)
        if mode == "limit" and memory_size is None:
            raise ValueError("PSMRBuffer: mode 'limit' needs memory_size (M)")
        self.mode = mode
        self.mem_per_class = mem_per_class
        self.memory_size = memory_size
        self.current_size: int | None = None

    def class_size(self, n_classes: int) -> int:
        """Plain per-class share when ``n_classes`` classes are stored (``m`` or ``floor(M / n)``)."""
        return memory_rule.class_size(mode=self.mode, per_class=self.mem_per_class, total=self.memory_size,
                                      n_seen=n_classes)

    def sizes(self) -> dict[int, int]:
        """Class id -> stored exemplars."""
        return {int(c): len(g.indices) for c, g in sorted(self.buffer_groups.items())}

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
        first = not self.buffer_groups
        self.seen_groups.update(groups)
        size = memory_rule.stored_class_size(mode=self.mode, per_class=self.mem_per_class,
                                             total=self.memory_size, n_seen=len(self.seen_groups),
                                             first=first)
        for c, idx in sorted(groups.items()):
            subset = data.subset(idx)
            with eval_mode(strategy.model):
                ranking = self.selection_strategy.make_sorted_indices(strategy=strategy,
                                                                      data=subset.eval())
            keep = [int(r) for r in ranking][:size]
            self.buffer_groups[c] = ClassMemory(data=subset.subset(keep),
                                                indices=[idx[r] for r in keep],
                                                experience=experience)
        self.current_size = size
        self._shrink(strategy)

    def resize(self, strategy, new_size):
        """Change ``M`` (mode ``"limit"``) or ``m`` (mode ``"grow"``: ``new_size`` per class)."""
        if self.mode == "limit":
            self.memory_size = new_size
            self.current_size = self.class_size(len(self.buffer_groups))
        else:
            self.mem_per_class = new_size
            self.current_size = new_size
        self._shrink(strategy)

    def _shrink(self, strategy) -> None:
        size = self.current_size if self.current_size is not None else \
            self.class_size(len(self.buffer_groups))
        for memory in self.buffer_groups.values():
            memory.resize(strategy, min(size, len(memory.indices)))  # cut only, never grown
        self.max_size = self.memory_size if self.mode == "limit" else size * len(self.buffer_groups)


class NewClassDrawBatchSampler(torch.utils.data.Sampler):
    """Batches of ``fixed`` (the memory's positions) plus a fresh draw of the new classes'
    positions each time it is iterated (each epoch), shuffled together.

    ``draw()`` returns class id -> drawn positions (deterministic for the epoch);
    ``n_drawn`` is their total. The shuffle draws from the global torch random
    stream, as the template's ``RandomSampler`` does; the draw has its own generator.
    """

    def __init__(self, *, draw, fixed: list[int], n_drawn: int, batch_size: int, shuffle: bool,
                 drop_last: bool):
        super().__init__()
        self.draw, self.fixed, self.n_drawn = draw, list(fixed), n_drawn
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last

    def __len__(self) -> int:
        n = len(self.fixed) + self.n_drawn
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        drawn = sorted(i for positions in self.draw().values() for i in positions)
        order = torch.as_tensor(self.fixed + drawn, dtype=torch.int64)
        if self.shuffle:
            order = order[torch.randperm(len(order))]
        order = order.tolist()
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            if self.drop_last and len(batch) < self.batch_size:
                return
            yield batch


def _int_keys(mapping):
    return {int(k): v for k, v in mapping.items()} if mapping is not None else None


class PredictiveSortingReplayPlugin(SupervisedPlugin):
    """PSMR: per-class memory of the most confidently predicted training images, replayed.

    After each experience all training images of its classes are ranked by
    the model just trained (``selection``; default the reference's true-class
    logit, :class:`cfer.plugins.method.selection.PredictiveSortingSelection`) and the
    top ``m`` are stored (see the module docstring for ``M``, ``m`` and the
    modes). On later experiences the memory is mixed with the new data: by
    default concatenated with it, so that one loader shuffles one set of new
    and stored images, as the reference trains on the memory plus the new
    class. Setting ``batch_size`` or ``batch_size_mem`` uses Avalanche's
    ``ReplayDataLoader`` instead (each mini-batch: ``batch_size`` new +
    ``batch_size_mem`` stored samples; defaults: the strategy's ``train_mb_size``).

    Which new-class images train (see the module docstring): on every
    experience that starts with a non-empty memory, ``new_class_samples``
    (``"m"``: the current per-class memory size ``m``, the reference; ``"all"``;
    or an int ``n``) images per new class, ``min(n, available)``, drawn at
    random. ``new_class_draw="epoch"`` (the reference) draws anew every epoch:
    ``strategy.adapted_dataset`` then holds all new images plus the memory,
    and the plugin sets ``strategy.dataloader`` to a torch ``DataLoader`` whose
    :class:`NewClassDrawBatchSampler` yields the memory plus that epoch's draw
    (``strategy.train_mb_size`` per batch; ``shuffle``, ``drop_last``,
    ``num_workers``, ``pin_memory``, ``persistent_workers`` as passed to
    ``train()``). The fast data path replays that sampler's batches, so it
    works on both loaders (add :class:`cfer.plugins.speed.fast_data.FastDataPlugin`
    after this plugin, as ``enable`` does). ``"experience"`` draws once per
    experience and puts just the drawn images in ``strategy.adapted_dataset``,
    so any loader (``ReplayDataLoader`` included) works unchanged. Draws come
    from a generator seeded by ``(seed, experience, epoch)`` (epoch 0 for
    ``"experience"``), never the global random stream, so they repeat exactly.

    ``history`` (JSON-friendly, one entry per training experience) records
    the memory before training, the draws and the memory after ranking:
    ``{"experience", "memory_size", "memory_per_class", "new_classes",
    "new_class_samples", "draw", "train_size", "draws": [{"epoch", "counts",
    "indices"}], "memory_after"}`` (class ids are int keys; indices are
    positions in the experience's training dataset).

    ``N`` and ``K`` are counted, at the first experience, over the whole
    stream the experience comes from (``experience.origin_stream``, also when
    training on a slice of it), unless ``total_train_size`` /
    ``total_classes`` are given.

    Keyword arguments (defaults and checks: :class:`PSMRConfig`, kept as :attr:`config`):

    - ``fraction``, ``mode``, ``mem_per_class``: the memory rule
      (:class:`cfer.plugins.method.memory.MemoryRule`: ``memory_fraction``, paper 0.3;
      ``memory_mode``, ``"grow"`` (paper default) or ``"limit"``; ``mem_per_class``, ``m``
      directly, ``M = m * K`` in mode ``"limit"``), or ``sizes``: ``(M, m)`` already computed
      for the stream (:class:`cfer.plugins.method.memory.MemorySizes`, as the builder gives it);
    - ``selection``: ``"predictive"`` (paper), ``"random"``, ``"herding"``,
      ``"closest_to_center"``, or an ``ExemplarsSelectionStrategy``; ``score``: ``"logit"``
      (reference code) or ``"probability"`` (paper text) for ``selection="predictive"``;
    - ``new_class_samples``: ``"m"`` (reference), ``"all"`` or a positive int;
      ``new_class_draw``: ``"epoch"`` (reference) or ``"experience"``;
    - ``batch_size``, ``batch_size_mem``: see above;
    - ``total_train_size``, ``total_classes``: ``N`` and ``K`` when the stream cannot be read
      from the experience;
    - ``feature_layer``: module name whose output feeds ``"herding"`` /
      ``"closest_to_center"`` (default: the last ``nn.Linear``'s input);
    - ``seed``: seeds the new-class draws (the run seed).
    """

    def __init__(self, **settings):
        super().__init__()
        # The memory rule's settings under the plugin's own names (fraction, mode, mem_per_class).
        rule = {key: settings.pop(name) for name, key in _RULE_NAMES.items() if name in settings}
        if rule and "memory" in settings:
            raise TypeError("PredictiveSortingReplayPlugin: give memory= or fraction/mode/mem_per_class, "
                            "not both")
        self.config = PSMRConfig(memory=settings.pop("memory", None) or MemoryRule(**rule), **settings)
        self.storage_policy: PSMRBuffer | None = None
        self.history: list[dict] = []
        self._pools: dict[int, list[int]] | None = None  # this experience's new classes -> positions
        self._per_class: int | None = None  # images drawn per new class this experience
        self._epoch: int | None = None

    @classmethod
    def from_params(cls, params: PSMRParams, ctx) -> PredictiveSortingReplayPlugin:
        """The plugin of a composed method: ``params`` (``plugins.psmr``), the memory sizes the
        build context computed for the whole stream (``ctx.memory()``), and the run seed."""
        return cls(memory=ctx.config.memory_rule, sizes=ctx.memory(), seed=int(ctx.seed),
                   **{f.name: getattr(params, f.name) for f in dataclasses.fields(PSMRParams)})

    # -- sizes and buffer ---------------------------------------------------------------------
    def _totals(self, experience) -> tuple[int | None, int | None]:
        cfg = self.config
        needs_n = cfg.memory.mem_per_class is None and cfg.total_train_size is None
        needs_k = (cfg.memory.mem_per_class is None or cfg.mode == "limit") and cfg.total_classes is None
        n, k = cfg.total_train_size, cfg.total_classes
        if needs_n or needs_k:
            counted_n, counted_k = stream_totals(experience)
            n, k = n or counted_n, k or counted_k
        return n, k

    def _selector(self) -> ExemplarsSelectionStrategy:
        cfg = self.config
        if not isinstance(cfg.selection, str):
            return cfg.selection
        return selection_strategy(cfg.selection, layer_name=cfg.feature_layer, score=cfg.score)

    def _sizes(self, experience) -> MemorySizes:
        """``(M, m)``: given, or the memory rule over the stream's ``N`` and ``K``."""
        cfg = self.config
        if cfg.sizes is not None:
            return cfg.sizes
        n, k = self._totals(experience)
        return cfg.memory.sizes(total_train_size=n, total_classes=k)

    def _build(self, experience) -> PSMRBuffer:
        sizes = self._sizes(experience)
        return PSMRBuffer(selection_strategy=self._selector(), mode=sizes.mode, mem_per_class=sizes.per_class,
                          memory_size=sizes.total)

    def policy(self, strategy) -> PSMRBuffer:
        """The storage policy, built at the first experience."""
        if self.storage_policy is None:
            self.storage_policy = self._build(strategy.experience)
        return self.storage_policy

    @property
    def _uses_loader(self) -> bool:
        return self.config.uses_loader

    # -- the new classes' draw ----------------------------------------------------------------
    def _draw_count(self, policy: PSMRBuffer) -> int | None:
        """Images per new class this experience (``None``: all of them)."""
        n = self.config.new_class_samples
        if n == "all":
            return None
        if n == "m":
            return policy.current_size
        return n

    def draw(self, epoch: int | None = None) -> dict[int, list[int]]:
        """This experience's new-class draw for ``epoch`` (class id -> positions, ascending),
        recorded in :attr:`history`. ``epoch`` None: the per-experience draw (epoch 0's)."""
        if self._pools is None:
            raise RuntimeError("PSMR: no new-class draw in this experience")
        entry = self.history[-1]
        seq = np.random.SeedSequence([self.config.seed, _DRAW_STREAM, entry["experience"],
                                      epoch or 0])
        rng = np.random.default_rng(seq)
        drawn = {}
        for c, pool in sorted(self._pools.items()):
            pick = np.sort(rng.choice(len(pool), size=min(self._per_class, len(pool)), replace=False))
            drawn[c] = [pool[int(i)] for i in pick]
        if not any(d["epoch"] == epoch for d in entry["draws"]):
            entry["draws"].append({"epoch": epoch, "counts": {c: len(v) for c, v in drawn.items()},
                                   "indices": {c: list(v) for c, v in drawn.items()}})
        return drawn

    def _epoch_draw(self) -> dict[int, list[int]]:
        return self.draw(self._epoch if self._epoch is not None else 0)

    # -- Avalanche callbacks ------------------------------------------------------------------
    def after_train_dataset_adaptation(self, strategy, **kwargs):
        policy = self.policy(strategy)  # built here so that a size error shows up at once
        memory = policy.buffer
        new = strategy.adapted_dataset
        pools = class_indices(new)
        per_class = self._draw_count(policy) if len(memory) else None
        cfg = self.config
        draw = None if per_class is None else cfg.new_class_draw
        counts = {c: len(v) if per_class is None else min(per_class, len(v)) for c, v in pools.items()}
        self.history.append({
            "experience": int(strategy.experience.current_experience),
            "memory_size": len(memory), "memory_per_class": policy.sizes(),
            "new_classes": {c: len(v) for c, v in sorted(pools.items())},
            "new_class_samples": "all" if per_class is None else per_class,
            "draw": draw, "train_size": len(memory) + sum(counts.values()), "draws": [],
            "memory_after": None})
        self._pools, self._per_class, self._epoch = (pools, per_class, None) if draw else (None, None, None)
        if draw == "experience":
            new = new.subset(sorted(i for v in self.draw(None).values() for i in v))
        if len(memory) and not self._uses_loader:
            new = new.concat(memory.train())
        strategy.adapted_dataset = new

    def before_training_exp(self, strategy, num_workers: int = 0, shuffle: bool = True,
                            pin_memory: bool | None = None, persistent_workers: bool = False,
                            drop_last: bool = False, **kwargs):
        memory = self.policy(strategy).buffer
        if not len(memory):
            return
        if self._uses_loader:
            strategy.dataloader = ReplayDataLoader(
                strategy.adapted_dataset, memory.train(), oversample_small_tasks=True,
                batch_size=self.config.batch_size or strategy.train_mb_size,
                batch_size_mem=self.config.batch_size_mem or strategy.train_mb_size,
                num_workers=num_workers, shuffle=shuffle, drop_last=drop_last)
        elif self.history[-1]["draw"] == "epoch":
            data = strategy.adapted_dataset
            n_new = len(data) - len(memory)  # the new classes first, then the memory
            sampler = NewClassDrawBatchSampler(
                draw=self._epoch_draw, fixed=list(range(n_new, len(data))),
                n_drawn=self.history[-1]["train_size"] - len(memory),
                batch_size=strategy.train_mb_size, shuffle=shuffle, drop_last=drop_last)
            extra = {"persistent_workers": persistent_workers} if num_workers > 0 else {}
            strategy.dataloader = torch.utils.data.DataLoader(
                data, batch_sampler=sampler, num_workers=num_workers,
                pin_memory=torch.device(strategy.device).type == "cuda" if pin_memory is None else pin_memory,
                collate_fn=getattr(data, "collate_fn", None), **extra)

    def before_training_epoch(self, strategy, **kwargs):
        self._epoch = 0 if self._epoch is None else self._epoch + 1

    def after_training_exp(self, strategy, **kwargs):
        # post_adapt directly: ReplayPlugin's storage_policy.update is deprecated (warns).
        policy = self.policy(strategy)
        policy.post_adapt(strategy, strategy.experience)
        if self.history:
            self.history[-1]["memory_after"] = policy.sizes()
        self._pools = self._per_class = self._epoch = None

    # -- inspection and checkpoints -----------------------------------------------------------
    def memory_indices(self) -> dict[int, list[int]]:
        """Class id -> stored samples, as positions in the training dataset of the
        experience that introduced the class, best-ranked first."""
        if self.storage_policy is None:
            return {}
        return {c: list(g.indices) for c, g in sorted(self.storage_policy.buffer_groups.items())}

    def state_dict(self) -> dict:
        """The memory as plain numbers (JSON-friendly): sizes, per-class indices and the history."""
        policy = self.storage_policy
        if policy is None:
            return {}
        return {"mode": policy.mode, "mem_per_class": policy.mem_per_class,
                "memory_size": policy.memory_size, "class_size": policy.current_size,
                "classes": {int(c): {"experience": g.experience, "indices": list(g.indices)}
                            for c, g in sorted(policy.buffer_groups.items())},
                "history": copy.deepcopy(self.history)}

    def load_state_dict(self, state: dict, train_stream) -> None:
        """Rebuild the memory saved by :meth:`state_dict` from the same ``train_stream``."""
        if not state:
            self.storage_policy = None
            self.history = []
            return
        if state["mode"] != self.config.mode:
            raise ValueError(f"PSMR state: mode {state['mode']!r} differs from the plugin's "
                             f"{self.config.mode!r}")
        experiences = list(train_stream)
        policy = PSMRBuffer(selection_strategy=self._selector(), mode=state["mode"],
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
        if policy.buffer_groups:
            policy.current_size = state.get("class_size") or policy.class_size(len(policy.buffer_groups))
        policy._shrink(None)
        self.storage_policy = policy
        self.history = [self._restore_entry(e) for e in state.get("history", [])]

    def trajectory_state(self) -> list[dict]:
        """What an experience-level checkpoint must save as is (experiments/run/checkpoint.py):
        the history's per-epoch draws are made while training, which priming from saved
        weights does not repeat; the memory itself is rebuilt by priming."""
        return copy.deepcopy(self.history)

    def load_trajectory_state(self, state: list[dict]) -> None:
        self.history = copy.deepcopy(state)

    @staticmethod
    def _restore_entry(entry: dict) -> dict:
        """A history entry with its class-id keys back to ints (JSON makes them strings)."""
        out = copy.deepcopy(entry)
        for key in ("memory_per_class", "new_classes", "memory_after"):
            out[key] = _int_keys(out.get(key))
        out["draws"] = [{**d, "counts": _int_keys(d["counts"]), "indices": _int_keys(d["indices"])}
                        for d in out.get("draws", [])]
        return out
