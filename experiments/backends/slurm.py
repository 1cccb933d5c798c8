"""``runner.backend: slurm``: every run is one task of a SLURM job array, submitted with
submitit (https://github.com/facebookincubator/submitit; the ``cfer[slurm]`` extra).

- Shared models still missing from the run directory (basic models, offline methods' models)
  are one array, submitted first; the runs' array depends on it (``afterany``: a run whose
  shared model failed trains it itself, or fails with the reason, instead of waiting for ever).
- A task writes its run's record (or its error) as an atomic shard,
  ``<run dir>/slurm/shards/<method>/<run>.json``; only this process merges shards into
  results.json, in plan order (through ``record`` / ``fail``), whatever order tasks end in.
- A task runs with ``runner.slurm.cpus_per_task`` torch threads, so its numbers are those of
  the local backend at the same thread count.
- Preemption and time limits: SLURM sends SIGUSR1 (``--signal=USR1@signal_delay_s`` before
  the limit, or ``scancel --signal=USR1``); the task stops at its next epoch boundary
  (:mod:`cfer.plugins.run.preemption`), requeues itself (``scontrol requeue``) and the
  restart continues from the run's last experience checkpoint
  (:mod:`cfer.experiments.run.checkpoint`), with the numbers of an uninterrupted run.
- ``cfer run --detach`` submits and exits; ``cfer status RUN_DIR`` shows each run's state;
  ``cfer run --resume RUN_DIR`` collects the shards of finished tasks, waits for those still
  queued, and resubmits the others (a killed task continues from its checkpoint).
- Job states come from ``squeue`` (and the shards), not from ``sacct``, which clusters without
  an accounting database lack; a task that left the queue without a shard failed.

The run directory (and the data set root and ``CFER_CACHE``) must be on a file system that
every node sees, and every node needs this package in the same environment.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cfer.core.atomic import atomic_write_json
from cfer.experiments.backends import RunsBar, one_line, run_one

log = logging.getLogger(__name__)

#: ``cfer run --detach``: submit, then return without waiting (:class:`Detached`).
detach = contextvars.ContextVar("cfer_slurm_detach", default=False)
JOBS = "jobs.json"  # <run dir>/slurm/jobs.json: every submitted task, by run
#: squeue states after which a task runs no more.
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
         "DEADLINE", "PREEMPTED", "SPECIAL_EXIT", "REVOKED"}
MAX_RESTARTS = 50  # a task preempted this many times stops requeuing itself
POLL_S = 2.0


class Detached(Exception):  # noqa: N818 (not an error: the CLI prints it and exits 0)
    """Raised after a detached submission: the tasks run on without this process."""


@dataclass(frozen=True)
class Task:
    """What a task needs besides its run: pickled by submitit into each task's folder."""

    runner_cls: type
    cfg: object
    run_dir: str


def slurm_dir(run_dir) -> Path:
    return Path(run_dir) / "slurm"


def shard_path(run_dir, spec) -> Path:
    return slurm_dir(run_dir) / "shards" / f"{spec.slug}.json"


def read_shard(run_dir, spec) -> dict | None:
    path = shard_path(run_dir, spec)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


# --------------------------------------------------------------------------- inside a task

def _task_runner(task: Task):
    from cfer.experiments.backends import prepare_process

    prepare_process(task.cfg.runner)
    runner = task.runner_cls(task.cfg, task.run_dir)
    return runner, runner.ctx.device()


def basic_task(task: Task, spec) -> None:
    runner, device = _task_runner(task)
    runner.shared_state(spec, device=device)


def run_task(task: Task, spec) -> None:
    """One run: its record (or error) as a shard; on SIGUSR1 stop at the next epoch boundary
    and requeue (the restart continues from the last experience checkpoint)."""
    import logging
    import signal

    from cfer.plugins.run import preemption

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Replaces submitit's handler, which would requeue at once, wherever the run is.
    preemption.install((signal.SIGUSR1, signal.SIGUSR2))
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    shard = shard_path(task.run_dir, spec)
    try:
        runner, device = _task_runner(task)
        rec = run_one(runner, spec, device=device)
    except preemption.Preempted as stop:
        job = os.environ.get("SLURM_JOB_ID")
        if job and restarts < MAX_RESTARTS:
            log.warning("%s: %s; requeuing task %s (restart %d)", spec.label, stop, job, restarts + 1)
            subprocess.run(["scontrol", "requeue", job], check=False)
            sys.exit(3)  # not an exception submitit records: the requeued task runs this again
        error = f"Preempted: {stop} (after {restarts} restarts)"
        atomic_write_json(shard, {"error": error, "restarts": restarts})
        raise RuntimeError(str(stop)) from None
    except Exception as e:
        atomic_write_json(shard, {"error": one_line(e), "restarts": restarts})
        raise
    atomic_write_json(shard, {"record": rec, "restarts": restarts})


