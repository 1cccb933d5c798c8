"""FinalValidationPlugin: the accuracy of a run's final model on its validation stream.

Hyperparameters are chosen on validation subjects, never on the test subjects
(``cfer sweep`` picks its best grid point with it). The runner evaluates the test
stream only, and early stopping (which reads the validation stream) is off with
``training.patience: 0``, so nothing else records a validation score of the final
model. Avalanche's evaluator has no "score this stream once training ends" hook:
this plugin evaluates the given stream at the end of the run's last ``train()``
call, which Avalanche allows (``eval`` saves and restores the training state), and
counts correct arg-max predictions after the strategy's own output masking.
"""

from __future__ import annotations

from avalanche.core import SupervisedPlugin


class FinalValidationPlugin(SupervisedPlugin):
    """After the ``train()`` call that ends on experience ``last_experience`` (or after
    every ``train()`` when ``offline``: joint training trains once on the whole stream),
    evaluate ``stream`` and keep the accuracy in :attr:`accuracy` (None until then).

    Put it after the strategy's own plugins (``strategies.build(plugins=...)`` does), so
    that throughput timing ends before this evaluation and masked logits are scored.
    """

    def __init__(self, stream, *, last_experience: int, offline: bool = False):
        super().__init__()
        self.stream = stream
        self.last_experience = int(last_experience)
        self.offline = offline
        self.accuracy: float | None = None
        self._counts: list | None = None  # [correct, total] while evaluating

    def after_training(self, strategy, *args, **kwargs):
        if not self.offline and strategy.experience.current_experience != self.last_experience:
            return
        self._counts = [0, 0]
        try:
            strategy.eval(self.stream)
            correct, total = self._counts
        finally:
            self._counts = None
        self.accuracy = correct / total if total else None

    def after_eval_iteration(self, strategy, *args, **kwargs):
        if self._counts is not None:
            pred = strategy.mb_output.argmax(dim=1)
            self._counts[0] += int((pred == strategy.mb_y).sum())
            self._counts[1] += int(strategy.mb_y.shape[0])
