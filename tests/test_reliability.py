"""Data safety (issue 24): a run touches only what it made, every number is what it says,
every resource error is one line, workers die with their parent. One test per fault class;
docs/reliability.md tables them."""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cfer.core.typed import ConfigError
from cfer.experiments.cli import main as cfer
from cfer.experiments.config.load import load_config

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "dataset.subjects=9", "dataset.size=64", "benchmark.image_size=16", "benchmark.n_folds=3",
    "benchmark.compounds=[happily surprised, sadly angry]", "benchmark.augment.rotation=0",
    "training.basic_epochs=1", "training.epochs=1", "training.patience=0",
    "training.batch_size=16", "training.mem_per_class=2", "protocol.orders=2",
    "strategies.methods=[naive]", "runner.progress=false", "output.plots=false",
]


def sets(*pairs: str) -> list[str]:
    return sum((["--set", p] for p in pairs), [])


def one_line(err: str) -> str:
    err = err.strip()
    assert err and err.count("\n") == 0, err
    return err


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) and its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    return tmp_path_factory.mktemp("synth") / "faces"


@pytest.fixture(scope="module")
def finished(tmp_path_factory, synth_root):
    """A finished tiny run (naive, 2 class orders, one shared basic model) and its settings."""
    out = tmp_path_factory.mktemp("run") / "out"
    args = TINY + [f"dataset.root={synth_root}"]
    assert cfer(["run", "--out", str(out), *sets(*args)]) == 0
    return out, args


def copy_run(finished, dest: Path) -> Path:
    shutil.copytree(finished[0], dest)
    return dest


# --- it deletes or overwrites what the user owns ----------------------------------------------

def test_start_up_clean_up_spares_the_users_temporary_files(finished, tmp_path, capsys):
    """Only our own temporary files are cleared, only in folders the run made, and never by a
    refused command."""
    run = copy_run(finished, tmp_path / "run")
    notes = [run / ".notes.tmp", run / "analysis" / ".draft.tmp", run / "logs" / ".mine.tmp"]
    for p in notes:
        p.parent.mkdir(exist_ok=True)
        p.write_text("mine")
    before = tree(run)
    assert cfer(["run", "--out", str(run), *sets(*finished[1])]) == 2  # a run is already here
    assert "already here" in one_line(capsys.readouterr().err)
    assert tree(run) == before
    assert cfer(["run", "--resume", str(run)]) == 0
    assert all(p.read_text() == "mine" for p in notes)


def test_a_run_and_a_sweep_never_take_each_others_directory(finished, tmp_path, capsys):
    """`cfer run` refuses a sweep's directory (and a folder of the user's own); `cfer sweep`
    refuses a run's; a refused `--resume --set` writes nothing."""
    sweep = tmp_path / "sweep"
    args = sets(*finished[1], "protocol.orders=1")
    assert cfer(["sweep", "--grid", "training.basic_lr=0.01", "--out", str(sweep), *args]) == 0
    capsys.readouterr()
    before = tree(sweep)
    assert cfer(["run", "--out", str(sweep), *args]) == 2
    assert "sweep" in one_line(capsys.readouterr().err)
    assert cfer(["sweep", "--resume", str(sweep), "--set", "training.epochs=3"]) == 2
    err = one_line(capsys.readouterr().err)
    assert "training.epochs" in err
    assert tree(sweep) == before

    run = copy_run(finished, tmp_path / "run")
    before = tree(run)
    assert cfer(["sweep", "--grid", "training.basic_lr=0.01", "--out", str(run), *args]) == 2
    assert "cfer run" in one_line(capsys.readouterr().err)
    assert tree(run) == before

    mine = tmp_path / "mine"  # a folder of the user's, with a config.yaml of their own
    mine.mkdir()
    (mine / "config.yaml").write_text("# my notes\nname: mine\n")
    assert cfer(["run", "--out", str(mine), *args]) == 2
    assert str(mine) in one_line(capsys.readouterr().err)
    assert tree(mine) == {"config.yaml": b"# my notes\nname: mine\n"}

    from cfer.experiments.run.ownership import kind_of

    old = tmp_path / "old"  # a run killed by an older cfer, whose config.yaml had no comment
    (old / "logs").mkdir(parents=True)
    text = (run / "config.yaml").read_text()
    (old / "config.yaml").write_text(text[text.index("\n") + 1:])
    assert kind_of(old) == "run" and kind_of(mine) == "other" and kind_of(sweep) == "sweep"


