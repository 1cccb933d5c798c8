"""``phase: continual``: every method x class order x fold x seed, one Avalanche run each.

Each run builds its benchmark and strategy from scratch with its own seed,
so runs are independent: results are written (atomically) after every
finished run, and ``--resume`` skips the runs already in ``results.json``
and gives the same final numbers as an uninterrupted run. The report of this
phase is :mod:`cfer.experiments.report.continual`.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from cfer.experiments.backends import execute, threads_per_run
from cfer.experiments.config.sections import ExperimentConfig
from cfer.experiments.run.basic_phase import log_sharing, refuse_other_basic_models
from cfer.experiments.run.context import RunContext

# the plan's names, imported from here by callers since before they had their own module
from cfer.experiments.run.plan import RunSpec, distinct_orders, plan_runs  # noqa: F401
from cfer.experiments.run.records import memory_record, metrics_csv
from cfer.experiments.run.results_store import add_in_plan_order, is_done, planned

log = logging.getLogger(__name__)


class ContinualRunner:
    """Runs a config's methods x orders x folds x seeds into a run directory.

    Subclasses change the stream (:attr:`shots`) and extend the records
    (:meth:`extend_record`, :meth:`method_block`, :meth:`metrics_csv`), as
    :class:`cfer.experiments.run.fscil.FSCILRunner` does.
    """

    def __init__(self, cfg: ExperimentConfig, run_dir: str | Path, *, data=None):
        self.ctx = RunContext(cfg, run_dir, data=data)
        self.cfg = cfg
        self.run_dir = self.ctx.run_dir
        self._keys: dict[tuple[str, int, int], str] = {}  # (method, fold, seed) -> basic-phase digest

    # -- what a subclass changes -------------------------------------------------------------
    @property
    def shots(self) -> int | None:
        """Training images per compound class (None: all)."""
        return None

    def extend_record(self, rec: dict) -> dict:
        return rec

    def method_block(self, runs: list[dict]) -> dict:
        """A method's entry of results.json: its runs and their summary."""
        from cfer.core.metrics import summarize_runs

        return {"runs": runs, "summary": summarize_runs(runs)}

    def metrics_csv(self, results: dict) -> str:
        return metrics_csv(results)

    def scored_stream(self, bm):
        """The stream every step is scored on (cfer tune's trials: validation, experiments/tune)."""
        return bm.test_stream

    # -- pieces ------------------------------------------------------------------------------
    def benchmark(self, spec: RunSpec):
        return self.ctx.benchmark(order=spec.order, fold=spec.fold, seed=spec.seed, shots=self.shots)

    def write_results(self, results: dict) -> None:
        # Methods with no finished run yet are left out until they have one.
        done = {"methods": {m: self.method_block(b["runs"])
                            for m, b in results["methods"].items() if b["runs"]}}
        out = {**results, **done}
        self.ctx.write_results(out, self.metrics_csv(out))

    def model_path(self, spec: RunSpec, step: int | None) -> Path | None:
        """Where the state dict after ``step`` of ``spec`` is saved (``step`` None: the one model
        of an offline method), or None when ``output.save_models`` keeps none for this run."""
        keep = self.cfg.output.save_models
        first = (spec.order_index, spec.fold, spec.seed) == (0, self.cfg.protocol.folds[0],
                                                           self.cfg.protocol.seeds[0])
        if keep == "none" or (keep == "first" and not first):
            return None
        return self.run_dir / "models" / spec.slug / ("final.pt" if step is None else f"step{step:02d}.pt")

    def save_model(self, spec: RunSpec, step: int | None, model) -> str | None:
        """Save ``model``'s state dict (CPU, atomically) after ``step``; its path relative to the
        run directory (what results.json lists under ``runs[].models``)."""
        from cfer.experiments.run.basic_store import state_to_cpu
        from cfer.experiments.run.model_files import save_state

        path = self.model_path(spec, step)
        if path is None:
            return None
        state = state_to_cpu(getattr(model, "_orig_mod", model))  # not torch.compile's wrapper
        save_state(path, state, run_dir=self.run_dir)
        return path.relative_to(self.run_dir).as_posix()

    def checkpoint(self, spec: RunSpec):
        """The experience-level checkpoint of ``spec`` (:mod:`~cfer.experiments.run.checkpoint`),
        or None (``output.checkpoints: false``, or an offline method: it trains once)."""
        from cfer.experiments.run.checkpoint import RunCheckpoint
        from cfer.experiments.run.environment import run_config_digests

        if not self.cfg.output.checkpoints or self.cfg.method_entry(spec.method).offline:
            return None
        identity = {"order": list(spec.order), "order_index": spec.order_index, "fold": spec.fold,
                    "seed": spec.seed, "shots": self.shots}
        return RunCheckpoint(self.run_dir / "checkpoints" / spec.slug, identity=identity,
                             digest=run_config_digests(self.cfg)[spec.method], run_dir=self.run_dir)

    def basic_path(self, spec: RunSpec) -> Path:
        """The basic model of ``spec``: one file per basic-phase digest, shared by every method
        whose experience 0 trains identically (:mod:`~cfer.experiments.run.basic_phase`)."""
        return self.run_dir / "basic" / f"fold{spec.fold}_seed{spec.seed}_{self.basic_digest(spec)}.pt"

    def basic_digest(self, spec: RunSpec) -> str:
        """The basic-phase digest the basic model of ``spec`` is named by, saved with and checked
        against (``spec.basic_key``, else computed now)."""
        return spec.basic_key or self.keyed([spec])[0].basic_key

    def keyed(self, specs: list[RunSpec]) -> list[RunSpec]:
        """``specs`` with the basic-phase digest of each run that starts from a shared basic model
        (``basic_key``): each method is built (not trained) once per (fold, seed) and its
        experience 0 described (:func:`~cfer.experiments.run.basic_phase.fingerprint`)."""
        from cfer.experiments.run.basic_phase import basic_phase_digest, probe

        shared = [s for s in specs if self._may_share(s) and s.basic_key is None]
        for fold, seed in dict.fromkeys((s.fold, s.seed) for s in shared):
            here = [s for s in shared if (s.fold, s.seed) == (fold, seed)]
            todo = [m for m in dict.fromkeys(s.method for s in here) if (m, fold, seed) not in self._keys]
            if todo:
                phases = probe(self.ctx, todo, order=here[0].order, fold=fold, seed=seed, shots=self.shots)
                for m, phase in phases.items():
                    # None: a plugin's state depends on the training steps themselves, which
                    # priming from shared weights would skip (basic_phase.primable)
                    self._keys[(m, fold, seed)] = (basic_phase_digest(
                        self.cfg, m, phase, fold=fold, seed=seed, shots=self.shots)
                        if phase["primable"] else None)
        return [dataclasses.replace(s, basic_key=self._keys.get((s.method, s.fold, s.seed)))
                if self._may_share(s) and s.basic_key is None else s for s in specs]

    def _may_share(self, spec: RunSpec) -> bool:
        return self.cfg.runner.share_basic and not self.cfg.method_entry(spec.method).offline

    def uses_shared_basic(self, spec: RunSpec) -> bool:
        """Whether ``spec`` starts from a shared basic model: ``runner.share_basic``, a method
        trained continually, and no plugin whose state priming cannot rebuild."""
        return self._may_share(spec) and self.basic_digest(spec) is not None

    def uses_shared_offline(self, spec: RunSpec) -> bool:
        """Whether ``spec`` scores an offline model trained once for its (method, fold, seed)
        (``runner.share_offline``; :mod:`~cfer.experiments.run.offline_model`)."""
        return (self.cfg.runner.share_offline and spec.offline_order is not None
                and self.cfg.method_entry(spec.method).offline)

    def offline_path(self, spec: RunSpec) -> Path:
        name = f"{spec.method}_fold{spec.fold}_seed{spec.seed}_{self._offline_digest(spec)}.pt"
        return self.run_dir / "offline" / name

    def _offline_digest(self, spec: RunSpec) -> str:
        from cfer.experiments.run.offline_model import offline_digest

        return offline_digest(self.cfg, spec.method, fold=spec.fold, seed=spec.seed, shots=self.shots,
                              order=spec.offline_order)

    def offline_state(self, spec: RunSpec, *, device) -> dict:
        """The offline model ``spec`` scores, trained once (in ``spec.offline_order``) and saved."""
        from cfer.experiments.run import offline_model

        path = self.offline_path(spec)

        def train() -> dict:
            log_dir = self.run_dir / "logs" / "offline" / path.stem
            return offline_model.train(self.ctx, spec, order=spec.offline_order, device=device,
                                       log_dir=log_dir, shots=self.shots)

        return self.ctx.cached_model(path, keys=offline_model.SAVED_KEYS, train=train,
                                     digest=self._offline_digest(spec))

    def shared_path(self, spec: RunSpec) -> Path | None:
        """The file of the model ``spec`` starts from that other runs share, which a backend
        trains once before them (:meth:`shared_state`): its basic model, or its offline model;
        None when the run trains everything itself."""
        if self.uses_shared_basic(spec):
            return self.basic_path(spec)
        return self.offline_path(spec) if self.uses_shared_offline(spec) else None

    def shared_state(self, spec: RunSpec, *, device) -> dict:
        """The shared model at :meth:`shared_path`, trained and saved if it is not yet."""
        if self.uses_shared_basic(spec):
            return self.basic_state(spec, device=device)
        return self.offline_state(spec, device=device)

    def basic_state(self, spec: RunSpec, *, device) -> dict:
        """The model after experience 0 of (method, fold, seed), trained once and saved.

        Every class order has the same basic block, so experience 0 trains the same way in
        every order, and in every method of the same basic-phase digest (:meth:`keyed`);
        sharing it is exact, not an approximation (tests/test_basic_phase.py)."""
        def train() -> dict:
            log_dir = self.run_dir / "logs" / "basic" / self.basic_path(spec).stem
            basic = self.ctx.train_basic(spec.method, order=spec.order, fold=spec.fold, seed=spec.seed,
                                         shots=self.shots, device=device, log_dir=log_dir)
            return {"state_dict": basic.state_dict, "train_seconds": basic.seconds, "images": basic.images}

        return self.ctx.cached_model(self.basic_path(spec), keys={"state_dict", "train_seconds", "images"},
                                     train=train, digest=self.basic_digest(spec))

    # -- one run -----------------------------------------------------------------------------
    def run_one(self, spec: RunSpec, *, device, progress=None) -> dict:
        from cfer.core.metric_definitions import run_record
        from cfer.experiments.run import offline_model
        from cfer.experiments.run.basic_phase import primable
        from cfer.experiments.run.checkpoint import fast_forward
        from cfer.plugins.run.preemption import StopAtEpochBoundary
        from cfer.plugins.run.preemption import check as check_stop
        from cfer.plugins.run.start_from_weights import StartFromWeightsPlugin
        from cfer.plugins.speed.one_pass import one_pass
        from cfer.plugins.speed.throughput import ThroughputPlugin

        offline = self.cfg.method_entry(spec.method).offline
        # Its basic model, or its offline model, trained once for the fold and seed (else None).
        shared = self.shared_state(spec, device=device) if self.shared_path(spec) is not None else None
        checkpoint = self.checkpoint(spec)
        meter, primer = ThroughputPlugin(), StartFromWeightsPlugin()
        # On a stop request (SIGUSR1 under SLURM) the run ends at its next epoch boundary.
        session = self.ctx.session(spec.method, order=spec.order, fold=spec.fold, seed=spec.seed,
                                   shots=self.shots, device=device, log_dir=self.run_dir / "logs" / spec.slug,
                                   plugins=[meter, primer, StopAtEpochBoundary()], label=spec.label)
        bm, strategy, valid = session.benchmark, session.strategy, session.valid
        if checkpoint is not None and not primable(strategy):
            # Its state is built from the training steps themselves: restart such a run from
            # its first experience rather than resume it from weights (basic_phase.primable).
            checkpoint = None
        info = bm.info
        steps = []
        models: list[str | None] = []  # state dict saved after each step (output.save_models)

        def evaluate(i: int) -> None:
            # One pass over the seen test data, split per experience (cfer.plugins.speed.one_pass).
            strategy.eval(one_pass(self.scored_stream(bm)[: i + 1]))
            steps.append(session.collector.result())
            if progress:
                progress.update(1)

        with session:
            if offline:
                # Joint upper bound: train once on everything (or load the model trained once
                # for the fold and seed, offline_model), then score each step on the classes
                # seen so far (logits of later classes masked).
                if shared is None:
                    strategy.train(bm.train_stream, eval_streams=[valid])
                else:
                    offline_model.load_into(session.model, shared, class_names=info.class_names)
                    session.model.to(device)
                    if self.ctx.final_validation is not None:  # all classes: the same in every order
                        self.ctx.final_validation.accuracy = shared.get("final_valid_accuracy")
                for i in range(len(bm.train_stream)):
                    strategy.seen_class_mask.n_seen = info.n_basic + i
                    evaluate(i)
                models = [self.save_model(spec, None, strategy.model)] * len(bm.train_stream)
            else:
                done = -1  # the last experience a checkpoint holds (-1: none)
                if checkpoint is not None:
                    checkpoint.watch(strategy)
                    saved = checkpoint.load()
                    if saved is not None:  # run its experiences through train() with no epoch
                        log.info("%s: resuming after experience %d (%s)", spec.label, saved.experience,
                                 checkpoint.folder)
                        # As the run itself passed them (a shared basic model is primed with none).
                        fast_forward(strategy, saved, primer=primer, model=session.model,
                                     experiences=bm.train_stream,
                                     eval_streams=lambda i: [] if i == 0 and shared is not None
                                     else [one_pass(valid[: i + 1])])
                        done, steps[:], models[:] = saved.experience, saved.steps, saved.models
                        meter.seconds, meter.images = saved.seconds, saved.images
                        if progress:
                            progress.update(done + 1)
                for i, exp in enumerate(bm.train_stream):
                    if i <= done:
                        continue
                    if i == 0 and shared is not None:
                        # The strategy's after-experience-0 state, from the shared weights.
                        primer.prime(strategy, exp, state_dict=shared["state_dict"], model=session.model)
                    else:
                        strategy.train(exp, eval_streams=[one_pass(valid[: i + 1])])
                    evaluate(i)
                    models.append(self.save_model(spec, i, strategy.model))
                    if checkpoint is not None:
                        checkpoint.save(strategy, experience=i, steps=steps, seconds=meter.seconds,
                                        images=meter.images, models=models)
                        if i + 1 < len(bm.train_stream):
                            check_stop(f"the end of experience {i}")
        rec = {"order": list(spec.order), "fold": spec.fold, "seed": spec.seed,
               "order_index": spec.order_index}
        rec.update(run_record(step_predictions=steps, n_basic=info.n_basic,
                              component_ids=info.component_ids(), class_names=info.class_names))
        # With a shared model (basic or offline), its training time counts in every run that uses it.
        seconds = meter.seconds + (shared["train_seconds"] if shared else 0.0)
        images = meter.images + (shared["images"] if shared else 0)
        rec["train_seconds"] = round(seconds, 3)
        rec["images_per_second"] = round(images / seconds, 2) if seconds > 0 else 0.0
        memory = memory_record(strategy)
        if memory:
            rec["memory"] = memory
        if any(models):
            rec["models"] = models
        return self.extend_record(rec)

    # -- all runs ----------------------------------------------------------------------------
    def run(self, *, resume: bool = False) -> dict:
        from cfer.experiments.run import offline_model

        cfg, ctx = self.cfg, self.ctx
        existing = ctx.start(resume=resume)
        specs = plan_runs(cfg, ctx.data().dataset.class_names)
        specs = self.keyed(specs)
        if cfg.runner.share_offline:
            specs = offline_model.first_orders(specs, offline=lambda m: cfg.method_entry(m).offline)
        log_sharing(specs)
        shared = {self.basic_path(s): s for s in specs if self.uses_shared_basic(s)}
        for path, spec in shared.items():
            self.ctx.basic_models.check_saved(path, digest=self.basic_digest(spec))
        refuse_other_basic_models(self.run_dir, {p: self.basic_digest(s) for p, s in shared.items()})
        ctx.save_config()  # the plan is made and checked: from here on the run writes
        per_method = {m: [s for s in specs if s.method == m] for m in cfg.strategies.methods}
        results = {**ctx.results_head(), "methods": {m: {"runs": []} for m in cfg.strategies.methods}}
        for m, block in existing.get("methods", {}).items():
            if m in results["methods"]:
                results["methods"][m]["runs"] = planned(block.get("runs", []), per_method[m])
        todo = [s for s in specs if not is_done(s, results["methods"][s.method]["runs"])]
        recorded = {r.get("threads") for b in results["methods"].values() for r in b["runs"]} - {None}
        if todo and recorded and recorded != {threads_per_run(cfg.runner)}:  # e.g. another machine
            log.warning("%s: the saved runs trained with %s torch threads, the remaining ones train with "
                        "%d: their last digits can differ (each run's count: results.json runs[].threads)",
                        self.run_dir, "/".join(map(str, sorted(recorded))), threads_per_run(cfg.runner))
        ctx.plan(done=len(specs) - len(todo), total=len(specs), resume=resume)
        p = cfg.protocol
        log.info("%s: %d runs (%d methods x %d class orders x %d folds x %d seeds) into %s",
                 cfg.name, len(specs), len(cfg.strategies.methods), len({s.order_index for s in specs}),
                 len(p.folds), 1 if p.seed_per_order else len(p.seeds), self.run_dir)
        device = ctx.device()

        def record(spec: RunSpec, rec: dict) -> None:
            add_in_plan_order(results["methods"][spec.method]["runs"], rec, per_method[spec.method])
            self.write_results(results)
            checkpoint = self.checkpoint(spec)
            if checkpoint is not None:  # the record is saved: a restart no longer needs it
                checkpoint.remove()
            log.info("%s: final accuracy %.3f", spec.label, rec["step_accuracy"][-1])

        def fail(spec: RunSpec, error: str) -> None:
            failed.append({"run": spec.label, "method": spec.method, "order_index": spec.order_index,
                           "order": list(spec.order), "fold": spec.fold, "seed": spec.seed, "error": error})
            failed.sort(key=lambda f: next(i for i, s in enumerate(specs) if s.label == f["run"]))
            results["failed_runs"] = failed
            self.write_results(results)
            log.error("%s failed: %s", spec.label, error)

        # Runs that failed in this session (processes and ray backends: the others go on);
        # results.json lists them under failed_runs, and --resume runs them again.
        failed: list[dict] = []
        execute(cfg.runner.effective_backend, self, todo, device=device, record=record, fail=fail)
        self.write_results(results)
        return ctx.load_results()


def run(cfg: ExperimentConfig, run_dir: str | Path, *, resume: bool = False) -> dict:
    """Run ``phase: continual`` of ``cfg`` into ``run_dir``; returns results.json's dict."""
    return ContinualRunner(cfg, run_dir).run(resume=resume)
