"""`cfer bench --path run`: the kd_psmr step of `cfer run` against a bare loop of the same work."""

from __future__ import annotations

from argparse import Namespace

import pytest

from cfer.experiments.bench import run_path
from cfer.experiments.bench.cli import run_bench, spread_warning
from cfer.experiments.bench.config import BenchConfig, config_from_args


def test_run_path_times_the_runner_s_kd_psmr_step_and_a_bare_loop_of_the_same_size():
    cfg = BenchConfig(path="run", images=70, image_size=16, repeats=2, step_epochs=1,
                            eval_batch_size=32)
    (rec,) = run_bench(cfg, progress=lambda *_: None)
    # PSMR's memory rule on 10 training images per class, 7 classes: M = floor(0.3 * 70) = 21,
    # m = 3 per class; the step trains on the 6 basic classes' memory + m new-class images.
    assert rec["train_images"] == 3 * 6 + 3 and rec["test_images"] == 16 * 7
    assert rec["repeats"] == 2 and rec["epochs"] == 1
    for k in ("ours", "bare"):
        assert rec[f"{k}_s_min"] <= rec[f"{k}_s"] <= rec[f"{k}_s_max"]
        # the teacher's forwards are part of training; every part was timed
        assert 0 < rec[f"{k}_teacher_s"] < rec[f"{k}_train_s"]
        assert rec[f"{k}_rank_s"] > 0 and rec[f"{k}_eval_s"] > 0 and rec[f"{k}_cpu_s"] > 0
    assert rec["ours_over_bare_min"] <= rec["ours_over_bare"] <= rec["ours_over_bare_max"]
    table = run_path.format_table([rec])
    assert rec["setting"] in table and "teacher" in table


def test_a_wide_spread_is_reported_as_untrustworthy():
    wide = {"setting": "s", "ours_over_bare_min": 0.38, "ours_over_bare": 0.9, "ours_over_bare_max": 1.0}
    narrow = {"setting": "s", "ours_over_bare_min": 0.95, "ours_over_bare": 0.97, "ours_over_bare_max": 1.0}
    assert "spread too wide to trust" in spread_warning(wide, max_spread=0.1)
    assert spread_warning(narrow, max_spread=0.1) is None


def test_path_and_repeats_options():
    args = Namespace(device="cpu", model=None, batch_sizes=None, precisions=None, compiles=None,
                     path="run", repeats=3)
    cfg = config_from_args(args)
    assert cfg.path == "run" and cfg.repeats == 3
    cfg = config_from_args(Namespace(**{**vars(args), "path": "train"}))
    assert cfg.path == "train" and cfg.epochs == 3
    with pytest.raises(ValueError, match="--path"):
        BenchConfig(path="walk")
