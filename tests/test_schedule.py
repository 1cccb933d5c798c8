"""The processes backend's schedule (experiments/backends/schedule.py): shared models first, then
the longest runs, so that short runs fill the end; and the time left from measured times."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cfer.experiments.backends.schedule import Schedule

# The quickstart's measured wall times at one thread (seconds; idle 2-core VM, 2026-12-05):
# the two basic models and joint's model, then each method's runs after them.
SHARED = {"naive": "basic", "replay": "basic", "lwf": "basic", "kd_psmr": "basic", "icarl": "icarl",
          "joint": "joint"}
SHARED_SECONDS = {"basic": 25.0, "icarl": 26.0, "joint": 40.0}
RUN_SECONDS = {"naive": 9.0, "replay": 15.0, "lwf": 11.0, "icarl": 55.0, "kd_psmr": 41.0, "joint": 3.0}
METHODS = ("naive", "replay", "lwf", "icarl", "kd_psmr", "joint")  # plan order


@dataclass(frozen=True)
class Spec:
    method: str
    order_index: int


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def simulate(*, choose_longest: bool, methods=METHODS, jobs: int = 2) -> tuple[float, list]:
    """Run the plan on ``jobs`` simulated workers; (the makespan, the tasks in hand-out order).
    ``choose_longest`` False: first come, first served in plan order (a pool given every task)."""
    clock = Clock()
    todo = [Spec(m, k) for m in methods for k in range(3)]
    plan = Schedule(todo, shared_path=lambda s: Path(f"/nonexistent/{SHARED[s.method]}.pt"), jobs=jobs,
                    clock=clock)
    if not choose_longest:  # plan order: the first ready run, whatever it costs
        plan.rank = lambda spec: 0
    running, order = [], []  # (end time, task)
    while True:
        while len(running) < jobs and (task := plan.next()) is not None:
            seconds = SHARED_SECONDS[task.shared.stem] if task.shared else RUN_SECONDS[task.spec.method]
            running.append((clock.now + seconds, task))
            order.append(task)
        if not running:
            return clock.now, order
        running.sort(key=lambda r: r[0])
        clock.now, task = running.pop(0)
        plan.done(task)


def test_shared_models_first_then_unmeasured_then_the_longest_runs():
    _, order = simulate(choose_longest=True)
    assert [t.shared.stem for t in order[:3]] == ["basic", "icarl", "joint"]
    kinds = [t.spec.method for t in order[3:]]
    # once measured, the long methods go before the short ones: the end is short runs
    assert set(kinds[-4:]) <= {"naive", "lwf", "joint", "replay"}
    assert kinds.index("icarl") < kinds.index("naive") + 6


def test_the_longest_first_ends_within_seconds_of_a_perfect_split_whatever_the_method_order():
    total = sum(SHARED_SECONDS.values()) + 3 * sum(RUN_SECONDS.values())
    icarl_last = ("joint", "naive", "replay", "lwf", "kd_psmr", "icarl")
    for methods in (METHODS, icarl_last, METHODS[::-1]):
        longest, _ = simulate(choose_longest=True, methods=methods)
        assert longest <= total / 2 + 2, methods
    # handed out in plan order, a config listing iCaRL last ends with its last run alone
    fifo, _ = simulate(choose_longest=False, methods=icarl_last)
    assert fifo >= total / 2 + 8


def test_the_time_left_comes_from_measured_times():
    clock = Clock()
    todo = [Spec("naive", k) for k in range(3)]
    plan = Schedule(todo, shared_path=lambda s: None, jobs=1, clock=clock)
    first = plan.next()
    assert plan.seconds_left() is None  # nothing measured yet
    clock.now = 10.0
    plan.done(first)
    assert plan.seconds_left() == 20.0  # two runs of 10 s left, one worker
    plan.next()
    clock.now = 14.0
    assert plan.seconds_left() == 16.0  # 6 s of the running one, 10 s of the last
