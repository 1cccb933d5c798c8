"""Shared fixtures: tiny data sets and benchmarks that build in well under a second."""

from __future__ import annotations

import numpy as np
import pytest

from cfer.benchmarks.dataset import FaceDataset
from cfer.benchmarks.taxonomy import BASIC, CFEE_COMPOUND


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` (setup.cfg) are skipped where torch finds no CUDA device."""
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device (tools/gpu_check.sh runs it)")
        for item in marked:
            item.add_marker(skip)


def make_tiny_dataset(*, n_subjects: int = 6, compounds=CFEE_COMPOUND[:3], per_class: int = 1,
                      size: int = 16, seed: int = 0):
    """A FaceDataset over fake paths plus matching images whose mean colour encodes the class,
    so that even a linear model can learn it. Returns (dataset, images)."""
    names = tuple(BASIC) + tuple(compounds)
    rng = np.random.default_rng(seed)
    paths, labels, subjects = [], [], []
    for s in range(n_subjects):
        for c in range(len(names)):
            for k in range(per_class):
                paths.append(f"/fake/{c:02d}_{s:03d}_{k:04d}.jpg")
                labels.append(c)
                subjects.append(s)
    labels_a = np.array(labels)
    base = rng.integers(0, 256, size=(len(names), 3))
    images = rng.integers(0, 40, size=(len(paths), size, size, 3)) + base[labels_a][:, None, None, :] * 0.8
    ds = FaceDataset(paths=paths, labels=labels, class_names=names, subjects=subjects, name="tiny")
    return ds, np.clip(images, 0, 255).astype(np.uint8)


@pytest.fixture
def tiny_dataset():
    return make_tiny_dataset()


@pytest.fixture
def tiny_benchmark():
    from cfer.benchmarks import compound_benchmark

    ds, images = make_tiny_dataset()
    return compound_benchmark(ds, images=images, image_size=16, n_folds=3, seed=0,
                              class_order=list(ds.class_names[6:]))


def tiny_naive(plugins, *, seed: int = 0, dropout: float = 0.0, train_mb_size: int = 4,
               eval_mb_size: int = 16):
    """A plain-Avalanche ``Naive`` on a flatten + linear net with an IncrementalClassifier
    (6 initial units), as a user's own code would build it. Returns (strategy, model)."""
    import torch
    from avalanche.models import IncrementalClassifier
    from avalanche.training import Naive
    from avalanche.training.determinism.rng_manager import RNGManager
    from torch import nn

    class TinyNet(nn.Module):
        def __init__(self):
            super().__init__()
            layers = [nn.Flatten(), nn.Linear(3 * 16 * 16, 16), nn.ReLU()]
            self.features = nn.Sequential(*layers, *([nn.Dropout(dropout)] if dropout else []))
            self.head = IncrementalClassifier(16, initial_out_features=6)

        def forward(self, x):
            return self.head(self.features(x))

    RNGManager.set_random_seeds(seed)
    model = TinyNet()
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
                     criterion=nn.CrossEntropyLoss(), train_mb_size=train_mb_size,
                     eval_mb_size=eval_mb_size, train_epochs=1, plugins=plugins, evaluator=None)
    return strategy, model
