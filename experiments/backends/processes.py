"""``runner.backend: processes``: ``runner.jobs_per_device`` runs at once on one device, each
in its own spawned process.

Processes, not threads: random state, autocast and CUDA graphs are per process.
Each shared model (a basic model, an offline method's model) is trained once, by one worker,
before the runs that start from it (so that no two workers train the same one, and at the
workers' thread count); workers return
records and only this process writes results. Workers die
with this process (:func:`cfer.core.lifetime.die_with_parent`), even when it is killed.
"""

from __future__ import annotations

import logging
import os

from cfer.experiments.backends import RunsBar, one_line, run_one

log = logging.getLogger(__name__)


def execute(runner, todo, *, device, record, fail) -> None:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from cfer.experiments.backends.schedule import Schedule

    jobs = runner.cfg.runner.jobs
    plan = Schedule(list(todo), shared_path=runner.shared_path, jobs=jobs)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                             initializer=_worker_init,
                             initargs=(type(runner), runner.cfg, runner.run_dir, str(device), jobs,
                                       os.getpid(), _given_data(runner))) as pool:
        # One task per free worker, chosen when the worker frees (schedule.py): shared models
        # first, then the runs whose shared model is ready, the longest expected first.
        running: dict = {}  # future -> Task

        def fill() -> None:
            while len(running) < jobs and (task := plan.next()) is not None:
                work = _worker_basic if task.shared is not None else _worker_run
                running[pool.submit(work, task.spec)] = task

        with RunsBar(runner.ctx, total=len(todo), desc=f"{len(todo)} runs, {jobs} at a time") as bar:
            fill()
            while running:
                bar.set_running(sum(1 for t in running.values() if t.shared is None))
                bar.set_left(plan.seconds_left())
                finished, _ = wait(running, timeout=5, return_when=FIRST_COMPLETED)
                for fut in finished:
                    task, error = running.pop(fut), fut.exception()
                    waited = plan.done(task, ok=error is None)
                    if task.shared is not None:
                        for spec in waited if error is not None else []:  # they fail with it
                            log.error("shared model of %s failed", spec.label, exc_info=error)
                            fail(spec, one_line(error))
                            bar.finished(ok=False)
                        continue
                    if error is None:
                        record(task.spec, fut.result())
                    else:
                        log.error("%s failed", task.spec.label, exc_info=error)
                        fail(task.spec, one_line(error))
                    bar.finished(ok=error is None)
                fill()


def _given_data(runner):
    """The decoded data set the caller handed to ``runner`` (``ContinualRunner(..., data=)``),
    which the workers could not read from the config; None when they read it themselves."""
    run_data = getattr(getattr(runner, "ctx", None), "run_data", None)
    return run_data.decoded() if getattr(run_data, "given", False) else None


# Spawned workers: top-level, so that spawn can import them.
_WORKER: dict = {}


def _worker_init(runner_cls, cfg, run_dir, device: str, jobs: int, parent: int, data=None) -> None:
    import torch

    from cfer.core.lifetime import die_with_parent
    from cfer.experiments.backends import prepare_process

    die_with_parent(parent)  # a killed `cfer run` takes its workers with it, mid-run too
    prepare_process(cfg.runner)
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_per_process_memory_fraction(0.9 / jobs, dev)
    runner = runner_cls(cfg, run_dir) if data is None else runner_cls(cfg, run_dir, data=data)
    _WORKER.update(runner=runner, device=dev)


def _worker_basic(spec) -> None:
    _WORKER["runner"].shared_state(spec, device=_WORKER["device"])  # saved under basic/ or offline/


def _worker_run(spec) -> dict:
    return run_one(_WORKER["runner"], spec, device=_WORKER["device"])