def test_synthetic_data_never_overwrites_a_folder_it_did_not_fill(tmp_path):
    from cfer.benchmarks.synthetic_faces.writer import synthetic, write_synthetic

    root = tmp_path / "faces"
    write_synthetic(root, subjects=3, size=64, workers=1)
    (root / "notes.txt").write_text("mine")
    before = tree(root)
    with pytest.raises(ValueError, match="faces") as e:
        synthetic(root=root, subjects=4, size=64)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="notes.txt"):
        write_synthetic(root, subjects=4, size=64, workers=1)
    assert tree(root) == before


def test_a_refused_command_changes_nothing_on_disk(synth_root, finished, tmp_path, capsys):
    """A run refused after it read its data (one compound class cannot make two distinct
    orders) leaves no run directory behind."""
    cfee = tmp_path / "cfee"
    for p in synth_root.rglob("*.jpg"):
        if int(p.name[:2]) <= 8:  # 01 neutral, 02-07 the basic expressions, 08 happily surprised
            dest = cfee / p.relative_to(synth_root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, dest)
    out = tmp_path / "new" / "out"
    args = [a for a in finished[1] if not a.startswith("benchmark.compounds")]
    assert cfer(["run", "--out", str(out), *sets(*args, "dataset.kind=cfee", f"dataset.root={cfee}",
                                                  "benchmark.partial_taxonomy=true")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the warning about the classes
    assert "protocol.orders" in err and "1 distinct" in err
    assert not (tmp_path / "new").exists()  # nor the folder made on the way to it


# --- it writes where it should not ------------------------------------------------------------

@pytest.mark.parametrize("name", ["../escaped", "/tmp/escaped", "", ".", "..", "a/b", "a\\b"])
def test_the_run_name_is_one_plain_path_component(name, tmp_path, monkeypatch, capsys):
    with pytest.raises(ConfigError, match="key 'name'"):
        load_config(None, [f"name={json.dumps(name)}"])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    assert cfer(["run", *sets(*TINY, f"name={json.dumps(name)}")]) == 2
    assert "key 'name'" in one_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["runs"]


def test_resume_writes_only_into_its_run_directory_and_never_through_a_symlinked_lock(finished, tmp_path,
                                                                                     capsys):
    run = copy_run(finished, tmp_path / "run")
    assert cfer(["run", "--resume", str(run), "--out", str(tmp_path / "elsewhere")]) == 2
    assert "--out" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "elsewhere").exists()
    mine = tmp_path / "mine.txt"
    mine.write_text("mine")
    (run / ".cfer.lock").symlink_to(mine)
    assert cfer(["run", "--resume", str(run)]) == 2
    assert ".cfer.lock" in one_line(capsys.readouterr().err)
    assert mine.read_text() == "mine"


# --- a number that is not what it says --------------------------------------------------------

def test_a_non_finite_loss_stops_the_run_naming_method_run_experience_and_epoch(finished, tmp_path,
                                                                                  capsys):
    with pytest.raises(ConfigError, match="training.lr"):
        load_config(None, ["training.lr=.inf"])
    # A finite learning rate so large that the first continual experience overflows.
    args = [*finished[1], "training.lr=1e30"]
    out = tmp_path / "local"
    # in this process (the local backend): the run stops with one line and exit status 2
    assert cfer(["run", "--out", str(out), *sets(*args, "runner.jobs_per_device=1")]) == 2
    err = one_line(capsys.readouterr().err)
    assert "non-finite" in err and "naive order 0 fold 0 seed 0" in err
    assert re.search(r"experience [12], epoch 1\b", err)  # a continual experience, its first epoch
    # Under backend processes the run is marked failed (results.json, the printed table) and
    # the exit status says so.
    out = tmp_path / "processes"
    assert cfer(["run", "--out", str(out), *sets(*args, "runner.backend=processes",
                                                  "protocol.orders=1")]) == 1
    captured = capsys.readouterr()
    res = json.loads((out / "results.json").read_text())
    (failed,) = res["failed_runs"]
    assert failed["run"] == "naive order 0 fold 0 seed 0" and "non-finite" in failed["error"]
    assert re.search(r"experience [12], epoch 1\b", failed["error"])
    assert "naive order 0 fold 0 seed 0" in captured.out + captured.err


def test_class_orders_are_distinct_and_methods_and_shots_not_repeated(tmp_path):
    import dataclasses

    from cfer.experiments.run.continual import RunSpec, plan_runs

    names = ("happy", "sad", "fearful", "angry", "surprised", "disgusted", "happily surprised",
             "sadly angry", "awed")
    with pytest.raises(ConfigError, match=r"key 'protocol\.orders'.*2 distinct"):
        load_config(None, ["benchmark.compounds=[awed, hatred]", "protocol.orders=3"])
    for compounds, orders in ((None, 7), (["awed"], 2)):  # the data set's 3 compounds; 1 chosen
        cfg = load_config(None, [f"protocol.orders={orders}"])
        cfg = dataclasses.replace(cfg, benchmark=dataclasses.replace(cfg.benchmark, compounds=compounds))
        with pytest.raises(ConfigError, match=r"protocol\.orders.*distinct"):
            plan_runs(cfg, names)
    cfg = load_config(None, ["protocol.orders=6", "strategies.methods=[naive]"])
    plan = plan_runs(cfg, names)
    assert len({s.order for s in plan}) == 6 == len(plan)  # all 3! orders, none twice
    with pytest.raises(ConfigError, match=r"protocol\.class_orders"):
        load_config(None, ["protocol.class_orders=[[awed, hatred], [awed, hatred]]"])
    with pytest.raises(ConfigError, match=r"strategies\.methods"):
        load_config(None, ["strategies.methods=[naive, naive]"])
    with pytest.raises(ConfigError, match=r"fewshot\.shots"):
        load_config(None, ["fewshot.shots=[5, 5]"])
    with pytest.raises(ConfigError, match=r"sweep\.grid\.training\.lr"):  # 1e-4 is 0.0001: one point
        load_config(None, ["sweep.grid={training.lr: [1e-4, 0.0001]}"])
    # --resume matches a saved run by its order index too, not by the order alone
    spec = RunSpec("naive", 1, ("awed", "hatred"), 0, 0)
    assert not spec.matches({"order": ["awed", "hatred"], "fold": 0, "seed": 0, "order_index": 0})
    assert spec.matches({"order": ["awed", "hatred"], "fold": 0, "seed": 0, "order_index": 1})


def test_16_bit_and_float_images_are_decoded_to_their_values_or_listed(tmp_path):
    from PIL import Image

    from cfer.benchmarks.cache import load_images

    ramp = (np.arange(32 * 32).reshape(32, 32) * 64).astype(np.uint16)  # 0..65472
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    Image.fromarray(np.random.default_rng(0).random((32, 32)).astype(np.float32)).save(tmp_path / "f.tif")
    dec = load_images([tmp_path / "deep.png", tmp_path / "f.tif"], size=32, cache_dir=tmp_path / "c")
    assert dec.ok.tolist() == [True, False]
    got = dec.images[0, :, :, 0].astype(float)
    assert np.abs(got - ramp / 257).max() <= 1  # not clipped to white
    assert "f.tif" in dec.failed[0][0] and "mode F" in dec.failed[0][1]


def test_a_shared_basic_model_is_bound_to_the_settings_that_trained_it(finished, tmp_path, capsys):
    other = tmp_path / "other"  # basic models left from another setting, no config.yaml
    shutil.copytree(finished[0] / "basic", other / "basic")
    before = tree(other)
    assert cfer(["run", "--out", str(other), *sets(*finished[1], "training.basic_lr=0.5")]) == 2
    err = one_line(capsys.readouterr().err)
    assert "basic/fold0_seed0_" in err and "other settings" in err
    assert tree(other) == before


def test_resume_refuses_an_edited_config_or_another_schema_version(finished, tmp_path, capsys):
    run = copy_run(finished, tmp_path / "run")
    cfg_text = (run / "config.yaml").read_text()
    assert "\n  epochs: 1\n" in cfg_text
    (run / "config.yaml").write_text(cfg_text.replace("\n  epochs: 1\n", "\n  epochs: 2\n"))
    before = tree(run)
    assert cfer(["run", "--resume", str(run)]) == 2
    err = one_line(capsys.readouterr().err)
    assert "training.epochs" in err and "results.json" in err
    assert tree(run) == before

    (run / "config.yaml").write_text(cfg_text)
    res = json.loads((run / "results.json").read_text())
    (run / "results.json").write_text(json.dumps({**res, "schema_version": 1}))
    before = tree(run)
    assert cfer(["run", "--resume", str(run)]) == 2
    assert "schema_version 1" in one_line(capsys.readouterr().err)
    assert tree(run) == before


def test_backend_changes_on_resume_keep_the_thread_count_recorded_per_run(finished, tmp_path, capsys):
    run = copy_run(finished, tmp_path / "run")
    res = json.loads((run / "results.json").read_text())
    assert all("threads" in r for r in res["methods"]["naive"]["runs"])
    from cfer.experiments.backends import threads_per_run

    cfg = load_config(run / "config.yaml")
    assert [r["threads"] for r in res["methods"]["naive"]["runs"]] == [threads_per_run(cfg.runner)] * 2
    # The thread count per run is fixed (runner.threads_per_run), not derived from the jobs:
    # running more at once keeps it, another count is refused.
    other = load_config(run / "config.yaml", ["runner.jobs_per_device=2"])
    assert threads_per_run(other.runner) == threads_per_run(cfg.runner) == 1
    before = tree(run)
    assert cfer(["run", "--resume", str(run), "--set", "runner.threads_per_run=2"]) == 2
    err = one_line(capsys.readouterr().err)
    assert "runner.threads_per_run" in err
    assert tree(run) == before


# --- tracebacks and hangs ---------------------------------------------------------------------

def test_disk_full_and_the_file_size_limit_are_one_line_naming_the_file(tmp_path):
    import errno

    import torch

    from cfer.core.atomic import atomic_write
    from cfer.experiments.run.basic_store import BasicModelStore

    path = tmp_path / "basic" / "naive_fold0_seed0.pt"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))
    try:
        with pytest.raises((OSError, ValueError)) as e:
            BasicModelStore().cached(path, keys={"state_dict"},
                                     train=lambda: {"state_dict": {"w": torch.zeros(1_000_000)}})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    text = str(e.value)
    assert "\n" not in text and str(path) in text and "--resume" in text
    assert list(tmp_path.rglob("*.tmp")) == []  # no half file either

    def full(f):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as e:
        atomic_write(tmp_path / "results.json", full)
    assert e.value.filename == str(tmp_path / "results.json") and e.value.strerror


