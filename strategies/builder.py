"""`build(name, ...)`: an Avalanche strategy from the registry, with our common plugins.

Every strategy gets, after its own plugins and before the caller's:

- :class:`~strategies.schedule.TrainingSchedule` (basic vs continual lr and
  epochs, the two-stage basic training, early stopping on the validation
  stream);
- :class:`~strategies.masking.SeenClassMask` (``strategy.seen_class_mask``;
  inactive unless ``n_seen`` is set, as the runner does for ``joint``).

Train-loop contract: ``strategy.train(train_stream[i], eval_streams=[valid_stream[:i+1]])``
then ``strategy.eval(test_stream[:i+1])`` (offline entries: one
``train(train_stream, eval_streams=[valid_stream])``). Evaluating classes the
model has not been trained on raises a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cfer.strategies.config import StrategyConfig
from cfer.strategies.registry import entry


@dataclass
class BuildContext:
    """Everything a strategy factory needs; factories only add their own parts."""

    model: object  # strategies.models.CLModel
    benchmark: object
    config: StrategyConfig
    optimizer: object
    evaluator: object
    device: object
    schedule: object
    mask: object
    eval_every: int
    user_plugins: list = field(default_factory=list)
    n_classes: int = 0  # classes in the whole training stream (K)
    train_size: int = 0  # training images in the whole stream (N)

    def plugins(self, *specific) -> list:
        """The strategy's plugin list: its own first, then ours, then the caller's."""
        return [*specific, self.schedule, self.mask, *self.user_plugins]

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

    def memory_sizes(self) -> tuple[int, int]:
        """``(M, m)``: the paper's memory rule (total, per class), as PSMR computes it."""
        from cfer.plugins.psmr import memory_sizes

        cfg = self.config
        try:
            big_m, m = memory_sizes(fraction=cfg.memory_fraction, total_train_size=self.train_size,
                                    total_classes=self.n_classes, mem_per_class=cfg.mem_per_class)
        except ValueError as e:
            raise ValueError(f"training.memory_fraction / mem_per_class: {e}") from None
        return int(big_m), int(m)

    def memory_budget(self) -> int:
        """Total exemplars a fixed-size buffer may hold: ``m * K`` (grow) or ``M`` (limit)."""
        big_m, m = self.memory_sizes()
        return m * self.n_classes if self.config.memory_mode == "grow" else big_m

    def class_balanced_buffer(self, cls=None, *, max_size: int | None = None):
        """A class-balanced buffer (random exemplars) following ``memory_mode``: ``grow``
        keeps ``m`` per class (``adaptive_size=False`` over all K classes); ``limit`` splits
        ``M`` among the classes seen so far. ``max_size`` forces a fixed total (``limit``)."""
        cls = cls or quiet_class_balanced_buffer()
        if max_size is not None:
            return cls(max_size=max_size, adaptive_size=True)
        if self.config.memory_mode == "grow":
            return cls(max_size=self.memory_budget(), adaptive_size=False,
                       total_num_classes=self.n_classes)
        return cls(max_size=self.memory_budget(), adaptive_size=True)

    def distillation(self, **overrides):
        """The paper's :class:`cfer.plugins.distillation.BasicDistillationPlugin` from the config."""
        from cfer.plugins.distillation import BasicDistillationPlugin

        cfg = self.config
        kwargs = dict(temperature=cfg.temperature, gamma=cfg.gamma, decay=cfg.decay,
                      teacher=cfg.teacher)
        kwargs.update(overrides)
        return BasicDistillationPlugin(**kwargs)

    def psmr(self, **overrides):
        """The paper's :class:`cfer.plugins.psmr.PredictiveSortingReplayPlugin` from the config,
        sized over the whole training stream (N, K)."""
        from cfer.plugins.psmr import PredictiveSortingReplayPlugin

        cfg = self.config
        kwargs = dict(fraction=cfg.memory_fraction, mode=cfg.memory_mode,
                      mem_per_class=cfg.mem_per_class, selection=cfg.selection,
                      total_train_size=self.train_size, total_classes=self.n_classes)
        kwargs.update(overrides)
        return PredictiveSortingReplayPlugin(**kwargs)

    def replay_batch_size(self) -> int:
        return self.config.replay_batch_size_mem or self.config.batch_size


def quiet_class_balanced_buffer():
    """Avalanche's ``ClassBalancedBuffer`` whose ``update`` does not warn.

    Why: ReplayPlugin, ER_ACE, BiC and GDumb call the deprecated
    ``storage_policy.update`` (a DeprecationWarning per experience); it only
    forwards to ``post_adapt``, which this calls directly.
    """
    from avalanche.training.storage_policy import ClassBalancedBuffer

    class QuietClassBalancedBuffer(ClassBalancedBuffer):
        def update(self, strategy, **kwargs):
            self.post_adapt(strategy, strategy.experience)

    return QuietClassBalancedBuffer


def make_optimizer(model, config: StrategyConfig):
    """Adam or SGD over all parameters; the head's hidden Dense weights get the
    reference code's L2 (Keras ``l2(c)`` adds ``c * sum(w**2)``: weight decay ``2c``)."""
    import torch

    head_l2 = float(getattr(getattr(model, "config", None), "head_l2", 0.0) or 0.0)
    regularized = list(model.regularized_parameters()) if hasattr(model, "regularized_parameters") else []
    reg_ids = {id(p) for p in regularized}
    others = [p for p in model.parameters() if id(p) not in reg_ids]
    groups = [{"params": others, "weight_decay": config.weight_decay}]
    if regularized:
        groups.append({"params": regularized, "weight_decay": config.weight_decay + 2 * head_l2})
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.basic_lr)
    return torch.optim.SGD(groups, lr=config.basic_lr, momentum=config.momentum)


