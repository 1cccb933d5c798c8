"""``cfer bench --path run``: one kd_psmr continual step as ``cfer run`` runs it, against a bare loop.

*ours*: the runner's path. The strategy comes from the registry (``kd_psmr``:
distillation from the basic model, PSMR memory concatenated with the new class's
``m`` images drawn per epoch), with the runner's evaluator (``build_evaluator``:
every metric and logger of a run), primed with a trained basic model as a run with
a shared basic model is (:class:`cfer.plugins.run.start_from_weights.StartFromWeightsPlugin`); the step is
``train(experience 1)`` (ranking the new class into the memory at its end) and the
one-pass evaluation of ``test[:2]``, as ``ContinualRunner.run_one`` does.

*bare*: a plain PyTorch loop doing the same arithmetic: the same model, weights and
grown head, per epoch the same number of memory and new-class images gathered from
device-resident uint8 images and augmented on the device, the frozen teacher's
forward, the same loss ``(1 - g) CE + g KD`` (:func:`cfer.plugins.method.distillation.distillation_loss`),
Adam, then the same evaluation (predictions and loss over the seen test images, read
once) and the ranking of the new class's images by their true-class logit.

Split: ``train`` (the epochs, teacher included), ``teacher`` (its forwards alone),
``rank`` and ``eval``. On CUDA the parts are timed with CUDA events (no host
synchronisation inside the step); on the CPU with the wall clock, and the process CPU
time of the step is reported too.
"""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path

import numpy as np

PARTS = ("train", "teacher", "rank", "eval")


class Clock:
    """Spans of a step: CUDA events on a GPU (read after one synchronisation at the end),
    the wall clock on the CPU."""

    def __init__(self, device):
        import torch

        self.device, self.cuda = device, device.type == "cuda"
        self._torch = torch
        self.spans: dict[str, list] = {}
        self._open: dict[str, object] = {}

    def mark(self):
        if self.cuda:
            e = self._torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def start(self, name: str) -> None:
        self._open[name] = self.mark()

    def stop(self, name: str) -> None:
        self.spans.setdefault(name, []).append((self._open.pop(name), self.mark()))

    def seconds(self) -> dict[str, float]:
        if self.cuda:
            self._torch.cuda.synchronize(self.device)
            return {k: sum(a.elapsed_time(b) for a, b in v) / 1000 for k, v in self.spans.items()}
        return {k: sum(b - a for a, b in v) for k, v in self.spans.items()}