# --------------------------------------------------------------------------- submitting

def executor(folder: Path, cfg, *, name: str):
    """A submitit SlurmExecutor for ``runner.slurm`` (``cfg``), writing into ``folder``."""
    os.environ.setdefault("SUBMITIT_PREEMPT_SIGNAL", "USR1")  # read when submitit is imported
    try:
        import submitit
    except ImportError:
        raise ImportError("runner.backend slurm needs submitit: pip install 'cfer[slurm]'") from None
    ex = submitit.SlurmExecutor(folder=folder)
    params = {"job_name": name, "time": cfg.time, "cpus_per_task": cfg.cpus_per_task,
              "array_parallelism": cfg.array_parallelism, "signal_delay_s": cfg.signal_delay_s,
              "setup": list(cfg.setup),
              "additional_parameters": {"requeue": True, **cfg.additional_parameters}}
    for key in ("partition", "mem", "account", "qos"):
        if getattr(cfg, key) is not None:
            params[key] = getattr(cfg, key)
    if cfg.gpus_per_task:
        params["gpus_per_task"] = cfg.gpus_per_task
    ex.update_parameters(**params)
    return ex


class QueueUnreachable(OSError):
    """squeue did not answer (the controller is down or unreachable)."""


def squeue_states(job_ids) -> dict[str, str]:
    """``{job id: state}`` of ``job_ids`` as squeue lists them (array tasks as ``A_i``); a job
    SLURM no longer lists (past ``MinJobAge``) is absent. :class:`QueueUnreachable` when squeue
    fails otherwise: a silent queue must not read as "every task is gone"."""
    ids = sorted({str(j) for j in job_ids})
    if not ids:
        return {}
    try:
        out = subprocess.run(["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T",
                              "--jobs", ",".join(sorted({i.split("_")[0] for i in ids}))],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise QueueUnreachable(f"squeue: {e}") from None
    if out.returncode != 0:
        if "Invalid job id" in out.stderr:  # none of them is listed any more
            return {}
        raise QueueUnreachable(f"squeue: {(out.stderr or out.stdout).strip()[:200]}; is SLURM reachable?")
    states = {}
    for line in out.stdout.splitlines():
        if "|" in line:
            job, state = line.strip().split("|", 1)
            states[job] = state.split()[0]
    return states


def load_jobs(run_dir) -> dict[str, dict]:
    """``{run slug: {"job": id, "label": ..., "log": ...}}`` of every submitted task."""
    path = slurm_dir(run_dir) / JOBS
    return json.loads(path.read_text()) if path.is_file() else {}


def _submit(runner, specs, *, jobs: dict) -> None:
    cfg = runner.cfg.runner.slurm
    base = slurm_dir(runner.run_dir)
    n = len([p for p in base.glob("submit*") if p.is_dir()])
    folder = base / f"submit{n:02d}"  # fresh: submitit names files by job id, and ids restart
    task = Task(type(runner), runner.cfg, str(runner.run_dir))
    basic = {runner.shared_path(s): s for s in specs if runner.shared_path(s) is not None}
    basic = [s for path, s in basic.items() if not path.is_file()]
    ex = executor(folder, cfg, name="cfer")
    depends = None
    if basic:
        basic_jobs = ex.map_array(basic_task, [task] * len(basic), basic)
        depends = basic_jobs[0].job_id.split("_")[0]
        log.info("submitted %d shared models as SLURM job %s", len(basic), depends)
    if depends:
        ex.update_parameters(dependency=f"afterany:{depends}")
    cells = ex.map_array(run_task, [task] * len(specs), specs)
    for spec, job in zip(specs, cells):
        jobs[spec.slug] = {"job": job.job_id, "label": spec.label, "log": str(job.paths.stderr),
                           "stdout": str(job.paths.stdout)}
    atomic_write_json(base / JOBS, jobs)
    log.info("submitted %d runs as SLURM job %s", len(specs), cells[0].job_id.split("_")[0])


def execute(runner, todo, *, device, record, fail) -> None:
    run_dir = runner.run_dir
    jobs = load_jobs(run_dir)
    states = squeue_states(j["job"] for s in todo if (j := jobs.get(s.slug)))
    queued = {s.slug for s in todo
              if s.slug in jobs and states.get(jobs[s.slug]["job"]) not in ENDED | {None}}
    # A run with a shard is done (or failed: resubmitted on --resume); a queued one is waited for.
    finished = [s for s in todo if read_shard(run_dir, s) is not None]
    resubmit = [s for s in todo if s.slug not in queued and s not in finished]
    again = [s for s in finished if "error" in read_shard(run_dir, s)]
    for s in again:  # a failed run of an earlier session: run it again
        shard_path(run_dir, s).unlink(missing_ok=True)
    submit = resubmit + again
    if submit:
        _submit(runner, [s for s in todo if s in submit], jobs=jobs)
    if detach.get():
        for s in [s for s in finished if s not in again]:
            _collect(s, read_shard(run_dir, s), record, fail)
        raise Detached(f"submitted {len(submit)} runs to SLURM ({len(queued)} still queued from before); "
                       f"`cfer status {run_dir}` shows them, `cfer run --resume {run_dir}` collects them")
    _wait(runner, todo, jobs=jobs, record=record, fail=fail)


def _collect(spec, shard: dict, record, fail) -> bool:
    if "record" in shard:
        record(spec, shard["record"])
        return True
    fail(spec, shard["error"])
    return False


def _wait(runner, todo, *, jobs: dict, record, fail) -> None:
    run_dir = runner.run_dir
    waiting = list(todo)
    with RunsBar(runner.ctx, total=len(todo), desc=f"{len(todo)} runs on SLURM") as bar:
        while waiting:
            try:
                states = squeue_states(jobs[s.slug]["job"] for s in waiting)
            except QueueUnreachable as e:  # a controller restart: ask again at the next poll
                log.warning("%s; retrying in %.0f s", e, POLL_S * 5)
                time.sleep(POLL_S * 5)
                continue
            for spec in list(waiting):
                shard = read_shard(run_dir, spec)
                job = jobs[spec.slug]["job"]
                state = states.get(job)
                if shard is None and (state is None or state in ENDED):
                    shard = read_shard(run_dir, spec)  # written just before the task ended
                    if shard is None:
                        shard = {"error": f"SLURM task {job} ended ({state or 'left the queue'}) without a "
                                          f"result; its log: {jobs[spec.slug]['log']}"}
                if shard is not None:
                    waiting.remove(spec)
                    bar.finished(ok=_collect(spec, shard, record, fail))
            bar.set_running(sum(states.get(jobs[s.slug]["job"]) == "RUNNING" for s in waiting))
            if waiting:
                time.sleep(POLL_S)


# --------------------------------------------------------------------------- cfer status

def status(run_dir) -> list[dict]:
    """Each submitted run of ``run_dir``: label, job id and state (done, failed, or squeue's)."""
    jobs = load_jobs(run_dir)
    recorded = _recorded(run_dir)
    states = squeue_states(j["job"] for j in jobs.values())
    out = []
    for slug, j in jobs.items():
        path = slurm_dir(run_dir) / "shards" / f"{slug}.json"
        shard = json.loads(path.read_text()) if path.is_file() else None
        if shard is not None:
            state = "done" if "record" in shard else "failed"
        elif slug in recorded:
            state = "done"
        else:
            state = (states.get(j["job"]) or "lost").lower()
        out.append({"run": j["label"], "job": j["job"], "state": state,
                    **({"error": shard["error"]} if shard and "error" in shard else {})})
    return out


def _recorded(run_dir) -> set[str]:
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        return set()
    res = json.loads(path.read_text())
    return {f"{m}/order{r.get('order_index', 0)}_fold{r['fold']}_seed{r['seed']}"
            for m, b in res.get("methods", {}).items() for r in b.get("runs", [])}
