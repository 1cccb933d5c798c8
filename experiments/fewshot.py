"""Few-shot phases: the paper's protocol (``phase: fewshot``) and FSCIL (``phase: fscil``).

``fewshot`` (Maiden & Nakisa, Sec. few-shot): from the basic model, add each
compound class *separately* with n = 5, 3 or 1 training images (drawn from
the training subjects, seeded), the images repeated to fill batches, with
augmentation and the configured method (the paper: distillation from the
basic model). The paper scores only the new class's test images, which a
model that always answers the new class aces; here every (class, n, seed,
fold) also gets the accuracy on the basic classes and on all seven classes,
and the harmonic mean of basic accuracy and new-class recall.

``fscil``: the standard few-shot class-incremental stream: the full basic
experience, then the compound classes one per session with n shots each, in
the benchmark's class orders. It is the continual runner with few-shot
training splits, so results.json keeps the continual schema, plus per-session
base / novel / harmonic-mean accuracy and the performance drop.

Pure metric functions come first (numpy only); torch and Avalanche are
imported inside the functions that train.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from cfer.experiments.config import ExperimentConfig
from cfer.atomic import atomic_write_json, atomic_write_text
from cfer.experiments.runner import RESULTS, Runner, resolve_device
from cfer.plugins import metrics as M
from cfer.plugins.metrics import fewshot_scores, harmonic_mean  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

#: The per-record metrics of the paper few-shot protocol, in table order.
FEWSHOT_METRICS: tuple[str, ...] = ("new_recall", "all_accuracy", "basic_accuracy", "harmonic_mean")

#: The per-method summary of the FSCIL phase (results.json ``methods.<m>.fscil_summary``).
FSCIL_METRICS: tuple[str, ...] = ("performance_drop", "final_base_accuracy", "final_novel_accuracy",
                                  "final_harmonic_mean", "average_harmonic_mean")


# --------------------------------------------------------------------------- summaries (pure)

def summarize_fewshot(records: Sequence[Mapping]) -> dict[str, dict[str, dict]]:
    """``{"<n>": {metric: {"mean", "std", "n"}}}`` over classes, seeds and folds, per shot count
    (largest n first)."""
    shots = sorted({int(r["shots"]) for r in records}, reverse=True)
    return {str(n): {m: M.mean_std(r.get(m) for r in records if int(r["shots"]) == n)
                     for m in FEWSHOT_METRICS} for n in shots}


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
    hm = [harmonic_mean(b, v) for b, v in zip(base, novel)]
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
    from cfer.benchmarks.taxonomy import is_compound

    present = [c for c in class_names if is_compound(c)]
    for key, chosen in (("fewshot.classes", cfg.fewshot.classes),
                        ("benchmark.compounds", cfg.benchmark.compounds)):
        if chosen is not None:
            unknown = [c for c in chosen if c not in present]
            if unknown:
                raise ValueError(f"{key}: {unknown} not among the data set's compound classes "
                                 f"({', '.join(present)})")
            if not chosen:
                raise ValueError(f"{key}: empty list; name at least one compound class")
            return list(dict.fromkeys(chosen))
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
    from cfer import strategies
    methods = list(cfg.strategies.methods)
    if len(methods) != 1:
        raise ValueError(f"strategies.methods: phase fewshot runs one method, got {methods} "
                         "(e.g. --set 'strategies.methods=[kd_only]')")
    if strategies.entry(methods[0]).offline:
        raise ValueError(f"strategies.methods: {methods[0]!r} trains offline on the whole stream; "
                         "phase fewshot needs a method that learns experience by experience")
    return methods[0]


# --------------------------------------------------------------------------- shared pieces

def build_fewshot_benchmark(runner: Runner, *, order: Sequence[str], fold: int, seed: int,
                            shots: int | None, shot_repeats: int = 1):
    """``compound_benchmark`` with the runner's data and settings, and few-shot training
    splits (``shots`` images per compound class, drawn with ``seed``)."""
    import dataclasses

    from cfer.benchmarks import compound_benchmark
    from cfer.benchmarks.transforms import AugmentConfig, train_transform

    cfg, d = runner.cfg, runner.data()
    aug = AugmentConfig(**dataclasses.asdict(cfg.benchmark.augment))
    return compound_benchmark(
        d.dataset, class_order=list(order), seed=seed, fold=fold, n_folds=cfg.benchmark.n_folds,
        validation=cfg.protocol.name == "heldout", valid_fraction=cfg.benchmark.valid_fraction,
        image_size=cfg.benchmark.image_size, train_transform=train_transform(aug), images=d.images,
        shots=shots, shot_seed=seed, shot_repeats=shot_repeats)


def primer_plugin():
    from cfer.plugins.primer import PrimerPlugin

    return PrimerPlugin()


def prime(strategy, primer, experience, *, eval_streams) -> None:
    primer.prime(strategy, experience, eval_streams=eval_streams)


def _state_to_cpu(model) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _save_torch_atomic(obj, path: Path) -> None:
    import torch

    from cfer.atomic import atomic_write

    atomic_write(path, lambda f: torch.save(obj, f))


# --------------------------------------------------------------------------- paper protocol

class FewShotRunner(Runner):
    """Runs the paper's few-shot protocol of a config into a run directory."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path):
        super().__init__(cfg, run_dir)
        self._method: str | None = None

    @property
    def method(self) -> str:
        if self._method is None:
            self._method = fewshot_method(self.cfg)
        return self._method

    def _valid(self, bm):
        return bm.valid_stream if self.cfg.protocol.name == "heldout" else bm.test_stream

    def _strategy(self, bm, model, *, log_dir: Path, device, plugins=()):
        from cfer import strategies
        from cfer.experiments.evaluation import build_evaluator

        evaluator, collector, closers = build_evaluator(self.cfg.evaluation, info=bm.info, log_dir=log_dir)
        strategy = strategies.build(self.method, model=model, benchmark=bm,
                                    config=self.cfg.training_for(self.method), evaluator=evaluator,
                                    plugins=list(plugins), device=device,
                                    valid_stream_name=self._valid(bm).name)
        return strategy, collector, closers

    # -- the basic model, once per (fold, seed) ---------------------------------------------
    def basic_model_path(self, fold: int, seed: int) -> Path:
        return self.run_dir / "basic_model" / f"fold{fold}_seed{seed}.pt"

    def basic_model(self, fold: int, seed: int, first_class: str, *, device, reuse: bool) -> dict:
        """``{"state_dict", "basic_accuracy", "train_seconds"}`` of the basic model of
        (fold, seed): loaded from ``basic_model/`` when ``reuse`` and present, else trained
        (experience 0 with the method's settings), scored on the basic test images and saved."""
        import torch

        path = self.basic_model_path(fold, seed)
        if reuse and path.is_file():
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if not {"state_dict", "basic_accuracy", "train_seconds"} <= saved.keys():
                raise ValueError(f"{path}: not a basic model saved by this runner; delete it to retrain")
            log.info("fold %d seed %d: basic model loaded from %s", fold, seed, path)
            return saved
        from avalanche.training.determinism.rng_manager import RNGManager

        from cfer.plugins.throughput import ThroughputPlugin
        from cfer.strategies.models import build_model

        RNGManager.set_random_seeds(seed)
        bm = build_fewshot_benchmark(self, order=[first_class], fold=fold, seed=seed, shots=None)
        model = build_model(self.cfg.model, n_classes=bm.info.n_basic)
        meter = ThroughputPlugin()
        strategy, collector, closers = self._strategy(
            bm, model, log_dir=self.run_dir / "logs" / "basic" / f"fold{fold}_seed{seed}",
            device=device, plugins=[meter])
        try:
            strategy.train(bm.train_stream[0], eval_streams=[self._valid(bm)[:1]])
            strategy.eval(bm.test_stream[:1])
            pred = collector.result()
        finally:
            for close in closers:
                close()
        saved = {"state_dict": _state_to_cpu(model),
                 "basic_accuracy": M.accuracy(pred.y_true, pred.y_pred),
                 "train_seconds": round(meter.seconds, 3)}
        _save_torch_atomic(saved, path)
        log.info("fold %d seed %d: basic model trained, basic test accuracy %.3f",
                 fold, seed, saved["basic_accuracy"])
        return saved

    # -- one few-shot step -------------------------------------------------------------------
    def run_one(self, spec: FewShotSpec, *, basic_state: Mapping, device, progress=None) -> dict:
        from avalanche.training.determinism.rng_manager import RNGManager

        from cfer.plugins.throughput import ThroughputPlugin
        from cfer.strategies.models import build_model

        cfg = self.cfg
        RNGManager.set_random_seeds(spec.seed)
        # The reference code repeats the n images by the batch size: an epoch is n full batches.
        repeats = cfg.training_for(self.method).batch_size if cfg.fewshot.fill_batch else 1
        bm = build_fewshot_benchmark(self, order=[spec.class_name], fold=spec.fold, seed=spec.seed,
                                     shots=spec.shots, shot_repeats=repeats)
        info = bm.info
        model = build_model(cfg.model, n_classes=info.n_basic)
        model.load_state_dict(basic_state)
        primer, meter = primer_plugin(), ThroughputPlugin()
        strategy, collector, closers = self._strategy(
            bm, model, log_dir=self.run_dir / "logs" / "fewshot" / spec.slug, device=device,
            plugins=[primer, meter])
        valid = self._valid(bm)
        try:
            prime(strategy, primer, bm.train_stream[0], eval_streams=[valid[:1]])
            meter.seconds, meter.images = 0.0, 0
            strategy.train(bm.train_stream[1], eval_streams=[valid[:2]])
            strategy.eval(bm.test_stream[:2])
            pred = collector.result()
        finally:
            for close in closers:
                close()
        if progress:
            progress.update(1)
        scores = fewshot_scores(pred.y_true, pred.y_pred, n_basic=info.n_basic, new_class=info.n_basic)
        ds = self.data().dataset
        target = ds.class_index(spec.class_name)
        sampled = [ds.paths[i].name for i in info.split_indices["train"] if ds.labels[i] == target]
        rec = {"class": spec.class_name, "shots": spec.shots, "seed": spec.seed, "fold": spec.fold}
        rec.update({k: float(v) for k, v in scores.items()})
        rec.update({
            "n_test_new": int(np.sum(pred.y_true == info.n_basic)),
            "n_test_basic": int(np.sum(pred.y_true < info.n_basic)),
            "train_images": sampled,
            "train_set_size": len(bm.train_stream[1].dataset),
            "train_seconds": round(meter.seconds, 3),
        })
        return rec

    # -- results -----------------------------------------------------------------------------
    def write_results(self, results: dict) -> None:
        block = results["fewshot"]
        block["summary"] = summarize_fewshot(block["records"]) if block["records"] else {}
        atomic_write_json(self.run_dir / RESULTS, results)
        atomic_write_text(self.run_dir / "metrics.csv", fewshot_csv(results))

    # -- all steps ---------------------------------------------------------------------------
    def run(self, *, resume: bool = False) -> dict:
        from tqdm import tqdm

        from cfer.experiments.config import save_config
        from cfer.experiments.configio import to_dict

        cfg = self.cfg
        method = self.method
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not resume and (self.run_dir / RESULTS).exists():
            raise ValueError(f"{self.run_dir / RESULTS}: a run is already here; use "
                             f"--resume {self.run_dir} to continue it, or another --out")
        existing = self.load_results() if resume else {}
        save_config(cfg, self.run_dir / "config.yaml")
        d = self.data()
        specs = plan_fewshot(cfg, d.dataset.class_names)
        results = {"config": to_dict(cfg), "dataset": d.dataset.describe(), "methods": {},
                   "fewshot": {"method": method, "protocol": cfg.protocol.name,
                               "shots": [int(n) for n in cfg.fewshot.shots],
                               "fill_batch": cfg.fewshot.fill_batch,
                               "classes": list(dict.fromkeys(s.class_name for s in specs)),
                               "basic_models": [], "records": [], "summary": {}}}
        results["dataset"]["unreadable_images"] = [list(f) for f in d.failed]
        block = results["fewshot"]
        old = existing.get("fewshot") or {}
        if old and old.get("method") != method:
            raise ValueError(f"{self.run_dir / RESULTS}: holds few-shot results of {old.get('method')!r}, "
                             f"not {method!r}")
        block["records"] = [r for r in old.get("records", []) if any(s.matches(r) for s in specs)]
        block["basic_models"] = list(old.get("basic_models", []))
        todo = [s for s in specs if not any(s.matches(r) for r in block["records"])]
        if resume:
            log.info("resuming %s: %d of %d few-shot steps already done", self.run_dir,
                     len(specs) - len(todo), len(specs))
        device = resolve_device(cfg.runner.device)
        position = {s: k for k, s in enumerate(specs)}
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
                with tqdm(total=1, desc=f"[{done}/{len(todo)}] {spec.label}", unit="step",
                          disable=not cfg.runner.progress, leave=False) as bar:
                    rec = self.run_one(spec, basic_state=basic["state_dict"], device=device, progress=bar)
                block["records"].append(rec)
                # Planned order, so that resumed and uninterrupted runs write the same file.
                block["records"].sort(key=lambda r: min(position[s] for s in specs if s.matches(r)))
                self.write_results(results)
                log.info("%s: new recall %.3f, basic %.3f, harmonic mean %.3f", spec.label,
                         rec["new_recall"], rec["basic_accuracy"], rec["harmonic_mean"])
        self.write_results(results)
        return results


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