def run_benchmark(cfg, *, transform):
    """Six basic classes and one compound class, ``cfg.images`` training images in all
    (a seventh of them per class) and 16 test images per class."""
    from cfer.benchmarks import compound_benchmark
    from cfer.benchmarks.dataset import FaceDataset
    from cfer.benchmarks.taxonomy import BASIC, CFEE_COMPOUND

    names = tuple(BASIC) + (CFEE_COMPOUND[0],)
    per_class, n_test = max(cfg.images // len(names), 8), 16
    labels = [c for c in range(len(names)) for _ in range(per_class + n_test)]
    partition = (["train"] * per_class + ["test"] * n_test) * len(names)
    ds = FaceDataset(paths=[f"/synthetic/{i:06d}.png" for i in range(len(labels))], labels=labels,
                     class_names=names, partition=partition, name="bench-run")
    rng = np.random.default_rng(cfg.seed)
    images = rng.integers(0, 256, size=(len(labels), cfg.image_size, cfg.image_size, 3), dtype=np.uint8)
    return compound_benchmark(ds, images=images, image_size=cfg.image_size, validation=False,
                              seed=cfg.seed, class_order=[CFEE_COMPOUND[0]], train_transform=transform)


def strategy_config(cfg, *, batch_size: int, precision: str, compile_mode: str):
    from cfer.strategies.training import TrainingConfig

    return TrainingConfig(batch_size=batch_size, eval_batch_size=cfg.eval_batch_size, basic_epochs=1,
                          epochs=cfg.step_epochs, patience=0, lr=cfg.lr, basic_lr=cfg.lr,
                          precision=precision, channels_last=cfg.channels_last, compile=compile_mode)


def _model(cfg, device, *, n_classes: int = 6):
    from avalanche.training.determinism.rng_manager import RNGManager

    from cfer.strategies.models import ModelConfig, build_model

    RNGManager.set_random_seeds(cfg.seed)
    return build_model(ModelConfig(name=cfg.model, image_size=cfg.image_size), n_classes=n_classes).to(device)


def _strategy(cfg, bm, scfg, *, device, log_dir, plugins=()):
    from cfer import strategies
    from cfer.experiments.config.sections import EvaluationConfig
    from cfer.experiments.run.evaluation import build_evaluator

    model = _model(cfg, device, n_classes=bm.info.n_basic)
    evaluator, collector, closers = build_evaluator(EvaluationConfig(), info=bm.info, log_dir=log_dir)
    strategy = strategies.build("kd_psmr", model=model, benchmark=bm, config=scfg, evaluator=evaluator,
                                plugins=list(plugins), device=device, valid_stream_name="test",
                                seed=cfg.seed)
    return strategy, model, closers


def basic_state(cfg, bm, scfg, *, device) -> dict:
    """The model after experience 0 (trained once per setting, not timed)."""
    from cfer.experiments.run.basic_store import state_to_cpu

    with tempfile.TemporaryDirectory() as tmp:
        strategy, model, closers = _strategy(cfg, bm, scfg, device=device, log_dir=Path(tmp))
        strategy.train(bm.train_stream[0], eval_streams=[])
        for close in closers:
            close()
    return state_to_cpu(model)


class OursStep:
    """The runner's kd_psmr step (module docstring); a fresh strategy per repeat."""

    def __init__(self, cfg, bm, scfg, *, state: dict, device):
        self.cfg, self.bm, self.scfg, self.state, self.device = cfg, bm, scfg, state, device
        self.sizes: tuple[int, int] | None = None  # (memory per class, new-class images per epoch)

    def __call__(self) -> tuple[dict, float]:
        from avalanche.core import SupervisedPlugin

        from cfer.plugins.method.distillation import BasicDistillationPlugin
        from cfer.plugins.run.start_from_weights import StartFromWeightsPlugin
        from cfer.plugins.speed.one_pass import one_pass

        clock = Clock(self.device)

        class First(SupervisedPlugin):  # first of the strategy's plugins
            def before_train_dataset_adaptation(self, strategy, **kwargs):
                # from the first thing train() does: Avalanche's dataset adaptation counts too
                clock.start("train")

            def after_training_exp(self, strategy, **kwargs):
                clock.stop("train")
                clock.start("rank")  # PSMR ranks the new class in its after_training_exp

        class Last(SupervisedPlugin):  # last of them
            def after_training_exp(self, strategy, **kwargs):
                clock.stop("rank")

            def before_eval(self, strategy, **kwargs):
                clock.start("eval")

            def after_eval(self, strategy, **kwargs):
                clock.stop("eval")

        primer = StartFromWeightsPlugin()
        with tempfile.TemporaryDirectory() as tmp:
            strategy, model, closers = _strategy(self.cfg, self.bm, self.scfg, device=self.device,
                                                 log_dir=Path(tmp), plugins=[primer])
            primer.prime(strategy, self.bm.train_stream[0], state_dict=self.state, model=model)
            kd = next(p for p in strategy.plugins if isinstance(p, BasicDistillationPlugin))
            kd.teacher.register_forward_pre_hook(lambda *a: clock.start("teacher"))
            kd.teacher.register_forward_hook(lambda *a: clock.stop("teacher"))
            strategy.plugins.insert(0, First())
            strategy.plugins.append(Last())
            cpu = time.process_time()
            strategy.train(self.bm.train_stream[1], eval_streams=[])
            strategy.eval(one_pass(self.bm.test_stream[:2]))
            seconds = clock.seconds()
            cpu = time.process_time() - cpu
            for close in closers:
                close()
        step = next(p for p in strategy.plugins if hasattr(p, "history") and hasattr(p, "draw")).history[-1]
        self.sizes = (min(step["memory_per_class"].values()), int(step["new_class_samples"]))
        return seconds, cpu


class BareStep:
    """The same arithmetic as :class:`OursStep` in a plain PyTorch loop (module docstring)."""

    def __init__(self, cfg, bm, scfg, *, state: dict, device, memory_per_class: int, drawn: int):
        import torch
        from avalanche.models.utils import avalanche_model_adaptation

        from cfer.plugins.speed.device_transforms import DeviceTransform
        from cfer.plugins.speed.items import item_table

        self.cfg, self.scfg, self.state, self.device, self.torch = cfg, scfg, state, device, torch
        self.exp = bm.train_stream[1]
        train = item_table([bm.train_stream[0].dataset.train(), self.exp.dataset.train()])
        test = item_table([e.dataset.eval() for e in bm.test_stream[:2]])
        rank = item_table([self.exp.dataset.eval()])
        self.images = train.images.to(device)  # the benchmark's uint8 images, once
        self.augment, self.plain = DeviceTransform(train.chains[0]), DeviceTransform(test.chains[0])
        rows, targets = torch.as_tensor(train.rows), torch.as_tensor(train.targets)
        new = int(max(self.exp.classes_in_this_experience))
        # Memory: memory_per_class images of each basic class; new: `drawn` of the new class
        # per epoch (PSMR's draw). Which images does not change the arithmetic.
        self.memory = torch.cat([rows[targets == c][:memory_per_class] for c in range(new)]).to(device)
        self.memory_y = torch.cat([targets[targets == c][:memory_per_class] for c in range(new)]).to(device)
        self.pool, self.new, self.drawn = rows[targets == new].to(device), new, drawn
        self.test_rows = torch.as_tensor(test.rows, device=device)
        self.test_y = torch.as_tensor(test.targets, device=device)
        self.rank_rows = torch.as_tensor(rank.rows, device=device)
        self.rank_y = torch.as_tensor(rank.targets, device=device)
        self.adapt = lambda model: avalanche_model_adaptation(model, self.exp)
        self.gen = torch.Generator(device=device).manual_seed(cfg.seed)

    def __call__(self) -> tuple[dict, float]:
        from cfer.plugins.method.distillation import distillation_loss, gamma_at
        from cfer.plugins.method.params import DistillationParams
        from cfer.plugins.speed.precision import compile_model

        torch, dev, scfg = self.torch, self.device, self.scfg
        pcfg = scfg.precision_config
        model = _model(self.cfg, dev)
        model.load_state_dict(self.state)
        teacher = copy.deepcopy(model).eval().requires_grad_(False)
        self.adapt(model)  # the head grows by the new class, as the strategy's adaptation does
        model.to(dev)
        if pcfg.channels_last:
            model.to(memory_format=torch.channels_last)
            teacher.to(memory_format=torch.channels_last)
        if pcfg.compile != "false":
            compile_model(model, mode=pcfg.compile)
            compile_model(teacher, mode=pcfg.compile)
        opt = torch.optim.Adam(model.parameters(), lr=scfg.lr, eps=scfg.adam_eps)
        ce = torch.nn.CrossEntropyLoss()
        kd = DistillationParams()  # kd_psmr's defaults, step i = 0
        g, temp = gamma_at(0, gamma=kd.gamma, decay=kd.decay), kd.temperature
        autocast = dict(device_type=dev.type, dtype=pcfg.dtype, enabled=pcfg.dtype is not None)

        def forward(net, x):
            if pcfg.compile == "reduce-overhead":
                torch.compiler.cudagraph_mark_step_begin()
            if pcfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(**autocast):
                return net(x).float()

        clock = Clock(dev)
        cpu = time.process_time()
        clock.start("train")
        model.train()
        for _ in range(scfg.epochs):
            pick = torch.randperm(len(self.pool), device=dev, generator=self.gen)[: self.drawn]
            rows = torch.cat([self.memory, self.pool[pick]])
            ys = torch.cat([self.memory_y, torch.full((self.drawn,), self.new, device=dev)])
            order = torch.randperm(len(rows), device=dev, generator=self.gen)
            for i in range(0, len(rows), scfg.batch_size):
                idx = order[i:i + scfg.batch_size]
                x, y = self.augment(self.images[rows[idx]], self.gen), ys[idx]
                out = forward(model, x)
                clock.start("teacher")
                with torch.no_grad():
                    t = forward(teacher, x)
                clock.stop("teacher")
                loss = (1 - g) * ce(out, y) + g * distillation_loss(out, t, temperature=temp)
                opt.zero_grad()
                loss.backward()
                opt.step()
        clock.stop("train")
        clock.start("rank")
        model.eval()
        with torch.no_grad():
            scores = [forward(model, self.plain(self.images[self.rank_rows[i:i + scfg.eval_batch_size]],
                                                self.gen))[:, self.new]
                      for i in range(0, len(self.rank_rows), scfg.eval_batch_size)]
            ranking = torch.argsort(torch.cat(scores), descending=True, stable=True).tolist()
        clock.stop("rank")
        clock.start("eval")
        with torch.no_grad():
            correct, loss_sum = [], []
            for i in range(0, len(self.test_rows), scfg.eval_batch_size):
                x = self.plain(self.images[self.test_rows[i:i + scfg.eval_batch_size]], self.gen)
                y = self.test_y[i:i + scfg.eval_batch_size]
                out = forward(model, x)
                correct.append((out.argmax(1) == y).sum())
                loss_sum.append(ce(out, y) * len(y))
            torch.stack(correct + loss_sum).tolist()  # read once, as our metrics do
        clock.stop("eval")
        seconds = clock.seconds()
        assert len(ranking) == len(self.rank_rows)
        return seconds, time.process_time() - cpu



def _stats(values) -> tuple[float, float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.min()), float(np.median(v)), float(v.max())


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def run_setting(cfg, *, batch_size: int, precision: str, compile_mode: str, device, name: str) -> dict:
    """One setting of ``--path run``: a warm-up step of each, then ``cfg.repeats`` pairs in
    alternating order (ours, bare, bare, ours, ...) so that a shared machine's load, and being
    first, hit both alike; the wall and the CPU ratio of each pair, with their spread."""
    from cfer.benchmarks.transforms import train_transform

    bm = run_benchmark(cfg, transform=train_transform())
    scfg = strategy_config(cfg, batch_size=batch_size, precision=precision, compile_mode=compile_mode)
    state = basic_state(cfg, bm, scfg, device=device)
    ours = OursStep(cfg, bm, scfg, state=state, device=device)
    ours()  # warm-up (compilation, autotuning, first allocations)
    memory_per_class, drawn = ours.sizes
    bare = BareStep(cfg, bm, scfg, state=state, device=device, memory_per_class=memory_per_class, drawn=drawn)
    bare()
    runs = {"ours": [], "bare": []}
    steps = {"ours": ours, "bare": bare}
    for i in range(cfg.repeats):  # pairs in alternating order: neither path always runs first
        for k in (("ours", "bare") if i % 2 == 0 else ("bare", "ours")):
            runs[k].append(steps[k]())
    total = {k: [sum(s[p] for p in ("train", "rank", "eval")) for s, _ in v] for k, v in runs.items()}
    ratio = [b / o for o, b in zip(total["ours"], total["bare"])]
    cpu_ratio = [b[1] / o[1] for o, b in zip(runs["ours"], runs["bare"])]
    rec = {"setting": name, "path": "run", "repeats": cfg.repeats,
           "train_images": memory_per_class * bm.info.n_basic + drawn, "epochs": scfg.epochs,
           "test_images": sum(len(e.dataset) for e in bm.test_stream[:2])}
    for k in ("ours", "bare"):
        lo, mid, hi = _stats(total[k])
        rec.update({f"{k}_s_min": round(lo, 4), f"{k}_s": round(mid, 4), f"{k}_s_max": round(hi, 4)})
        for part in PARTS:
            rec[f"{k}_{part}_s"] = round(float(np.median([s.get(part, 0.0) for s, _ in runs[k]])), 4)
        rec[f"{k}_cpu_s"] = round(float(np.median([c for _, c in runs[k]])), 4)
    lo, mid, hi = _stats(ratio)
    rec.update(ours_over_bare_min=round(lo, 3), ours_over_bare=round(mid, 3), ours_over_bare_max=round(hi, 3))
    lo, mid, hi = _stats(cpu_ratio)
    rec.update(ours_over_bare_cpu_min=round(lo, 3), ours_over_bare_cpu=round(mid, 3),
               ours_over_bare_cpu_max=round(hi, 3), threads=torch_threads())
    return rec


def format_table(records: list[dict]) -> str:
    head = ("setting", "ours s/step", "bare s/step", "ours/bare (min-max)", "cpu ours/bare (min-max)",
            "ours train / teacher / rank / eval s", "bare train / teacher / rank / eval s")

    def parts(r, k):
        return " / ".join(f"{r[f'{k}_{p}_s']:.3f}" for p in PARTS)

    rows = [[r["setting"], f"{r['ours_s']:.3f}", f"{r['bare_s']:.3f}",
             f"{r['ours_over_bare']:.2f} ({r['ours_over_bare_min']:.2f}-{r['ours_over_bare_max']:.2f})",
             f"{r['ours_over_bare_cpu']:.2f} "
             f"({r['ours_over_bare_cpu_min']:.2f}-{r['ours_over_bare_cpu_max']:.2f})",
             parts(r, "ours"), parts(r, "bare")] for r in records]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
