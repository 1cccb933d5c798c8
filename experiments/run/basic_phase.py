"""Which methods train experience 0 identically: the basic-phase fingerprint of a built strategy.

Two methods whose experience 0 trains the same way produce the same basic model to the bit
(same seed, same data, same arithmetic), so the runner trains it once and every such method
starts its class orders from it (``runner.share_basic``). Which methods those are is read from
the strategies themselves, not from a list of method names: :func:`fingerprint` describes what
a built strategy does in experience 0, and methods with equal fingerprints (and equal
basic-phase settings, :func:`basic_phase_digest`) share one basic model.

What the fingerprint holds:

- the class whose code trains the strategy: the first class of its MRO that defines more than
  ``__init__`` (Avalanche's ``Naive`` and ``LwF`` only add plugins to ``SupervisedTemplate``,
  so they train with its loop; ``JointTraining`` has its own);
- the model (its architecture and initial weights), the criterion, the optimizer (its class
  and the hyperparameters of each parameter group), the mini-batch sizes;
- each plugin that acts on experience 0, in order: its class and its plain state (or
  ``first_experience_state()`` when it defines one). A plugin that is inert there is left
  out: the registry's ``first_experience`` (:mod:`cfer.plugins.registry`), or, for a plugin
  of another library that a strategy adds itself, :data:`cfer.plugins.registry.FOREIGN`.
  A plugin neither declares counts as acting, so an unknown plugin never makes two methods
  share wrongly; at worst they train their basic models separately, as before.

tests/test_basic_phase.py checks the claim where it matters: the shared weights equal each
method's own experience-0 weights to the bit on CPU.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib

#: ``training`` keys that only the continual experiences read: a method may override them and
#: still share its basic model (every other training key is part of the basic-phase digest).
CONTINUAL_ONLY = ("lr", "epochs", "monitor", "min_delta", "continual_batch_size", "continual_drop_last",
                  "continual_head_l2", "memory_fraction", "memory_mode", "mem_per_class",
                  "replay_batch_size_mem")


def _path(obj) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def plain(value, depth: int = 0):
    """``value`` as plain data (numbers, strings, lists, dicts); an object that is none of the
    types below is described by its class only (a model, a tensor, a generator)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if depth > 4:
        return f"<{_path(value)}>"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [plain(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if type(value).__module__ == "torch" and type(value).__name__ in ("device", "dtype"):
        return str(value)
    return f"<{_path(value)}>"


def trainer_class(strategy) -> str:
    """The class whose code trains ``strategy``: the first of its MRO that defines a callable
    other than a dunder (``__init__``, and ``__subclasshook__`` that ``typing.Protocol`` adds):
    a subclass that only builds its plugins in ``__init__`` trains with its base's loop."""
    for cls in type(strategy).__mro__:
        if any(callable(v) and not (k.startswith("__") and k.endswith("__")) for k, v in vars(cls).items()):
            return _path(cls)
    return _path(strategy)


def first_experience(plugin) -> str:
    """``"inert"`` or ``"acts"``: what ``plugin`` does to experience 0, as the registry (or, for
    another library's plugin, :data:`~cfer.plugins.registry.FOREIGN`) declares it; acts if
    neither knows it."""
    from cfer.plugins.registry import FOREIGN, entry_of

    entry = entry_of(plugin)
    if entry is not None:
        return entry.first_experience
    for cls in type(plugin).__mro__:
        if _path(cls) in FOREIGN:
            return FOREIGN[_path(cls)][0]
    return "acts"


def plugin_state(plugin) -> dict:
    """What an acting plugin does to experience 0: its class and its plain state."""
    hook = getattr(plugin, "first_experience_state", None)
    state = hook() if callable(hook) else vars(plugin)
    return {"class": _path(plugin), "state": plain(dict(state))}


def _weights(model) -> str:
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(str(tuple(v.shape)).encode() + str(v.dtype).encode())
        h.update(v.detach().cpu().contiguous().view(-1).view(dtype=_bytes_dtype()).numpy().tobytes())
    return h.hexdigest()[:16]


def _bytes_dtype():
    import torch

    return torch.uint8


def primable(strategy) -> bool:
    """Whether ``strategy``'s state after an experience is rebuilt by running it through
    ``train`` with saved weights and no epoch (:mod:`cfer.plugins.run.start_from_weights`): false
    when a plugin declares ``primable = False``, its state being built from the training steps
    themselves (Synaptic Intelligence's path integral, RWalk's scores, GSS's gradient-scored
    memory). Such a method trains its own experience 0 and resumes a run from its start."""
    return all(getattr(p, "primable", True) for p in strategy.plugins)


def fingerprint(strategy) -> dict:
    """What ``strategy`` does in experience 0 (the module docstring says what it holds)."""
    from cfer.plugins.workarounds.templates import criterion

    opt, loss = strategy.optimizer, criterion(strategy)
    groups = [{**{k: plain(v) for k, v in g.items() if k != "params"},
               "params": [list(p.shape) for p in g["params"]]} for g in opt.param_groups]
    return {
        "trainer": trainer_class(strategy),
        "model": {"architecture": str(strategy.model), "weights": _weights(strategy.model)},
        "criterion": {"class": _path(loss), "state": plain(vars(loss))},
        "optimizer": {"class": _path(opt), "defaults": plain(opt.defaults), "groups": groups},
        # Not train_epochs: the builder's TrainingSchedule (an acting plugin, described below)
        # sets it before every experience from its phases; as built it is the continual budget.
        "train_mb_size": strategy.train_mb_size, "eval_mb_size": strategy.eval_mb_size,
        "plugins": [plugin_state(p) for p in strategy.plugins if first_experience(p) == "acts"],
        "primable": primable(strategy),
    }


def basic_phase_digest(cfg, method: str, phase: dict, *, fold: int, seed: int,
                       shots: int | None = None) -> str:
    """The digest of what trains experience 0 of ``method`` on (``fold``, ``seed``): its
    strategy's :func:`fingerprint` ``phase``, its training settings but the continual-only
    ones (:data:`CONTINUAL_ONLY`), the model, data set, data and benchmark sections. Not the
    method's name: methods with equal digests share one basic model."""
    from cfer.core.typed import to_dict
    from cfer.experiments.run import environment as env

    config = to_dict(cfg)
    training = {k: v for k, v in dataclasses.asdict(cfg.training_for(method)).items()
                if k not in CONTINUAL_ONLY}
    return env.digest({"basic_phase": phase, "fold": fold, "seed": seed, "shots": shots,
                       "training": training, "model": config["model"], "dataset": config["dataset"],
                       "data": config["data"], "benchmark": config["benchmark"],
                       "protocol": config["protocol"]["name"]})


def probe(ctx, methods, *, order, fold: int, seed: int, shots: int | None = None) -> dict[str, dict]:
    """``{method: fingerprint}`` of ``methods`` built (not trained) on the benchmark of
    (``order``, ``fold``, ``seed``, ``shots``) of the run context ``ctx``, on the CPU, each on
    a fresh model seeded alike; their loggers write into a temporary folder."""
    import tempfile
    from pathlib import Path

    import torch
    from avalanche.training.determinism.rng_manager import RNGManager

    from cfer.strategies.models import build_model

    bm = ctx.benchmark(order=order, fold=fold, seed=seed, shots=shots)
    out = {}
    with tempfile.TemporaryDirectory(prefix="cfer-probe-") as tmp:
        for method in methods:
            RNGManager.set_random_seeds(seed)
            model = build_model(ctx.cfg.model, n_classes=bm.info.n_basic)
            strategy, _, closers = ctx.sessions.strategy(method, bm, model, device=torch.device("cpu"),
                                                         log_dir=Path(tmp) / method, seed=seed)
            try:
                out[method] = fingerprint(strategy)
            finally:
                for close in closers:
                    close()
    return out


def log_sharing(specs) -> None:
    """Log which methods share a basic model (per fold and seed) among ``specs`` (RunSpecs
    with their ``basic_key``), and which offline methods train once per fold and seed."""
    import logging

    groups: dict[str, list[str]] = {}
    for s in specs:
        if s.basic_key is not None and (s.fold, s.seed) == (specs[0].fold, specs[0].seed):
            groups.setdefault(s.basic_key, [])
            if s.method not in groups[s.basic_key]:
                groups[s.basic_key].append(s.method)
    log = logging.getLogger("cfer.experiments.run.continual")
    if groups:
        log.info("basic models (experience 0), one per fold and seed: %s",
                 "; ".join(f"{', '.join(ms)} share one" if len(ms) > 1 else f"{ms[0]} its own"
                           for ms in groups.values()))
    offline = list(dict.fromkeys(s.method for s in specs if s.offline_order is not None))
    if offline:
        log.info("%s: trained once per fold and seed, scored in every class order", ", ".join(offline))


def refuse_other_basic_models(run_dir, planned: dict) -> None:
    """Refuse (one line) a basic model under ``run_dir/basic/`` for a planned (fold, seed) whose
    digest is none of the plan's (``planned``: path -> digest): it was trained with other
    settings (copied from another run, or left by another config). Its file name holds its
    digest, so it would not be reused, but a run directory must not mix models of two settings."""
    from pathlib import Path

    from cfer.experiments.run.basic_store import check_digest
    from cfer.experiments.run.model_files import load_state

    folder = Path(run_dir) / "basic"
    if not folder.is_dir():
        return
    wanted: dict[str, set[str]] = {}
    for path, digest in planned.items():
        wanted.setdefault(path.name[: -len(path.name.rsplit("_", 1)[1])], set()).add(digest)
    for path in sorted(folder.glob("fold*_seed*_*.pt")):
        prefix = path.name[: -len(path.name.rsplit("_", 1)[1])]
        if path not in planned and prefix in wanted:
            check_digest(path, load_state(path, mmap=True, run_dir=run_dir), "/".join(sorted(wanted[prefix])))
