"""The strategy templates' missing options and callbacks (Avalanche 0.6).

Used by strategies/builder.py (loader options, the initial evaluation),
plugins/speed/precision.py (the two SGD steps fp16 loss scaling replaces, channels-last
gradients) and plugins/run/experience_seed.py (a hook where an experience's training
loop ends). Avalanche is imported inside the functions.
"""

from __future__ import annotations


def loader_defaults(strategy, **defaults) -> None:
    """Make ``defaults`` the default data-loader options of ``train()``/``eval()``.

    Why: Avalanche takes loader options (``num_workers``...) only as keyword
    arguments of each ``train``/``eval`` call; this applies the config's once.
    """
    train, evaluate = strategy.train, strategy.eval
    strategy.train = lambda *args, **kwargs: train(*args, **{**defaults, **kwargs})
    strategy.eval = lambda *args, **kwargs: evaluate(*args, **{**defaults, **kwargs})


def no_initial_eval(strategy) -> None:
    """Turn off ``PeriodicEval``'s evaluation at the start of every ``train()`` call.

    Why: it runs before the head has grown for the new experience, so it would
    score a class the model has never been trained on (and it costs a full
    validation pass per experience); early stopping does not need it. The
    plugin's ``do_initial`` flag is not a constructor option of the templates.
    """
    from avalanche.training.templates.base_sgd import PeriodicEval

    for p in strategy.plugins:
        if isinstance(p, PeriodicEval):
            p.do_initial = False


SGD_STEPS = ("backward", "optimizer_step")


def own_sgd_steps(strategy) -> list[str] | None:
    """Which of :data:`SGD_STEPS` the strategy's class defines itself (``[]``: it keeps the
    template's); ``None`` when it is not an Avalanche SGD template. Replacing a step the
    class defines itself (:func:`replace_sgd_steps`) would drop that class's code."""
    from avalanche.training.templates.base_sgd import BaseSGDTemplate

    if not isinstance(strategy, BaseSGDTemplate):
        return None
    cls = type(strategy)
    return [name for name in SGD_STEPS if getattr(cls, name) is not getattr(BaseSGDTemplate, name)]


def replace_sgd_steps(strategy, *, backward, optimizer_step) -> None:
    """Make ``backward`` and ``optimizer_step`` (callables without arguments) the strategy's
    own, as instance attributes, so that every strategy class is covered as built.

    Why: Avalanche 0.6's ``BaseSGDTemplate`` has no mixed precision: its
    ``backward()`` calls ``loss.backward()`` and its ``optimizer_step()`` calls
    ``optimizer.step()``, and no plugin callback sits between them where a
    ``GradScaler`` could scale the loss, unscale the gradients or skip a step. Only
    for classes that keep the template's two methods (:func:`own_sgd_steps` ``[]``).
    """
    strategy.backward = backward
    strategy.optimizer_step = optimizer_step


def flattens_gradients(strategy) -> bool:
    """Whether a plugin of ``strategy`` reads gradients with ``.view(-1)``: Avalanche's
    ``AGEMPlugin`` and ``GSS_greedyPlugin``.

    Why: in Avalanche 0.6 both flatten ``p.grad`` with ``.view(-1)``, which fails on
    the gradients of channels-last weights (not contiguous); with them,
    channels-last applies to the inputs only and parameters (hence gradients) keep
    their layout.
    """
    from avalanche.training.plugins import AGEMPlugin, GSS_greedyPlugin

    return any(isinstance(p, (AGEMPlugin, GSS_greedyPlugin)) for p in strategy.plugins)


def call_before_after_training_exp(strategy, hook) -> None:
    """Run ``hook()`` when ``strategy``'s training loop of an experience is over, before the
    template's ``_after_training_exp`` (its own after-experience work, then the plugins').

    Why: Avalanche 0.6 has no callback there. ``after_training_epoch`` does not
    fire for an experience run with no epoch (a primed shared basic model), and
    templates such as DER and ER-ACE update their buffers in
    ``_after_training_exp`` before any plugin's ``after_training_exp``, so a
    re-seed must wrap that method itself.
    """
    original = strategy._after_training_exp

    def after_training_exp(**kwargs):
        hook()
        return original(**kwargs)

    strategy._after_training_exp = after_training_exp


def criterion(strategy):
    """The loss object a template was built with.

    Why: Avalanche 0.6 keeps it as ``_criterion`` (its public ``criterion()`` computes the loss
    of the current mini-batch instead); the basic-phase fingerprint
    (experiments/run/basic_phase.py) describes it to decide which methods train experience 0
    alike.
    """
    return strategy._criterion
