"""``runner.backend: ray``: every run, and every shared model, is a Ray task.

Ray core tasks (https://docs.ray.io/en/latest/ray-core/tasks.html) run the same plan on
a laptop (a local Ray, started here), on a multi-GPU node or on a cluster
(``runner.ray.address: auto``, after ``ray start``):

- The decoded image array (with the data set's labels and subjects) is put in Ray's
  object store once; tasks on a node read it from there without a copy (Ray's
  zero-copy numpy deserialisation), so the data set root and the decoded-image cache
  need to be readable only here, on the driver.
- A shared model (a basic model of a fold and seed, an offline method's model) is a task;
  each class order's run task takes its result as an argument, so Ray starts a run when
  its shared model is done. Shared models already saved in the run directory
  (``--resume``) are put in the object store instead of retrained; new ones are saved
  there by the driver as they finish.
- Only the driver writes results.json and metrics.csv (through ``record`` / ``fail``,
  in plan order). Tasks write their Avalanche logs under ``<run dir>/logs/`` where they
  run: on a cluster, give ``--out`` on a shared file system to collect them.
- A task whose worker process dies is rerun up to ``runner.ray.max_retries`` times
  (Ray's task retries); an exception raised by a run is not retried: the run is
  recorded as failed with its error, and the other runs go on.
- Inside a task the run trains on ``cuda:0`` when Ray assigned it a GPU (Ray sets
  ``CUDA_VISIBLE_DEVICES`` to the assigned ones), caps its share of the GPU memory at
  0.9 x ``gpus_per_run`` as ``jobs_per_device`` does, uses ``cpus_per_run`` torch
  threads and no DataLoader worker processes (``training.num_workers`` is set to 0:
  no forks inside a Ray worker).

Every node needs this package installed in the same environment as the driver (the
tasks import ``cfer``); Ray ships no code here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from cfer.experiments.backends import RunsBar, one_line, run_one

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """What every task of one ``cfer run`` needs besides the data: put in the object store once."""

    runner_cls: type
    cfg: object  # the ExperimentConfig, training.num_workers set to 0
    run_dir: str
    gpus: float  # GPUs per task
    cpus: float  # CPUs per task


# --------------------------------------------------------------------------- inside a task

def _task_runner(job: Job, data):
    """The runner and the device of a task."""
    import torch

    from cfer.experiments.backends import prepare_process

    prepare_process(job.cfg.runner)
    device = torch.device("cpu")
    if job.gpus > 0:
        import ray

        if not ray.get_gpu_ids():
            raise RuntimeError("runner.ray.gpus_per_run > 0 but Ray assigned this task no GPU")
        device = torch.device("cuda:0")  # the first of CUDA_VISIBLE_DEVICES, set by Ray
        if job.gpus < 1:
            torch.cuda.set_per_process_memory_fraction(0.9 * job.gpus, device)
    return job.runner_cls(job.cfg, job.run_dir, data=data), device


def _basic_task(job: Job, data, spec) -> dict:
    runner, device = _task_runner(job, data)
    return runner.shared_state(spec, device=device)


def _run_task(job: Job, data, spec, basic: dict | None) -> dict:
    runner, device = _task_runner(job, data)
    if basic is not None:
        runner.ctx.given_models[runner.shared_path(spec)] = basic
    return run_one(runner, spec, device=device)


# --------------------------------------------------------------------------- the driver

def connect(address: str | None) -> bool:
    """Join Ray unless this process already has (``address`` None: start a local Ray, or join
    the one in ``$RAY_ADDRESS``). True when this call connected (and should shut down)."""
    import ray

    if ray.is_initialized():
        return False
    ray.init(address=address)
    return True


def gpus_per_run(configured: float | None, device: str) -> float:
    """``runner.ray.gpus_per_run``, its None resolved: 1 when the cluster has GPUs and
    ``runner.device`` is not cpu, else 0."""
    import ray

    if device == "cpu":
        if configured:
            raise ValueError(f"runner.ray.gpus_per_run={configured} with runner.device=cpu: "
                             "set one of them differently")
        return 0.0
    gpus = configured if configured is not None else (1.0 if ray.cluster_resources().get("GPU") else 0.0)
    if gpus == 0 and device.startswith("cuda"):
        raise ValueError(f"runner.device={device} but the Ray tasks get no GPU "
                         "(the cluster has none, or runner.ray.gpus_per_run is 0)")
    return float(gpus)


def worker_config(cfg):
    """``cfg`` with no DataLoader worker processes (no forks inside a Ray worker)."""
    from cfer.core.typed import overlay

    overrides = {m: {**o, "num_workers": 0} for m, o in cfg.strategies.overrides.items()
                 if "num_workers" in o}
    if cfg.training.num_workers or overrides:
        log.warning("runner.backend ray: training.num_workers set to 0 inside the Ray tasks")
    return overlay(cfg, {"training": {"num_workers": 0},
                         "strategies": {"overrides": {**cfg.strategies.overrides, **overrides}}})


def execute(runner, todo, *, device, record, fail) -> None:
    import ray

    cfg, rc = runner.cfg, runner.cfg.runner.ray
    started = connect(rc.address)
    try:
        gpus = gpus_per_run(rc.gpus_per_run, cfg.runner.device)
        job = ray.put(Job(type(runner), worker_config(cfg), str(runner.run_dir), gpus, rc.cpus_per_run))
        data = ray.put(runner.ctx.data())  # once; tasks on a node map it without copying
        options = {"num_cpus": rc.cpus_per_run, "num_gpus": gpus, "max_retries": rc.max_retries,
                   "resources": dict(rc.resources)}
        basic_task = ray.remote(_basic_task).options(**options)
        run_task = ray.remote(_run_task).options(**options)

        basic: dict[Path, object] = {}  # shared-model path -> its object ref
        training: dict = {}  # shared-model task ref -> (path, spec)
        for spec in todo:
            path = runner.shared_path(spec)  # its basic model, or an offline (joint) model
            if path is None or path in basic:
                continue
            if path.is_file():  # trained by an earlier session of this run (--resume)
                basic[path] = ray.put(runner.shared_state(spec, device="cpu"))  # loads, checks the digest
            else:
                basic[path] = basic_task.remote(job, data, spec)
                training[basic[path]] = (path, spec)
        runs = {run_task.remote(job, data, spec, basic.get(runner.shared_path(spec))): spec for spec in todo}
        pending = [*training, *runs]
        waiting_for = {ref: basic.get(runner.shared_path(spec)) for ref, spec in runs.items()}
        with RunsBar(runner.ctx, total=len(runs), desc=f"{len(runs)} runs on Ray") as bar:
            try:
                while pending:
                    # running: submitted runs whose shared model is ready (holding a slot or
                    # waiting for one)
                    bar.set_running(sum(1 for r in pending if r in runs
                                        and waiting_for[r] not in training))
                    (ref,), pending = ray.wait(pending, num_returns=1)
                    if ref in training:
                        path, spec = training.pop(ref)
                        try:
                            state = ray.get(ref)
                        except Exception as e:  # its runs fail with it, and are recorded so
                            log.error("shared model of %s failed: %s", spec.label, one_line(e))
                            continue
                        if not path.is_file():  # a task on another node saved it there, not here
                            runner.ctx.basic_models.save(path, state)
                        continue
                    spec = runs[ref]
                    try:
                        rec = ray.get(ref)
                    except Exception as e:
                        log.error("%s failed: %s", spec.label, e)
                        fail(spec, one_line(e))
                        bar.finished(ok=False)
                        continue
                    record(spec, rec)
                    bar.finished(ok=True)
            except BaseException:  # interrupted: stop what is still running
                for ref in pending:
                    ray.cancel(ref, force=True)
                raise
    finally:
        if started:
            ray.shutdown()

