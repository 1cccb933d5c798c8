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

from cfer.atomic import atomic_write, atomic_write_json, atomic_write_text
from cfer.experiments.config import ExperimentConfig, save_config
from cfer.experiments.configio import to_dict

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

    # -- data and benchmarks -----------------------------------------------------------------
    def data(self):
        """The configured data set with its decoded images (read once)."""
        if self._data is None:
            from cfer.experiments.data import decode, read_dataset

            ds = read_dataset(self.cfg.dataset)
            self._data = decode(ds, image_size=self.cfg.benchmark.image_size,
                                cache_dir=self.cfg.dataset.cache_dir)
        return self._data

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
        """Make the run directory and save the config there; returns the results already in
        it when resuming ({} otherwise). Refuses to overwrite a run unless resuming."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / RESULTS
        if not resume and path.exists():
            raise ValueError(f"{path}: a run is already here; use "
                             f"--resume {self.run_dir} to continue it, or another --out")
        existing = self.load_results() if resume else {}
        save_config(self.cfg, self.run_dir / "config.yaml")
        return existing

    def results_head(self) -> dict:
        """The first keys of every results.json: the config and the data set read."""
        d = self.data()
        head = {"config": to_dict(self.cfg), "dataset": d.dataset.describe()}
        head["dataset"]["unreadable_images"] = [list(f) for f in d.failed]
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

    def device(self):
        return resolve_device(self.cfg.runner.device)

    def progress(self, *, total: int, desc: str, unit: str):
        """A tqdm bar (off with ``runner.progress: false``), removed when done."""
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, disable=not self.cfg.runner.progress, leave=False)
