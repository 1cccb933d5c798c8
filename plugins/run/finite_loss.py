"""FiniteLossGuard: a run whose training loss is not finite stops, saying where.

An infinite learning rate, a temperature of zero or an overflow in half precision makes
the loss NaN or infinite; the weights then turn NaN, every prediction becomes the same
class, and the run ends with a chance-level table and exit status 0, as if it had
learnt little. The guard watches the loss the strategy back-propagates, ``L`` (for the
paper's method ``(1 - g_i) * CE(y, s) + g_i * CE(softmax(t/T), softmax(s/T))``, the
strategy's criterion plus the terms plugins add before the backward pass), and raises
:class:`NonFiniteLoss` at the end of the first epoch in which some mini-batch had a
non-finite ``L``, naming the run, the experience and the epoch.

It reads the loss on the device without a host synchronisation per mini-batch (a
running flag, read once per epoch), so it costs nothing on a GPU.
"""

from __future__ import annotations

from avalanche.core import SupervisedPlugin


class NonFiniteLoss(ValueError):
    """The training loss of a run became NaN or infinite (one-line message)."""


class FiniteLossGuard(SupervisedPlugin):
    """Raise :class:`NonFiniteLoss` after an epoch in which the loss was not finite.

    ``run``: how the message names the run (e.g. ``kd_psmr order 0 fold 0 seed 0``).
    Put it after the plugins that add loss terms (``strategies.build(plugins=...)`` does):
    its ``before_backward`` sees the loss they made.
    """

    observes_loss_only = True  # reads L, never changes it (cfer.plugins.run.no_effect)

    def __init__(self, run: str):
        super().__init__()
        self.run = run
        self._bad = None  # a device bool tensor: some mini-batch of this epoch had a bad loss
        self._worst = None  # the first bad loss value (device tensor), for the message
        self._epoch = 0

    def before_training_exp(self, strategy, *args, **kwargs):
        self._epoch = 0

    def before_training_epoch(self, strategy, *args, **kwargs):
        self._epoch += 1
        self._bad = self._worst = None

    def before_backward(self, strategy, *args, **kwargs):
        import torch

        loss = strategy.loss.detach().float()
        bad = ~torch.isfinite(loss).all()
        if self._bad is None:
            self._bad, self._worst = bad, loss.flatten()[:1]
        else:  # keep the first bad value: NaN after inf says less
            self._worst = torch.where(self._bad, self._worst, loss.flatten()[:1])
            self._bad = self._bad | bad

    def after_training_epoch(self, strategy, *args, **kwargs):
        self._check(strategy)

    def after_training_exp(self, strategy, *args, **kwargs):
        self._check(strategy)  # an epoch cut short by a stop that skipped its end

    def _check(self, strategy) -> None:
        if self._bad is None or not bool(self._bad):  # one host read per epoch
            return
        value = float(self._worst[0]) if self._worst is not None and self._worst.numel() else float("nan")
        experience = strategy.experience.current_experience
        raise NonFiniteLoss(
            f"non-finite training loss ({value}) in {self.run}, experience {experience}, "
            f"epoch {self._epoch}: "
            "the run is stopped; lower the learning rate (training.lr, training.basic_lr) or check "
            "training.precision")
