"""`build(name, ...)`: an Avalanche strategy from the registry, with our common plugins.

Every strategy gets the experience seeder, its own plugins (a composed method's are built from
their params), then:

- :class:`~cfer.strategies.schedule.TrainingSchedule` (basic vs continual lr,
  epochs, mini-batch size and head L2, the two-stage basic training, early
  stopping on the validation stream); ``train()`` also passes each
  experience's ``drop_last`` (:func:`phase_loader_options`);
- :class:`~cfer.strategies.masking.SeenClassMask` (``strategy.seen_class_mask``;
  inactive unless ``n_seen`` is set, as the runner does for ``joint``).

and the caller's plugins, then the speed path's (precision, fast data), and the no-effect
warning (:mod:`cfer.plugins.run.no_effect`: names a plugin that should change the loss but
never does). Every plugin of the
built strategy, the ones its Avalanche class adds itself included, is then ordered by its
phase (:func:`cfer.plugins.registry.order`, which refuses in one line a composition that
breaks a phase's rule).

A factory gets a :class:`BuildContext`: the shared training knobs (``ctx.config``),
the strategy's own typed hyperparameters (``ctx.params``) and the paper's memory rule
for the stream (``ctx.memory()``, computed once, :mod:`cfer.plugins.method.memory`).
Avalanche workarounds live in :mod:`cfer.plugins.workarounds`.

Train-loop contract: ``strategy.train(train_stream[i], eval_streams=[valid_stream[:i+1]])``
then ``strategy.eval(test_stream[:i+1])`` (offline entries: one
``train(train_stream, eval_streams=[valid_stream])``). Evaluating classes the
model has not been trained on raises a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cfer.strategies.registry import StrategyEntry, entry
from cfer.strategies.training import TrainingConfig


@dataclass
class BuildContext:
    """Everything a strategy factory needs; factories only add their own parts.

    ``config``: the shared training knobs; ``params``: the strategy's own
    hyperparameters (an instance of its registered params dataclass).
    """

    model: object  # cfer.strategies.models.network.CLModel
    benchmark: object
    config: TrainingConfig
    params: object
    optimizer: object
    evaluator: object
    device: object
    schedule: object
    mask: object
    eval_every: int
    user_plugins: list = field(default_factory=list)
    n_classes: int = 0  # classes in the whole training stream (K)
    train_size: int = 0  # training images in the whole stream (N)
    seed: int = 0  # the run's seed: experience re-seeding and the plugins' own draws
    seeder: object = None  # cfer.plugins.run.experience_seed.ExperienceSeedPlugin, first of all plugins
    method_plugins: list = field(default_factory=list)  # a composed method's plugins
    sizes: object = None  # the memory sizes, once computed (memory())

    def plugins(self, *specific) -> list:
        """The strategy's plugin list: the experience seeder, the strategy's own (its factory's,
        then a composed method's), then ours, then the caller's. The builder orders the
        strategy's plugins by phase once it is built."""
        seeder = [self.seeder] if self.seeder is not None else []
        return [*seeder, *specific, *self.method_plugins, self.schedule, self.mask, *self.user_plugins]

    def template_kwargs(self, *specific, criterion=None, model=None) -> dict:
        """Keyword arguments of an Avalanche ``SupervisedTemplate`` subclass."""
        from torch.nn import CrossEntropyLoss

        cfg = self.config
        return dict(model=self.model if model is None else model, optimizer=self.optimizer,
                    criterion=CrossEntropyLoss() if criterion is None else criterion,
                    train_mb_size=cfg.batch_size, train_epochs=cfg.epochs,
                    eval_mb_size=cfg.eval_batch_size, device=self.device,
                    plugins=self.plugins(*specific), evaluator=self.evaluator,
                    eval_every=self.eval_every)

    def memory(self):
        """The paper's memory rule over the whole training stream (``N``, ``K``), computed once:
        a :class:`cfer.plugins.method.memory.MemorySizes` (``total`` M, ``per_class`` m, mode)."""
        if self.sizes is None:
            try:
                self.sizes = self.config.memory_rule.sizes(total_train_size=self.train_size,
                                                           total_classes=self.n_classes)
            except ValueError as e:
                raise ValueError(f"training.memory_fraction / mem_per_class: {e}") from None
        return self.sizes

    def memory_sizes(self) -> tuple[int, int]:
        """``(M, m)``: the paper's memory rule (total, per class; :meth:`memory`)."""
        sizes = self.memory()
        return int(sizes.total), int(sizes.per_class)

    def memory_budget(self) -> int:
        """Total exemplars a fixed-size buffer may hold: ``m * K`` (grow) or ``M`` (limit)."""
        return self.memory().budget(self.n_classes)

    def class_balanced_buffer(self, cls=None, *, max_size: int | None = None):
        """A class-balanced buffer (random exemplars) following ``memory_mode``: ``grow``
        keeps ``m`` per class (``adaptive_size=False`` over all K classes); ``limit`` splits
        ``M`` among the classes seen so far. ``max_size`` forces a fixed total (``limit``)."""
        from cfer.plugins.workarounds.baselines import quiet_class_balanced_buffer

        cls = cls or quiet_class_balanced_buffer()
        if max_size is not None:
            return cls(max_size=max_size, adaptive_size=True)
        if self.config.memory_mode == "grow":
            return cls(max_size=self.memory_budget(), adaptive_size=False,
                       total_num_classes=self.n_classes)
        return cls(max_size=self.memory_budget(), adaptive_size=True)

    def replay_batch_size(self) -> int:
        """Stored samples per replay mini-batch: ``replay_batch_size_mem``, else the continual
        experiences' batch size (replay only runs there)."""
        cfg = self.config
        return cfg.replay_batch_size_mem or cfg.continual_batch_size or cfg.batch_size


def make_optimizer(model, config: TrainingConfig):
    """Adam (epsilon ``config.adam_eps``) or SGD over all parameters; the head's hidden Dense
    weights get the reference code's L2 (Keras ``l2(c)`` adds ``c * sum(w**2)`` to the loss:
    weight decay ``2c``, as torch's Adam/SGD add ``decay * w`` to the gradient).

    That group carries its L2 share under :data:`cfer.strategies.schedule.HEAD_L2_KEY`, so
    that the schedule can drop it in continual experiences (``config.continual_head_l2``).
    """
    import torch

    from cfer.strategies.schedule import BASE_DECAY_KEY, HEAD_L2_KEY

    head_l2 = float(getattr(getattr(model, "config", None), "head_l2", 0.0) or 0.0)
    regularized = list(model.regularized_parameters()) if hasattr(model, "regularized_parameters") else []
    reg_ids = {id(p) for p in regularized}
    others = [p for p in model.parameters() if id(p) not in reg_ids]
    groups = [{"params": others, "weight_decay": config.weight_decay}]
    if regularized:
        groups.append({"params": regularized, "weight_decay": config.weight_decay + 2 * head_l2,
                       BASE_DECAY_KEY: config.weight_decay, HEAD_L2_KEY: 2 * head_l2})
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.basic_lr, eps=config.adam_eps)
    return torch.optim.SGD(groups, lr=config.basic_lr, momentum=config.momentum)


