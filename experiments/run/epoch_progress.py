"""EpochProgress: the experience, epoch and loss of the training in progress, on the run's tqdm
bar (:mod:`cfer.experiments.run.progress`, which registers it: phase ``evaluate``, inert)."""

from __future__ import annotations

from avalanche.core import SupervisedPlugin


class EpochProgress(SupervisedPlugin):
    """Experience i/T, epoch k/n and the epoch's mean training loss on the run's bar.

    The loss is summed on the device and read once per epoch (one synchronisation per
    epoch, not per iteration); nothing here touches a random generator or the model."""

    def __init__(self, bar):
        super().__init__()
        self.bar = bar
        self._sum, self._n, self._epoch = 0.0, 0, 0

    def before_training_exp(self, strategy, *args, **kwargs):
        self._epoch = 0
        self._show(strategy, "training")

    def before_training_epoch(self, strategy, *args, **kwargs):
        self._sum, self._n = 0.0, 0

    def after_training_iteration(self, strategy, *args, **kwargs):
        loss = getattr(strategy, "loss", None)
        if hasattr(loss, "detach"):
            self._sum = self._sum + loss.detach()
            self._n += 1

    def after_training_epoch(self, strategy, *args, **kwargs):
        self._epoch += 1
        n = int(getattr(strategy, "train_epochs", 0) or 0)
        epoch = f"epoch {self._epoch}/{n}" if self._epoch <= n else f"epoch {self._epoch}"
        loss = f", loss {float(self._sum) / self._n:.3f}" if self._n else ""
        self._show(strategy, epoch + loss)

    def _show(self, strategy, what: str) -> None:
        exp = getattr(getattr(strategy, "experience", None), "current_experience", None)
        if not isinstance(exp, int):
            where = ""
        elif self.bar.unit == "exp" and self.bar.total:  # the bar counts this run's experiences
            where = f"exp {exp + 1}/{self.bar.total}: "
        else:
            where = f"experience {exp}: "
        self.bar.set_postfix_str(where + what)

