"""PrimerPlugin: run an experience through ``train`` without any epoch."""

from __future__ import annotations

from avalanche.core import SupervisedPlugin


class PrimerPlugin(SupervisedPlugin):
    """While ``active``, ends each training experience before its first epoch.

    Why: a run may start from an already trained basic model (shared across
    class orders, or the few-shot protocol's basic model), but a strategy's own
    state after experience 0 (the distillation teacher, a replay memory, EWC
    importances, LwF's previous model) is made in its ``after_training_exp``
    callbacks. Running experience 0 through ``train`` with no epoch rebuilds
    that state from the loaded weights for any registered method, without
    changing the weights.
    """

    def __init__(self):
        super().__init__()
        self.active = False

    def before_training_epoch(self, strategy, **kwargs):
        if self.active:
            strategy.stop_training()

    def prime(self, strategy, experience, *, eval_streams=()) -> None:
        """Run ``experience`` through ``strategy.train`` with no epoch (this plugin must be
        among the strategy's plugins)."""
        if self not in strategy.plugins:
            raise ValueError("PrimerPlugin.prime: the plugin is not among the strategy's plugins")
        self.active = True
        try:
            strategy.train(experience, eval_streams=list(eval_streams))
        finally:
            self.active = False
