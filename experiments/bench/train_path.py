"""``cfer bench --path train``: plain training epochs of a bare loop, stock Avalanche and ours.

``--path train``: in one process, on the same synthetic images and model, each setting (batch
size x precision x compile mode) times:

(a) ``bare``: a plain PyTorch loop over device-resident uint8 images (random
    permutation, batched gather, the same augmentation on the device, the same
    model, optimizer, autocast, layout and compiled parts as ours);
(b) ``stock``: Avalanche's ``Naive`` through its own DataLoader, fp32 (stock
    Avalanche has no mixed precision), per-item torchvision transforms;
(c) ``ours``: the same ``Naive`` with :mod:`cfer.plugins.speed.precision` and
    :mod:`cfer.plugins.speed.fast_data` enabled, as the strategy registry enables them;
(d) ``rank``: exemplar ranking (predictive sorting: inference over the
    training set) with the strategy of (c).

Speeds are images per second, the median over the timed epochs (min and max
kept); the paths' epochs alternate (a, b, c, a, b, c, ...) so that a shared
machine's changing load hits them alike, and each path's first epoch warms up
(compilation, cuDNN autotuning). The strategies' evaluator has no metrics or loggers, so only the
data path and the numerics differ. Peak memory: the device's peak allocation
during one more epoch of (c) and the ranking, with (a) and (b) freed (image
store included); on the CPU, the process's peak resident memory so far.
"""

from __future__ import annotations

import time

import numpy as np

from cfer.experiments.bench.config import BenchConfig, setting_name

RECORD_KEYS = ("setting", "bare", "stock", "ours", "ours_over_bare", "ours_over_stock",
               "rank_images_per_second", "peak_memory_mb", "bare_min", "bare_max", "ours_min", "ours_max",
               "ours_over_bare_min", "ours_over_bare_max", "bare_cpu", "ours_cpu", "ours_over_bare_cpu",
               "ours_over_bare_cpu_min", "ours_over_bare_cpu_max", "threads")


def synthetic_benchmark(cfg: BenchConfig, *, transform):
    """Random uint8 images as a ``compound_benchmark``: experience 0 holds ``cfg.images``
    training images of the six basic classes (an official train/test partition)."""
    from cfer.benchmarks import compound_benchmark
    from cfer.benchmarks.dataset import FaceDataset
    from cfer.benchmarks.taxonomy import BASIC, CFEE_COMPOUND

    names = tuple(BASIC) + (CFEE_COMPOUND[0],)
    n_test = 4  # per class; every class needs train and test images
    labels = [i % len(BASIC) for i in range(cfg.images)] + [len(BASIC)] * n_test
    partition = ["train"] * len(labels) + ["test"] * (n_test * len(names))
    labels += [c for c in range(len(names)) for _ in range(n_test)]
    ds = FaceDataset(paths=[f"/synthetic/{i:06d}.png" for i in range(len(labels))], labels=labels,
                     class_names=names, partition=partition, name="bench")
    rng = np.random.default_rng(cfg.seed)
    images = rng.integers(0, 256, size=(len(labels), cfg.image_size, cfg.image_size, 3), dtype=np.uint8)
    return compound_benchmark(ds, images=images, image_size=cfg.image_size, validation=False,
                              seed=cfg.seed, class_order=[CFEE_COMPOUND[0]], train_transform=transform)


class _EpochTimer:
    """Images, wall seconds and process CPU seconds per training epoch (synchronised on CUDA)."""

    def __init__(self, device):
        self.device = device
        self.epochs: list[tuple[int, float, float]] = []
        self._n = 0
        self._t = self._cpu = 0.0

    def sync(self):
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start(self):
        self.sync()
        self._n, self._t, self._cpu = 0, time.perf_counter(), time.process_time()

    def add(self, n: int):
        self._n += n

    def stop(self):
        self.sync()
        self.epochs.append((self._n, time.perf_counter() - self._t, time.process_time() - self._cpu))

    def speeds(self) -> list[float]:
        """Images per second of each timed epoch (the first one warms up)."""
        return [n / t for n, t, _ in self.epochs[1:]]

    def cpu_speeds(self) -> list[float]:
        """Images per process CPU second of each timed epoch."""
        return [n / c for n, _, c in self.epochs[1:]]

    def cpu_speed(self) -> float:
        """Images per process CPU second, median over the timed epochs."""
        return float(np.median(self.cpu_speeds()))