def default_evaluator():
    """Accuracy and loss per experience and stream, no loggers (quiet)."""
    import warnings

    from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
    from avalanche.training.plugins import EvaluationPlugin

    with warnings.catch_warnings():  # "No loggers specified": quiet on purpose
        warnings.simplefilter("ignore", UserWarning)
        return EvaluationPlugin(accuracy_metrics(experience=True, stream=True),
                                loss_metrics(experience=True, stream=True), loggers=[])


def schedule_for(model, config: TrainingConfig, *, valid_stream_name: str):
    """The :class:`TrainingSchedule` of ``config`` for ``model`` (its freezing levels)."""
    from cfer.strategies.schedule import Phase, TrainingSchedule

    mcfg = getattr(model, "config", None)
    continual_level = getattr(mcfg, "freeze_below", None)
    watch = dict(monitor=config.basic_monitor, min_delta=config.basic_min_delta, head_l2=True,
                 batch_size=config.batch_size, drop_last=False)
    if config.finetune_epochs > 0:
        basic = [Phase(config.basic_lr, config.basic_epochs, getattr(mcfg, "basic_freeze_below", None),
                       **watch),
                 Phase(config.finetune_lr, config.finetune_epochs,
                       getattr(mcfg, "finetune_freeze_below", None), **watch)]
    else:
        basic = [Phase(config.basic_lr, config.basic_epochs, continual_level, **watch)]
    continual = Phase(config.lr, config.epochs, continual_level, monitor=config.monitor,
                      min_delta=config.min_delta, head_l2=config.continual_head_l2,
                      batch_size=config.continual_batch_size or config.batch_size,
                      drop_last=config.continual_drop_last)
    return TrainingSchedule(basic=basic, continual=continual, patience=config.patience,
                            val_stream_name=valid_stream_name, reset_optimizer=config.reset_optimizer,
                            finetune_best=config.finetune_best, restore_best=config.restore_best)


def phase_loader_options(strategy, schedule) -> None:
    """Make ``train()`` pass each experience's ``drop_last`` (``schedule.drop_last_for``) unless
    the caller gives one.

    Why here: Avalanche reads ``drop_last`` only from the keyword arguments of ``train()``
    (its template's ``make_train_dataloader`` and the replay plugins' loaders take it from
    there), and builds the loader before any plugin's ``before_training_exp``. The fast data
    path replays the batch sampler of that loader, so it drops the same batches. One call
    covers one value: a call over several experiences that need different values is an error
    (except for Avalanche's ``JointTraining``, which trains once, as experience 0).
    """
    from avalanche.training import JointTraining

    train = strategy.train

    def train_with_phase_options(experiences, eval_streams=None, **kwargs):
        if "drop_last" not in kwargs:
            single = hasattr(experiences, "current_experience")
            exps = [experiences] if single else list(experiences)
            experiences = experiences if single else exps  # a generator is read once
            wanted = {schedule.drop_last_for(e.current_experience) for e in exps}
            if isinstance(strategy, JointTraining):
                wanted = {schedule.drop_last_for(exps[0].current_experience)} if exps else set()
            if len(wanted) > 1:
                raise ValueError("train(): these experiences need different drop_last values "
                                 "(training.continual_drop_last applies to continual experiences "
                                 "only): call train() once per experience, or pass drop_last=")
            if wanted:
                kwargs["drop_last"] = wanted.pop()
        return train(experiences, eval_streams, **kwargs)

    strategy.train = train_with_phase_options


