"""What ``cfer run`` shows while it trains: one tqdm bar per run, with the epoch inside it.

Each run gets a bar over its experiences that stays on screen as the run's line when
it is done; while an experience trains, :class:`EpochProgress` (an Avalanche plugin the
run context adds to every strategy built while a bar is open) writes the experience, the
epoch and the epoch's mean loss into the bar's postfix, so that a long basic training
is not a bar sitting at 0. Log lines go through ``tqdm.write`` (``logging_redirect_tqdm``
in the command line) and so never tear a bar.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def run_bar(owner, *, total: int, desc: str, unit: str, enabled: bool) -> Iterator[object]:
    """A tqdm bar, set as ``owner.active_bar`` while it is open (``None`` again after), unless
    it counts whole runs (``unit="run"``: the backends' bar, whose postfix is its own)."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=True, dynamic_ncols=True)
    owner.active_bar = None if bar.disable or unit == "run" else bar
    try:
        yield bar
    finally:
        owner.active_bar = None
        bar.close()


def epoch_plugin(bar):
    """An :class:`EpochProgress` writing into ``bar`` (Avalanche is imported only here)."""
    from avalanche.core import SupervisedPlugin

    class EpochProgress(SupervisedPlugin):
        """Experience i/T, epoch k/n and the epoch's mean training loss on the run's bar.

        The loss is summed on the device and read once per epoch (one synchronisation per
        epoch, not per iteration); nothing here touches a random generator or the model."""

        def __init__(self):
            super().__init__()
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
            elif bar.unit == "exp" and bar.total:  # the bar counts this run's experiences
                where = f"exp {exp + 1}/{bar.total}: "
            else:
                where = f"experience {exp}: "
            bar.set_postfix_str(where + what)

    return EpochProgress()