def _model(cfg: BenchConfig, device):
    from avalanche.training.determinism.rng_manager import RNGManager

    from cfer.strategies.models import ModelConfig, build_model

    RNGManager.set_random_seeds(cfg.seed)
    return build_model(ModelConfig(name=cfg.model, image_size=cfg.image_size), n_classes=6).to(device)


class BareLoop:
    """(a) a plain PyTorch loop over device-resident uint8 images."""

    def __init__(self, cfg: BenchConfig, bm, *, batch_size: int, precision: str, compile_mode: str, device):
        import torch

        from cfer.plugins.speed.device_transforms import DeviceTransform
        from cfer.plugins.speed.items import item_table
        from cfer.plugins.speed.precision import PrecisionConfig, compile_model

        self.cfg, self.batch_size, self.device = cfg, batch_size, device
        self.pcfg = PrecisionConfig(precision=precision, channels_last=cfg.channels_last,
                                    compile=compile_mode)
        table = item_table([bm.train_stream[0].dataset.train()])
        self.images = table.images[torch.as_tensor(table.rows)].to(device)
        self.labels = torch.as_tensor(table.targets, device=device)
        self.augment = DeviceTransform(table.chains[0])  # the benchmark's training augmentation
        self.model = _model(cfg, device)
        if cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if compile_mode != "false":
            compile_model(self.model, mode=compile_mode)
        self.model.train()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        self.gen = torch.Generator(device=device).manual_seed(cfg.seed)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.timer = _EpochTimer(device)

    def epoch(self) -> None:
        import torch

        pcfg, timer = self.pcfg, self.timer
        timer.start()
        perm = torch.randperm(len(self.images), device=self.device)
        for i in range(0, len(self.images), self.batch_size):
            idx = perm[i:i + self.batch_size]
            if pcfg.compile == "reduce-overhead":
                torch.compiler.cudagraph_mark_step_begin()
            x = self.augment(self.images[idx], self.gen)
            if pcfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=pcfg.dtype, enabled=pcfg.dtype is not None):
                out = self.model(x)
            loss = self.loss_fn(out.float(), self.labels[idx])
            self.opt.zero_grad()
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
            timer.add(len(idx))
        timer.stop()


class NaivePath:
    """(b) stock Avalanche Naive (fp32, its DataLoader), or (c) the same Naive with our speed
    plugins enabled as the strategy registry enables them; one ``train()`` call per epoch."""

    def __init__(self, cfg: BenchConfig, bm, *, batch_size: int, device, precision: str | None = None,
                 compile_mode: str = "false"):
        import torch
        from avalanche.core import SupervisedPlugin
        from avalanche.training import Naive
        from avalanche.training.plugins import EvaluationPlugin

        from cfer.plugins.speed import fast_data
        from cfer.plugins.speed import precision as prec
        from cfer.plugins.speed.config import FastDataConfig

        timer = self.timer = _EpochTimer(device)

        class EpochTimer(SupervisedPlugin):
            def before_training_epoch(self, strategy, **kwargs):
                timer.start()

            def after_training_iteration(self, strategy, **kwargs):
                timer.add(len(strategy.mb_y))

            def after_training_epoch(self, strategy, **kwargs):
                timer.stop()

        model = _model(cfg, device)
        self.cfg, self.experience = cfg, bm.train_stream[0]
        self.strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=cfg.lr),
                              criterion=torch.nn.CrossEntropyLoss(), train_mb_size=batch_size,
                              train_epochs=1, eval_mb_size=batch_size, device=device,
                              evaluator=EvaluationPlugin(loggers=[]), plugins=[EpochTimer()])
        self.ours = precision is not None
        if self.ours:
            pcfg = prec.PrecisionConfig(precision=precision, channels_last=cfg.channels_last,
                                        compile=compile_mode)
            prec.enable(self.strategy, pcfg)
            fast_data.enable(self.strategy, FastDataConfig())  # on_device auto

    def epoch(self) -> None:
        self.strategy.train(self.experience, num_workers=0 if self.ours else self.cfg.stock_workers)

    def rank_images_per_second(self, *, repeats: int = 2) -> float:
        """(d) predictive-sorting exemplar ranking of the experience's training set."""
        from cfer.plugins.method.selection import PredictiveSortingSelection

        data, selection, times = self.experience.dataset, PredictiveSortingSelection(), []
        for _ in range(1 + repeats):  # the first call warms up (eval-mode graphs, autotuning)
            self.timer.sync()
            t = time.perf_counter()
            selection.make_sorted_indices(self.strategy, data)
            self.timer.sync()
            times.append(time.perf_counter() - t)
        return len(data) / float(np.mean(times[1:]))


