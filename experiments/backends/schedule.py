"""What a free worker of the ``processes`` backend does next, and how long the rest will take.

A pool that takes every run at once runs them first come, first served, so the plan's order
decides the end: on the quickstart's 2 cores the last of iCaRL's runs (the longest) trained
alone for 15 s while the other core idled. :class:`Schedule` hands out one task per free
worker instead:

- shared models first (a basic model, an offline method's model), in plan order: runs wait
  for them;
- then the runs whose shared model is ready, longest first, so that short runs fill the end.
  A run is expected to take as long as its method's runs took so far (measured here, wall
  time from hand-out to result); a method not measured yet goes first, as it may be long.

The order runs are handed out in changes no number (each run is seeded and trained alone;
only this process writes results, in plan order). :meth:`Schedule.seconds_left` estimates the
time left from the measured times, for the progress bar. On the quickstart (end at 246 s of
the bar) it foresaw the end 7 to 13% late from the first minute on, exactly from the third,
but 43% late for the 25 s before joint's first scoring (3 s) was measured: a method not
measured yet counts as long as the longest task measured so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, eq=False)  # each task is itself: hashed by identity, not by its spec
class Task:
    """A shared model to train (``shared``) or a run, both for ``spec``."""

    spec: object
    shared: Path | None = None

    @property
    def kind(self) -> str:
        return "shared" if self.shared is not None else self.spec.method


@dataclass
class Schedule:
    """The tasks of ``todo`` (RunSpecs) for ``jobs`` workers; ``shared_path(spec)``: the shared
    model a run waits for (None: none, or already saved)."""

    todo: list
    shared_path: Callable[[object], Path | None]
    jobs: int
    clock: Callable[[], float] = time.monotonic
    waiting: dict = field(default_factory=dict)  # shared path -> the runs that wait for it
    shared: list = field(default_factory=list)  # shared-model Tasks not handed out yet
    ready: list = field(default_factory=list)  # runs whose shared model is ready
    started: dict = field(default_factory=dict)  # Task -> when it was handed out
    took: dict = field(default_factory=dict)  # task kind (a method, or "shared") -> seconds list

    def __post_init__(self) -> None:
        for spec in self.todo:
            path = self.shared_path(spec)
            if path is None or path.is_file():
                self.ready.append(spec)
                continue
            if path not in self.waiting:
                self.waiting[path] = []
                self.shared.append(Task(spec, shared=path))
            self.waiting[path].append(spec)

    def next(self) -> Task | None:
        """The task a free worker takes now (None: nothing is ready)."""
        if self.shared:
            task = self.shared.pop(0)
        elif self.ready:
            spec = max(self.ready, key=self.rank)  # max() keeps the first of equals: plan order
            self.ready.remove(spec)
            task = Task(spec)
        else:
            return None
        self.started[task] = self.clock()
        return task

    def rank(self, spec) -> tuple:
        """The higher, the sooner a ready run is handed out: not measured yet, then longest."""
        return spec.method not in self.took, self._expected(spec.method)

    def done(self, task: Task, *, ok: bool = True) -> list:
        """Note that ``task`` ended; the runs that waited for it when it was a shared model
        (ready now when ``ok``; returned either way, so that the caller fails them otherwise)."""
        seconds = self.clock() - self.started.pop(task)
        if ok:
            self.took.setdefault(task.kind, []).append(seconds)
        if task.shared is None:
            return []
        runs = self.waiting.pop(task.shared)
        if ok:
            self.ready.extend(runs)
            self.ready.sort(key=self.todo.index)
        return runs

    def seconds_left(self) -> float | None:
        """The expected wall time until every task has ended, from the measured times (None
        until a task has been measured)."""
        if not self.took:
            return None
        now = self.clock()
        work = sum(max(0.0, self._expected(t.kind) - (now - t0)) for t, t0 in self.started.items())
        work += sum(self._expected("shared") for _ in self.shared)
        work += sum(self._expected(s.method) for s in self.ready)
        work += sum(self._expected(s.method) for runs in self.waiting.values() for s in runs)
        return work / max(1, self.jobs)

    def _expected(self, kind: str) -> float:
        """The mean time a task of ``kind`` took; a kind not measured yet, as long as the longest
        task measured so far (the mean would count on the short runs that end first; 0: none)."""
        if self.took.get(kind):
            return sum(self.took[kind]) / len(self.took[kind])
        return max((s for ts in self.took.values() for s in ts), default=0.0)
