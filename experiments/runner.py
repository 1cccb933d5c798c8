"""``cfer run``: every method x class order x fold x seed, one Avalanche run each.

Each run builds its benchmark and strategy from scratch with its own seed,
so runs are independent: results are written (atomically) after every
finished run, and ``--resume`` skips the runs already in ``results.json``
and gives the same final numbers as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from cfer.experiments.config import ExperimentConfig, load_config, save_config
from cfer.experiments.configio import to_dict
from cfer.atomic import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

RESULTS = "results.json"


@dataclass(frozen=True)
class RunSpec:
    """One (method, class order, fold, seed) run."""

    method: str
    order_index: int
    order: tuple[str, ...]
    fold: int
    seed: int

    def matches(self, rec: dict) -> bool:
        return (list(self.order) == rec["order"] and self.fold == rec["fold"]
                and self.seed == rec["seed"])

    @property
    def label(self) -> str:
        return f"{self.method} order {self.order_index} fold {self.fold} seed {self.seed}"

    @property
    def slug(self) -> str:
        return f"{self.method}/order{self.order_index}_fold{self.fold}_seed{self.seed}"


def plan_runs(cfg: ExperimentConfig, class_names: tuple[str, ...]) -> list[RunSpec]:
    """All runs of a config, in a fixed order (method-major)."""
    from cfer.benchmarks.splits import seeded_order
    from cfer.benchmarks.taxonomy import is_compound

    compounds = [c for c in class_names if is_compound(c)]
    if cfg.benchmark.compounds is not None:
        unknown = [c for c in cfg.benchmark.compounds if c not in compounds]
        if unknown:
            raise ValueError(f"benchmark.compounds: {unknown} not in the data set "
                             f"(has: {', '.join(compounds)})")
        compounds = list(cfg.benchmark.compounds)
    if cfg.protocol.class_orders:
        orders = [tuple(o) for o in cfg.protocol.class_orders]
        for k, o in enumerate(orders):
            if sorted(o) != sorted(compounds):
                raise ValueError(f"protocol.class_orders[{k}]: must be a permutation of {compounds}")
    else:
        orders = [tuple(seeded_order(compounds, k)) for k in range(cfg.protocol.orders)]
    return [RunSpec(m, k, o, f, s) for m in cfg.strategies.methods for k, o in enumerate(orders)
            for f in cfg.protocol.folds for s in cfg.protocol.seeds]


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"runner.device={name}: CUDA is not available on this machine")
    return dev


class Runner:
    """Runs a config into a run directory."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self._data = None

    # -- data --------------------------------------------------------------------------------
    def data(self):
        if self._data is None:
            from cfer.experiments.data import decode, read_dataset

            ds = read_dataset(self.cfg.dataset)
            self._data = decode(ds, image_size=self.cfg.benchmark.image_size,
                                cache_dir=self.cfg.dataset.cache_dir)
        return self._data

    def benchmark(self, spec: RunSpec):
        from cfer.benchmarks import compound_benchmark
        from cfer.benchmarks.transforms import AugmentConfig, train_transform

        d = self.data()
        aug = AugmentConfig(**dataclasses.asdict(self.cfg.benchmark.augment))
        return compound_benchmark(
            d.dataset, class_order=spec.order, seed=spec.seed, fold=spec.fold,
            n_folds=self.cfg.benchmark.n_folds, validation=self.cfg.protocol.name == "heldout",
            valid_fraction=self.cfg.benchmark.valid_fraction, image_size=self.cfg.benchmark.image_size,
            train_transform=train_transform(aug), images=d.images)

    # -- results -----------------------------------------------------------------------------
    def load_results(self) -> dict:
        path = self.run_dir / RESULTS
        if not path.exists():
            return {}
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None

    def write_results(self, results: dict) -> None:
        # Methods with no finished run yet are left out until they have one.
        done = {"methods": {m: self.method_block(b["runs"])
                            for m, b in results["methods"].items() if b["runs"]}}
        out = {**results, **done}
        atomic_write_json(self.run_dir / RESULTS, out)
        atomic_write_text(self.run_dir / "metrics.csv", self.metrics_csv(out))

    def method_block(self, runs: list[dict]) -> dict:
        """A method's entry of results.json: its runs and their summary."""
        from cfer.plugins.metrics import summarize_runs

        return {"runs": runs, "summary": summarize_runs(runs)}

    def metrics_csv(self, results: dict) -> str:
        return metrics_csv(results)

    # -- one run -----------------------------------------------------------------------------
    def _strategy(self, spec: RunSpec, bm, model, *, device, log_dir: Path, plugins=()):
        from cfer import strategies
        from cfer.experiments.evaluation import build_evaluator

        evaluator, collector, closers = build_evaluator(self.cfg.evaluation, info=bm.info, log_dir=log_dir)
        strategy = strategies.build(spec.method, model=model, benchmark=bm,
                                    config=self.cfg.training_for(spec.method), evaluator=evaluator,
                                    plugins=list(plugins), device=device,
                                    valid_stream_name=self.valid(bm).name, data=self.cfg.data)
        return strategy, collector, closers

    def valid(self, bm):
        return bm.valid_stream if self.cfg.protocol.name == "heldout" else bm.test_stream

    def basic_path(self, spec: RunSpec) -> Path:
        return self.run_dir / "basic" / f"{spec.method}_fold{spec.fold}_seed{spec.seed}.pt"

    def basic_state(self, spec: RunSpec, *, device) -> dict:
        """The model after experience 0 of (method, fold, seed), trained once and saved.

        Every class order has the same basic block, so experience 0 trains the
        same way in every order; sharing it is exact, not an approximation."""
        import torch
        from avalanche.training.determinism.rng_manager import RNGManager

        from cfer.atomic import atomic_write
        from cfer.plugins.throughput import ThroughputPlugin
        from cfer.strategies.models import build_model

        path = self.basic_path(spec)
        if path.is_file():
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if not {"state_dict", "train_seconds", "images"} <= saved.keys():
                raise ValueError(f"{path}: not a basic model saved by this runner; delete it to retrain")
            return saved
        RNGManager.set_random_seeds(spec.seed)
        bm = self.benchmark(spec)
        model = build_model(self.cfg.model, n_classes=bm.info.n_basic)
        meter = ThroughputPlugin()
        log_dir = self.run_dir / "logs" / spec.method / f"basic_fold{spec.fold}_seed{spec.seed}"
        strategy, _, closers = self._strategy(spec, bm, model, device=device, log_dir=log_dir,
                                              plugins=[meter])
        try:
            strategy.train(bm.train_stream[0], eval_streams=[self.valid(bm)[:1]])
        finally:
            for close in closers:
                close()
        saved = {"state_dict": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
                 "train_seconds": meter.seconds, "images": meter.images}
        atomic_write(path, lambda f: torch.save(saved, f))
        return saved

    def run_one(self, spec: RunSpec, *, device, progress=None) -> dict:
        from avalanche.training.determinism.rng_manager import RNGManager

        from cfer import strategies
        from cfer.plugins.primer import PrimerPlugin
        from cfer.plugins.throughput import ThroughputPlugin
        from cfer.strategies.models import build_model

        offline = strategies.entry(spec.method).offline
        shared = self.cfg.runner.share_basic and not offline
        basic = self.basic_state(spec, device=device) if shared else None
        RNGManager.set_random_seeds(spec.seed)
        bm = self.benchmark(spec)
        info = bm.info
        model = build_model(self.cfg.model, n_classes=info.n_basic)
        meter, primer = ThroughputPlugin(), PrimerPlugin()
        strategy, collector, closers = self._strategy(spec, bm, model, device=device,
                                                      log_dir=self.run_dir / "logs" / spec.slug,
                                                      plugins=[meter, primer])
        valid = self.valid(bm)
        steps = []

        def evaluate(i: int) -> None:
            strategy.eval(bm.test_stream[: i + 1])
            steps.append(collector.result())
            if progress:
                progress.update(1)

        try:
            if offline:
                # Joint upper bound: train once on everything, then score each step on the
                # classes seen so far (logits of later classes masked).
                strategy.train(bm.train_stream, eval_streams=[valid])
                for i in range(len(bm.train_stream)):
                    strategy.seen_class_mask.n_seen = info.n_basic + i
                    evaluate(i)
            else:
                for i, exp in enumerate(bm.train_stream):
                    if i == 0 and basic is not None:
                        model.load_state_dict(basic["state_dict"])
                        primer.prime(strategy, exp)  # the strategy's after-experience-0 state
                    else:
                        strategy.train(exp, eval_streams=[valid[: i + 1]])
                    evaluate(i)
        finally:
            for close in closers:
                close()
        from cfer.plugins.metrics import run_record

        rec = {"order": list(spec.order), "fold": spec.fold, "seed": spec.seed,
               "order_index": spec.order_index}
        rec.update(run_record(step_predictions=steps, n_basic=info.n_basic,
                              component_ids=info.component_ids(), class_names=info.class_names))
        # With a shared basic model, its training time counts in every run that uses it.
        seconds = meter.seconds + (basic["train_seconds"] if basic else 0.0)
        images = meter.images + (basic["images"] if basic else 0)
        rec["train_seconds"] = round(seconds, 3)
        rec["images_per_second"] = round(images / seconds, 2) if seconds > 0 else 0.0
        return rec

    # -- all runs ----------------------------------------------------------------------------
    def run(self, *, resume: bool = False) -> dict:
        from tqdm import tqdm

        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        existing = self.load_results() if resume else {}
        if not resume and (self.run_dir / RESULTS).exists():
            raise ValueError(f"{self.run_dir / RESULTS}: a run is already here; use "
                             f"--resume {self.run_dir} to continue it, or another --out")
        save_config(cfg, self.run_dir / "config.yaml")
        d = self.data()
        specs = plan_runs(cfg, d.dataset.class_names)
        results = {"config": to_dict(cfg), "dataset": d.dataset.describe(),
                   "methods": {m: {"runs": []} for m in cfg.strategies.methods}}
        results["dataset"]["unreadable_images"] = [list(f) for f in d.failed]
        for m, block in existing.get("methods", {}).items():
            if m in results["methods"]:
                results["methods"][m]["runs"] = [r for r in block.get("runs", [])
                                                 if any(s.method == m and s.matches(r) for s in specs)]
        todo = [s for s in specs if not any(s.matches(r) for r in results["methods"][s.method]["runs"])]
        if resume:
            log.info("resuming %s: %d of %d runs already done", self.run_dir, len(specs) - len(todo), len(specs))
        device = resolve_device(cfg.runner.device)

        def record(spec: RunSpec, rec: dict) -> None:
            runs = results["methods"][spec.method]["runs"]
            runs.append(rec)
            # Keep the planned order so that resumed and uninterrupted runs write the same file.
            runs.sort(key=lambda r: next(i for i, s in enumerate(specs)
                                         if s.method == spec.method and s.matches(r)))
            self.write_results(results)
            log.info("%s: final accuracy %.3f", spec.label, rec["step_accuracy"][-1])

        if cfg.runner.jobs_per_device > 1 and len(todo) > 1:
            self._run_parallel(todo, device=device, record=record)
        else:
            n_steps = 1 + len(specs[0].order) if specs else 0
            for k, spec in enumerate(todo, 1):
                with tqdm(total=n_steps, desc=f"[{k}/{len(todo)}] {spec.label}", unit="exp",
                          disable=not cfg.runner.progress, leave=False) as bar:
                    rec = self.run_one(spec, device=device, progress=bar)
                record(spec, rec)
        self.write_results(results)
        return self.load_results()


    def _run_parallel(self, todo: list[RunSpec], *, device, record) -> None:
        """``runner.jobs_per_device`` runs at once, each in its own spawned process.

        Processes, not threads: random state, autocast and CUDA graphs are
        per process. Shared basic models are trained first, here, so that no
        two workers train the same one; workers return records and only this
        process writes results (in plan order, so resume works unchanged).
        """
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        from tqdm import tqdm

        from cfer import strategies
        jobs = self.cfg.runner.jobs_per_device
        if self.cfg.runner.share_basic:
            for spec in todo:
                if not strategies.entry(spec.method).offline:
                    self.basic_state(spec, device=device)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                                 initializer=_worker_init,
                                 initargs=(type(self), self.cfg, self.run_dir, str(device), jobs)) as pool:
            futures = {pool.submit(_worker_run, spec): spec for spec in todo}
            with tqdm(total=len(todo), desc=f"{len(todo)} runs, {jobs} at a time", unit="run",
                      disable=not self.cfg.runner.progress, leave=False) as bar:
                for fut in as_completed(futures):
                    record(futures[fut], fut.result())
                    bar.update(1)


