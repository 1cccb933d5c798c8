"""NoEffectWarning: a plugin that should add to the loss but never does is named, in one line.

A method is "naive in disguise" when the plugin that makes it a method changes nothing:
Avalanche 0.6's SynapticIntelligencePlugin on CPU (its importances are 0, so its penalty is
exactly 0), a regulariser whose strength is 0, a distillation with ``gamma: 0``. Such a run ends
with numbers, exit status 0, and a method name it did not earn.

The check: every plugin of the strategy that defines ``before_backward`` (the callback where a
plugin rescales or adds to the loss ``L``, :mod:`cfer.plugins.registry` phases ``loss`` and
``regularize``) is watched. Around each call it compares ``L`` before and after; a plugin whose
calls left ``L`` bit for bit unchanged at every step of two experiences after the first (where
there is a previous model, importances, a memory), each of at least two steps (at the first step
of an experience the weights still equal the anchor, so a quadratic penalty is exactly 0 by
design), and never changed it, is named in a warning. Two, not one: an online-style memory
(Avalanche's MIR) may replay nothing in experience 1 and act from experience 2. The comparison
stays on the device (one flag per plugin, read once per experience), so it costs no host
synchronisation per step. A plugin that acts only through gradients, the data or the schedule
(A-GEM's projection, a replay memory) is not judged here: ``tests/test_stock.py`` checks those
against Naive. A plugin that only reads the loss says so with a class attribute
``observes_loss_only = True`` (cfer's finite-loss guard).
"""

from __future__ import annotations

import logging

from avalanche.core import SupervisedPlugin

log = logging.getLogger(__name__)


def _name(plugin) -> str:
    from cfer.plugins.registry import entry_of

    entry = entry_of(plugin)
    return entry.name if entry is not None else type(plugin).__name__


class NoEffectWarning(SupervisedPlugin):
    """Warns once per plugin when a loss-changing plugin left the loss unchanged for a whole
    experience after the first (module docstring); ``silent`` lists the names it warned about.

    ``method``: how the warning names the method (e.g. ``si_stock``).
    """

    def __init__(self, method: str = ""):
        super().__init__()
        self.method = method
        self.watched: dict[int, object] = {}  # id(plugin) -> plugin
        self.changed: dict[int, object] = {}  # id(plugin) -> bool tensor (any change this experience)
        self.steps = 0
        self.acted: set[int] = set()  # plugins seen changing the loss
        self.quiet: dict[int, int] = {}  # id(plugin) -> experiences it left the loss unchanged
        self.silent: list[str] = []

    def before_training(self, strategy, **kwargs):
        from cfer.plugins.registry import callbacks, entry_of

        for p in strategy.plugins:
            if p is self or id(p) in self.watched or "before_backward" not in callbacks(type(p)):
                continue
            entry = entry_of(p)
            if getattr(p, "observes_loss_only", False) or (
                    entry is not None and entry.phase not in ("loss", "regularize")):
                continue  # reads the loss (the finite-loss guard) or is not meant to change it
            self.watched[id(p)] = p
            self._wrap(p)

    def _wrap(self, plugin) -> None:
        import torch

        original = plugin.before_backward
        key = id(plugin)

        def before_backward(strategy, **kwargs):
            loss = strategy.loss
            before = loss.detach().clone() if torch.is_tensor(loss) else torch.as_tensor(loss)
            out = original(strategy, **kwargs)
            after = strategy.loss
            after = after.detach() if torch.is_tensor(after) else torch.as_tensor(after)
            diff = torch.ne(after.to(before.device), before).any()
            flag = self.changed.get(key)
            self.changed[key] = diff if flag is None else flag | diff
            return out

        plugin.before_backward = before_backward

    def before_training_exp(self, strategy, **kwargs):
        self.changed.clear()
        self.steps = 0

    def after_training_iteration(self, strategy, **kwargs):
        self.steps += 1

    def after_training_exp(self, strategy, **kwargs):
        for key, flag in self.changed.items():
            if key not in self.acted and bool(flag):  # one host read per plugin and experience
                self.acted.add(key)
        if strategy.experience.current_experience < 1 or self.steps < 2:
            return
        for key, plugin in self.watched.items():
            if key in self.acted:
                continue
            self.quiet[key] = self.quiet.get(key, 0) + 1
            name = _name(plugin)
            if self.quiet[key] < 2 or name in self.silent:
                continue
            self.silent.append(name)
            log.warning("%s%s has not changed the training loss at any step up to experience %d: "
                        "the method trains as its base does (a strength of 0, or a broken plugin; "
                        "docs/avalanche.md)", f"{self.method}: " if self.method else "", name,
                        strategy.experience.current_experience)