def test_a_corrupt_or_empty_model_file_is_one_line_saying_delete_and_resume(finished, tmp_path, capsys):
    run = copy_run(finished, tmp_path / "run")
    res = json.loads((run / "results.json").read_text())
    res["methods"]["naive"]["runs"] = res["methods"]["naive"]["runs"][:1]  # one run still to do
    (run / "results.json").write_text(json.dumps(res))
    (basic,) = (run / "basic").glob("fold0_seed0_*.pt")  # named by its basic-phase digest
    for damage in (basic.read_bytes()[:100], b""):
        basic.write_bytes(damage)
        assert cfer(["run", "--resume", str(run)]) == 2
        err = one_line(capsys.readouterr().err)
        assert str(basic) in err and "delete it" in err and "--resume" in err


def test_sizes_have_upper_bounds(tmp_path, capsys):
    for override, key in (("benchmark.image_size=100000", "benchmark.image_size"),
                          ("dataset.size=100000", "dataset.size"),
                          ("protocol.orders=1000000000", "protocol.orders")):
        with pytest.raises(ConfigError, match=f"key '{key}'"):
            load_config(None, [override])
    assert cfer(["synth", "--out", str(tmp_path / "s"), "--size", "100000"]) == 2
    assert "--size" in one_line(capsys.readouterr().err)
    from cfer.benchmarks.cache import load_images

    img = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(img)
    with pytest.raises(ValueError, match="memory") as e:  # refused before it allocates 11 TiB
        load_images([img] * 100, size=200_000, use_cache=False)
    assert "\n" not in str(e.value)


