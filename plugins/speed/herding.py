"""iCaRL's herding without a device read per exemplar.

Herding (Rebuffi et al., CVPR 2017, Algorithm 4) picks a class's exemplars one by one so that
their running mean of normalised features stays closest to the class mean ``mu``: with ``D``
the normalised features (one column per image) and ``w_0 = mu``, step ``t`` picks
``p_t = argmax_i w_t . D[:, i]`` and sets ``w_{t+1} = w_t + mu - D[:, p_t]``. Avalanche's
``_ICaRLPlugin.construct_exemplar_set`` runs this loop on the model's device, and each step
reads the device (``ind_max not in selected`` compares a device tensor with every index taken
so far, then ``.item()``): on a GPU a synchronisation per exemplar, and a quadratic number of
comparisons everywhere.

:func:`herding_order` moves the features to the CPU once per class and runs the same steps
there (the same operations in the same order, so on the CPU the same selection to the bit;
tests/test_herding.py checks it against Avalanche's plugin), with a set of the indices taken.
:func:`herding_icarl_plugin` is Avalanche's iCaRL plugin with its exemplar construction
written over it; :func:`cfer.plugins.workarounds.baselines.growing_head_icarl` builds iCaRL
with it.
"""

from __future__ import annotations

import math

import torch

#: Avalanche's cap on herding steps per class (a class with fewer distinct winners stops there).
MAX_STEPS = 1000


def herding_order(features: torch.Tensor, n: int, *, max_steps: int = MAX_STEPS) -> torch.Tensor:
    """The herding rank of each image (float, on the CPU): ``k`` for the ``k``-th exemplar
    chosen (1-based), 0 for an image not chosen; ``features``: one row per image."""
    d = features.detach().to("cpu").T  # the one transfer: a column per image
    d = d / torch.norm(d, dim=0)
    mu = torch.mean(d, dim=1)
    order = torch.zeros(d.shape[1])
    w, taken, step = mu, set(), 0
    while len(taken) < n and step < max_steps:
        j = int(torch.argmax(torch.mm(w.unsqueeze(0), d)))
        if j not in taken:
            taken.add(j)
            order[j] = len(taken)
        w = w + mu - d[:, j]
        step += 1
    return order


def herding_icarl_plugin():
    """Avalanche's ``_ICaRLPlugin`` class with :func:`herding_order` choosing the exemplars
    (its memory layout unchanged: ``x_memory``, ``y_memory`` and ``order`` per class)."""
    from avalanche.benchmarks.utils import _taskaware_classification_subset
    from avalanche.training.supervised.icarl import _ICaRLPlugin
    from torch.utils.data import DataLoader

    class HerdingICaRLPlugin(_ICaRLPlugin):
        def construct_exemplar_set(self, strategy):
            exp = strategy.experience
            tid = strategy.clock.train_exp_counter
            per_exp = exp.benchmark.n_classes_per_exp
            start = sum(per_exp[:tid])
            new_classes = self.observed_classes[start:start + per_exp[tid]]
            per_class = (math.ceil(self.memory_size / len(self.observed_classes)) if self.fixed_memory
                         else self.memory_size)
            targets = torch.tensor(exp.dataset.targets)
            for cls in new_classes:
                subset = _taskaware_classification_subset(exp.dataset, torch.where(targets == cls)[0])
                loader = DataLoader(subset.eval(), batch_size=strategy.eval_mb_size,
                                    collate_fn=getattr(subset, "collate_fn", None))
                images, features = [], []
                with torch.no_grad():
                    for x, *_ in loader:
                        x = x.to(strategy.device)
                        images.append(x)
                        features.append(strategy.model.feature_extractor(x).detach())
                order = herding_order(torch.cat(features), per_class)
                keep = torch.where((order > 0) & (order < per_class + 1))[0]
                self.x_memory.append(torch.cat(images)[keep.to(strategy.device)])
                self.y_memory.append([cls] * len(keep))
                self.order.append(order[keep])

    return HerdingICaRLPlugin
