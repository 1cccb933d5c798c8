"""How much a method changes the loss it trains with, on a finished run's stream.

    python tools/penalty_size.py RUN_DIR [--method lwf] [--steps 3]

Rebuilds class order 0 (fold and seed of the config's first) of a finished
``cfer run``, starts from its shared basic model (``RUN_DIR/basic/``), trains
the first compound steps with the run's settings and prints, per step, the mean
over minibatches of the plain cross-entropy and of ``loss - cross-entropy``:
the penalty a regulariser adds (EWC, LwF) or the change a distillation term
makes ((1 - g_i) CE + g_i KD for the paper's method). docs/results.md's note on why
LwF equals naive in this protocol quotes its output.

For a method with the paper's distillation it also prints what the loss value hides: the
gradient of the KD term on the logits against that of the cross-entropy,
``|| g_i dKD/ds || / || (1 - g_i) dCE/ds ||`` (mean over minibatches; what training feels), and
the share of the KD value that is the teacher's entropy ``H(softmax(t / T))``, a constant
that no parameter can change (KD = H + KL(teacher || student)).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def measure(run_dir: Path, *, method: str, steps: int) -> list[dict]:
    import torch
    from avalanche.core import SupervisedPlugin

    from cfer.experiments.config.load import load_config
    from cfer.experiments.run.continual import ContinualRunner, plan_runs
    from cfer.plugins.method.distillation import BasicDistillationPlugin
    from cfer.plugins.run.start_from_weights import StartFromWeightsPlugin

    class Probe(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.rows: dict[int, list[tuple[float, float]]] = {}
            self.kd: dict[int, list[tuple[float, float]]] = {}  # (gradient share, entropy share)

        def before_backward(self, strategy, **kwargs):  # after the distillation plugin's own
            kd = next((p for p in strategy.plugins if isinstance(p, BasicDistillationPlugin)), None)
            if kd is None or kd.teacher is None or kd.last_kd is None:
                return
            g, out = kd.last_gamma, strategy.mb_output
            ce = torch.nn.functional.cross_entropy(out[: len(strategy.mb_y)].float(), strategy.mb_y)
            d_total, = torch.autograd.grad(strategy.loss, out, retain_graph=True)
            d_ce, = torch.autograd.grad(ce, out, retain_graph=True)
            d_kd = d_total - (1 - g) * d_ce  # g * dKD/ds
            share = float(d_kd.norm() / ((1 - g) * d_ce).norm())
            with torch.no_grad():  # the teacher's entropy at temperature T, padded as the plugin does
                from avalanche.models import avalanche_forward

                t = avalanche_forward(kd.teacher, strategy.mb_x, strategy.mb_task_id).float()
                s_cols, t_cols, pad_cols = kd._columns(strategy, student_width=out.shape[1],
                                                        teacher_width=t.shape[1], device=out.device)
                padded = torch.zeros(len(t), len(s_cols), device=t.device)
                padded[:, pad_cols] = t[:, t_cols]
                p = torch.softmax(padded / kd.config.temperature, dim=1)
                entropy = float(-(p * torch.log(p.clamp_min(1e-30))).sum(dim=1).mean())
            e = strategy.experience.current_experience
            self.kd.setdefault(e, []).append((share, entropy / float(kd.last_kd)))

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
        row = {"step": e, "minibatches": len(rows), "cross_entropy": ce, "loss_minus_ce": extra}
        if probe.kd.get(e):
            kd = probe.kd[e]
            row["kd_gradient_share"] = sum(k[0] for k in kd) / len(kd)
            row["kd_entropy_share"] = sum(k[1] for k in kd) / len(kd)
        out.append(row)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--method", default="lwf")
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args()
    for row in measure(args.run_dir, method=args.method, steps=args.steps):
        print(f"{args.method} step {row['step']}: {row['minibatches']} minibatches, "
              f"cross-entropy {row['cross_entropy']:.4f}, loss - cross-entropy {row['loss_minus_ce']:+.2e}"
              + (f"; KD gradient on the logits {100 * row['kd_gradient_share']:.2f}% of the CE gradient, "
                 f"teacher entropy {100 * row['kd_entropy_share']:.1f}% of the KD value"
                 if "kd_gradient_share" in row else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
