"""Nothing silently wrong: bad input refused early, resumes kept honest, interrupts and OS
errors in one line, files readable by the group, and a run that says what it is doing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from cfer.core.typed import ConfigError
from cfer.experiments.cli import build_parser
from cfer.experiments.cli import main as cfer

TINY = [
    "dataset.subjects=9", "dataset.size=64", "benchmark.image_size=16", "benchmark.n_folds=3",
    "benchmark.compounds=[happily surprised, sadly angry]", "benchmark.augment.rotation=0",
    "training.basic_epochs=1", "training.epochs=1", "training.patience=0",
    "training.batch_size=16", "training.mem_per_class=2", "protocol.orders=2",
    "strategies.methods=[naive]", "runner.progress=false",
]


def sets(*pairs: str) -> list[str]:
    return sum((["--set", p] for p in pairs), [])


def one_line(err: str) -> str:
    err = err.strip()
    assert err.count("\n") == 0, err
    return err


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    return tmp_path_factory.mktemp("synth") / "faces"


@pytest.fixture(scope="module")
def finished(tmp_path_factory, synth_root):
    """A finished tiny run (naive, 2 orders) and the settings that made it."""
    out = tmp_path_factory.mktemp("run") / "out"
    args = TINY + [f"dataset.root={synth_root}"]
    assert cfer(["run", "--out", str(out), *sets(*args)]) == 0
    return out, args


# --- 1. the whole config is checked before any data or directory -------------------------------

@pytest.mark.parametrize("override, key", [
    ("model.name=foo", "model.name"),
    ("dataset.size=32", "dataset.size"),
    ("protocol.folds=[0, 5]", "protocol.folds"),
    ("benchmark.n_folds=2", "benchmark.n_folds"),
    ("benchmark.compounds=[happily surprised, sadly angy]", "benchmark.compounds"),
    ("model.weights=/no/such/weights.pt", "model.weights"),
])
def test_config_errors_come_before_data_and_directory(tmp_path, monkeypatch, capsys, override, key):
    from cfer.benchmarks.synthetic_faces import writer

    def no_data(*a, **k):
        raise AssertionError("data generated before the config was checked")

    monkeypatch.setattr(writer, "write_synthetic", no_data)
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(yaml.safe_dump({"name": "mine", "dataset": {"root": str(tmp_path / "faces")}}))
    out = tmp_path / "out"
    assert cfer(["run", str(cfg), "--out", str(out), *sets(*TINY, override)]) == 2
    err = one_line(capsys.readouterr().err)
    assert f"key '{key}'" in err and "mine.yaml" in err
    assert not out.exists() and not (tmp_path / "faces").exists()


def test_empty_config_is_an_error_and_a_config_is_named_after_its_file(tmp_path, capsys):
    from cfer.experiments.config.load import load_config

    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    assert cfer(["run", str(empty), "--out", str(tmp_path / "out")]) == 2
    err = one_line(capsys.readouterr().err)
    assert "empty.yaml: the config is empty" in err and "quickstart" in err
    assert not (tmp_path / "out").exists()
    mine = tmp_path / "lab_faces.yaml"
    mine.write_text("training: {epochs: 3}\n")
    assert load_config(mine).name == "lab_faces"  # not "quickstart", so not runs/quickstart


# --- 2. --resume keeps the saved runs' numbers honest ------------------------------------------

def test_resume_refuses_overrides_that_change_results(finished, capsys):
    out, _ = finished
    before = {p: (out / p).read_bytes() for p in ("config.yaml", "results.json")}
    assert cfer(["run", "--resume", str(out), *sets("training.epochs=3", "training.lr=0.5")]) == 2
    err = one_line(capsys.readouterr().err)
    assert "training.epochs" in err and "training.lr" in err and "another --out" in err
    assert "2 run(s) saved with training.epochs=1" in err
    assert {p: (out / p).read_bytes() for p in before} == before  # nothing rewritten


def test_resume_allows_and_records_harmless_keys(finished, capsys):
    out, _ = finished
    stale = out / ".results.json.killed.cfer.tmp"  # what a SIGKILL during a write leaves
    stale.write_text("{")
    assert cfer(["run", "--resume", str(out), *sets("runner.progress=true", "output.plots=false")]) == 0
    printed = capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    assert res["resumes"][-1]["changed"] == {"output.plots": {"from": True, "to": False},
                                             "runner.progress": {"from": False, "to": True}}
    assert res["resumes"][-1]["runs_saved_before"] == 2
    assert yaml.safe_load((out / "config.yaml").read_text())["runner"]["progress"] is True
    assert not stale.exists()
    assert "report.md" not in printed.splitlines()[-1].split("(")[0]  # output.plots: false
    assert f"cfer plot {out}" in printed


def test_a_new_run_into_an_unfinished_run_of_another_config_is_refused(finished, tmp_path, capsys):
    out, args = finished
    import shutil

    other = tmp_path / "other"  # a run killed after its basic model, before its first saved run
    shutil.copytree(out / "basic", other / "basic")
    (other / "config.yaml").write_bytes((out / "config.yaml").read_bytes())
    assert cfer(["run", "--out", str(other), *sets(*args, "training.basic_epochs=2")]) == 2
    err = one_line(capsys.readouterr().err)
    assert "training.basic_epochs=1" in err and "another --out" in err


# --- 3. taxonomies ---------------------------------------------------------------------------

def _counts(names, n=4):
    return {c: n for c in names}


def test_incomplete_taxonomies_fail_naming_what_is_missing():
    from cfer.benchmarks.taxonomy import BASIC, CFEE_COMPOUND
    from cfer.experiments.config.sections import ExperimentConfig
    from cfer.experiments.config.validate import check_taxonomy

    cfg = ExperimentConfig()  # dataset.kind synthetic: CFEE's 6 + 15 classes expected
    assert check_taxonomy(cfg, class_counts=_counts(BASIC + CFEE_COMPOUND), name="d") == []
    with pytest.raises(ConfigError, match=r"d: the data set has no image of disgusted; set "
                                          r"benchmark.partial_taxonomy: true"):
        check_taxonomy(cfg, class_counts=_counts(BASIC[:5] + CFEE_COMPOUND), name="d")
    with pytest.raises(ConfigError, match="no image of awed"):  # one compound short: not 14 steps
        check_taxonomy(cfg, class_counts=_counts(BASIC + CFEE_COMPOUND[:-1]), name="d")
    with pytest.raises(ConfigError, match="no image of any compound class"):
        check_taxonomy(cfg, class_counts=_counts(BASIC), name="d")
    zero = {**_counts(BASIC + CFEE_COMPOUND), "hatred": 0}  # all its images unreadable
    with pytest.raises(ConfigError, match="no image of hatred"):
        check_taxonomy(cfg, class_counts=zero, name="d")


def _folder_faces(root: Path, folders: list[str], subjects=("S01", "S02", "S03", "S04")) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, f in enumerate(folders):
        for s in subjects:
            (root / f).mkdir(parents=True, exist_ok=True)
            img = np.clip(rng.integers(0, 30, (16, 16, 3)) + 20 * k, 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / f / f"{s}_0.png")


def test_a_partial_taxonomy_runs_only_when_allowed_and_is_reported(tmp_path, capsys):
    basic5 = ["happy", "sad", "fearful", "angry", "surprised"]  # no disgusted
    _folder_faces(tmp_path / "faces", basic5 + ["happily_surprised"])
    (tmp_path / "faces" / "sad" / "S04_1.png").write_bytes(b"not an image")
    spec = {"basic": basic5, "compound": {"happily_surprised": None}, "subject": "^(S\\d+)_"}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    cfg = tmp_path / "folder.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "folder", "dataset": {"kind": "folder", "root": str(tmp_path / "faces"),
                                      "spec": str(tmp_path / "spec.yaml"),
                                      "cache_dir": str(tmp_path / "cache")},
        "benchmark": {"image_size": 16, "n_folds": 3, "augment": {"rotation": 0}},
        "training": {"basic_epochs": 1, "epochs": 1, "patience": 0, "batch_size": 8},
        "strategies": {"methods": ["naive"]}, "protocol": {"orders": 1},
        "runner": {"progress": False}}))
    out = tmp_path / "out"
    assert cfer(["run", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the unreadable image's warning
    assert err.startswith("cfer run: error:") and "no image of disgusted" in err
    assert "benchmark.partial_taxonomy" in err
    assert not (out / "results.json").exists()

    assert cfer(["run", str(cfg), "--out", str(out), "--set", "benchmark.partial_taxonomy=true"]) == 0
    printed = capsys.readouterr().out
    assert "note: the data set has no image of disgusted" in printed
    assert "note: 1 unreadable image(s) left out" in printed and "S04_1.png" in printed
    res = json.loads((out / "results.json").read_text())
    assert res["dataset"]["missing_classes"] == ["disgusted"]
    report = (out / "report.md").read_text()
    assert "partial taxonomy" in report and "no image of disgusted" in report
    assert "1 unreadable image(s) left out" in report and "sad/S04_1.png" in report


# --- 4. the run directory: lock, interrupts, OS errors, temporary files, permissions ------------

def _holder(run_dir: Path):
    """A second process that holds ``run_dir``'s lock until its stdin closes."""
    code = ("import sys; from cfer.experiments.run import lock; l = lock.acquire(sys.argv[1]); "
            "print('held', flush=True); sys.stdin.read(); l.release()")
    p = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_second_run_into_a_locked_directory_fails_at_once_naming_the_pid(tmp_path, capsys):
    from cfer.experiments.run import lock

    run_dir = tmp_path / "out"
    holder = _holder(run_dir)
    try:
        with pytest.raises(lock.RunDirInUse, match=f"in use by another cfer run \\(pid {holder.pid} on"):
            lock.acquire(run_dir)
        assert cfer(["run", "--out", str(run_dir), *sets(*TINY)]) == 2
        assert f"pid {holder.pid}" in one_line(capsys.readouterr().err)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert not (run_dir / lock.LOCK_NAME).exists()  # released with its holder
    with lock.acquire(run_dir) as mine:  # and free again
        assert mine.owned and mine.info()["pid"] == os.getpid()
    assert not (run_dir / lock.LOCK_NAME).exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    from cfer.experiments.run import lock

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    run_dir = tmp_path / "out"
    run_dir.mkdir()
    (run_dir / lock.LOCK_NAME).write_text(json.dumps({"pid": int(dead.stdout), "host": "x"}))
    with lock.acquire(run_dir) as held:
        assert held.owned and held.info()["pid"] == os.getpid()


