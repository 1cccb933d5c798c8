"""Where the runs of a ``cfer run`` execute: ``runner.backend``.

- ``local`` (:mod:`.local`): one after another in this process (at ``runner.threads_per_run``
  torch threads), a progress bar per run
  over its experiences; a run that raises stops the loop (the traceback shows where),
  the runs finished before it are saved and ``--resume`` continues.
- ``processes`` (:mod:`.processes`): ``runner.jobs_per_device`` spawned processes on one
  device (more than one job with ``local`` means this, as before backends existed; the
  default ``auto`` is one per core on the CPU at one thread each).
- ``ray`` (:mod:`.ray_tasks`): every run, and every shared basic model, is a Ray task,
  on a laptop, a multi-GPU node or a cluster (``runner.ray``).
- ``slurm`` (:mod:`.slurm`): every run is a task of a SLURM job array (``runner.slurm``).

Every backend gets the runner, the runs still to do and two callbacks of
:meth:`cfer.experiments.run.continual.ContinualRunner.run`: ``record(spec, rec)`` as each
run finishes and ``fail(spec, error)`` for a run that failed (``processes`` and ``ray``:
the other runs go on). Only this process calls them, so only it writes results.json,
in plan order, whatever the backend. Backends import nothing heavy until they run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import import_module

#: ``runner.backend`` -> ``module:function`` with ``execute(runner, todo, *, device, record, fail)``.
BACKENDS: dict[str, str] = {
    "local": "cfer.experiments.backends.local:execute",
    "processes": "cfer.experiments.backends.processes:execute",
    "ray": "cfer.experiments.backends.ray_tasks:execute",
    "slurm": "cfer.experiments.backends.slurm:execute",
}


def execute(name: str, runner, todo: Sequence, *, device, record: Callable, fail: Callable) -> None:
    """Run ``todo`` (RunSpecs) of ``runner`` on backend ``name``."""
    if name not in BACKENDS:
        raise ValueError(f"runner.backend: unknown backend {name!r} (known: {', '.join(BACKENDS)})")
    if not todo:
        return
    module, func = BACKENDS[name].split(":")
    getattr(import_module(module), func)(runner, list(todo), device=device, record=record, fail=fail)


def threads_per_run(runner_cfg) -> int:
    """The torch threads a run trains with under ``runner_cfg`` (a RunnerConfig): ``local`` and
    ``processes`` ``runner.threads_per_run`` (1 by default; a fixed count, not one derived from
    the machine's cores), ``ray`` ``runner.ray.cpus_per_run``, ``slurm``
    ``runner.slurm.cpus_per_task``. It changes the order of
    floating-point sums, so the numbers: ``--resume`` refuses a runner change that changes it,
    and each run records its own (results.json: ``runs[].threads``)."""
    if runner_cfg.effective_backend == "ray":
        return max(1, int(runner_cfg.ray.cpus_per_run))
    if runner_cfg.effective_backend == "slurm":
        return runner_cfg.slurm.cpus_per_task
    return int(runner_cfg.threads_per_run)


def prepare_process(runner_cfg) -> int:
    """Set up this process to train runs under ``runner_cfg`` (every backend calls it where its
    runs train): :func:`threads_per_run` torch threads and, with ``runner.keep_freed_memory``,
    glibc keeping freed memory for the next step (:mod:`cfer.core.allocator`). Returns the
    thread count it replaced (the local backend restores it)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads_per_run(runner_cfg))
    if runner_cfg.keep_freed_memory:
        from cfer.core.allocator import keep_freed_memory

        keep_freed_memory()
    return before


def run_one(runner, spec, *, device, progress=None) -> dict:
    """``runner.run_one(spec)``, with the final validation accuracy added to the record when
    ``evaluation.final_validation`` is on, and the torch thread count the run trained with
    (every backend's runs go through here, in the process that trains them, so the record is
    the same whatever the backend)."""
    import torch

    rec = runner.run_one(spec, device=device, progress=progress)
    plugin = runner.ctx.final_validation
    if plugin is not None:
        rec["final_valid_accuracy"] = plugin.accuracy
    if isinstance(rec, dict):
        rec["threads"] = torch.get_num_threads()
    return rec


def one_line(error: BaseException) -> str:
    """``Type: first line of the message`` of ``error`` (of the task's own exception for a Ray
    task error, which wraps it with the remote traceback)."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        error = cause
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


class RunsBar:
    """One progress bar over runs, its postfix the runs running, done and failed, and the time
    left when the backend estimates it (:meth:`set_left`)."""

    def __init__(self, ctx, *, total: int, desc: str):
        self._opened = ctx.progress(total=total, desc=desc, unit="run")  # a context manager
        self._bar = None
        self.running = self.done = self.failed = 0
        self.left: float | None = None

    def __enter__(self) -> RunsBar:
        self._bar = self._opened.__enter__()
        self._show()
        return self

    def __exit__(self, *exc) -> None:
        self._opened.__exit__(*exc)

    def set_running(self, n: int) -> None:
        if n != self.running:
            self.running = n
            self._show()

    def set_left(self, seconds: float | None) -> None:
        """Show ``seconds`` as the time left (the backend's estimate from measured run times,
        :mod:`~cfer.experiments.backends.schedule`) instead of tqdm's runs-per-second one, which
        overshoots while the long runs go first; None: no estimate yet."""
        if seconds is None:
            return
        if self.left is None:
            self._bar.bar_format = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"
        self.left = seconds
        self._show()

    def finished(self, *, ok: bool) -> None:
        if ok:
            self.done += 1
        else:
            self.failed += 1
        self._bar.update(1)
        self._show()

    def _show(self) -> None:
        from tqdm import tqdm

        left = {} if self.left is None else {"left": tqdm.format_interval(self.left)}
        self._bar.set_postfix(running=self.running, done=self.done, failed=self.failed, **left, refresh=True)