_WORKER: dict = {}


def _worker_init(runner_cls, cfg, run_dir, device: str, jobs: int) -> None:
    import os

    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // jobs))
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_per_process_memory_fraction(0.9 / jobs, dev)
    _WORKER.update(runner=runner_cls(cfg, run_dir), device=dev)


def _worker_run(spec: RunSpec) -> dict:
    return _WORKER["runner"].run_one(spec, device=_WORKER["device"])


def metrics_csv(results: dict) -> str:
    """Long format: method, order, fold, seed, step, metric, value."""
    lines = ["method,order,fold,seed,step,metric,value"]
    per_step = ("step_accuracy", "uar", "macro_f1", "old_class_accuracy", "basic_accuracy",
                "component_confusion")
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


def default_run_dir(cfg: ExperimentConfig) -> Path:
    return Path(cfg.output.dir) if cfg.output.dir else Path("runs") / cfg.name


def cli_run(args) -> int:
    if args.resume:
        run_dir = Path(args.resume)
        cfg_path = run_dir / "config.yaml"
        if not cfg_path.exists():
            raise FileNotFoundError(f"{cfg_path}: no saved config to resume from")
        if args.config:
            raise ValueError("--resume takes the config saved in the run directory; drop CONFIG")
        cfg = load_config(cfg_path, args.overrides)
    else:
        cfg = load_config(args.config, args.overrides)
        run_dir = Path(args.out) if args.out else default_run_dir(cfg)
    if cfg.phase != "continual":
        from cfer.experiments.fewshot import run_fewshot

        results = run_fewshot(cfg, run_dir, resume=bool(args.resume))
    else:
        results = Runner(cfg, run_dir).run(resume=bool(args.resume))
    from cfer.experiments.report import format_summary_table, write_report

    if cfg.output.plots:
        write_report(run_dir)
    print(format_summary_table(results))
    print(f"\nwrote {run_dir}/: results.json, metrics.csv, report.md, plots/, logs/")
    return 0
