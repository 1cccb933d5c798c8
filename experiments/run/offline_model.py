"""An offline method's model (joint): trained once per fold and seed, scored in every class order.

joint trains once on every class at once, so the class order changes nothing of its training
but the numbering: the benchmark numbers the compound classes by their order, so unit k of the
output layer is another class in each order. With ``runner.share_offline`` (the default) the
model of a (method, fold, seed) is trained once, in the numbering of the first planned order of
that fold and seed, saved under ``<run dir>/offline/``, and every order loads it with the output
layer's rows put into its own numbering: a permutation of rows gives each class the same logit
under its new index (to the last bits: the matrix product rounds a column by where it sits in
its blocks), so each order scores the one model (tests/test_offline_model.py).

What this changes: the first order's numbers are those of a joint trained for that order; the
other orders' were those of their own joint models, which differed only in the order the
shuffle drew the same images in (their spread over orders is now that of the scoring alone,
and the final step, all classes seen, is the same in every order). What it saves: (orders - 1)
trainings on all classes, a sixth of the quickstart's CPU time (docs/speed.md).
``runner.share_offline: false`` trains one per order, as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

#: The output layer's keys in a CLModel's state dict (strategies/models/network.py).
HEAD_KEYS = ("classifier.linear.weight", "classifier.linear.bias")
#: What a saved offline model holds (besides the settings digest).
SAVED_KEYS = {"state_dict", "train_seconds", "images", "class_names"}


def offline_digest(cfg, method: str, *, fold: int, seed: int, shots: int | None,
                   order: Sequence[str]) -> str:
    """The digest of what trains the offline model of (method, fold, seed): the method's config
    digest (every setting that changes its numbers), the split and the order it is numbered by."""
    from cfer.experiments.run import environment as env

    return env.digest({"offline": method, "fold": fold, "seed": seed, "shots": shots, "order": list(order),
                       "config_digest": env.run_config_digests(cfg)[method]})


def head_permutation(trained: Sequence[str], wanted: Sequence[str]) -> list[int]:
    """Row ``i`` of the wanted output layer is row ``perm[i]`` of the trained one: the class
    names by label of the order the model was trained in (``trained``) and of the order it is
    scored in (``wanted``), the same classes."""
    if sorted(trained) != sorted(wanted):
        raise ValueError(f"offline model: trained on classes {sorted(trained)}, asked for {sorted(wanted)}")
    index = {name: k for k, name in enumerate(trained)}
    return [index[name] for name in wanted]


def renumbered(state_dict: dict, perm: Sequence[int]) -> dict:
    """``state_dict`` with the output layer's rows in the order ``perm``."""
    import torch

    out = dict(state_dict)
    order = torch.as_tensor(list(perm), dtype=torch.long)
    for key in HEAD_KEYS:
        out[key] = state_dict[key].index_select(0, order)
    return out


def load_into(model, saved: dict, *, class_names: Sequence[str]) -> None:
    """Load the offline model ``saved`` into a fresh ``model`` (a CLModel with its basic units
    only) numbered as ``class_names``: the output layer grown to every class, its rows permuted."""
    state = renumbered(saved["state_dict"], head_permutation(saved["class_names"], class_names))
    model.classifier.grow(state[HEAD_KEYS[0]].shape[0])
    model.load_state_dict(state)


def train(ctx, spec, *, order: Sequence[str], device, log_dir, shots: int | None) -> dict:
    """Train the offline model of ``spec``'s (method, fold, seed) on the benchmark of
    ``order``, in a session of the run context ``ctx``; the dict saved under ``offline/``."""
    from cfer.experiments.run.basic_store import state_to_cpu
    from cfer.plugins.speed.throughput import ThroughputPlugin

    meter = ThroughputPlugin()
    label = f"{spec.method} fold {spec.fold} seed {spec.seed}"
    with ctx.session(spec.method, order=order, fold=spec.fold, seed=spec.seed, shots=shots, device=device,
                     log_dir=log_dir, plugins=[meter], label=label) as s:
        s.strategy.train(s.benchmark.train_stream, eval_streams=[s.valid])
        final = ctx.final_validation
        saved = {"state_dict": state_to_cpu(s.model), "train_seconds": meter.seconds, "images": meter.images,
                 "class_names": list(s.benchmark.info.class_names)}
        if final is not None:
            saved["final_valid_accuracy"] = final.accuracy
    return saved


def first_orders(specs, *, offline) -> list:
    """``specs`` with ``offline_order`` set on each run of an offline method (``offline(method)``):
    the order of the first planned run of its (method, fold, seed), which trains the model all
    of them score."""
    first: dict = {}
    for s in specs:
        if offline(s.method):
            first.setdefault((s.method, s.fold, s.seed), s.order)
    return [dataclasses.replace(s, offline_order=first[(s.method, s.fold, s.seed)]) if offline(s.method)
            else s for s in specs]