def default_evaluator():
    """Accuracy and loss per experience and stream, no loggers (quiet)."""
    from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
    from avalanche.training.plugins import EvaluationPlugin

    import warnings

    with warnings.catch_warnings():  # "No loggers specified": quiet on purpose
        warnings.simplefilter("ignore", UserWarning)
        return EvaluationPlugin(accuracy_metrics(experience=True, stream=True),
                                loss_metrics(experience=True, stream=True), loggers=[])


def schedule_for(model, config: StrategyConfig, *, valid_stream_name: str):
    """The :class:`TrainingSchedule` of ``config`` for ``model`` (its freezing levels)."""
    from cfer.strategies.schedule import Phase, TrainingSchedule

    mcfg = getattr(model, "config", None)
    continual_level = getattr(mcfg, "freeze_below", None)
    if config.finetune_epochs > 0:
        basic = [Phase(config.basic_lr, config.basic_epochs, getattr(mcfg, "basic_freeze_below", None)),
                 Phase(config.finetune_lr, config.finetune_epochs,
                       getattr(mcfg, "finetune_freeze_below", None))]
    else:
        basic = [Phase(config.basic_lr, config.basic_epochs, continual_level)]
    return TrainingSchedule(basic=basic, continual=Phase(config.lr, config.epochs, continual_level),
                            patience=config.patience, val_stream_name=valid_stream_name,
                            reset_optimizer=config.reset_optimizer)


def stream_totals(benchmark) -> tuple[int, int]:
    """``(N, K)``: training images and classes over the whole training stream."""
    classes: set[int] = set()
    n = 0
    for exp in benchmark.train_stream:
        n += len(exp.dataset)
        classes.update(int(c) for c in exp.classes_in_this_experience)
    return n, len(classes)


def build(name: str, *, model, benchmark, config: StrategyConfig, evaluator=None, plugins=(),
          device="cpu", valid_stream_name: str = "valid", data=None):
    """Build the registered strategy ``name``.

    Args:
        name: a name from :func:`cfer.strategies.available`.
        model: a :class:`~strategies.models.CLModel` from ``build_model``.
        benchmark: the ``compound_benchmark`` the strategy will be trained on
            (memory sizes and class counts are read from its train stream).
        config: the training hyperparameters.
        evaluator: an Avalanche ``EvaluationPlugin``; None: accuracy and loss,
            no loggers. Early stopping reads its stream accuracy.
        plugins: extra plugins, run after the strategy's own and ours.
        device: torch device.
        valid_stream_name: the stream early stopping scores ("valid", or
            "test" for the paper's protocol).
        data: a :class:`cfer.plugins.fast_data.FastDataConfig` (the ``data``
            section); None: the fast path with its defaults (``on_device: auto``).

    Returns:
        An Avalanche strategy, with ``strategy.seen_class_mask`` and
        ``strategy.schedule`` attached.
    """
    from cfer.strategies.masking import SeenClassMask
    from cfer.strategies.models.network import CLModel

    e = entry(name)
    if not isinstance(config, StrategyConfig):
        raise TypeError(f"build({name!r}): config must be a StrategyConfig, got {type(config).__name__}")
    if not isinstance(model, CLModel):
        raise TypeError(f"build({name!r}): model must come from strategies.models.build_model, "
                        f"got {type(model).__name__}")
    info = getattr(benchmark, "info", None)
    expected = getattr(model.config, "image_size", None)
    if info is not None and expected is not None and expected != info.image_size:
        raise ValueError(f"build({name!r}): model.image_size is {expected} but the benchmark's images "
                         f"are {info.image_size} px")
    n, k = stream_totals(benchmark)
    ctx = BuildContext(
        model=model, benchmark=benchmark, config=config, optimizer=make_optimizer(model, config),
        evaluator=evaluator if evaluator is not None else default_evaluator(), device=device,
        schedule=schedule_for(model, config, valid_stream_name=valid_stream_name),
        mask=SeenClassMask(), eval_every=1 if config.patience else -1,
        user_plugins=list(plugins), n_classes=k, train_size=n)
    strategy = e.factory(ctx)
    from cfer.plugins import fast_data, precision

    precision.enable(strategy, precision.PrecisionConfig(
        precision=config.precision, channels_last=config.channels_last, compile=config.compile))
    # After precision: the fast data plugin must be the last one.
    fast_data.enable(strategy, data or fast_data.FastDataConfig())
    _no_initial_eval(strategy)
    if config.num_workers:
        _loader_defaults(strategy, num_workers=config.num_workers)
    strategy.seen_class_mask = ctx.mask
    strategy.schedule = ctx.schedule
    return strategy


def _loader_defaults(strategy, **defaults) -> None:
    """Make ``defaults`` the default data-loader options of ``train()``/``eval()``.

    Why: Avalanche takes loader options (``num_workers``...) only as keyword
    arguments of each ``train``/``eval`` call; this applies the config's once.
    """
    train, evaluate = strategy.train, strategy.eval
    strategy.train = lambda *args, **kwargs: train(*args, **{**defaults, **kwargs})
    strategy.eval = lambda *args, **kwargs: evaluate(*args, **{**defaults, **kwargs})


def _no_initial_eval(strategy) -> None:
    """Turn off ``PeriodicEval``'s evaluation at the start of every ``train()`` call.

    Why: it runs before the head has grown for the new experience, so it would
    score a class the model has never been trained on (and it costs a full
    validation pass per experience); early stopping does not need it.
    """
    from avalanche.training.templates.base_sgd import PeriodicEval

    for p in strategy.plugins:
        if isinstance(p, PeriodicEval):
            p.do_initial = False
