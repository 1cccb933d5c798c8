"""``phase: fewshot``: the paper's few-shot protocol (Maiden & Nakisa, Sec. few-shot).

From the basic model, add each compound class *separately* with n = 5, 3 or
1 training images (drawn from the training subjects, seeded), the images
repeated to fill batches, with augmentation and the configured method (the
paper: distillation from the basic model). The paper scores only the new
class's test images, which a model that always answers the new class aces;
here every (class, n, seed, fold) also gets the accuracy on the basic classes
and on all seven classes, and the harmonic mean of basic accuracy and
new-class recall. The report of this phase is
:mod:`cfer.experiments.report.fewshot`.

Pure metric functions come first (numpy only); torch and Avalanche are
imported inside the functions that train.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfer.core import metric_definitions as M
from cfer.experiments.config.sections import ExperimentConfig
from cfer.experiments.run.context import RunContext
from cfer.experiments.run.data import compound_classes
from cfer.experiments.run.results_store import RESULTS, add_in_plan_order, is_done, planned

log = logging.getLogger(__name__)

#: The per-record metrics of the paper few-shot protocol, in table order.
FEWSHOT_METRICS: tuple[str, ...] = ("new_recall", "all_accuracy", "basic_accuracy", "harmonic_mean")


# --------------------------------------------------------------------------- summaries (pure)

def summarize_fewshot(records: Sequence[Mapping]) -> dict[str, dict[str, dict]]:
    """``{"<n>": {metric: {"mean", "std", "n"}}}`` over classes, seeds and folds, per shot count
    (largest n first)."""
    shots = sorted({int(r["shots"]) for r in records}, reverse=True)
    return {str(n): {m: M.mean_std(r.get(m) for r in records if int(r["shots"]) == n)
                     for m in FEWSHOT_METRICS} for n in shots}


def fewshot_csv(results: Mapping) -> str:
    """Long format: method, class, shots, fold, seed, metric, value."""
    block = results["fewshot"]
    lines = ["method,class,shots,fold,seed,metric,value"]
    for r in block["records"]:
        key = f"{block['method']},{r['class']},{r['shots']},{r['fold']},{r['seed']}"
        for metric in (*FEWSHOT_METRICS, "basic_as_new", "train_seconds"):
            v = r.get(metric)
            if v is not None and math.isfinite(float(v)):
                lines.append(f"{key},{metric},{float(v):.6g}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- planning

@dataclass(frozen=True)
class FewShotSpec:
    """One few-shot step: add ``class_name`` with ``shots`` images to the basic model of
    (``fold``, ``seed``); ``seed`` also draws the images."""

    class_name: str
    shots: int
    seed: int
    fold: int

    def matches(self, rec: Mapping) -> bool:
        return (rec.get("class") == self.class_name and rec.get("shots") == self.shots
                and rec.get("seed") == self.seed and rec.get("fold") == self.fold)

    @property
    def label(self) -> str:
        return f"{self.class_name} n={self.shots} fold {self.fold} seed {self.seed}"

    @property
    def slug(self) -> str:
        name = self.class_name.replace(" ", "_")
        return f"fold{self.fold}_seed{self.seed}/{name}_n{self.shots}"


def fewshot_classes(cfg: ExperimentConfig, class_names: Sequence[str]) -> list[str]:
    """The compound classes to add: ``fewshot.classes``, else ``benchmark.compounds``, else all
    compound classes of the data set (in its order)."""
    for key, chosen in (("fewshot.classes", cfg.fewshot.classes),
                        ("benchmark.compounds", cfg.benchmark.compounds)):
        if chosen is not None:
            chosen = compound_classes(class_names, chosen, key=key)
            if not chosen:
                raise ValueError(f"{key}: empty list; name at least one compound class")
            return list(dict.fromkeys(chosen))
    present = compound_classes(class_names)
    if not present:
        raise ValueError("the data set has no compound classes to add")
    return present


def plan_fewshot(cfg: ExperimentConfig, class_names: Sequence[str]) -> list[FewShotSpec]:
    """Every step of the paper protocol, fold and seed outermost (one basic model each),
    then class, then shots in the configured order."""
    classes = fewshot_classes(cfg, class_names)
    return [FewShotSpec(c, int(n), s, f) for f in cfg.protocol.folds for s in cfg.protocol.seeds
            for c in classes for n in cfg.fewshot.shots]


def fewshot_method(cfg: ExperimentConfig) -> str:
    """The one method the paper protocol runs (``strategies.methods`` must name one)."""
    methods = list(cfg.strategies.methods)
    if len(methods) != 1:
        raise ValueError(f"strategies.methods: phase fewshot runs one method, got {methods} "
                         "(e.g. --set 'strategies.methods=[kd_only]')")
    if cfg.method_entry(methods[0]).offline:
        raise ValueError(f"strategies.methods: {methods[0]!r} trains offline on the whole stream; "
                         "phase fewshot needs a method that learns experience by experience")
    return methods[0]


# --------------------------------------------------------------------------- the run

class FewShotRunner:
    """Runs the paper's few-shot protocol of a config into a run directory."""

    def __init__(self, cfg: ExperimentConfig, run_dir: str | Path, *, data=None):
        self.ctx = RunContext(cfg, run_dir, data=data)
        self.cfg = cfg
        self.run_dir = self.ctx.run_dir
        self._method: str | None = None

    @property
    def method(self) -> str:
        if self._method is None:
            self._method = fewshot_method(self.cfg)
        return self._method

    # -- the basic model, once per (fold, seed) ---------------------------------------------
    def basic_model_path(self, fold: int, seed: int) -> Path:
        return self.run_dir / "basic_model" / f"fold{fold}_seed{seed}.pt"

    def basic_model(self, fold: int, seed: int, first_class: str, *, device, reuse: bool) -> dict:
        """``{"state_dict", "basic_accuracy", "train_seconds"}`` of the basic model of
        (fold, seed): loaded from ``basic_model/`` when ``reuse`` and present, else trained
        (experience 0 with the method's settings), scored on the basic test images and saved."""
        def train() -> dict:
            basic = self.ctx.train_basic(self.method, order=[first_class], fold=fold, seed=seed,
                                         device=device, evaluate=True,
                                         log_dir=self.run_dir / "logs" / "basic" / f"fold{fold}_seed{seed}")
            pred = basic.predictions
            saved = {"state_dict": basic.state_dict, "basic_accuracy": M.accuracy(pred.y_true, pred.y_pred),
                     "train_seconds": round(basic.seconds, 3)}
            log.info("fold %d seed %d: basic model trained, basic test accuracy %.3f",
                     fold, seed, saved["basic_accuracy"])
            return saved

        return self.ctx.cached_model(self.basic_model_path(fold, seed), reuse=reuse, train=train,
                                     keys={"state_dict", "basic_accuracy", "train_seconds"},
                                     digest=self.basic_digest(fold, seed))

    def basic_digest(self, fold: int, seed: int) -> str:
        """The settings digest the basic model of (fold, seed) is saved with and checked against."""
        from cfer.experiments.run.basic_store import basic_model_digest

        return basic_model_digest(self.cfg, self.method, fold=fold, seed=seed)

    # -- one few-shot step -------------------------------------------------------------------
    def run_one(self, spec: FewShotSpec, *, basic_state: Mapping, device, progress=None) -> dict:
        from cfer.plugins.run.start_from_weights import StartFromWeightsPlugin
        from cfer.plugins.speed.throughput import ThroughputPlugin

        cfg = self.cfg
        # The reference code repeats the n images by the batch size: an epoch is n full batches.
        repeats = cfg.training_for(self.method).batch_size if cfg.fewshot.fill_batch else 1
        primer, meter = StartFromWeightsPlugin(), ThroughputPlugin()
        with self.ctx.session(self.method, order=[spec.class_name], fold=spec.fold, seed=spec.seed,
                              shots=spec.shots, shot_repeats=repeats,
                              device=device, log_dir=self.run_dir / "logs" / "fewshot" / spec.slug,
                              plugins=[primer, meter], label=f"{self.method} {spec.label}") as s:
            primer.prime(s.strategy, s.benchmark.train_stream[0], state_dict=basic_state,
                         eval_streams=[s.valid[:1]])
            meter.seconds, meter.images = 0.0, 0
            s.strategy.train(s.benchmark.train_stream[1], eval_streams=[s.valid[:2]])
            s.strategy.eval(s.benchmark.test_stream[:2])
            pred = s.collector.result()
        if progress:
            progress.update(1)
        info = s.benchmark.info
        scores = M.fewshot_scores(pred.y_true, pred.y_pred, n_basic=info.n_basic, new_class=info.n_basic)
        ds = self.ctx.data().dataset
        target = ds.class_index(spec.class_name)
        sampled = [ds.paths[i].name for i in info.split_indices["train"] if ds.labels[i] == target]
        rec = {"class": spec.class_name, "shots": spec.shots, "seed": spec.seed, "fold": spec.fold}
        rec.update({k: float(v) for k, v in scores.items()})
        rec.update({
            "n_test_new": int(np.sum(pred.y_true == info.n_basic)),
            "n_test_basic": int(np.sum(pred.y_true < info.n_basic)),
            "train_images": sampled,
            "train_set_size": len(s.benchmark.train_stream[1].dataset),
            "train_seconds": round(meter.seconds, 3),
        })
        return rec

    # -- results -----------------------------------------------------------------------------
    def write_results(self, results: dict) -> None:
        block = results["fewshot"]
        block["summary"] = summarize_fewshot(block["records"]) if block["records"] else {}
        self.ctx.write_results(results, fewshot_csv(results))

    # -- all steps ---------------------------------------------------------------------------
    def run(self, *, resume: bool = False) -> dict:
        cfg, ctx = self.cfg, self.ctx
        method = self.method
        existing = ctx.start(resume=resume)
        specs = plan_fewshot(cfg, ctx.data().dataset.class_names)
        if resume:  # reused only on resume: checked before the run writes anything
            for fold, seed in dict.fromkeys((s.fold, s.seed) for s in specs):
                ctx.basic_models.check_saved(self.basic_model_path(fold, seed),
                                             digest=self.basic_digest(fold, seed))
        results = {**ctx.results_head(), "methods": {},
                   "fewshot": {"method": method, "protocol": cfg.protocol.name,
                               "shots": [int(n) for n in cfg.fewshot.shots],
                               "fill_batch": cfg.fewshot.fill_batch,
                               "classes": list(dict.fromkeys(s.class_name for s in specs)),
                               "basic_models": [], "records": [], "summary": {}}}
        block = results["fewshot"]
        old = existing.get("fewshot") or {}
        if old and old.get("method") != method:
            raise ValueError(f"{self.run_dir / RESULTS}: holds few-shot results of {old.get('method')!r}, "
                             f"not {method!r}")
        block["records"] = planned(old.get("records", []), specs)
        block["basic_models"] = list(old.get("basic_models", []))
        todo = [s for s in specs if not is_done(s, block["records"])]
        ctx.save_config()  # the plan is made and checked: from here on the run writes
        ctx.plan(done=len(specs) - len(todo), total=len(specs), what="few-shot steps", resume=resume)
        device = ctx.device()
        groups: dict[tuple[int, int], list[FewShotSpec]] = {}
        for s in todo:
            groups.setdefault((s.fold, s.seed), []).append(s)
        done = 0
        for (fold, seed), group in groups.items():
            basic = self.basic_model(fold, seed, group[0].class_name, device=device, reuse=resume)
            entry = {"fold": fold, "seed": seed, "basic_accuracy": float(basic["basic_accuracy"]),
                     "train_seconds": float(basic["train_seconds"])}
            block["basic_models"] = [b for b in block["basic_models"]
                                     if (b.get("fold"), b.get("seed")) != (fold, seed)] + [entry]
            block["basic_models"].sort(key=lambda b: (b["fold"], b["seed"]))
            for spec in group:
                done += 1
                with ctx.progress(total=1, desc=f"[{done}/{len(todo)}] {spec.label}", unit="step") as bar:
                    rec = self.run_one(spec, basic_state=basic["state_dict"], device=device, progress=bar)
                add_in_plan_order(block["records"], rec, specs)
                self.write_results(results)
                log.info("%s: new recall %.3f, basic %.3f, harmonic mean %.3f", spec.label,
                         rec["new_recall"], rec["basic_accuracy"], rec["harmonic_mean"])
        self.write_results(results)
        return results


def run(cfg: ExperimentConfig, run_dir: str | Path, *, resume: bool = False) -> dict:
    """Run ``phase: fewshot`` of ``cfg`` into ``run_dir``; returns results.json's dict."""
    return FewShotRunner(cfg, run_dir).run(resume=resume)