def test_yaml_alias_bombs_and_recursive_aliases_are_refused_at_once(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"  # 10^9 values under a free-form section
    text = ["name: bomb", "dataset:", "  spec:", *[f"    {line}" for line in lines]]
    bomb.write_text("\n".join(text) + "\n")
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "cfer", "run", str(bomb), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and time.monotonic() - start < 60
    assert "bomb.yaml" in one_line(proc.stderr) and "alias" in proc.stderr
    loop = tmp_path / "loop.yaml"
    loop.write_text("name: loop\nstrategies:\n  params: &p {naive: *p}\n")
    with pytest.raises(ValueError, match="loop.yaml.*recursive"):
        load_config(loop)
    with pytest.raises(ValueError, match="--set"):
        load_config(None, ["strategies.params=&p {naive: *p}"])
    twice = tmp_path / "twice.yaml"  # which epochs would run? PyYAML silently keeps the last
    twice.write_text("name: twice\ntraining:\n  epochs: 1\n  epochs: 50\n")
    with pytest.raises(ValueError, match="twice.yaml: key 'epochs' appears twice"):
        load_config(twice)


@pytest.mark.parametrize("override, key", [("protocol.seeds=[-1]", "protocol.seeds"),
                                           ("protocol.seeds=[4294967296]", "protocol.seeds"),
                                           ("dataset.seed=-3", "dataset.seed"),
                                           ("dataset.seed=4294967296", "dataset.seed")])
def test_seeds_outside_the_allowed_range_name_the_key(override, key):
    with pytest.raises(ConfigError, match=f"key '{key}'.*0\\.\\.4294967295"):
        load_config(None, [override])


class _Config:
    pass


class Forever:
    """A stand-in runner whose one run writes a file every 0.1 s for ever (in the worker)."""

    def __init__(self, cfg, run_dir):
        self.cfg, self.run_dir = cfg, Path(run_dir)

        class Ctx:
            final_validation = None

            @staticmethod
            def progress(**kw):
                from contextlib import nullcontext

                class Bar:
                    def update(self, n):
                        pass

                    def set_postfix(self, **kw):
                        pass

                return nullcontext(Bar())

        self.ctx = Ctx()

    @staticmethod
    def shared_path(spec):  # no shared model to train first
        return None

    def run_one(self, spec, *, device, progress=None):
        for k in range(10**6):
            (self.run_dir / f"{os.getpid()}_{k}.out").write_text("x")
            time.sleep(0.1)


PARENT = """
import sys, pathlib
from cfer.experiments.config.load import load_config
from cfer.experiments.backends import execute
from tests.test_reliability import Forever
import torch
run_dir = pathlib.Path(sys.argv[1])
cfg = load_config(None, ["runner.backend=processes", "runner.share_basic=false", "runner.progress=false"])
from types import SimpleNamespace
spec = SimpleNamespace(method="forever", label="spec")
execute("processes", Forever(cfg, run_dir), [spec], device=torch.device("cpu"),
        record=lambda *a: None, fail=lambda *a: None)
"""


def test_worker_processes_die_with_their_parent_and_write_nothing_after(tmp_path):
    import psutil

    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not list(tmp_path.glob("*.out")) and time.monotonic() < deadline:
            time.sleep(0.2)
        files = list(tmp_path.glob("*.out"))
        assert files, "the worker never started"
        worker = int(files[0].name.split("_")[0])
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 20
        while psutil.pid_exists(worker) and psutil.Process(worker).status() != "zombie" \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        alive = psutil.pid_exists(worker) and psutil.Process(worker).status() != "zombie"
        if alive:
            os.kill(worker, signal.SIGKILL)
        assert not alive, "the worker outlived its parent"
        count = len(list(tmp_path.glob("*.out")))
        time.sleep(1)
        assert len(list(tmp_path.glob("*.out"))) == count
    finally:
        if parent.poll() is None:
            parent.kill()


# --- inconsistent -----------------------------------------------------------------------------

def test_exponent_floats_parse_as_floats_everywhere(tmp_path):
    cfg = load_config(None, ["training.lr=1e-4", "strategies.params.lwf.alpha=2e0"])
    assert cfg.training.lr == 1e-4 and cfg.params_for("lwf").alpha == 2.0
    p = tmp_path / "c.yaml"
    p.write_text("training: {basic_lr: 3e-4, lr: 1.5e-5}\n")
    cfg = load_config(p)
    assert (cfg.training.basic_lr, cfg.training.lr) == (3e-4, 1.5e-5)


def test_compare_refuses_runs_of_other_compound_classes(finished, tmp_path):
    from cfer.experiments.report.compare import load

    res = json.loads((finished[0] / "results.json").read_text())
    swap = {"happily surprised": "awed", "sadly angry": "hatred"}
    for r in res["methods"]["naive"]["runs"]:
        r["order"] = [swap[c] for c in r["order"]]
    other = tmp_path / "other"
    other.mkdir()
    (other / "results.json").write_text(json.dumps(res))
    with pytest.raises(ValueError, match="compound classes"):
        load([str(finished[0]), str(other)])
    with pytest.raises(ValueError, match="same run directory"):  # its runs counted twice
        load([str(finished[0]), str(finished[0]) + "/"])


def test_bench_repeats_must_be_at_least_one():
    from cfer.experiments.bench.config import config_from_args

    for path in ("run", "train"):
        args = argparse.Namespace(device="cpu", model=None, batch_sizes=None, precisions=None, compiles=None,
                                  path=path, repeats=0)
        with pytest.raises(ValueError, match="repeats"):
            config_from_args(args)
