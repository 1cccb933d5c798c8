"""The models table of docs/models.md: parameters, trainable parameters per phase, CPU img/s at 64 px.

    python tools/models_table.py [MODEL ...]

One JSON line per model, measured in one sitting in one process (weights none, fp32):
a batch-32 training step over the continual phase's trainable parameters and a batch-64
forward pass, each the fastest of 5 timed calls after a warm-up (the least disturbed by
other load on a shared machine).
"""

from __future__ import annotations

import json
import platform
import sys
import time

DEFAULT = ("small_cnn", "resnet18", "resnet50", "resnet50_paper", "resnet50v2_paper",
           "timm:resnet10t", "timm:mobilenetv3_small_050", "timm:convnext_atto")
PHASES = ("basic_freeze_below", "finetune_freeze_below", "freeze_below")


def fastest(fn, *, k: int = 5) -> float:
    fn()
    times = []
    for _ in range(k):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(name: str) -> dict:
    import torch
    from torch import nn

    from cfer.strategies.models.config import ModelConfig
    from cfer.strategies.models.registry import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name, image_size=64), n_classes=6)
    cfg = model.config
    trainable = {}
    for key in PHASES:
        model.backbone.freeze_below(getattr(cfg, key))
        trainable[key] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    model.backbone.freeze_below(cfg.freeze_below)  # the continual phase
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    x, y = torch.randn(32, 3, 64, 64), torch.randint(0, 6, (32,))

    def step() -> None:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    model.train()
    train_ips = 32 / fastest(step)
    model.eval()
    xe = torch.randn(64, 3, 64, 64)
    with torch.no_grad():
        eval_ips = 64 / fastest(lambda: model(xe))
    return {"model": name, "params": sum(p.numel() for p in model.parameters()), "head": cfg.head,
            "pooling": cfg.pooling, "trainable_basic": trainable["basic_freeze_below"],
            "trainable_finetune": trainable["finetune_freeze_below"],
            "trainable_continual": trainable["freeze_below"],
            "train_img_s": round(train_ips, 1), "eval_img_s": round(eval_ips, 1)}


def main(argv: list[str]) -> None:
    import torch

    for name in argv or DEFAULT:
        print(json.dumps(measure(name)), flush=True)
    print(f"threads {torch.get_num_threads()}, torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}")


if __name__ == "__main__":
    main(sys.argv[1:])
