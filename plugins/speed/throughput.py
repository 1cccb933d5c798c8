"""ThroughputPlugin: wall time and images per second of training."""

from __future__ import annotations

import time

from avalanche.core import SupervisedPlugin


class ThroughputPlugin(SupervisedPlugin):
    """Counts training images and the wall time spent in ``train()`` calls.

    Avalanche's ``timing_metrics`` report per-epoch times to loggers; this
    plugin keeps the totals that ``results.json`` records
    (``train_seconds``, ``images_per_second``). On CUDA it synchronises at
    the end of each training call so the time covers queued kernels.
    """

    def __init__(self):
        super().__init__()
        self.seconds = 0.0
        self.images = 0
        self._start = None

    def before_training(self, strategy, *args, **kwargs):
        self._start = time.perf_counter()

    def after_training_iteration(self, strategy, *args, **kwargs):
        self.images += int(strategy.mb_x.shape[0])

    def after_training(self, strategy, *args, **kwargs):
        import torch

        if torch.device(strategy.device).type == "cuda":
            torch.cuda.synchronize(strategy.device)
        self.seconds += time.perf_counter() - self._start

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0
