"""One ``cfer bench`` invocation (:class:`BenchConfig`): its defaults per device, the
command-line options over them, and the name of each setting."""

from __future__ import annotations

from dataclasses import dataclass, replace

from cfer.plugins.speed.config import PrecisionConfig

PATHS = ("run", "train")


@dataclass(frozen=True)
class BenchConfig:
    """One ``cfer bench`` invocation. Defaults per device: :func:`default_config`."""

    device: str = "cpu"
    model: str = "small_cnn"
    image_size: int = 32  # the quickstart's (benchmark.image_size)
    images: int = 384  # synthetic training images (six basic classes)
    batch_sizes: tuple[int, ...] = (32,)  # paper: 32
    precisions: tuple[str, ...] = ("fp32",)
    compiles: tuple[str, ...] = ("false",)
    channels_last: bool = True  # as `cfer run` trains a convolutional model (training.channels_last: auto)
    # --path train: timed epochs per path (interleaved), after one warm-up epoch. 15: an epoch is
    # 0.4 s here and varies +-15% from epoch to epoch on an idle 2-core VM; the median ratio of 5
    # moved 9% between sittings, of 15 4% (docs/benchmarks.md)
    epochs: int = 15
    lr: float = 1e-4  # Adam (paper: basic experience 1e-4)
    seed: int = 0
    stock_workers: int = 0  # DataLoader workers of the stock path (Avalanche's default: 0)
    path: str = "train"  # "run": a kd_psmr step as `cfer run` runs it; "train": training epochs
    repeats: int = 5  # --path run: timed steps per path (interleaved), after one warm-up step
    step_epochs: int = 2  # --path run: epochs of the continual step (quickstart: 2)
    eval_batch_size: int = 256  # --path run: the runner's evaluation batch (quickstart: 256)
    threads: int = 1  # CPU: torch threads (the runs of `cfer run` train at runner.threads_per_run, 1)
    max_spread: float = 0.1  # (max - min) / median of the paired ratio above which not to trust it

    def __post_init__(self) -> None:
        if self.images < 64 or self.image_size < 16 or self.epochs < 1 or self.repeats < 1:
            raise ValueError("bench: need images >= 64, image_size >= 16, epochs >= 1 and repeats >= 1")
        if self.path not in PATHS:
            raise ValueError(f"--path: {self.path!r} is not one of {', '.join(PATHS)}")
        if any(b < 1 for b in self.batch_sizes):
            raise ValueError(f"--batch-size: must be >= 1, got {list(self.batch_sizes)}")
        for p in self.precisions:
            for c in self.compiles:
                PrecisionConfig(precision=p, channels_last=self.channels_last, compile=c)


def default_config(device: str) -> BenchConfig:
    """CPU: the quickstart's small model at its 32 px, channels-last, 1 thread; CUDA: the
    paper's ResNet-50 at 224 px, batches 32 and 256, fp32 and bf16, channels-last."""
    if device == "cuda":
        return BenchConfig(device="cuda", model="resnet50_paper", image_size=224, images=4096,
                           batch_sizes=(32, 256), precisions=("fp32", "bf16"), epochs=2)
    return BenchConfig()  # the CPU defaults



def setting_name(cfg: BenchConfig, *, batch_size: int, precision: str, compile_mode: str) -> str:
    parts = [f"{cfg.model} {cfg.image_size}px bs{batch_size} {precision}"]
    if cfg.channels_last:
        parts.append("channels-last")
    if compile_mode != "false":
        parts.append(f"compile={compile_mode}")
    return " ".join(parts)


def config_from_args(args) -> BenchConfig:
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cfg = default_config(device)
    over = {}
    if args.model:
        over["model"] = args.model
        if args.model != cfg.model and device == "cpu" and args.model.startswith("resnet"):
            over["image_size"] = 224
    if args.batch_sizes:
        over["batch_sizes"] = tuple(args.batch_sizes)
    if args.precisions:
        over["precisions"] = tuple(args.precisions)
    if getattr(args, "compiles", None):
        over["compiles"] = tuple(args.compiles)
    if getattr(args, "path", None):
        over["path"] = args.path
    if getattr(args, "threads", None) is not None:
        if args.threads < 1:
            raise ValueError(f"--threads {args.threads}: must be >= 1")
        over["threads"] = args.threads
    if getattr(args, "repeats", None) is not None:  # 0 is refused below, not the default
        if args.repeats < 1:
            raise ValueError(f"--repeats {args.repeats}: must be >= 1")
        over["repeats" if over.get("path", cfg.path) == "run" else "epochs"] = args.repeats
    return replace(cfg, **over)

