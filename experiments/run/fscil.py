"""``phase: fscil``: the few-shot class-incremental stream.

The full basic experience, then the compound classes one per session with
``fewshot.fscil_shots`` training images each (drawn with the run's seed), in
the benchmark's class orders. It is the continual run on few-shot training
splits, so results.json keeps the continual schema, plus per-session base /
novel / harmonic-mean accuracy and the performance drop. The report of this
phase is :mod:`cfer.experiments.report.fscil`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from cfer.core import metric_definitions as M
from cfer.experiments.config.sections import ExperimentConfig
from cfer.experiments.run.continual import ContinualRunner

#: The per-method summary of the FSCIL phase (results.json ``methods.<m>.fscil_summary``).
FSCIL_METRICS: tuple[str, ...] = ("performance_drop", "final_base_accuracy", "final_novel_accuracy",
                                  "final_harmonic_mean", "average_harmonic_mean")


# --------------------------------------------------------------------------- metrics (pure)

def _json_list(values) -> list:
    return [None if v is None or not math.isfinite(float(v)) else float(v) for v in values]


def fscil_fields(run: Mapping) -> dict:
    """Per-session FSCIL views of one continual run record (session i = experience i).

    ``base_accuracy[i]``: accuracy on the basic classes (R[i][0]);
    ``novel_accuracy[i]``: on the compound classes of sessions 1..i
    (sample-weighted; None at session 0); ``harmonic_mean[i]`` of the two;
    ``performance_drop``: step accuracy of session 0 minus that of the last one.
    """
    R = M.as_matrix(run["accuracy_matrix"])
    n = np.asarray(run["test_sizes"], dtype=float)
    if n.shape != (len(R),):
        raise ValueError(f"test_sizes has {n.size} entries, expected {len(R)}")
    steps = [math.nan if v is None else float(v) for v in run["step_accuracy"]]
    base = R[:, 0]
    novel = np.full(len(R), np.nan)
    for i in range(1, len(R)):
        novel[i] = np.dot(R[i, 1: i + 1], n[1: i + 1]) / n[1: i + 1].sum()
    hm = [M.harmonic_mean(b, v) for b, v in zip(base, novel)]
    drop = steps[0] - steps[-1]
    return {"base_accuracy": _json_list(base), "novel_accuracy": _json_list(novel),
            "harmonic_mean": _json_list(hm),
            "performance_drop": None if math.isnan(drop) else float(drop)}


def fscil_summary(runs: Sequence[Mapping]) -> dict[str, dict]:
    """FSCIL_METRICS as ``mean_std`` over runs (``average_harmonic_mean``: over sessions >= 1)."""
    def last(r, key):
        return r[key][-1] if r.get(key) else None

    def avg_hm(r):
        vals = [v for v in (r.get("harmonic_mean") or [])[1:] if v is not None]
        return float(np.mean(vals)) if vals else None

    return {
        "performance_drop": M.mean_std(r.get("performance_drop") for r in runs),
        "final_base_accuracy": M.mean_std(last(r, "base_accuracy") for r in runs),
        "final_novel_accuracy": M.mean_std(last(r, "novel_accuracy") for r in runs),
        "final_harmonic_mean": M.mean_std(last(r, "harmonic_mean") for r in runs),
        "average_harmonic_mean": M.mean_std(avg_hm(r) for r in runs),
    }


def fscil_csv_lines(results: Mapping) -> str:
    """metrics.csv rows (the continual long format) of the FSCIL fields the continual rows lack."""
    lines = []
    for method, block in results["methods"].items():
        for r in block["runs"]:
            key = f"{method},{r.get('order_index', 0)},{r['fold']},{r['seed']}"
            for metric in ("novel_accuracy", "harmonic_mean"):
                for step, v in enumerate(r.get(metric) or []):
                    if v is not None:
                        lines.append(f"{key},{step},{metric},{v:.6g}")
            if r.get("performance_drop") is not None:
                lines.append(f"{key},,performance_drop,{r['performance_drop']:.6g}")
    return "".join(line + "\n" for line in lines)


# --------------------------------------------------------------------------- the run

class FSCILRunner(ContinualRunner):
    """The continual run on a few-shot stream: the full basic experience, then each
    compound class with ``fewshot.fscil_shots`` training images (drawn with the run's seed).

    The n images are not repeated (standard FSCIL; repeating them would also
    inflate the memory size that the paper's rule derives from the number of
    training images).
    """

    @property
    def shots(self) -> int:
        return int(self.cfg.fewshot.fscil_shots)

    def extend_record(self, rec: dict) -> dict:
        rec["shots"] = self.shots
        rec.update(fscil_fields(rec))
        return rec

    def method_block(self, runs: list[dict]) -> dict:
        return {**super().method_block(runs), "fscil_summary": fscil_summary(runs)}

    def metrics_csv(self, results: dict) -> str:
        return super().metrics_csv(results) + fscil_csv_lines(results)


def run(cfg: ExperimentConfig, run_dir: str | Path, *, resume: bool = False) -> dict:
    """Run ``phase: fscil`` of ``cfg`` into ``run_dir``; returns results.json's dict."""
    return FSCILRunner(cfg, run_dir).run(resume=resume)