# --------------------------------------------------------------------------- FSCIL

class FSCILRunner(Runner):
    """The continual runner on a few-shot stream: the full basic experience, then each
    compound class with ``fewshot.fscil_shots`` training images (drawn with the run's seed).

    The n images are not repeated (standard FSCIL; repeating them would also
    inflate the memory size that the paper's rule derives from the number of
    training images).
    """

    def benchmark(self, spec):
        return build_fewshot_benchmark(self, order=spec.order, fold=spec.fold, seed=spec.seed,
                                       shots=self.cfg.fewshot.fscil_shots)

    def run_one(self, spec, *, device, progress=None) -> dict:
        rec = super().run_one(spec, device=device, progress=progress)
        rec["shots"] = int(self.cfg.fewshot.fscil_shots)
        rec.update(fscil_fields(rec))
        return rec

    def method_block(self, runs: list[dict]) -> dict:
        return {**super().method_block(runs), "fscil_summary": fscil_summary(runs)}

    def metrics_csv(self, results: dict) -> str:
        return super().metrics_csv(results) + fscil_csv_lines(results)


def fscil_csv_lines(results: Mapping) -> str:
    """metrics.csv rows (runner's long format) of the FSCIL fields the continual rows lack."""
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


# --------------------------------------------------------------------------- entry point

def run_fewshot(cfg: ExperimentConfig, run_dir: str | Path, *, resume: bool = False) -> dict:
    """Run ``cfg.phase`` (``fewshot`` or ``fscil``) into ``run_dir``; returns results.json's dict."""
    run_dir = Path(run_dir)
    if cfg.phase == "fewshot":
        return FewShotRunner(cfg, run_dir).run(resume=resume)
    if cfg.phase == "fscil":
        return FSCILRunner(cfg, run_dir).run(resume=resume)
    raise ValueError(f"phase: run_fewshot runs 'fewshot' or 'fscil', got {cfg.phase!r}")
