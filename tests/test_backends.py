"""runner.backend: local, processes and ray give the same results.json numbers; a Ray worker
killed mid-run is retried to the same numbers; a run that fails is recorded and the others go on.

One local Ray for the module (2 CPUs and a custom resource the runs ask for: no fake GPUs),
shut down at the end with every process it started gone.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from cfer.core.typed import ConfigError
from cfer.experiments import cli
from cfer.experiments.cli import main as cfer
from cfer.experiments.config.load import load_config
from cfer.experiments.run.continual import ContinualRunner
from tests.test_runner import TINY

SLOT = "cfer_test_slot"  # the custom resource every run of these tests holds one of


@pytest.fixture(scope="module")
def ray_cluster():
    import psutil
    import ray

    auth = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # a throwaway local cluster: no token
    ray.init(num_cpus=2, resources={SLOT: 2}, include_dashboard=False, log_to_driver=False)
    node = ray._private.worker._global_node
    started = [p.process.pid for procs in node.all_processes.values() for p in procs if p.process]
    yield ray
    pids = set(started)
    for pid in started:
        try:
            pids |= {c.pid for c in psutil.Process(pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            pass
    ray.shutdown()
    if auth is None:
        os.environ.pop("RAY_AUTH_MODE")
    else:
        os.environ["RAY_AUTH_MODE"] = auth
    deadline = time.monotonic() + 30
    while (alive := [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive, f"Ray processes left behind: {alive}"


def _args(tmp: Path, *extra: str) -> list[str]:
    """The tiny plan: naive, 2 class orders, i.e. 2 runs started from 1 shared basic model."""
    return [*TINY, f"dataset.root={tmp / 'synth'}", "strategies.methods=[naive]",
            f"runner.ray.resources={{{SLOT}: 1}}", "runner.ray.max_retries=1", *extra]


def _numbers(results: dict) -> dict:
    """Every run's record without its timing (and without where its files went)."""
    skip = {"train_seconds", "images_per_second", "models", "threads"}  # how, not what
    return {m: [{k: v for k, v in r.items() if k not in skip} for r in b["runs"]]
            for m, b in results["methods"].items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny plan run by the local backend."""
    tmp = tmp_path_factory.mktemp("backends")
    out = ContinualRunner(load_config(None, _args(tmp)), tmp / "local").run()
    return tmp, out


def test_processes_and_ray_give_the_numbers_of_local(reference, ray_cluster):
    tmp, local = reference
    assert [r["order_index"] for r in local["methods"]["naive"]["runs"]] == [0, 1]
    for backend, extra in (("processes", ["runner.jobs_per_device=2"]), ("ray", [])):
        cfg = load_config(None, _args(tmp, f"runner.backend={backend}", *extra))
        out = ContinualRunner(cfg, tmp / backend).run()
        assert _numbers(out) == _numbers(local), backend
        # one torch thread per run whatever the arrangement (runner.threads_per_run)
        assert {r["threads"] for res in (out, local) for b in res["methods"].values()
                for r in b["runs"]} == {1}, backend
        assert "failed_runs" not in out
        # The shared basic model was trained once and saved under basic/ (what --resume reuses).
        assert [p.name for p in (tmp / backend / "basic").glob("*.pt")] == [
            p.name for p in (tmp / "local" / "basic").glob("fold0_seed0_*.pt")]


def test_ray_trains_joint_once_for_its_orders_to_the_numbers_of_local(reference, ray_cluster):
    """An offline method's shared model (runner.share_offline) is one Ray task that both orders'
    runs take as an argument; the driver saves it under offline/."""
    tmp, _ = reference
    joint = ["strategies.methods=[joint]"]
    local = ContinualRunner(load_config(None, _args(tmp, *joint)), tmp / "joint_local").run()
    cfg = load_config(None, _args(tmp, "runner.backend=ray", *joint))
    out = ContinualRunner(cfg, tmp / "joint_ray").run()
    assert _numbers(out) == _numbers(local)
    assert [p.name for p in (tmp / "joint_ray" / "offline").glob("*.pt")] == \
        [p.name for p in (tmp / "joint_local" / "offline").glob("*.pt")]
    seconds = [r["train_seconds"] for r in out["methods"]["joint"]["runs"]]
    assert seconds[0] == seconds[1] > 0  # one training, counted in both runs


def test_jobs_auto_runs_one_run_per_core_on_the_cpu_at_a_fixed_thread_count(monkeypatch):
    from cfer.experiments.backends import threads_per_run

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    for sets, jobs, backend, threads in (
            ([], 4, "processes", 1), (["runner.threads_per_run=2"], 2, "processes", 2),
            (["runner.threads_per_run=4"], 1, "local", 4), (["runner.device=cuda"], 1, "local", 1),
            (["runner.jobs_per_device=3"], 3, "processes", 1)):
        runner = load_config(None, ["runner.device=cpu", *sets]).runner
        got = (runner.jobs, runner.effective_backend, threads_per_run(runner))
        assert got == (jobs, backend, threads), sets


class DiesOnce(ContinualRunner):
    """Its naive order-1 run kills its own worker process after experience 0, on the first
    attempt only (a marker file in the run directory remembers the attempt)."""

    def run_one(self, spec, *, device, progress=None):
        marker = self.run_dir / f"died_{spec.method}_{spec.order_index}"
        runner_progress = progress

        class KillAfterFirstExperience:
            def update(self, n):
                if not marker.exists():
                    marker.write_text(str(os.getpid()))
                    os._exit(1)  # the worker dies mid-run, as on a lost node or an OOM kill
                if runner_progress:
                    runner_progress.update(n)

        chosen = KillAfterFirstExperience() if (spec.method, spec.order_index) == ("naive", 1) else progress
        return super().run_one(spec, device=device, progress=chosen)


def test_a_killed_ray_worker_is_retried_to_the_same_numbers(reference, ray_cluster):
    tmp, local = reference
    cfg = load_config(None, _args(tmp, "runner.backend=ray"))
    out = DiesOnce(cfg, tmp / "killed").run()
    assert {p.name for p in (tmp / "killed").glob("died_*")} == {"died_naive_1"}
    assert "failed_runs" not in out
    assert _numbers(out) == _numbers(local)


class FailsOnOrderOne(ContinualRunner):
    """Its order-1 naive run raises; every attempt is counted in a file. Records say whether the
    task read the images from Ray's object store (read-only, not copied)."""

    def run_one(self, spec, *, device, progress=None):
        if spec.method == "naive" and spec.order_index == 1:
            with open(self.run_dir / "attempts", "a") as f:
                f.write("attempt\n")
            raise RuntimeError("boom in order 1")
        return super().run_one(spec, device=device, progress=progress)

    def extend_record(self, rec):
        rec["images_shared"] = not self.ctx.data().images.flags.writeable
        return rec


def run_failing(cfg, run_dir, *, resume=False):
    return FailsOnOrderOne(cfg, run_dir).run(resume=resume)


def test_a_failed_run_is_recorded_the_others_go_on_and_resume_reruns_it(reference, ray_cluster,
                                                                         monkeypatch, capsys):
    tmp, local = reference
    out = tmp / "failing"
    monkeypatch.setitem(cli.PHASE_RUNNERS, "continual", "tests.test_backends:run_failing")
    sets = sum((["--set", a] for a in _args(tmp, "runner.backend=ray", "runner.progress=true")), [])
    assert cfer(["run", "--out", str(out), *sets]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("cfer run: error: 1 of 2 runs failed: naive order 1 fold 0 seed 0 "
                              "(RuntimeError: boom in order 1)")
    assert any("done=1" in line and "failed=1" in line for line in err)  # the bar over runs
    res = json.loads((out / "results.json").read_text())
    assert [(f["run"], f["error"]) for f in res["failed_runs"]] == \
        [("naive order 1 fold 0 seed 0", "RuntimeError: boom in order 1")]
    assert (out / "attempts").read_text() == "attempt\n"  # an exception is not retried
    assert [r["order_index"] for r in res["methods"]["naive"]["runs"]] == [0]
    assert _numbers(res)["naive"] == [{**_numbers(local)["naive"][0], "images_shared": True}]

    monkeypatch.setitem(cli.PHASE_RUNNERS, "continual", "cfer.experiments.run.continual:run")
    assert cfer(["run", "--resume", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert "failed_runs" not in res
    assert [r["order_index"] for r in res["methods"]["naive"]["runs"]] == [0, 1]
    assert _numbers(res)["naive"][1] == _numbers(local)["naive"][1]


def test_ray_settings_are_checked(ray_cluster):
    from cfer.experiments.backends.ray_tasks import gpus_per_run

    assert gpus_per_run(None, "auto") == 0.0  # a cluster without GPUs: CPU runs
    assert gpus_per_run(0.25, "auto") == 0.25
    with pytest.raises(ValueError, match="runner.device=cuda but the Ray tasks get no GPU"):
        gpus_per_run(None, "cuda")
    with pytest.raises(ValueError, match="gpus_per_run=0.5 with runner.device=cpu"):
        gpus_per_run(0.5, "cpu")
    with pytest.raises(ConfigError, match="runner.jobs_per_device' is for backend processes"):
        load_config(None, ["runner.backend=ray", "runner.jobs_per_device=2"])
    with pytest.raises(ConfigError, match="runner.ray.gpus_per_run' above 1 must be a whole number"):
        load_config(None, ["runner.ray.gpus_per_run=1.5"])
    with pytest.raises(ConfigError, match="runner.backend"):
        load_config(None, ["runner.backend=kubernetes"])  # slurm is a backend since issue 26
