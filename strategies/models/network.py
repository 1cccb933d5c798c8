"""`CLModel`: backbone -> head (neck) -> growing classifier."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cfer.strategies.models.backbones import Backbone
from cfer.strategies.models.classifier import GrowingClassifier


def paper_neck(in_features: int, *, hidden: tuple[int, ...], dropout: float) -> nn.Sequential:
    """The reference head before the classifier: (Dropout -> Dense -> sigmoid) per hidden
    size, then Dropout. Dense layers use Keras' defaults (Glorot-uniform, zero bias)."""
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        dense = nn.Linear(width, int(h))
        nn.init.xavier_uniform_(dense.weight)
        nn.init.zeros_(dense.bias)
        layers += [nn.Dropout(dropout), dense, nn.Sigmoid()]
        width = int(h)
    layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class CLModel(nn.Module):
    """Feature extractor (backbone + neck) and a :class:`GrowingClassifier`.

    ``feature_extractor`` and ``classifier`` are the two parts iCaRL-style
    strategies take separately; :meth:`features` gives the embedding that
    herding / closest-to-center selection use.
    """

    def __init__(self, *, backbone: Backbone, neck: nn.Module, feature_size: int, n_classes: int,
                 config=None):
        super().__init__()
        self.feature_extractor = nn.Sequential(OrderedDict(backbone=backbone, neck=neck))
        self.classifier = GrowingClassifier(feature_size, n_classes)
        self.config = config

    @property
    def backbone(self) -> Backbone:
        return self.feature_extractor.backbone

    @property
    def neck(self) -> nn.Module:
        return self.feature_extractor.neck

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_extractor(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def regularized_parameters(self) -> list[nn.Parameter]:
        """Weights of the neck's Dense layers (the reference code's l2(1e-5) kernels)."""
        return [m.weight for m in self.neck.modules() if isinstance(m, nn.Linear)]
