"""What every phase of ``cfer run`` shares: :class:`RunContext` and the results files.

A phase module (:mod:`~cfer.experiments.continual`, :mod:`~cfer.experiments.fewshot`,
:mod:`~cfer.experiments.fscil`) plans its runs and owns its loop and its results
schema; everything else comes from here, once:

- the decoded data set (read once per process) and the benchmark of an
  (order, fold, seed, shots) with the config's settings;
- the strategy of a method (the one ``strategies.build`` call of ``cfer.experiments``:
  training section, ``data`` section, evaluator, validation stream);
- the validation / test stream choice of the protocol;
- the basic-model cache (trained once, saved atomically, reloaded);
- ``results.json`` / ``metrics.csv`` reading and atomic writing, and the phase a
  results file belongs to;
- device resolution, progress bars and the resume bookkeeping of planned runs.

torch and Avalanche are imported inside the functions that need them, so
reports (which import :func:`read_results` and :func:`phase_of`) stay light.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, get_args, get_type_hints

from cfer.core.atomic import atomic_write, atomic_write_json, atomic_write_text
from cfer.core.typed import to_dict
from cfer.experiments import environment as env
from cfer.experiments.config.load import save_config
from cfer.experiments.config.sections import ExperimentConfig

log = logging.getLogger(__name__)

RESULTS = "results.json"
#: The values of ``config.phase`` (the phase a results.json was written by).
PHASES: tuple[str, ...] = get_args(get_type_hints(ExperimentConfig)["phase"])


# --------------------------------------------------------------------------- results files

def phase_of(results: dict) -> str:
    """The phase a results dict was written by: ``config.phase`` ("continual" for files
    written before the phase was recorded)."""
    config = results.get("config")
    phase = (config.get("phase") if isinstance(config, dict) else None) or "continual"
    if phase not in PHASES:
        raise ValueError(f"config.phase: unknown phase {phase!r} (known: {', '.join(PHASES)})")
    return phase


def saved_count(results: dict) -> int:
    """How many runs (few-shot steps for ``phase: fewshot``) a results dict holds."""
    if not results:
        return 0
    if phase_of(results) == "fewshot":
        return len((results.get("fewshot") or {}).get("records") or [])
    return sum(len(b.get("runs") or []) for b in (results.get("methods") or {}).values())


def read_results(run_dir: str | Path) -> dict:
    """results.json of ``run_dir`` as a dict; a one-line FileNotFoundError / ValueError
    naming the file otherwise."""
    path = Path(run_dir) / RESULTS
    if not path.is_file():
        where = "no such directory" if not Path(run_dir).is_dir() else "no results.json in it"
        raise FileNotFoundError(f"{path}: not found ({where}; is {run_dir} a `cfer run` output folder?)")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    if not isinstance(results, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level")
    env.check_schema(results, where=str(path))
    return results


def default_run_dir(cfg: ExperimentConfig) -> Path:
    return Path(cfg.output.dir) if cfg.output.dir else Path("runs") / cfg.name


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"runner.device={name}: CUDA is not available on this machine")
    return dev


def state_to_cpu(model) -> dict:
    """A detached CPU copy of ``model``'s state dict (what the basic-model files hold)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------- planning

def compound_classes(class_names: Sequence[str], chosen: Sequence[str] | None = None, *,
                     key: str = "benchmark.compounds") -> list[str]:
    """The data set's compound classes (in its order), or ``chosen`` (config key ``key``),
    which must all be among them."""
    from cfer.benchmarks.taxonomy import is_compound

    present = [c for c in class_names if is_compound(c)]
    if chosen is None:
        return present
    unknown = [c for c in chosen if c not in present]
    if unknown:
        raise ValueError(f"{key}: {unknown} not among the data set's compound classes "
                         f"({', '.join(present)})")
    return list(chosen)


# --------------------------------------------------------------------------- resume bookkeeping

class Spec(Protocol):
    """A planned run of a phase: it knows the records it produced."""

    def matches(self, rec: dict) -> bool: ...


def is_done(spec: Spec, records: Iterable[dict]) -> bool:
    return any(spec.matches(r) for r in records)


def planned(records: Iterable[dict], specs: Sequence[Spec]) -> list[dict]:
    """The records of a resumed run that some planned spec produced (others are dropped)."""
    return [r for r in records if any(s.matches(r) for s in specs)]


