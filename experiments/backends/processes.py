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

    jobs = runner.cfg.runner.jobs
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                             initializer=_worker_init,
                             initargs=(type(runner), runner.cfg, runner.run_dir, str(device), jobs,
                                       os.getpid(), _given_data(runner))) as pool:
        # Each shared model is trained once, by a worker, before the runs that start from it;
        # the runs that need none fill the other workers meanwhile.
        basics: dict = {}  # future -> its basic-model path
        waiting: dict = {}  # basic-model path -> the runs that wait for it
        for spec in todo:
            path = runner.shared_path(spec)  # its basic model, or an offline (joint) model
            if path is not None:
                if path not in waiting and not path.is_file():
                    waiting[path] = []
                    basics[pool.submit(_worker_basic, spec)] = path
                if path in waiting:
                    waiting[path].append(spec)
        held = {id(s) for specs in waiting.values() for s in specs}
        pending = {pool.submit(_worker_run, spec): spec for spec in todo if id(spec) not in held}
        with RunsBar(runner.ctx, total=len(todo), desc=f"{len(todo)} runs, {jobs} at a time") as bar:
            while pending or basics:
                # (a future counts as running once queued to a worker: at most `jobs` really are)
                bar.set_running(min(jobs, sum(f.running() for f in [*pending, *basics])))
                finished, _ = wait([*pending, *basics], timeout=5, return_when=FIRST_COMPLETED)
                for fut in finished:
                    if fut in basics:
                        path, error = basics.pop(fut), fut.exception()
                        for spec in waiting.pop(path):
                            if error is None:
                                pending[pool.submit(_worker_run, spec)] = spec
                            else:  # its runs fail with it, and are recorded so
                                log.error("shared model of %s failed", spec.label, exc_info=error)
                                fail(spec, one_line(error))
                                bar.finished(ok=False)
                        continue
                    spec = pending.pop(fut)
                    error = fut.exception()
                    if error is None:
                        record(spec, fut.result())
                    else:
                        log.error("%s failed", spec.label, exc_info=error)
                        fail(spec, one_line(error))
                    bar.finished(ok=error is None)


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
