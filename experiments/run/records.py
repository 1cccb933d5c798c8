"""What a continual run's record and its run directory's metrics.csv hold beyond the metrics
(:mod:`cfer.core.metric_definitions`): the PSMR memory per step, and the long CSV format."""

from __future__ import annotations


def memory_record(strategy) -> list[dict]:
    """Per training experience, the PSMR memory and new-class draw sizes (``[]`` for a
    strategy without the PSMR plugin): what each step really trained on."""
    from cfer.plugins.method.psmr import PredictiveSortingReplayPlugin

    plugin = next((p for p in strategy.plugins if isinstance(p, PredictiveSortingReplayPlugin)), None)
    if plugin is None:
        return []
    out = []
    for h in plugin.history:
        draws = h.get("draws") or []
        out.append({"experience": int(h["experience"]), "memory_size": int(h["memory_size"]),
                    "train_size": int(h["train_size"]),
                    "new_class_images": int(sum(h["new_classes"].values())),
                    "new_class_samples": h["new_class_samples"], "draw": h["draw"],
                    "drawn_per_epoch": [int(sum(d["counts"].values())) for d in draws],
                    "memory_after": int(sum(h["memory_after"].values()))})
    return out


def metrics_csv(results: dict) -> str:
    """Long format: method, order, fold, seed, step, metric, value."""
    lines = ["method,order,fold,seed,step,metric,value"]
    per_step = ("step_accuracy", "uar", "macro_f1", "old_class_accuracy", "basic_accuracy",
                "component_confusion", "new_class_f1")
    for method, block in results["methods"].items():
        for r in block["runs"]:
            key = f"{method},{r.get('order_index', 0)},{r['fold']},{r['seed']}"
            for metric in per_step:
                for step, v in enumerate(r.get(metric) or []):
                    if v is not None:
                        lines.append(f"{key},{step},{metric},{v:.6g}")
            for i, row in enumerate(r["accuracy_matrix"]):
                for j, v in enumerate(row):
                    if v is not None:
                        lines.append(f"{key},{i},accuracy_exp{j},{v:.6g}")
            for metric in ("train_seconds", "images_per_second"):
                lines.append(f"{key},,{metric},{r[metric]:.6g}")
    return "\n".join(lines) + "\n"