def build(name: str | StrategyEntry, *, model, benchmark, config: TrainingConfig, params=None,
          evaluator=None, plugins=(), device="cpu", valid_stream_name: str = "valid", data=None,
          seed: int = 0):
    """Build the registered strategy ``name``.

    Args:
        name: a name from :func:`cfer.strategies.registry.available`, or a strategy entry (a
            config's own composed method: ``ExperimentConfig.method_entry``).
        model: a :class:`~cfer.strategies.models.network.CLModel` from ``build_model``.
        benchmark: the ``compound_benchmark`` the strategy will be trained on
            (memory sizes and class counts are read from its train stream).
        config: the training knobs shared by every strategy.
        params: the strategy's own hyperparameters: None (its defaults), a
            mapping laid over them (``{"alpha": 2.0}`` for ``lwf``; errors name
            ``strategies.params.<name>.<key>``), or an instance of its params
            (``entry(name).resolve_params()``).
        evaluator: an Avalanche ``EvaluationPlugin``; None: accuracy and loss,
            no loggers. Early stopping reads its stream accuracy.
        plugins: extra plugins, after the strategy's own and ours (a registered plugin in its
            phase; another keeps its place).
        device: torch device.
        valid_stream_name: the stream early stopping scores ("valid", or
            "test" for the paper's protocol).
        data: a :class:`cfer.plugins.speed.config.FastDataConfig` (the ``data``
            section); None: the fast path with its defaults (``on_device: auto``).
        seed: the run's seed. Every experience re-seeds all random generators
            from ``(seed, experience)`` (:class:`cfer.plugins.run.experience_seed.ExperienceSeedPlugin`),
            so a run that starts from a shared basic model gives the same numbers
            as one that trains experience 0 itself; plugins draw with it too.

    Returns:
        An Avalanche strategy, with ``strategy.seen_class_mask`` and
        ``strategy.schedule`` attached.
    """
    from cfer.plugins.method.memory import stream_totals
    from cfer.plugins.registry import order as order_plugins
    from cfer.plugins.run.experience_seed import ExperienceSeedPlugin
    from cfer.plugins.run.no_effect import NoEffectWarning
    from cfer.plugins.speed import fast_data, precision
    from cfer.plugins.workarounds.templates import loader_defaults, no_initial_eval
    from cfer.strategies.masking import SeenClassMask
    from cfer.strategies.models.network import CLModel

    e = name if isinstance(name, StrategyEntry) else entry(name)
    name = e.name
    params = e.resolve_params(params, where=f"build({name!r})")
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"build({name!r}): config must be a TrainingConfig, got {type(config).__name__}")
    if not isinstance(model, CLModel):
        raise TypeError(f"build({name!r}): model must come from strategies.models.build_model, "
                        f"got {type(model).__name__}")
    info = getattr(benchmark, "info", None)
    expected = getattr(model.config, "image_size", None)
    if info is not None and expected is not None and expected != info.image_size:
        raise ValueError(f"build({name!r}): model.image_size is {expected} but the benchmark's images "
                         f"are {info.image_size} px")
    n, k = stream_totals(benchmark.train_stream)  # N and K of the memory rule: the whole stream
    ctx = BuildContext(
        model=model, benchmark=benchmark, config=config, params=params,
        optimizer=make_optimizer(model, config),
        evaluator=evaluator if evaluator is not None else default_evaluator(), device=device,
        schedule=schedule_for(model, config, valid_stream_name=valid_stream_name),
        mask=SeenClassMask(), eval_every=1 if config.patience else -1,
        user_plugins=list(plugins), n_classes=k, train_size=n, seed=int(seed),
        seeder=ExperienceSeedPlugin(int(seed)))
    strategy = e.factory(ctx)
    strategy.plugins.append(NoEffectWarning(name))  # a method whose plugins change nothing: say so
    ctx.seeder.install(strategy)
    precision.enable(strategy, config.precision_config)
    fast_data.enable(strategy, data)  # None: the fast path with its defaults
    strategy.plugins[:] = order_plugins(strategy.plugins, where=f"build({name!r})")
    no_initial_eval(strategy)
    phase_loader_options(strategy, ctx.schedule)
    if config.num_workers:
        loader_defaults(strategy, num_workers=config.num_workers)
    strategy.seen_class_mask = ctx.mask
    strategy.schedule = ctx.schedule
    return strategy
