"""runner.backend: slurm on a real SLURM: a tiny grid equals the local backend, a failing run is
recorded while the others finish, SIGUSR1 mid-experience requeues the task and it finishes with
the same numbers, and a task killed outright is resumed from its checkpoint by ``--resume``.

They need a reachable cluster (``scontrol ping``) and submitit; ``tools/slurm_cluster.sh start``
runs a one-node cluster on this machine (as root; .ci/run does), else they skip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from cfer.experiments.cli import main as cfer
from cfer.experiments.config.load import load_config
from tests.test_runner import TINY

NUMBERS = ("accuracy_matrix", "step_accuracy", "uar", "macro_f1", "new_class_f1", "memory")
# A run long enough to be signalled mid-experience: 40 epochs per continual experience.
LONG = ["strategies.methods=[naive]", "protocol.orders=1", "runner.share_basic=false", "training.epochs=40"]


def _cluster_answers() -> str | None:
    """None when a SLURM cluster answers, else why not."""
    if shutil.which("scontrol") is None:
        return "no scontrol on PATH"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"scontrol ping: {e}"
    if ping.returncode != 0 or "UP" not in ping.stdout:
        return f"scontrol ping: {(ping.stdout + ping.stderr).strip()[:200]}"
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip("submitit", reason="the slurm extra (submitit) is not installed")
    why = _cluster_answers()
    if why is not None:
        pytest.skip(f"no SLURM cluster reachable ({why}); `tools/slurm_cluster.sh start` runs one here")
    return tmp_path_factory.mktemp("slurm")


def _sets(tmp: Path, *extra: str) -> list[str]:
    args = [*TINY, f"dataset.root={tmp / 'synth'}", "output.plots=false", *extra]
    return sum((["--set", a] for a in args), [])


def _local(tmp: Path, name: str, *extra: str) -> dict:
    """The local backend's results at one torch thread (a SLURM task's, cpus_per_task 1)."""
    import torch

    from cfer.experiments.run.continual import ContinualRunner

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = load_config(None, [*TINY, f"dataset.root={tmp / 'synth'}", "output.plots=false", *extra])
        return ContinualRunner(cfg, tmp / name).run()
    finally:
        torch.set_num_threads(threads)


def _same_numbers(got: dict, want: dict, methods) -> None:
    for m in methods:
        mine, theirs = got["methods"][m]["runs"], want["methods"][m]["runs"]
        assert len(mine) == len(theirs), m
        for a, b in zip(mine, theirs):
            for key in NUMBERS:
                assert a.get(key) == b.get(key), (m, key)


def _wait_for(check, *, what: str, timeout: float = 300.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _job(out: Path) -> str:
    (entry,) = json.loads((out / "slurm" / "jobs.json").read_text()).values()
    return entry["job"]


def test_a_grid_through_slurm_equals_local_and_a_failing_run_is_recorded(cluster, capsys):
    """naive and kd_psmr (2 orders each, their shared basic models a first job array) give
    the local numbers; lwf, with a learning rate that overflows, fails in its tasks only."""
    methods = ["naive", "kd_psmr"]
    extra = ["strategies.methods=[naive, kd_psmr, lwf]", "strategies.overrides={lwf: {lr: 1.0e30}}"]
    local = _local(cluster, "grid_local", "strategies.methods=[naive, kd_psmr]")
    out = cluster / "grid"
    assert cfer(["run", "--out", str(out), "--backend", "slurm", *_sets(cluster, *extra)]) == 1
    res = json.loads((out / "results.json").read_text())
    _same_numbers(res, local, methods)
    assert [f["run"] for f in res["failed_runs"]] == [f"lwf order {k} fold 0 seed 0" for k in (0, 1)]
    assert all("non-finite" in f["error"] for f in res["failed_runs"])
    assert not (out / "checkpoints" / "naive").exists()  # finished runs keep no checkpoint
    capsys.readouterr()
    assert cfer(["status", str(out)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "4 done, 2 failed"


def test_a_detached_run_is_collected_and_resume_runs_nothing_when_all_finished(cluster, capsys):
    out = cluster / "detached"
    assert cfer(["run", "--out", str(out), "--backend", "slurm", "--detach",
                 *_sets(cluster, "strategies.methods=[naive]", "protocol.orders=1")]) == 0
    assert "submitted 1 runs to SLURM" in capsys.readouterr().out
    _wait_for(lambda: (out / "slurm" / "shards" / "naive").is_dir()
              and any((out / "slurm" / "shards" / "naive").iterdir()), what="the task's shard")
    assert cfer(["status", str(out)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "1 done"
    assert cfer(["run", "--resume", str(out)]) == 0
    assert [p.name for p in (out / "slurm").glob("submit*")] == ["submit00"]  # nothing resubmitted
    res = json.loads((out / "results.json").read_text())
    assert len(res["methods"]["naive"]["runs"]) == 1


def test_sigusr1_mid_experience_requeues_and_gives_the_same_numbers(cluster):
    local = _local(cluster, "long_local", *LONG)
    out = cluster / "preempted"
    assert cfer(["run", "--out", str(out), "--backend", "slurm", "--detach", *_sets(cluster, *LONG)]) == 0
    state = out / "checkpoints" / "naive" / "order0_fold0_seed0" / "state.pt"
    _wait_for(state.is_file, what="the checkpoint of experience 0")
    job = _job(out)
    subprocess.run(["scancel", "--signal=USR1", job], check=True)
    assert cfer(["run", "--resume", str(out)]) == 0  # waits for the requeued task
    shard = json.loads((out / "slurm" / "shards" / "naive" / "order0_fold0_seed0.json").read_text())
    assert shard["restarts"] == 1, "the task was not requeued"
    _same_numbers(json.loads((out / "results.json").read_text()), local, ["naive"])


def test_a_killed_task_is_resumed_from_its_checkpoint(cluster):
    local = _local(cluster, "long_local2", *LONG)
    out = cluster / "killed"
    assert cfer(["run", "--out", str(out), "--backend", "slurm", "--detach", *_sets(cluster, *LONG)]) == 0
    state = out / "checkpoints" / "naive" / "order0_fold0_seed0" / "state.pt"
    _wait_for(state.is_file, what="the checkpoint of experience 0")
    first = _job(out)
    # SIGKILL to the task's python, as the OOM killer would (scancel sends SIGTERM first, which a
    # submitit task ignores for KillWait seconds: enough for this tiny run to finish).
    import psutil

    def is_task(p) -> bool:
        line = " ".join(p.info["cmdline"] or [])
        return "submitit.core._submit" in line and str(out) in line

    tasks = [p for p in psutil.process_iter(["cmdline"]) if is_task(p)]
    assert tasks, "the task's python process is not running"
    for p in tasks:
        p.kill()
    _wait_for(lambda: subprocess.run(["squeue", "--noheader", "--jobs", first.split("_")[0]],
                                     capture_output=True, text=True).stdout.strip() == "",
              what="the killed task to leave the queue")
    assert cfer(["run", "--resume", str(out)]) == 0
    second = _job(out)
    assert second != first
    log = Path(json.loads((out / "slurm" / "jobs.json").read_text())["naive/order0_fold0_seed0"]["log"])
    assert "resuming after experience" in log.read_text()
    _same_numbers(json.loads((out / "results.json").read_text()), local, ["naive"])


# --- without a cluster ------------------------------------------------------------------------

def test_squeue_failures_are_not_read_as_finished_tasks(monkeypatch):
    """A job SLURM no longer lists is gone; a controller that does not answer is an error, never
    "every task left the queue" (which would mark every run failed)."""
    from cfer.experiments.backends import slurm

    answers = {}

    def run(cmd, **kw):
        return subprocess.CompletedProcess(cmd, answers["rc"], answers["out"], answers["err"])

    monkeypatch.setattr(slurm.subprocess, "run", run)
    answers.update(rc=0, out="12_0|RUNNING\n12_1|PENDING\n", err="")
    assert slurm.squeue_states(["12_0", "12_1"]) == {"12_0": "RUNNING", "12_1": "PENDING"}
    answers.update(rc=1, out="", err="slurm_load_jobs error: Invalid job id specified")
    assert slurm.squeue_states(["12_0"]) == {}
    answers.update(rc=1, out="", err="slurm_load_jobs error: Unable to contact slurm controller")
    with pytest.raises(slurm.QueueUnreachable, match="Unable to contact"):
        slurm.squeue_states(["12_0"])


def test_slurm_settings_map_to_threads_and_are_checked():
    from cfer.core.typed import ConfigError
    from cfer.experiments.backends import threads_per_run

    cfg = load_config(None, ["runner.backend=slurm", "runner.slurm.cpus_per_task=3"])
    assert threads_per_run(cfg.runner) == 3
    with pytest.raises(ConfigError, match="runner.slurm.time"):
        load_config(None, ["runner.slurm.time=0"])
