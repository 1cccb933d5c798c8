"""One evaluation pass over several experiences, with Avalanche's per-experience metrics kept.

Why: the protocol scores ``test_stream[:i+1]`` after every step ``i`` (and
``valid[:i+1]`` after every epoch with early stopping). Avalanche's ``eval``
runs one experience at a time: per experience it adapts the dataset and the
model, builds a loader (the fast path resolves its items and transforms anew)
and runs the callbacks, so the set-up grows with the square of the number of
steps. :func:`one_pass` joins the experiences into one; the template then
adapts and loads once, and :class:`OnePassEvaluationPlugin` (Avalanche's
``EvaluationPlugin``) gives its metrics and loggers the per-experience view
back: the mini-batches never straddle two experiences (the same batches as
per-experience evaluation: each part split by ``eval_mb_size`` from its
start), and at each part's first batch the plugin closes the previous part
(``after_eval_exp``) and opens the next (``before_eval_exp``) with
``strategy.experience`` set to that part's own experience. Metrics, loggers and
the FER collector see exactly what a per-experience evaluation shows them, so
every number is the same (``tests/test_one_pass_eval.py``).

Random state: each DataLoader iterator draws its base seed from the global
torch generator. Per-experience evaluation drew one per experience, a single
pass one in all; the plugin draws the missing ones so that training after a
validation pass (early stopping evaluates between epochs) continues from the
same random state as before.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from avalanche.training.plugins import EvaluationPlugin

from cfer.plugins.workarounds.metrics import experience_with_dataset, update_metrics_and_loggers


def one_pass(experiences):
    """``experiences`` (a stream slice of one stream, in order) as one experience to evaluate.

    It is a copy of the last one (its id, origin stream and seen classes) holding the
    concatenated data and ``parts``, the experiences themselves. A single experience is
    returned as it is.
    """
    parts = list(experiences)
    if not parts:
        raise ValueError("one_pass: no experiences to evaluate")
    if len(parts) == 1:
        return parts[0]
    empty = [p.current_experience for p in parts if not len(p.dataset)]
    if empty:
        raise ValueError(f"one_pass: experiences {empty} have no data to evaluate")
    names = {p.origin_stream.name for p in parts}
    if len(names) > 1:
        raise ValueError(f"one_pass: experiences of several streams ({', '.join(sorted(names))})")
    whole = experience_with_dataset(parts[-1], functools.reduce(lambda a, b: a.concat(b),
                                                               [p.dataset for p in parts]))
    whole.classes_in_this_experience = set().union(*(set(p.classes_in_this_experience) for p in parts))
    whole.parts = parts
    return whole


class PartBatchSampler(torch.utils.data.Sampler):
    """Batches of ``batch_size`` over consecutive parts of ``sizes`` items, in order; a
    part's last batch may be short (as a per-part ``DataLoader`` without ``drop_last``)."""

    def __init__(self, sizes, *, batch_size: int):
        super().__init__()
        self.batches: list[list[int]] = []
        self.starts: list[int] = []  # index of each part's first batch
        start = 0
        for n in sizes:
            self.starts.append(len(self.batches))
            self.batches += [list(range(b, min(b + batch_size, start + n)))
                             for b in range(start, start + n, batch_size)]
            start += n

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


@dataclass
class _Pass:
    whole: object  # the joined experience
    parts: list
    starts: dict  # first batch index -> part index (parts after the first)
    part: int = 0
    batch: int = 0


class OnePassEvaluationPlugin(EvaluationPlugin):
    """Avalanche's ``EvaluationPlugin``; on an experience made by :func:`one_pass` it
    evaluates in one loader and replays the per-experience callbacks to its metrics and
    loggers (module docstring). Other experiences are evaluated as Avalanche does.

    It must come before the fast data plugin (which wraps the loader it builds): a
    strategy's evaluator does, as the template adds it before later plugins.
    """

    def __init__(self, *metrics, **kwargs):
        super().__init__(*metrics, **kwargs)
        self._pass: _Pass | None = None

    def before_eval_exp(self, strategy, **kwargs):
        parts = getattr(strategy.experience, "parts", None)
        self._pass = None
        if parts is not None:
            sampler = PartBatchSampler([len(p.dataset) for p in parts], batch_size=strategy.eval_mb_size)
            data = strategy.adapted_dataset
            strategy.dataloader = torch.utils.data.DataLoader(
                data, batch_sampler=sampler, collate_fn=getattr(data, "collate_fn", None),
                num_workers=kwargs.get("num_workers", 0))
            for _ in parts[1:]:  # the base seeds the per-experience loaders would have drawn
                torch.empty((), dtype=torch.int64).random_()
            self._pass = _Pass(strategy.experience, parts,
                               {b: k for k, b in enumerate(sampler.starts) if k > 0})
            strategy.experience = parts[0]
        update_metrics_and_loggers(self, strategy, "before_eval_exp")

    def before_eval_iteration(self, strategy, **kwargs):
        p = self._pass
        if p is not None and p.batch in p.starts:
            update_metrics_and_loggers(self, strategy, "after_eval_exp")
            p.part = p.starts[p.batch]
            strategy.experience = p.parts[p.part]
            update_metrics_and_loggers(self, strategy, "before_eval_exp")
        update_metrics_and_loggers(self, strategy, "before_eval_iteration")

    def after_eval_iteration(self, strategy, **kwargs):
        update_metrics_and_loggers(self, strategy, "after_eval_iteration")
        if self._pass is not None:
            self._pass.batch += 1

    def after_eval_exp(self, strategy, **kwargs):
        p = self._pass
        update_metrics_and_loggers(self, strategy, "after_eval_exp")
        if p is not None:
            strategy.experience = p.whole
            self._pass = None
