"""``runner.backend: local``: the runs one after another in this process."""

from __future__ import annotations

from cfer.experiments.backends import prepare_process, run_one


def execute(runner, todo, *, device, record, fail) -> None:
    """Each run with a bar over its experiences, in this process set up by
    :func:`~cfer.experiments.backends.prepare_process` (its torch thread count is restored
    after); an exception stops the loop (``fail`` is not
    used: the traceback is the most useful report of a sequential run)."""
    import torch

    before = prepare_process(runner.cfg.runner)
    try:
        for k, spec in enumerate(todo, 1):
            with runner.ctx.progress(total=1 + len(spec.order), desc=f"[{k}/{len(todo)}] {spec.label}",
                                     unit="exp") as bar:
                rec = run_one(runner, spec, device=device, progress=bar)
            record(spec, rec)
    finally:
        torch.set_num_threads(before)
