"""What every phase of ``cfer run`` shares: :class:`RunContext`, a config and its run
directory, composed of one part per job.

A phase module (:mod:`~cfer.experiments.run.continual`, :mod:`~cfer.experiments.run.fewshot`,
:mod:`~cfer.experiments.run.fscil`) plans its runs and owns its loop and its results
schema; everything else comes from the parts, once:

- :mod:`~cfer.experiments.run.data`: the decoded data set (read once per process), the
  benchmark of an (order, fold, seed, shots) and the protocol's validation stream;
- :mod:`~cfer.experiments.run.sessions`: the strategy of a method (the one
  ``strategies.build`` call of ``cfer.experiments``) on a fresh model, and the device;
- :mod:`~cfer.experiments.run.basic_store`: the basic-model cache (trained once, saved
  atomically, reloaded);
- :mod:`~cfer.experiments.run.results_store`: ``results.json`` / ``metrics.csv`` reading
  and atomic writing, the phase a results file belongs to, the resume bookkeeping;
- :mod:`~cfer.experiments.run.lock` and :mod:`~cfer.experiments.run.progress`: the run
  directory's lock and the progress bars.

This module starts a run (checks, lock, saved config) and writes the head of every
results.json; the rest of :class:`RunContext` hands each call to its part. torch and
Avalanche are imported inside the functions that need them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from cfer.core.typed import ConfigError, to_dict
from cfer.experiments.config.load import save_config
from cfer.experiments.config.sections import ExperimentConfig
from cfer.experiments.run import environment as env
from cfer.experiments.run.basic_store import BasicModelStore, BasicTraining, train_basic
from cfer.experiments.run.data import RunData
from cfer.experiments.run.extensions import check_extensions, run_extensions
from cfer.experiments.run.results_store import ResultsStore, saved_count
from cfer.experiments.run.sessions import Session, Sessions, resolve_device

log = logging.getLogger(__name__)

#: The folders a run makes in its directory (and the only ones its start-up clean-up looks into).
OWN_FOLDERS = ("basic", "basic_model", "models", "plots", "logs", "checkpoints")


def check_threads(saved, requested, *, run_dir) -> None:
    """Refuse a ``runner`` change on resume (backend, jobs per device) that changes the torch
    thread count of a run: the thread count changes the order of floating-point sums, so
    the remaining runs would not give the numbers of the saved ones."""
    from cfer.experiments.backends import threads_per_run

    before, after = threads_per_run(saved), threads_per_run(requested)
    if before != after:
        raise ConfigError(
            f"--resume {run_dir}: runner.backend {saved.effective_backend} -> {requested.effective_backend} "
            f"(runner.jobs_per_device {saved.jobs_per_device} -> {requested.jobs_per_device}, "
            f"runner.threads_per_run {saved.threads_per_run} -> {requested.threads_per_run}) would train "
            f"the remaining runs with {after} torch threads instead of {before}, which changes their "
            "numbers; keep the saved runner settings, or run into another --out")


class RunContext:
    """A config and its run directory, and what every phase builds from them."""

    def __init__(self, cfg: ExperimentConfig, run_dir: str | Path, *, data=None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.run_data = RunData(cfg, data=data)  # data: a DecodedDataset; None: read on first use
        self.sessions = Sessions(cfg, self.run_data)
        self.basic_models = BasicModelStore()
        self.results = ResultsStore(self.run_dir)
        self.resumes: list[dict] = []  # harmless config changes on resume (results.json: resumes)
        self.lock = None  # the run directory's lock, from start()
        self.extensions = run_extensions(cfg)  # imported here too: a backend's worker process

    # -- the parts' state, where the phases and backends read it ----------------------------
    @property
    def missing_classes(self) -> list[str]:
        """Expected classes the data lacks (partial taxonomy)."""
        return self.run_data.missing_classes

    @property
    def active_bar(self):
        """The open progress bar (training reports its epochs on it)."""
        return self.sessions.active_bar

    @active_bar.setter
    def active_bar(self, bar) -> None:
        self.sessions.active_bar = bar

    @property
    def given_models(self) -> dict[Path, dict]:
        """Basic models handed over by the caller (:attr:`BasicModelStore.given`)."""
        return self.basic_models.given

    @property
    def final_validation(self):
        """The last session's FinalValidationPlugin (evaluation.final_validation), else None."""
        return self.sessions.final_validation

    # -- data, sessions, the basic model -----------------------------------------------------
    def data(self):
        """The configured data set with its decoded images (read once)."""
        return self.run_data.decoded()

    def benchmark(self, *, order: Sequence[str], fold: int, seed: int, shots: int | None = None,
                  shot_repeats: int = 1):
        return self.run_data.benchmark(order=order, fold=fold, seed=seed, shots=shots,
                                       shot_repeats=shot_repeats)

    def valid(self, bm):
        return self.run_data.valid(bm)

    def strategy(self, method: str, bm, model, *, device, log_dir: Path, seed: int, plugins=()):
        return self.sessions.strategy(method, bm, model, device=device, log_dir=log_dir, seed=seed,
                                      plugins=plugins)

    def session(self, method: str, *, order: Sequence[str], fold: int, seed: int, device,
                log_dir: Path, plugins=(), shots: int | None = None, shot_repeats: int = 1,
                state_dict: dict | None = None, label: str | None = None) -> Session:
        return self.sessions.session(method, order=order, fold=fold, seed=seed, device=device,
                                     log_dir=log_dir, plugins=plugins, shots=shots,
                                     shot_repeats=shot_repeats, state_dict=state_dict, label=label)

    def train_basic(self, method: str, *, order: Sequence[str], fold: int, seed: int, device,
                    log_dir: Path, shots: int | None = None, evaluate: bool = False) -> BasicTraining:
        """:func:`~cfer.experiments.run.basic_store.train_basic` in a session of this context
        (``self.session`` is looked up at call time, so that a wrapped one applies)."""
        return train_basic(self.session, method, order=order, fold=fold, seed=seed, device=device,
                           log_dir=log_dir, shots=shots, evaluate=evaluate)

    def cached_model(self, path: Path, *, keys: set[str], train: Callable[[], dict],
                     reuse: bool = True, digest: str | None = None) -> dict:
        return self.basic_models.cached(path, keys=keys, train=train, reuse=reuse, digest=digest)

    def device(self):
        return resolve_device(self.cfg.runner.device)

    # -- the run directory -------------------------------------------------------------------
    def start(self, *, resume: bool) -> dict:
        """Check the config and the run directory, and lock it; returns the results already in
        it when resuming ({} otherwise). Writes nothing but the lock: the phase saves the config
        (:meth:`save_config`) once its plan is made, so that a refused run changes nothing.

        Before any data is read: the whole config is checked (:mod:`~cfer.experiments.config.validate`)
        and the device resolved; the directory must be new, empty or a run directory
        (:mod:`~cfer.experiments.run.ownership`: not a sweep's, not a folder of the user's); it
        is locked for this process (:mod:`~cfer.experiments.run.lock`; released when the context
        is collected, or by the caller's own lock). Refuses to overwrite a run unless resuming,
        a results file of another schema version, and any config change that would change the
        saved runs' numbers (:mod:`~cfer.experiments.config.resume`), whether by ``--set`` or by
        an edit of config.yaml. Then clears the temporary files that killed writers left."""
        import weakref

        from cfer.core.atomic import remove_stale_temporaries
        from cfer.experiments.config.validate import check_config
        from cfer.experiments.run import lock, ownership

        check_config(self.cfg, where="config", paths=True)
        self.device()
        ownership.claim(self.run_dir, kind="run")
        self.lock = lock.acquire(self.run_dir)
        if self.lock.owned:
            weakref.finalize(self, self.lock.release)
        path = self.results.path
        if not resume and path.exists():
            raise ValueError(f"{path}: a run is already here; use "
                             f"--resume {self.run_dir} to continue it, or another --out")
        existing = self.load_results() if resume else {}
        if existing and existing.get("schema_version", 1) != env.SCHEMA_VERSION:
            raise ValueError(f"--resume {self.run_dir}: {path} has schema_version "
                             f"{existing.get('schema_version', 1)}, this cfer writes {env.SCHEMA_VERSION}; "
                             "a resumed run would mix the two: run the config into another --out")
        self._check_saved_config(resume=resume, existing=existing)
        check_extensions(existing.get("extensions", []), self.extensions, run_dir=self.run_dir)
        remove_stale_temporaries(self.run_dir, subfolders=OWN_FOLDERS)
        return existing

    def save_config(self) -> None:
        """Save the resolved config as the run directory's ``config.yaml`` (what ``--resume`` reads)."""
        from cfer.experiments.run.ownership import RUN_HEADER

        save_config(self.cfg, self.run_dir / "config.yaml", header=RUN_HEADER)

    def _check_saved_config(self, *, resume: bool, existing: dict) -> None:
        """Compare ``config.yaml`` of the run directory (if any), and the config its saved runs
        were computed with (results.json), with this config: refuse a change of results, record
        the harmless ones (``resumes`` of results.json)."""
        from cfer.core.typed import overlay, read_yaml
        from cfer.experiments.config.resume import check_recorded_config, check_same_experiment

        saved_path = self.run_dir / "config.yaml"
        self.resumes = list(existing.get("resumes") or [])
        n_saved = saved_count(existing)
        recorded = existing.get("config") if resume else None
        reused = any((self.run_dir / "basic").glob("*.pt"))  # what a new run would pick up
        if not saved_path.is_file() or not (resume or reused):
            if isinstance(recorded, dict):
                check_recorded_config(recorded, to_dict(self.cfg), run_dir=self.run_dir, n_saved=n_saved)
            return
        saved_cfg = overlay(ExperimentConfig(), read_yaml(saved_path), where=str(saved_path))
        saved = to_dict(saved_cfg)
        changed = check_same_experiment(saved, to_dict(self.cfg), run_dir=self.run_dir, resume=resume,
                                        n_saved=n_saved)
        if isinstance(recorded, dict):  # config.yaml edited by hand since the runs were saved
            check_recorded_config(recorded, saved, run_dir=self.run_dir, n_saved=n_saved)
        if resume:
            check_threads(saved_cfg.runner, self.cfg.runner, run_dir=self.run_dir)
        if changed:
            log.info("%s: changed on resume: %s", self.run_dir,
                     ", ".join(f"{k} {v['from']} -> {v['to']}" for k, v in changed.items()))
            self.resumes.append({"changed": changed, "runs_saved_before": n_saved})

    def results_head(self) -> dict:
        """The first keys of every results.json: the schema version, the environment (versions,
        commit, device, numerics; :mod:`~cfer.experiments.run.environment`), the config, a config
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
        if self.extensions:
            head["extensions"] = self.extensions
        if self.resumes:
            head["resumes"] = self.resumes
        from cfer.experiments.config.best_args import record

        if record(self.cfg):  # the best-args file laid under --set (cfer tune)
            head["best_args"] = record(self.cfg)
        return head

    def load_results(self) -> dict:
        """results.json of the run directory ({} when there is none yet)."""
        return self.results.load()

    def write_results(self, results: dict, metrics_csv: str) -> None:
        """results.json and metrics.csv, each written atomically."""
        self.results.write(results, metrics_csv)

    def log_resume(self, done: int, total: int, what: str = "runs") -> None:
        log.info("resuming %s: %d of %d %s already done", self.run_dir, done, total, what)

    def plan(self, *, done: int, total: int, what: str = "runs", resume: bool) -> None:
        """Note the plan (``total`` runs, ``done`` of them already saved) in the run's lock
        file, for ``cfer run``'s Ctrl-C message; log it when resuming."""
        if self.lock is not None:
            self.lock.note(planned=total, what=what)
        if resume:
            self.log_resume(done, total, what)

    def progress(self, *, total: int, desc: str, unit: str):
        """A tqdm bar (off with ``runner.progress: false``) that stays as the run's line when
        done; strategies built while it is open show their experience, epoch and loss on it
        (:mod:`~cfer.experiments.run.progress`)."""
        from cfer.experiments.run.progress import run_bar

        return run_bar(self.sessions, total=total, desc=desc, unit=unit, enabled=self.cfg.runner.progress)
