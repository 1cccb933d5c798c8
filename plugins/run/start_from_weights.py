"""StartFromWeightsPlugin: run an experience through ``train`` with trained weights and no epoch."""

from __future__ import annotations

from avalanche.core import SupervisedPlugin


class StartFromWeightsPlugin(SupervisedPlugin):
    """While priming, loads given weights at the first epoch of the experience and ends
    it before that epoch runs.

    Why: a run may start from an already trained basic model (shared across
    class orders, or the few-shot protocol's basic model), but a strategy's own
    state after experience 0 is made by its callbacks: some before training
    (GDumb keeps the *untrained* model as its restart point, replay buffers
    draw their samples), most after it (the distillation teacher, a replay
    memory ranked by the trained model, EWC importances, LwF's previous model).
    Running experience 0 through ``train`` with the untrained model, swapping
    the trained weights in where the first epoch would start, gives every
    registered strategy exactly the state that training experience 0 itself
    would have left (with :class:`cfer.plugins.run.experience_seed.ExperienceSeedPlugin`
    the random stream after it is the same too).
    """

    def __init__(self):
        super().__init__()
        self._state: dict | None = None
        self._model = None

    @property
    def active(self) -> bool:
        return self._state is not None

    def before_training_epoch(self, strategy, **kwargs):
        if self._state is None:
            return
        target = getattr(strategy.model, "_orig_mod", strategy.model)  # torch.compile wrapper
        if set(target.state_dict()) != set(self._state) and self._model is not None:
            target = self._model  # a strategy that wraps the model (iCaRL's TrainEvalModel)
        target.load_state_dict(self._state)
        strategy.stop_training()

    def prime(self, strategy, experience, *, state_dict: dict, model=None, eval_streams=()) -> None:
        """Run ``experience`` through ``strategy.train``, loading ``state_dict`` (the weights
        trained on it) where its first epoch would start, into ``strategy.model`` or, where
        the strategy wraps the model it was built with, into ``model``. This plugin must be
        among the strategy's plugins, and the strategy's model must not be trained yet."""
        if self not in strategy.plugins:
            raise ValueError("StartFromWeightsPlugin.prime: the plugin is not among the strategy's plugins")
        self._state, self._model = state_dict, model
        try:
            strategy.train(experience, eval_streams=list(eval_streams))
        finally:
            self._state, self._model = None, None
