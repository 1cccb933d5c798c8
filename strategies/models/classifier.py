"""`GrowingClassifier`: the output layer that gains a unit per new class.

Written as our own Avalanche ``DynamicModule`` rather than Avalanche's
``IncrementalClassifier`` because that one differs from the paper's head in
three ways (docs/design.md, "Avalanche pitfalls"):

- new units get PyTorch's default bias init; the paper's are 0;
- unseen units are masked with -1000, and the layer also grows (masked) when
  it is *evaluated* on unseen classes, so every softmax over its output must
  first pick the active units;
- weights use PyTorch's Kaiming-uniform default; the reference code uses
  Keras' Glorot-uniform for the first and the added columns.

Here the layer has exactly one unit per class trained so far: it grows only
in training mode, old weights and biases are copied, new weights are drawn
Glorot-uniform and new biases are 0. Avalanche strategies call
:meth:`adaptation` before each experience (``avalanche_model_adaptation``),
and their ``make_optimizer`` swaps the grown parameters into the optimizer.
"""

from __future__ import annotations

import torch
from avalanche.models import DynamicModule
from torch import nn


def _glorot_linear(in_features: int, out_features: int) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    with torch.no_grad():
        if out_features:
            nn.init.xavier_uniform_(layer.weight)
        layer.bias.zero_()
    return layer


class GrowingClassifier(DynamicModule):
    """Linear output layer with one unit per class seen in training.

    Args:
        in_features: size of the feature vector.
        initial_out_features: units before the first experience (usually the
            number of basic classes; it grows to cover each experience's
            class ids).
    """

    def __init__(self, in_features: int, initial_out_features: int):
        super().__init__()
        if in_features < 1 or initial_out_features < 0:
            raise ValueError(f"GrowingClassifier: need in_features >= 1 and initial_out_features "
                             f">= 0, got {in_features}, {initial_out_features}")
        self.linear = _glorot_linear(in_features, initial_out_features)

    @property
    def in_features(self) -> int:
        return self.linear.in_features

    @property
    def out_features(self) -> int:
        return self.linear.out_features

    @torch.no_grad()
    def grow(self, n_classes: int) -> None:
        """Widen to ``n_classes`` units (no-op when already that wide)."""
        old = self.linear
        if n_classes <= old.out_features:
            return
        new = nn.Linear(old.in_features, n_classes).to(device=old.weight.device, dtype=old.weight.dtype)
        new.weight[: old.out_features] = old.weight
        nn.init.xavier_uniform_(new.weight[old.out_features:])
        new.bias.zero_()
        new.bias[: old.out_features] = old.bias
        self.linear = new

    def adaptation(self, experience) -> None:
        super().adaptation(experience)
        needed = max(int(c) for c in experience.classes_in_this_experience) + 1
        if needed <= self.out_features:
            return
        if not self.training:
            unseen = sorted(int(c) for c in experience.classes_in_this_experience
                            if int(c) >= self.out_features)
            raise ValueError(f"evaluating on classes {unseen} that the model has not been trained "
                             f"on yet (it has {self.out_features} outputs); evaluate only the "
                             "experiences seen so far, e.g. test_stream[:i+1]")
        self.grow(needed)

    def forward(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.linear(x)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"
