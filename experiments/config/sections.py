"""The experiment config: one typed dataclass per section (a YAML file overlays it:
:mod:`~cfer.experiments.config.load`).

Sections: dataset, benchmark, model, training (the training knobs every strategy
shares, :class:`cfer.strategies.training.TrainingConfig`), strategies (which methods,
each method's own hyperparameters under ``params.<method>``, per-method
``overrides`` of the training knobs), protocol (orders, folds, seeds, paper |
heldout), evaluation, output, runner.

Over 400 lines: one dataclass per config section, the whole schema in one place (docs/config.md
is generated from it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from cfer.benchmarks.readers.rafdb import VARIANT, Variant
from cfer.benchmarks.scenario import IMAGE_SIZE
from cfer.benchmarks.splits import N_FOLDS, VALID_FRACTION
from cfer.benchmarks.synthetic_faces.config import SIZE, SUBJECTS
from cfer.benchmarks.transforms import AugmentConfig
from cfer.core.typed import ConfigError, overlay
from cfer.experiments.config.tune_section import TuneConfig
from cfer.plugins.speed.config import FastDataConfig
from cfer.strategies.models.config import ModelConfig
from cfer.strategies.registry import StrategyEntry, available, define, entry
from cfer.strategies.training import TrainingConfig

#: The largest image side a config may ask for (model input, synthetic faces): 1024 px is
#: four times the paper's 224; a larger one is a typo that would allocate terabytes.
MAX_IMAGE_SIZE = 1024
#: Seeds are 32-bit: numpy's and torch's seeding (Avalanche's RNGManager) take 0..2**32-1.
MAX_SEED = 2**32 - 1
#: The most class orders a config may ask for (the paper uses 10).
MAX_ORDERS = 1000


def check_seed(value: int, *, key: str, where: str) -> None:
    """A seed in 0..:data:`MAX_SEED` (one-line ConfigError naming ``key`` otherwise)."""
    if not 0 <= value <= MAX_SEED:
        raise ConfigError(f"{where}: key '{key}': seeds must be in 0..{MAX_SEED}, got {value}")


@dataclass(frozen=True)
class DatasetConfig:
    """Which data set to read. ``kind: synthetic`` needs no files."""

    # the reader: synthetic (built in, no files), cfee, rafdb, rafce (needs rafdb_root), folder
    # (one folder per class, needs spec); docs/datasets.md
    kind: Literal["synthetic", "cfee", "rafdb", "rafce", "folder"] = "synthetic"
    root: str | None = None  # the data set folder (not used by synthetic)
    include_neutral: bool = False  # CFEE/RAF-DB: keep neutral in the basic block
    skip_missing: bool = False  # RAF-DB: continue past listed images that are missing
    spec: str | dict[str, Any] | None = None  # folder: YAML path (or mapping) naming basic/compound folders
    variant: Variant = VARIANT  # RAF-DB / RAF-CE image folder: aligned | original
    rafdb_root: str | None = None  # rafce: the RAF-DB copy that supplies the basic classes
    subjects: int = SUBJECTS  # synthetic: number of subjects (CFEE has 230)
    size: int = SIZE  # synthetic: generated image side in pixels
    seed: int = 0  # synthetic: generator seed
    cache_dir: str | None = None  # decoded-image cache (default ~/.cache/cfer or $CFER_CACHE)

    def validate(self, *, where: str) -> None:
        if self.kind != "synthetic" and not self.root:
            raise ConfigError(f"{where}: key 'dataset.root' is required for dataset.kind={self.kind}")
        if self.kind == "folder" and not self.spec:
            raise ConfigError(f"{where}: key 'dataset.spec' is required for dataset.kind=folder")
        if self.kind == "rafce" and not self.rafdb_root:
            raise ConfigError(f"{where}: key 'dataset.rafdb_root' is required for dataset.kind=rafce "
                              "(RAF-CE has no basic classes; they come from RAF-DB basic)")
        if self.size > MAX_IMAGE_SIZE:
            raise ConfigError(f"{where}: key 'dataset.size' must be <= {MAX_IMAGE_SIZE}, got {self.size}")
        check_seed(self.seed, key="dataset.seed", where=where)


@dataclass(frozen=True)
class BenchmarkConfig:
    image_size: int = IMAGE_SIZE  # side of the square model input
    n_folds: int = N_FOLDS  # subject-disjoint folds (paper: 10 on CFEE)
    valid_fraction: float = VALID_FRACTION  # data sets with an official train/test split only
    compounds: list[str] | None = None  # restrict to these compound classes (default: all)
    # training augmentation; the reference code's Keras layers: experiments/configs/paper_cfee.yaml
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # Run on a data set that lacks some of its expected classes (a basic expression, one of its
    # compounds), reported in the summary and report.md; false: such a data set is an error
    partial_taxonomy: bool = False

    def validate(self, *, where: str) -> None:
        if not 16 <= self.image_size <= MAX_IMAGE_SIZE:
            raise ConfigError(f"{where}: key 'benchmark.image_size' must be in 16..{MAX_IMAGE_SIZE}, "
                              f"got {self.image_size}")


@dataclass(frozen=True)
class StrategiesConfig:
    """Which methods to run, methods of one's own, their hyperparameters, and per-method overrides.

    ``define.<method>``: a method composed of a base strategy and registered plugins
    (``define: {my_method: {base: naive, plugins: [distillation, {psmr: {selection: herding}}]}}``;
    :mod:`cfer.strategies.compose`, docs/extending.md); a base or plugin may be a stock Avalanche
    class, ``avalanche:<Class>`` (docs/avalanche.md).
    ``params.<method>``: laid over the method's params (a zoo strategy's dataclass, declared in
    ``strategies/zoo/<method>.py``, or a composed method's plugins' params: ``params: {lwf:
    {alpha: 2.0}, kd_psmr: {gamma: 0.5}}``).
    ``overrides.<method>``: laid over the shared ``training`` section for that
    method only (``overrides: {joint: {basic_epochs: 8}}``).
    """

    # the registered strategies to run (cfer.strategies.available(); docs/strategies.md)
    methods: list[str] = field(default_factory=lambda: ["naive", "replay", "lwf", "icarl", "kd_psmr",
                                                        "joint"])
    # methods of this config's own: a base strategy plus registered plugins (docs/extending.md)
    define: dict[str, Any] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> its own hyperparameters
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> training keys for it only


@dataclass(frozen=True)
class ProtocolConfig:
    """Orders x folds x seeds, and how validation is done.

    ``heldout`` (default): early-stop on validation subjects, report on test
    subjects. ``paper``: early-stop and report on the same (test) fold, as the
    reference code does; kept only for comparability.
    """

    name: Literal["heldout", "paper"] = "heldout"  # heldout: validation subjects; paper: the test fold
    orders: int = 3  # seeded class orders 0..orders-1 (the paper uses 10)
    class_orders: list[list[str]] | None = None  # explicit orders (override `orders`)
    folds: list[int] = field(default_factory=lambda: [0])  # test folds, each in 0..benchmark.n_folds-1
    seeds: list[int] = field(default_factory=lambda: [0])  # run seeds (weights, shuffles, draws)
    # true: class order k runs with seed seeds[0] + k (phase continual), so each run has its own
    # order, seed and basic model and n counts seed-to-seed variation too; false: every order
    # runs with every seed, orders of one seed sharing its basic model
    seed_per_order: bool = False

    def validate(self, *, where: str) -> None:
        if self.orders < 1 and not self.class_orders:
            raise ConfigError(f"{where}: key 'protocol.orders' must be >= 1")
        if self.orders > MAX_ORDERS:
            raise ConfigError(f"{where}: key 'protocol.orders' must be <= {MAX_ORDERS}, got {self.orders}")
        if not self.folds or not self.seeds:
            raise ConfigError(f"{where}: keys 'protocol.folds' and 'protocol.seeds' must not be empty")
        for seed in self.seeds:
            check_seed(seed, key="protocol.seeds", where=where)
        if self.seed_per_order and len(self.seeds) != 1:
            raise ConfigError(f"{where}: key 'protocol.seeds': with protocol.seed_per_order order k runs "
                              f"with seed seeds[0] + k; give one seed, got {self.seeds}")
        if self.seed_per_order:
            check_seed(self.seeds[0] + max(self.orders, len(self.class_orders or [])) - 1,
                       key="protocol.seeds", where=where)
        orders = [tuple(o) for o in self.class_orders or []]
        twice = sorted({k for k, o in enumerate(orders) if o in orders[:k]})
        if twice:  # the same order twice would count one run as two independent ones
            raise ConfigError(f"{where}: key 'protocol.class_orders[{twice[0]}]' repeats an earlier order; "
                              "each order must be distinct")


@dataclass(frozen=True)
class FewShotConfig:
    """Few-shot phases (``phase: fewshot`` and ``phase: fscil``).

    Paper protocol (fewshot): from the basic model, add one compound class with
    n = 5, 3 or 1 training images, the images repeated to fill a batch.
    """

    shots: list[int] = field(default_factory=lambda: [5, 3, 1])  # paper: 5, 3, 1
    classes: list[str] | None = None  # compound classes to add (default: all in the data set)
    fill_batch: bool = True  # paper: repeat the n images to fill a training batch
    fscil_shots: int = 5  # fscil: shots per compound session

    def validate(self, *, where: str) -> None:
        if not self.shots or any(n < 1 for n in self.shots):
            raise ConfigError(f"{where}: key 'fewshot.shots' must be a non-empty list of integers >= 1")
        if len(set(self.shots)) != len(self.shots):
            raise ConfigError(f"{where}: key 'fewshot.shots': {self.shots} repeats a value (the steps "
                              "would be the same)")
        if self.fscil_shots < 1:
            raise ConfigError(f"{where}: key 'fewshot.fscil_shots' must be >= 1")


@dataclass(frozen=True)
class EvaluationConfig:
    tensorboard: bool = False  # also log to TensorBoard under logs/tb
    wandb: bool = False  # also log to Weights & Biases
    wandb_project: str = "cfer"  # the Weights & Biases project of evaluation.wandb
    confusion_matrix: bool = True  # Avalanche's stream confusion matrix metric
    # Also score each run's final model on the validation subjects of every experience
    # (results.json: runs[].final_valid_accuracy; protocol heldout only). `cfer sweep` turns
    # it on to pick the best grid point on validation, never on the test subjects.
    final_validation: bool = False
    # Grad-CAM at the end of `cfer run` (as `cfer explain RUN_DIR` does; needs output.save_models
    # and captum: pip install "cfer[explain]")
    gradcam: bool = False
    gradcam_images: int = 4  # Grad-CAM: test faces per compound class


@dataclass(frozen=True)
class OutputConfig:
    dir: str | None = None  # run directory (default runs/<name>)
    plots: bool = True  # plots/*.png and report.md at the end (false: `cfer plot RUN_DIR` draws them later)
    # State dicts after every step (models/<method>/<run>/stepNN.pt, listed in results.json under
    # runs[].models; what `cfer explain` reloads): none; first: each method's first run only
    # (order 0, first fold and seed; small_cnn at 32 px: about 1.6 MB a step, 130 MB for the
    # quickstart); all: every run
    save_models: Literal["none", "first", "all"] = "first"
    # Experience-level checkpoints (checkpoints/<method>/<run>/, experiments/run/checkpoint.py):
    # after each experience the run's state is saved, and any restart (--resume, a requeued SLURM
    # task) continues from it with the same numbers; removed when the run's record is saved
    checkpoints: bool = True


@dataclass(frozen=True)
class RayConfig:
    """``runner.backend: ray``: every run (and every shared basic model) is a Ray task
    (experiments/backends/ray_tasks.py; https://docs.ray.io/en/latest/ray-core/tasks.html)."""

    address: str | None = None  # None: start a local Ray; "auto" or "HOST:PORT": join that cluster
    gpus_per_run: float | None = None  # GPUs a run holds (0.25: four runs share a GPU); None: 1 if the
    #                                    cluster has GPUs and runner.device is not cpu, else 0
    cpus_per_run: float = 1.0  # CPUs a run holds (also its torch thread count, at least 1)
    resources: dict[str, float] = field(default_factory=dict)  # custom Ray resources a run holds
    max_retries: int = 3  # times Ray reruns a task whose worker died (Ray's default: 3)

    def validate(self, *, where: str) -> None:
        if self.gpus_per_run is not None and self.gpus_per_run < 0:
            raise ConfigError(f"{where}: key 'runner.ray.gpus_per_run' must be >= 0, got {self.gpus_per_run}")
        if self.gpus_per_run is not None and self.gpus_per_run > 1 and self.gpus_per_run % 1:
            raise ConfigError(f"{where}: key 'runner.ray.gpus_per_run' above 1 must be a whole number, "
                              f"got {self.gpus_per_run}")
        if self.cpus_per_run <= 0:
            raise ConfigError(f"{where}: key 'runner.ray.cpus_per_run' must be > 0, got {self.cpus_per_run}")
        if self.max_retries < 0:
            raise ConfigError(f"{where}: key 'runner.ray.max_retries' must be >= 0, got {self.max_retries}")


@dataclass(frozen=True)
class SlurmConfig:
    """``runner.backend: slurm``: every run is one task of a SLURM job array, submitted with
    submitit (experiments/backends/slurm.py; https://github.com/facebookincubator/submitit).
    Each key maps to the sbatch option of the same name."""

    partition: str | None = None  # --partition (None: the cluster's default)
    time: int = 240  # --time, minutes per task (a task past it is signalled, checkpoints and requeues)
    gpus_per_task: int = 0  # --gpus-per-task (0: CPU tasks; runner.device must then allow cpu)
    cpus_per_task: int = 1  # --cpus-per-task; also each run's torch thread count
    mem: str | None = None  # --mem, e.g. 16G (None: the partition's default)
    account: str | None = None  # --account
    qos: str | None = None  # --qos
    array_parallelism: int = 64  # --array=0-N%P: tasks of the array running at once
    setup: list[str] = field(default_factory=list)  # shell lines before each task (module load ...)
    signal_delay_s: int = 120  # --signal=USR1@N: warning this long before the time limit
    additional_parameters: dict[str, Any] = field(default_factory=dict)  # any other sbatch option

    def validate(self, *, where: str) -> None:
        for key in ("time", "cpus_per_task", "array_parallelism"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}: key 'runner.slurm.{key}' must be >= 1, got {getattr(self, key)}")
        if self.gpus_per_task < 0 or self.signal_delay_s < 0:
            raise ConfigError(f"{where}: keys 'runner.slurm.gpus_per_task' and 'runner.slurm.signal_delay_s' "
                              "must be >= 0")


@dataclass(frozen=True)
class RunnerConfig:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # Where runs execute: local (one after another, in this process), processes (jobs_per_device
    # spawned processes on one device), ray (Ray tasks on a laptop, a multi-GPU node or a cluster),
    # slurm (one task of a SLURM job array per run, runner.slurm).
    backend: Literal["local", "processes", "ray", "slurm"] = "local"
    # processes: runs at once on the device (> 1 with backend local: processes); auto: on the
    # CPU as many as the cores allow at threads_per_run each (2 on 2 cores), on CUDA 1
    jobs_per_device: int | Literal["auto"] = "auto"
    # torch intra-op threads of each run (local and processes; ray: ray.cpus_per_run, slurm:
    # slurm.cpus_per_task). Fixed, so that a run's numbers do not depend on the machine or on how
    # many runs share it; 1 wastes no core (two OpenMP threads spin on a shared CPU) when runs
    # run side by side (docs/speed.md)
    threads_per_run: int = 1
    ray: RayConfig = field(default_factory=RayConfig)
    slurm: SlurmConfig = field(default_factory=SlurmConfig)
    progress: bool = True  # a progress bar per run (false: none)
    # Train experience 0 once per (fold, seed) for every method whose experience 0 trains
    # identically (read from its plugins; naive, replay, lwf and the paper's methods do) and
    # start every class order from it: exact, and saves (orders x methods - 1) basic trainings.
    # Saved under <run dir>/basic/ (also used by --resume).
    share_basic: bool = True
    # Train an offline method (joint) once per (fold, seed), in the first planned order's class
    # numbering, and score that model in every order (its output rows renumbered): saves
    # (orders - 1) trainings on all classes. false: one model per order, as before
    share_offline: bool = True
    # glibc: serve training buffers from the heap and keep freed memory for the next step instead
    # of returning it to the kernel (cfer/core/allocator.py): a tenth less CPU time on the
    # quickstart's runs, the same numbers to the bit; the process keeps up to 1 GiB it freed
    keep_freed_memory: bool = True
    # The best-args file laid under --set (experiments/config/best_args.py, docs/tuning.md): auto
    # (best/<config stem>.yaml beside the config, if any), none, or a path
    best_args: str = "auto"

    def validate(self, *, where: str) -> None:
        if self.jobs_per_device != "auto" and self.jobs_per_device < 1:
            raise ConfigError(f"{where}: key 'runner.jobs_per_device' must be >= 1 or auto, "
                              f"got {self.jobs_per_device}")
        if self.threads_per_run < 1:
            raise ConfigError(f"{where}: key 'runner.threads_per_run' must be >= 1, "
                              f"got {self.threads_per_run}")
        if self.backend == "ray" and self.jobs_per_device not in ("auto", 1):
            raise ConfigError(f"{where}: key 'runner.jobs_per_device' is for backend processes; with "
                              "backend ray set runner.ray.gpus_per_run (0.5: two runs per GPU)")

    @property
    def jobs(self) -> int:
        """``jobs_per_device``, ``auto`` resolved: on the CPU the cores (``os.sched_getaffinity``)
        divided by ``threads_per_run``, on a CUDA device 1 (``runner.device`` auto: CUDA when
        torch finds one; torch is imported only then)."""
        import os

        if self.jobs_per_device != "auto":
            return int(self.jobs_per_device)
        if self.backend in ("ray", "slurm"):
            return 1
        if self.device != "cpu":
            if self.device.startswith("cuda"):
                return 1
            import torch

            if torch.cuda.is_available():
                return 1
        affinity = getattr(os, "sched_getaffinity", None)  # the cores this process may use
        cores = len(affinity(0)) if affinity else (os.cpu_count() or 1)
        return max(1, cores // self.threads_per_run)

    @property
    def effective_backend(self) -> str:
        """``backend``, with more than one job per device (:attr:`jobs`) under ``local``
        meaning ``processes``."""
        return "processes" if self.backend == "local" and self.jobs > 1 else self.backend


@dataclass(frozen=True)
class SweepConfig:
    """``cfer sweep``: a grid of config values, each point run into its own directory
    (experiments/sweep/sweep.py). ``cfer run`` ignores this section."""

    # key -> values, e.g. {training.lr: [1.0e-4, 1.0e-5]}; the grid is every combination
    # (``cfer sweep --grid KEY=V1,V2`` adds to it)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    dir: str | None = None  # the sweep directory (default runs/<name>_sweep)

    def validate(self, *, where: str) -> None:
        for key, values in self.grid.items():
            if not values:
                raise ConfigError(f"{where}: key 'sweep.grid.{key}' must list at least one value")
            if any(v == w for k, v in enumerate(values) for w in values[:k]):  # 1 and 1.0 too: one
                # setting run as two points, tabled as two
                raise ConfigError(f"{where}: key 'sweep.grid.{key}': {values} repeats a value")
            if key.split(".")[0] in ("sweep", "output", "runner"):
                raise ConfigError(f"{where}: key 'sweep.grid.{key}': the grid sets experiment keys, "
                                  f"not {key.split('.')[0]}.*")


def check_name(name: str, *, where: str) -> None:
    """``name`` names the run directory ``runs/<name>``: one plain path component, so that the
    run stays inside ``runs/`` (``output.dir`` puts a run anywhere)."""
    bad = (not name.strip() or name in (".", "..") or any(c in name for c in "/\\\0")
           or any(ord(c) < 32 for c in name))
    if bad:
        raise ConfigError(f"{where}: key 'name': {name!r} is not a plain folder name (no '/', '\\', '..', "
                          "not empty); set output.dir to put the run somewhere else")


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = "quickstart"  # the run's name: runs/<name>/ unless output.dir (default: the file's name)
    # what `cfer run` runs: continual (the class-incremental stream), fewshot (each compound
    # class alone, from n images), fscil (few-shot class-incremental); docs/fewshot.md
    phase: Literal["continual", "fewshot", "fscil"] = "continual"
    # your own plugins, strategies and models: Python files (relative to the config file) or
    # module names, imported before the config is checked; docs/extending.md
    extensions: list[str] = field(default_factory=list)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    data: FastDataConfig = field(default_factory=FastDataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    strategies: StrategiesConfig = field(default_factory=StrategiesConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    fewshot: FewShotConfig = field(default_factory=FewShotConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)  # cfer tune (docs/tuning.md)

    def validate(self, *, where: str) -> None:
        check_name(self.name, where=where)
        defined = {m: self._defined(m, where=where) for m in self.strategies.define}
        known = [*available(), *defined]
        methods = self.strategies.methods
        if len(set(methods)) != len(methods):
            raise ConfigError(f"{where}: key 'strategies.methods': {methods} names a method twice (its runs "
                              "would be counted twice)")
        for m in self.strategies.methods:
            if m not in known and m.startswith("avalanche:"):  # a name, not a folder: define it
                raise ConfigError(f"{where}: key 'strategies.methods': {m!r} is run through a method of "
                                  f"your own: strategies.define.<name>: {{base: {m!r}}}, then "
                                  "strategies.methods: [<name>] (docs/avalanche.md)")
            if m not in known:
                raise ConfigError(f"{where}: key 'strategies.methods': unknown strategy {m!r} "
                                  f"(available: {', '.join(known)})")
        for m in methods:  # every setting of a method that runs, required ones included
            self._params(m, where=where)
        # params and overrides of registered methods not run now are checked too, and kept unused
        for m in self.strategies.params:
            if m not in known:
                raise ConfigError(f"{where}: key 'strategies.params.{m}': unknown strategy {m!r} "
                                  f"(available: {', '.join(known)})")
            self._params(m, where=where)
        for m in self.strategies.overrides:
            if m not in known:
                raise ConfigError(f"{where}: key 'strategies.overrides.{m}': unknown strategy {m!r}")
            self._training(m, where=where)
        from cfer.experiments.config.search_space import check_spaces

        check_spaces(self, where=where)

    def method_entry(self, method: str) -> StrategyEntry:
        """The strategy ``method`` names: one of this config's ``strategies.define``, else a
        registered one."""
        if method in self.strategies.define:
            return self._defined(method, where="config")
        return entry(method)

    def training_for(self, method: str) -> TrainingConfig:
        """The shared training section with ``method``'s ``strategies.overrides`` applied."""
        return self._training(method, where="config")

    def params_for(self, method: str):
        """``method``'s own hyperparameters (``method_entry(method).resolve_params``) with
        ``strategies.params.<method>`` laid over the defaults."""
        return self._params(method, where="config")

    def _defined(self, method: str, *, where: str) -> StrategyEntry:
        return define(method, self.strategies.define[method], where=where,
                      prefix=f"strategies.define.{method}")

    def _training(self, method: str, *, where: str) -> TrainingConfig:
        over = self.strategies.overrides.get(method, {})
        try:
            return overlay(self.training, over, where=where, prefix=f"strategies.overrides.{method}")
        except ConfigError as e:
            names = set(self.method_entry(method).param_keys())
            own = sorted(k for k in over if k in names) if isinstance(over, dict) else []
            if own:  # a method's own hyperparameter set as an override of the shared knobs
                raise ConfigError(f"{e}; '{own[0]}' is a hyperparameter of {method}: set "
                                  f"strategies.params.{method}.{own[0]}") from None
            raise

    def _params(self, method: str, *, where: str):
        data = self.strategies.params.get(method, {})
        try:
            return self.method_entry(method).resolve_params(data, where=where)
        except TypeError as e:
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(f"{where}: key 'strategies.params.{method}': expected a mapping, got "
                              f"{data!r}") from None
