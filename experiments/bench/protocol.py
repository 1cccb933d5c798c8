"""One order of the paper protocol as ``cfer run`` runs it, with the seconds of every step
(tools/gpu_check.sh, call B): what a GPU costs per order, and a projection of the paper's
tables from it."""

from __future__ import annotations

import time
from pathlib import Path


def protocol_order(cfg, *, run_dir, jsonl, orders: int = 10, methods_in_table: int = 1) -> dict:
    """One kd_psmr order of ``cfg`` (an ExperimentConfig) through ``ContinualRunner.run_one``,
    as ``cfer run`` runs it; after every step a JSON line with its seconds (``train``: the
    epochs without the validation passes, ``valid_eval``, ``rank``, ``test_eval``) is
    appended to ``jsonl``. Returns the totals and the projections (labelled as such) of
    ``orders`` orders and of a table of ``methods_in_table`` methods at
    ``jobs_per_device`` 1, 2 and 4, assuming each method costs what kd_psmr costs and
    that packing jobs costs no extra time per job (a lower bound for 2 and 4)."""
    import json
    import math

    import torch
    from avalanche.core import SupervisedPlugin

    from cfer.experiments.run.continual import ContinualRunner, plan_runs
    from cfer.plugins.method.selection import PredictiveSortingSelection

    runner = ContinualRunner(cfg, run_dir)
    ctx = runner.ctx
    spec = next(s for s in plan_runs(cfg, ctx.data().dataset.class_names) if s.method == "kd_psmr")
    device = ctx.device()
    out = Path(jsonl)
    out.parent.mkdir(parents=True, exist_ok=True)

    def now() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    spans = {"rank": 0.0}
    rank = PredictiveSortingSelection.make_sorted_indices

    def timed_rank(self, strategy, data):
        t = now()
        try:
            return rank(self, strategy, data)
        finally:
            spans["rank"] += now() - t

    class StepTimes(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.step, self.training, self.rows = 0, False, []

        def before_training_exp(self, strategy, **kwargs):
            self.training, self.t0, self.valid, self.epochs = True, now(), 0.0, 0
            spans["rank"] = 0.0

        def after_training_epoch(self, strategy, **kwargs):
            self.epochs += 1

        def before_eval(self, strategy, **kwargs):
            self.e0 = now()

        def after_eval(self, strategy, **kwargs):
            seconds = now() - self.e0
            if self.training:
                self.valid += seconds
                return
            row = {"step": self.step, "epochs": self.epochs, "train_s": round(self.train, 3),
                   "valid_eval_s": round(self.valid, 3), "rank_s": round(spans["rank"], 3),
                   "test_eval_s": round(seconds, 3)}
            self.rows.append(row)
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            self.step += 1

        def after_training_exp(self, strategy, **kwargs):
            self.training = False
            self.train = now() - self.t0 - self.valid - spans["rank"]

    times = StepTimes()
    session = ctx.session
    ctx.session = lambda *a, plugins=(), **k: session(*a, plugins=[*plugins, times], **k)
    PredictiveSortingSelection.make_sorted_indices = timed_rank
    try:
        t = now()
        basic = runner.basic_state(spec, device=device) if cfg.runner.share_basic else None
        basic_s = now() - t
        t = now()
        rec = runner.run_one(spec, device=device)
        order_s = now() - t
    finally:
        PredictiveSortingSelection.make_sorted_indices = rank
        ctx.session = session
    projected = {}
    for jobs in (1, 2, 4):
        waves = math.ceil(orders / jobs)
        projected[f"orders_{orders}_jobs_{jobs}_s"] = round(basic_s + waves * order_s, 1)
        projected[f"table_{methods_in_table}_methods_jobs_{jobs}_s"] = round(
            methods_in_table * basic_s + math.ceil(orders * methods_in_table / jobs) * order_s, 1)
    summary = {"basic_s": round(basic_s, 1), "order_s": round(order_s, 1), "steps": len(times.rows),
               "final_accuracy": rec["step_accuracy"][-1], "shared_basic": basic is not None,
               "projection (assumes free packing)": projected}
    with out.open("a") as f:
        f.write(json.dumps({"summary": summary}) + "\n")
    return summary