def test_ctrl_c_ends_with_one_line_and_leaves_a_resumable_run(tmp_path, synth_root, finished):
    out = tmp_path / "out"
    args = [a for a in TINY
            if not a.startswith(("protocol.orders", "runner.progress", "benchmark.compounds"))]
    # 24 runs of about a second each (the 4! distinct orders of four compound classes): the
    # signal comes while the later ones run (with six, a loaded machine's delay before the
    # signal let all six finish)
    args += [f"dataset.root={synth_root}", "protocol.orders=24",
             "benchmark.compounds=[happily surprised, sadly angry, awed, fearfully surprised]",
             "runner.jobs_per_device=1",  # the local backend's display (a bar per run) is checked below
             # 20 epochs: at one thread and channels-last a 1-epoch run took 0.2 s, and all 24
             # could finish before the signal came
             "training.epochs=20"]
    env = {**os.environ, "COLUMNS": "200"}
    # As from a terminal: SIGINT at its default in the child. A child inherits an *ignored*
    # SIGINT, and in the whole suite something earlier in this process (a library's handler
    # set-up) can leave it ignored, so the run never saw the signal and finished all 24.
    p = subprocess.Popen([sys.executable, "-m", "cfer", "run", "--out", str(out), *sets(*args)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not (out / "results.json").exists():
        assert p.poll() is None and time.monotonic() < deadline, "no run was saved"
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    saved = sum(len(b["runs"]) for b in json.loads((out / "results.json").read_text())["methods"].values())
    assert 1 <= saved < 24
    assert err.strip().splitlines()[-1] == (f"interrupted: {saved} of 24 runs saved; continue with "
                                            f"cfer run --resume {out}")
    assert "Traceback" not in err
    assert not list(out.rglob("*.tmp")) and not (out / ".cfer.lock").exists()
    # What the terminal showed: the finished run kept as its line, epochs and loss inside the
    # experience, log lines on their own lines (never glued to a bar).
    assert re.search(r"\[1/24\] naive order 0 fold 0 seed 0: 100%", err)
    assert re.search(r"exp 2/5: epoch \d+/20, loss \d", err)
    assert not re.search(r"[^\r\n]INFO ", err)


def test_an_output_path_under_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    assert cfer(["run", "--out", str(tmp_path / "afile" / "out"), *sets(*TINY)]) == 2
    err = one_line(capsys.readouterr().err)
    assert "afile/out: cannot create the run directory (Not a directory)" in err


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_result_files_get_the_umask_permissions(tmp_path, umask, mode):
    from cfer.core.atomic import atomic_write_json, atomic_write_path

    old = os.umask(umask)
    try:
        a = atomic_write_json(tmp_path / "results.json", {"a": 1})
        b = atomic_write_path(tmp_path / "plot.png", lambda p: p.write_bytes(b"png"))
    finally:
        os.umask(old)
    assert (a.stat().st_mode & 0o777, b.stat().st_mode & 0o777) == (mode, mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png", "results.json"]  # no litter


def test_an_interrupted_write_leaves_no_temporary_file(tmp_path):
    from cfer.core.atomic import atomic_write

    def interrupted(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "results.json", interrupted)
    assert list(tmp_path.iterdir()) == []


# --- 5. progress and warnings ------------------------------------------------------------------

def test_epochs_and_loss_are_shown_inside_the_experience(tiny_benchmark):
    import io

    from tqdm import tqdm

    from cfer.experiments.run.progress import epoch_plugin
    from tests.conftest import tiny_naive

    bar = tqdm(total=len(tiny_benchmark.train_stream), unit="exp", file=io.StringIO())
    strategy, _ = tiny_naive([epoch_plugin(bar)])
    strategy.train_epochs = 2
    strategy.train(tiny_benchmark.train_stream[0])
    assert re.fullmatch(r"exp 1/4: epoch 2/2, loss \d+\.\d{3}", bar.postfix)


def test_a_fast_path_fallback_the_user_cannot_change_is_not_a_warning(caplog):
    import torch
    from avalanche.benchmarks.utils import _make_taskaware_classification_dataset
    from torch.utils.data import DataLoader, TensorDataset

    from cfer.plugins.speed.fast_data import FastDataPlugin

    x, y = torch.zeros(8, 3, 16, 16), torch.arange(8) % 2
    data = _make_taskaware_classification_dataset(TensorDataset(x, y), targets=y.tolist(), task_labels=0)
    loader = DataLoader(data, batch_size=4, collate_fn=data.collate_fn)
    with caplog.at_level("DEBUG", logger="cfer.plugins.speed.fast_data"):
        assert FastDataPlugin().wrap(loader, device="cpu") is loader
    records = [r for r in caplog.records if "fast data path not used" in r.getMessage()]
    assert records and all(r.levelname == "DEBUG" for r in records)


# --- 6. the command line explains itself --------------------------------------------------------

def test_every_argument_has_help_and_there_is_a_version(capsys):
    from cfer import __version__

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in [("cfer", parser), *sub.choices.items()]:
        for action in p._actions:
            if action.dest not in ("help", "command"):
                assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    with pytest.raises(SystemExit):
        cfer(["--version"])
    assert capsys.readouterr().out.strip() == f"cfer {__version__}"
    text = sub.choices["run"].format_help()
    assert "paper_cfee" in text and "fewshot" in text and "CFER_CACHE" in " ".join(text.split())


def test_cfer_plot_says_what_it_does(finished, capsys):
    out, _ = finished
    assert cfer(["plot", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"reading {out / 'results.json'}") and lines[-1].startswith("wrote ")


# --- 7. the two plots ----------------------------------------------------------------------------

def _spread_runs(T=4, n=3):
    """Runs whose accuracies sit at 0 and 1 with a large spread between runs."""
    runs = []
    for k in range(n):
        R = [[(1.0 if (i + j + k) % 2 else 0.0) if j <= i else None for j in range(T)] for i in range(T)]
        old = [None] + [float(np.mean([v for v in row[:i]])) for i, row in enumerate(R) if i]
        runs.append({"accuracy_matrix": R, "old_class_accuracy": old})
    return runs


def test_old_new_bands_stay_within_0_and_100_percent():
    from cfer.experiments.report.plots import old_new_figure

    fig = old_new_figure("m", _spread_runs())
    bands = [c for ax in fig.axes for c in ax.collections]
    assert bands
    ys = np.concatenate([path.vertices[:, 1] for c in bands for path in c.get_paths()])
    assert ys.min() >= 0 and ys.max() <= 1


def test_forgetting_plot_draws_one_panel_per_experience():
    from cfer.experiments.report.plots import forgetting_figure

    T = 6
    runs = _spread_runs(T=T)
    for r in runs:
        r["order"] = ["c1", "c2", "c3", "c4", "c5"]
    fig = forgetting_figure("m", runs)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == T
    assert [ax.get_title() for ax in panels] == ["exp 0: basic expressions"] + [f"exp {j}: c{j}" for j in
                                                                                range(1, T)]
    for j, ax in enumerate(panels):
        curve = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
        assert len(curve) == 1 and list(curve[0].get_xdata()) == list(range(j, T))
