"""How much a method changes the loss it trains with, on a finished run's stream.

    python tools/penalty_size.py RUN_DIR [--method lwf] [--steps 3]

Rebuilds class order 0 (fold and seed of the config's first) of a finished
``cfer run``, starts from its shared basic model (``RUN_DIR/basic/``), trains
the first compound steps with the run's settings and prints, per step, the mean
over minibatches of the plain cross-entropy and of ``loss - cross-entropy``:
the penalty a regulariser adds (EWC, LwF) or the change a distillation term
makes ((1 - g_i) CE + g_i KD for the paper's method). docs/results.md's note on why
LwF equals naive in this protocol quotes its output.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def measure(run_dir: Path, *, method: str, steps: int) -> list[dict]:
    import torch
    from avalanche.core import SupervisedPlugin

    from cfer.experiments.config.load import load_config
    from cfer.experiments.run.continual import ContinualRunner, plan_runs
    from cfer.plugins.run.start_from_weights import StartFromWeightsPlugin

    class Probe(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.rows: dict[int, list[tuple[float, float]]] = {}

        def after_backward(self, strategy, **kwargs):  # every plugin has added its term
            out = strategy.mb_output[: len(strategy.mb_y)].float()
            ce = torch.nn.functional.cross_entropy(out, strategy.mb_y).item()
            e = strategy.experience.current_experience
            self.rows.setdefault(e, []).append((ce, float(strategy.loss.detach()) - ce))

    cfg = load_config(run_dir / "config.yaml", [f"strategies.methods=[{method}]"])
    runner = ContinualRunner(cfg, run_dir)
    spec = plan_runs(cfg, runner.ctx.data().dataset.class_names)[0]
    basic = runner.basic_state(spec, device=runner.ctx.device())
    probe, primer = Probe(), StartFromWeightsPlugin()
    with runner.ctx.session(method, order=spec.order, fold=spec.fold, seed=spec.seed,
                            device=runner.ctx.device(), log_dir=Path("/tmp") / "cfer-penalty",
                            plugins=[probe, primer]) as s:
        stream = s.benchmark.train_stream
        primer.prime(s.strategy, stream[0], state_dict=basic["state_dict"], model=s.model)
        for exp in stream[1: steps + 1]:
            s.strategy.train(exp, eval_streams=[])
    out = []
    for e, rows in sorted(probe.rows.items()):
        ce = sum(r[0] for r in rows) / len(rows)
        extra = sum(r[1] for r in rows) / len(rows)
        out.append({"step": e, "minibatches": len(rows), "cross_entropy": ce, "loss_minus_ce": extra})
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--method", default="lwf")
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args()
    for row in measure(args.run_dir, method=args.method, steps=args.steps):
        print(f"{args.method} step {row['step']}: {row['minibatches']} minibatches, "
              f"cross-entropy {row['cross_entropy']:.4f}, loss - cross-entropy {row['loss_minus_ce']:+.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