def _peak_reset(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mb(device) -> float:
    import resource

    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB



def run_setting(cfg: BenchConfig, bm, *, batch_size: int, precision: str, compile_mode: str, device,
                stock: dict) -> dict:
    """One setting's record. Epochs of the paths alternate (bare, stock, ours, then ours, stock,
    bare, ...: no path always first), so that a shared machine's changing load affects them
    alike; the first epoch of each warms up. The ratios of each round's pair, wall and CPU.
    ``stock`` caches stock Avalanche's speed per batch size (it is fp32 in every setting)."""
    import gc

    name = setting_name(cfg, batch_size=batch_size, precision=precision, compile_mode=compile_mode)
    paths = {"bare": BareLoop(cfg, bm, batch_size=batch_size, precision=precision,
                              compile_mode=compile_mode, device=device)}
    if batch_size not in stock:
        paths["stock"] = NaivePath(cfg, bm, batch_size=batch_size, device=device)
    ours = paths["ours"] = NaivePath(cfg, bm, batch_size=batch_size, device=device, precision=precision,
                                     compile_mode=compile_mode)
    for i in range(1 + cfg.epochs):
        for path in (list(paths.values()) if i % 2 == 0 else list(paths.values())[::-1]):
            path.epoch()
    speeds = {k: p.timer.speeds() for k, p in paths.items()}
    speed = {k: float(np.median(v)) for k, v in speeds.items()}
    ratio = [o / b for o, b in zip(speeds["ours"], speeds["bare"])]  # the same round's pair
    cpu = {k: paths[k].timer.cpu_speed() for k in ("bare", "ours")}
    cpu_ratio = [o / b for o, b in zip(paths["ours"].timer.cpu_speeds(), paths["bare"].timer.cpu_speeds())]
    stock.setdefault(batch_size, speed.get("stock"))
    paths.clear()
    gc.collect()
    _peak_reset(device)  # peak memory of our path alone: one more epoch and the ranking
    ours.epoch()
    rank = ours.rank_images_per_second()
    return {"setting": name, "bare": round(speed["bare"], 1), "stock": round(stock[batch_size], 1),
            "ours": round(speed["ours"], 1), "ours_over_bare": round(speed["ours"] / speed["bare"], 3),
            "ours_over_stock": round(speed["ours"] / stock[batch_size], 3),
            "rank_images_per_second": round(rank, 1), "peak_memory_mb": round(_peak_mb(device), 1),
            "bare_min": round(min(speeds["bare"]), 1), "bare_max": round(max(speeds["bare"]), 1),
            "ours_min": round(min(speeds["ours"]), 1), "ours_max": round(max(speeds["ours"]), 1),
            "ours_over_bare_min": round(min(ratio), 3), "ours_over_bare_max": round(max(ratio), 3),
            "bare_cpu": round(cpu["bare"], 1), "ours_cpu": round(cpu["ours"], 1),
            "ours_over_bare_cpu": round(float(np.median(cpu_ratio)), 3),
            "ours_over_bare_cpu_min": round(min(cpu_ratio), 3),
            "ours_over_bare_cpu_max": round(max(cpu_ratio), 3),
            "threads": _threads()}


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def format_table(records: list[dict]) -> str:
    head = ("setting", "bare img/s", "stock img/s", "ours img/s", "ours/bare (min-max)", "ours/stock",
            "cpu: bare / ours img/s", "cpu ours/bare (min-max)", "rank img/s", "peak MB")
    rows = [[r["setting"], f"{r['bare']:.0f}", f"{r['stock']:.0f}", f"{r['ours']:.0f}",
             f"{r['ours_over_bare']:.2f} ({r['ours_over_bare_min']:.2f}-{r['ours_over_bare_max']:.2f})",
             f"{r['ours_over_stock']:.2f}", f"{r['bare_cpu']:.0f} / {r['ours_cpu']:.0f}",
             f"{r['ours_over_bare_cpu']:.2f} "
             f"({r['ours_over_bare_cpu_min']:.2f}-{r['ours_over_bare_cpu_max']:.2f})",
             f"{r['rank_images_per_second']:.0f}", f"{r['peak_memory_mb']:.0f}"] for r in records]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
