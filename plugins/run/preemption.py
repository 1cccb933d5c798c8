"""StopAtEpochBoundary: end a run at the next epoch boundary once a stop was requested by signal."""

from __future__ import annotations

import signal

from avalanche.core import SupervisedPlugin

_requested: list[int] = []  # the signals received (empty: go on)


class Preempted(BaseException):
    """A run stopped on request (SLURM's time-limit warning, preemption): not an ``Exception``,
    so that no backend records it as a failed run; its last experience checkpoint
    (experiments/run/checkpoint.py) is where a restart continues."""


def request_stop(signum: int = 0, frame=None) -> None:
    """What the signal handler does: note the request (the run stops at its next boundary)."""
    _requested.append(int(signum))


def stop_requested() -> bool:
    return bool(_requested)


def clear() -> None:
    _requested.clear()


def install(signals=(signal.SIGUSR1,)) -> None:
    """Make ``signals`` request a stop instead of their default action (main thread only)."""
    for s in signals:
        signal.signal(s, request_stop)


def check(where: str) -> None:
    """Raise :class:`Preempted` if a stop was requested."""
    if _requested:
        raise Preempted(f"stopped on signal {_requested[0]} at {where}")


class StopAtEpochBoundary(SupervisedPlugin):
    """Raises :class:`Preempted` at the start of a training epoch once a stop was requested.

    Why: under SLURM a signal (``--signal=USR1@N`` before the time limit, or a preemption)
    arrives at any point of an epoch; the run's state is saved per experience, so stopping
    at an epoch boundary loses only the unfinished experience's epochs, and never stops in
    the middle of an optimizer step or a checkpoint write. Not a paper method: no equation.
    """

    def before_training_epoch(self, strategy, **kwargs):
        check(f"epoch {int(strategy.clock.train_exp_epochs)} of experience "
              f"{strategy.experience.current_experience}")