def add_in_plan_order(records: list[dict], rec: dict, specs: Sequence[Spec]) -> None:
    """Append ``rec`` and keep ``records`` in the order of ``specs``, so that resumed and
    uninterrupted runs write the same file."""
    records.append(rec)
    records.sort(key=lambda r: next(i for i, s in enumerate(specs) if s.matches(r)))


# --------------------------------------------------------------------------- one session

@dataclass
class Session:
    """A benchmark, a model and its strategy, built for one training run; ``with`` closes
    the evaluator's loggers."""

    benchmark: object
    model: object
    strategy: object
    collector: object  # predictions of the last evaluated stream
    valid: object  # the stream early stopping scores (protocol-dependent)
    closers: list

    def close(self) -> None:
        for close in self.closers:
            close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class BasicTraining:
    """Experience 0 trained from scratch: the weights (CPU), the training time and images,
    and the predictions on the basic test images when asked for."""

    state_dict: dict
    seconds: float
    images: int
    predictions: object = None


# --------------------------------------------------------------------------- the context

class RunContext:
    """A config and its run directory, and what every phase builds from them."""

    def __init__(self, cfg: ExperimentConfig, run_dir: str | Path, *, data=None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self._data = data  # a DecodedDataset; None: read and decoded on first use
        self.missing_classes: list[str] = []  # expected classes the data lacks (partial taxonomy)
        self.resumes: list[dict] = []  # harmless config changes on resume (results.json: resumes)
        self.active_bar = None  # the open progress bar (training reports its epochs on it)
        self.lock = None  # the run directory's lock, from start()
        # Models handed over by the caller, used by cached_model instead of the file at that
        # path (a Ray task gets its shared basic model from the object store, not from disk).
        self.given_models: dict[Path, dict] = {}
        # The last session's FinalValidationPlugin (evaluation.final_validation), else None.
        self.final_validation = None

    # -- data and benchmarks -----------------------------------------------------------------
    def data(self):
        """The configured data set with its decoded images (read once)."""
        if self._data is None:
            from cfer.experiments.data import decode, read_dataset

            ds = read_dataset(self.cfg.dataset)
            self._data = decode(ds, image_size=self.cfg.benchmark.image_size,
                                cache_dir=self.cfg.dataset.cache_dir)
            self.missing_classes = self._check_taxonomy(self._data.dataset)
        return self._data

    def _check_taxonomy(self, ds) -> list[str]:
        """The expected classes ``ds`` lacks (allowed by ``benchmark.partial_taxonomy``, reported
        in results.json and report.md); else a one-line error naming them."""
        from cfer.experiments.config.validate import check_taxonomy

        missing = check_taxonomy(self.cfg, class_counts=ds.class_counts(), name=ds.root or ds.name)
        if missing:
            log.warning("the data set has no image of %s; running without them "
                        "(benchmark.partial_taxonomy: true)", ", ".join(missing))
        return missing

    def benchmark(self, *, order: Sequence[str], fold: int, seed: int, shots: int | None = None,
                  shot_repeats: int = 1):
        """``compound_benchmark`` of the data with the config's settings; ``shots``: few-shot
        training splits (that many images per compound class, drawn with ``seed``)."""
        from cfer.benchmarks import compound_benchmark
        from cfer.benchmarks.transforms import AugmentConfig, train_transform

        cfg, d = self.cfg, self.data()
        aug = AugmentConfig(**dataclasses.asdict(cfg.benchmark.augment))
        return compound_benchmark(
            d.dataset, class_order=list(order), seed=seed, fold=fold, n_folds=cfg.benchmark.n_folds,
            validation=cfg.protocol.name == "heldout", valid_fraction=cfg.benchmark.valid_fraction,
            image_size=cfg.benchmark.image_size, train_transform=train_transform(aug), images=d.images,
            shots=shots, shot_seed=seed, shot_repeats=shot_repeats)

    def valid(self, bm):
        """The stream early stopping scores: validation subjects (``heldout``), or the test
        fold itself (``paper``, as the reference code)."""
        return bm.valid_stream if self.cfg.protocol.name == "heldout" else bm.test_stream

    # -- strategies --------------------------------------------------------------------------
    def strategy(self, method: str, bm, model, *, device, log_dir: Path, seed: int, plugins=()):
        """``(strategy, collector, closers)``: ``method`` built on ``bm`` and ``model`` with the
        config's training and data sections, our evaluator logging under ``log_dir``, and
        ``plugins`` after the strategy's own."""
        from cfer import strategies
        from cfer.experiments.evaluation import build_evaluator

        evaluator, collector, closers = build_evaluator(self.cfg.evaluation, info=bm.info, log_dir=log_dir)
        if self.active_bar is not None:  # the epoch and loss on the run's progress bar
            from cfer.experiments.progress import epoch_plugin

            plugins = [*plugins, epoch_plugin(self.active_bar)]
        strategy = strategies.build(method, model=model, benchmark=bm,
                                    config=self.cfg.training_for(method),
                                    params=self.cfg.params_for(method), evaluator=evaluator,
                                    plugins=list(plugins), device=device,
                                    valid_stream_name=self.valid(bm).name, data=self.cfg.data,
                                    seed=seed)
        return strategy, collector, closers

    def session(self, method: str, *, order: Sequence[str], fold: int, seed: int, device,
                log_dir: Path, plugins=(), shots: int | None = None, shot_repeats: int = 1,
                state_dict: dict | None = None) -> Session:
        """Seed everything with ``seed``, then build the benchmark, a fresh model (loaded from
        ``state_dict`` if given) and ``method``'s strategy."""
        from avalanche.training.determinism.rng_manager import RNGManager

        from cfer.strategies.models import build_model

        RNGManager.set_random_seeds(seed)
        bm = self.benchmark(order=order, fold=fold, seed=seed, shots=shots, shot_repeats=shot_repeats)
        model = build_model(self.cfg.model, n_classes=bm.info.n_basic)
        if state_dict is not None:
            model.load_state_dict(state_dict)
        self.final_validation = None
        if self.cfg.evaluation.final_validation and self.cfg.protocol.name == "heldout":
            from cfer import strategies
            from cfer.plugins.run.final_validation import FinalValidationPlugin

            n = len(bm.train_stream)
            self.final_validation = FinalValidationPlugin(bm.valid_stream[:n], last_experience=n - 1,
                                                          offline=strategies.entry(method).offline)
            plugins = [*plugins, self.final_validation]
        strategy, collector, closers = self.strategy(method, bm, model, device=device, log_dir=log_dir,
                                                     seed=seed, plugins=plugins)
        return Session(bm, model, strategy, collector, self.valid(bm), closers)

    # -- the basic model ---------------------------------------------------------------------
    def train_basic(self, method: str, *, order: Sequence[str], fold: int, seed: int, device,
                    log_dir: Path, shots: int | None = None, evaluate: bool = False) -> BasicTraining:
        """Train experience 0 (the basic block) of (order, fold, seed) from scratch with
        ``method``; ``evaluate``: also predict the basic test images."""
        from cfer.plugins.speed.throughput import ThroughputPlugin

        meter = ThroughputPlugin()
        with self.session(method, order=order, fold=fold, seed=seed, shots=shots, device=device,
                          log_dir=log_dir, plugins=[meter]) as s:
            s.strategy.train(s.benchmark.train_stream[0], eval_streams=[s.valid[:1]])
            predictions = None
            if evaluate:
                s.strategy.eval(s.benchmark.test_stream[:1])
                predictions = s.collector.result()
        return BasicTraining(state_to_cpu(s.model), meter.seconds, meter.images, predictions)

    def cached_model(self, path: Path, *, keys: set[str], train: Callable[[], dict],
                     reuse: bool = True) -> dict:
        """The dict saved at ``path`` (``torch.save``) when ``reuse`` and present (it must hold
        ``keys``); else ``train()``'s, saved there atomically first."""
        import torch

        if reuse and path in self.given_models:
            return self.given_models[path]
        if reuse and path.is_file():
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if not keys <= saved.keys():
                raise ValueError(f"{path}: not a basic model saved by this runner; delete it to retrain")
            log.info("basic model loaded from %s", path)
            return saved
        saved = train()
        atomic_write(path, lambda f: torch.save(saved, f))
        return saved

    # -- the run directory -------------------------------------------------------------------
    def start(self, *, resume: bool) -> dict:
        """Check the config, make and lock the run directory, and save the config there;
        returns the results already in it when resuming ({} otherwise).

        Before any data is read: the whole config is checked (:mod:`~cfer.experiments.config.validate`)
        and the device resolved; the directory is locked for this process
        (:mod:`~cfer.experiments.lock`; released when the context is collected, or by the
        caller's own lock) and cleared of temporary files that killed writers left. Refuses
        to overwrite a run unless resuming, and any config change that would change the
        saved runs' numbers (:mod:`~cfer.experiments.config.resume`)."""
        import weakref

        from cfer.core.atomic import remove_stale_temporaries
        from cfer.experiments import lock
        from cfer.experiments.config.validate import check_config

        check_config(self.cfg, where="config", paths=True)
        self.device()
        self.lock = lock.acquire(self.run_dir)
        if self.lock.owned:
            weakref.finalize(self, self.lock.release)
        remove_stale_temporaries(self.run_dir)
        path = self.run_dir / RESULTS
        if not resume and path.exists():
            raise ValueError(f"{path}: a run is already here; use "
                             f"--resume {self.run_dir} to continue it, or another --out")
        existing = self.load_results() if resume else {}
        self._check_saved_config(resume=resume, existing=existing)
        save_config(self.cfg, self.run_dir / "config.yaml")
        return existing

    def _check_saved_config(self, *, resume: bool, existing: dict) -> None:
        """Compare ``config.yaml`` of the run directory (if any) with this config: refuse a
        change of results, record the harmless ones (``resumes`` of results.json)."""
        from cfer.core.typed import overlay, read_yaml
        from cfer.experiments.config.resume import check_same_experiment

        saved_path = self.run_dir / "config.yaml"
        self.resumes = list(existing.get("resumes") or [])
        reused = any((self.run_dir / "basic").glob("*.pt"))  # what a new run would pick up
        if not saved_path.is_file() or not (resume or reused):
            return
        saved = to_dict(overlay(ExperimentConfig(), read_yaml(saved_path), where=str(saved_path)))
        n_saved = saved_count(existing)
        changed = check_same_experiment(saved, to_dict(self.cfg), run_dir=self.run_dir, resume=resume,
                                        n_saved=n_saved)
        if changed:
            log.info("%s: changed on resume: %s", self.run_dir,
                     ", ".join(f"{k} {v['from']} -> {v['to']}" for k, v in changed.items()))
            self.resumes.append({"changed": changed, "runs_saved_before": n_saved})

    def results_head(self) -> dict:
        """The first keys of every results.json: the schema version, the environment (versions,
        commit, device, numerics; :mod:`~cfer.experiments.environment`), the config, a config
        digest per method (with order, fold and seed it identifies a run) and the data set read."""
        d = self.data()
        t = self.cfg.training
        head = {"schema_version": env.SCHEMA_VERSION,
                "environment": env.environment(device=self.device(), numerics={
                    "precision": t.precision, "channels_last": t.channels_last, "compile": t.compile}),
                "config": to_dict(self.cfg), "config_digests": env.run_config_digests(self.cfg),
                "dataset": d.dataset.describe()}
        head["dataset"]["unreadable_images"] = [list(f) for f in d.failed]
        if self.missing_classes:
            head["dataset"]["missing_classes"] = list(self.missing_classes)
        if self.resumes:
            head["resumes"] = self.resumes
        return head

    def load_results(self) -> dict:
        """results.json of the run directory ({} when there is none yet)."""
        path = self.run_dir / RESULTS
        if not path.exists():
            return {}
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None

    def write_results(self, results: dict, metrics_csv: str) -> None:
        """results.json and metrics.csv, each written atomically."""
        atomic_write_json(self.run_dir / RESULTS, results)
        atomic_write_text(self.run_dir / "metrics.csv", metrics_csv)

    def log_resume(self, done: int, total: int, what: str = "runs") -> None:
        log.info("resuming %s: %d of %d %s already done", self.run_dir, done, total, what)

    def plan(self, *, done: int, total: int, what: str = "runs", resume: bool) -> None:
        """Note the plan (``total`` runs, ``done`` of them already saved) in the run's lock
        file, for ``cfer run``'s Ctrl-C message; log it when resuming."""
        if self.lock is not None:
            self.lock.note(planned=total, what=what)
        if resume:
            self.log_resume(done, total, what)

    def device(self):
        return resolve_device(self.cfg.runner.device)

    def progress(self, *, total: int, desc: str, unit: str):
        """A tqdm bar (off with ``runner.progress: false``) that stays as the run's line when
        done; strategies built while it is open show their experience, epoch and loss on it
        (:mod:`~cfer.experiments.progress`)."""
        from cfer.experiments.progress import run_bar

        return run_bar(self, total=total, desc=desc, unit=unit, enabled=self.cfg.runner.progress)
