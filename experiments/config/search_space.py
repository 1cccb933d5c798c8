"""The search space of each method, and the trials ``cfer tune`` draws from it.

A knob's grid is declared where the knob is defined: a ``search`` ClassVar on the
strategy's params dataclass (``LwFParams.search``), on each plugin's params of a composed
method (``DistillationParams.search``), and on the training section for the learning
rate (``TrainingConfig.search``: ``lr`` for a continual method, ``basic_lr`` for an offline
one, which trains only with the basic phase's schedule). A config's ``tune.space``
replaces a knob's grid, or adds a knob of the method's own (``gamma``: every method that
has it; ``kd_psmr.gamma``: that method only); every value is checked against the knob's
type and range when the config is loaded (one line naming ``tune.space.<key>``).

Every declared knob acts from experience 1 on (a plugin ``inert`` on experience 0, a
penalty with no previous model, the continual ``lr``), so the trials of a method share
experience 0's model (experiments/tune/tune.py).

Light on purpose (no torch): configs are checked with it before torch is imported.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any

from cfer.core.typed import ConfigError, overlay

#: The training knob a method is tuned on: the continual learning rate, or, for an offline
#: method (joint: trained once, with the basic phase's schedule), the basic one.
TRAINING_KNOBS = ("lr", "basic_lr")


@dataclass(frozen=True)
class Knob:
    """One searched setting of a method: its config key, its grid, the config's value."""

    name: str  # lr, gamma, ...
    key: str  # strategies.overrides.<method>.lr | strategies.params.<method>.<name>
    values: tuple
    default: Any


def tuned_methods(cfg) -> list[str]:
    """``tune.methods`` that are run (``strategies.methods``), else every method run."""
    if cfg.tune.methods is None:
        return list(cfg.strategies.methods)
    return [m for m in cfg.tune.methods if m in cfg.strategies.methods]


def training_knob(cfg, method: str) -> str:
    return "basic_lr" if cfg.method_entry(method).offline else "lr"


def _param_owners(params) -> list:
    """The params dataclasses of a method: a zoo strategy's one, or a composed method's base's
    and plugins' (:class:`cfer.strategies.compose.MethodParams`)."""
    if hasattr(params, "owners"):
        return [p for _, p in params.owners()]
    return [params]


def declared(cfg, method: str) -> dict[str, tuple]:
    """The grids ``method``'s code declares: its training knob's and its params' ``search``."""
    from cfer.strategies.training import TrainingConfig

    knob = training_knob(cfg, method)
    out = {knob: tuple(TrainingConfig.search[knob])}
    for params in _param_owners(cfg.params_for(method)):
        out.update({k: tuple(v) for k, v in getattr(type(params), "search", {}).items()})
    return out


def settable(cfg, method: str) -> list[str]:
    """The knobs ``tune.space`` may name for ``method``: its training knob and its own settings."""
    return [training_knob(cfg, method), *cfg.method_entry(method).param_keys()]


def _checked(cfg, method: str, knob: str, value, *, where: str, key: str) -> None:
    """``value`` must be a valid ``knob`` of ``method`` (its type and range), else one line
    naming ``tune.space.<key>``."""
    try:
        if knob in TRAINING_KNOBS:
            overlay(cfg.training_for(method), {knob: value}, where="",
                    prefix=f"strategies.overrides.{method}")
        else:
            data = {**cfg.strategies.params.get(method, {}), knob: value}
            cfg.method_entry(method).resolve_params(data, where="")
    except (ConfigError, TypeError) as e:
        why = str(e).removeprefix(": ")
        raise ConfigError(f"{where}: key 'tune.space.{key}': value {value!r} is not a valid {knob} "
                          f"of {method} ({why})") from None


def method_space(cfg, method: str, *, where: str = "config") -> list[Knob]:
    """``method``'s knobs: the declared grids with ``tune.space`` laid over them."""
    grids = declared(cfg, method)
    own = settable(cfg, method)
    for key, values in cfg.tune.space.items():
        owner, _, knob = key.rpartition(".")
        if (owner and owner != method) or knob not in own:
            continue
        for v in values:
            _checked(cfg, method, knob, v, where=where, key=key)
        grids[knob] = tuple(values)
    training = cfg.training_for(method)
    params = cfg.params_for(method)
    out = []
    for name, values in grids.items():
        if name in TRAINING_KNOBS:
            out.append(Knob(name, f"strategies.overrides.{method}.{name}", values, getattr(training, name)))
        else:
            out.append(Knob(name, f"strategies.params.{method}.{name}", values, getattr(params, name)))
    return out


def check_spaces(cfg, *, where: str) -> None:
    """``tune.methods`` and every key of ``tune.space`` name something that exists, and every
    value fits its knob (one-line ConfigError naming the key otherwise). A method named there
    but not run now (``--set strategies.methods=[...]``) is checked, not required: ``cfer run``
    of a subset of the methods still loads the config; ``cfer tune`` requires it
    (:func:`check_tuned`)."""
    from cfer.strategies.registry import available

    known = [*available(), *cfg.strategies.define]
    for m in cfg.tune.methods or []:
        if m not in known:
            raise ConfigError(f"{where}: key 'tune.methods': unknown strategy {m!r} "
                              f"(available: {', '.join(known)})")
    for key, values in cfg.tune.space.items():
        owner, _, knob = key.rpartition(".")
        if owner and owner not in known:
            raise ConfigError(f"{where}: key 'tune.space.{key}': unknown strategy {owner!r}")
        users = [owner] if owner else [m for m in tuned_methods(cfg) if m in known]
        users = [m for m in users if knob in settable(cfg, m)] or (
            [] if owner else [m for m in known if knob in settable(cfg, m)][:1])
        if not users:
            names = sorted({k for m in ([owner] if owner else tuned_methods(cfg)) if m in known
                            for k in settable(cfg, m)})
            raise ConfigError(f"{where}: key 'tune.space.{key}': {owner or 'no tuned method'} has no setting "
                              f"{knob!r} (known here: {', '.join(names)})")
        for m in users:
            for v in values:
                _checked(cfg, m, knob, v, where=where, key=key)


def check_tuned(cfg, *, where: str) -> None:
    """``cfer tune``: every method of ``tune.methods`` is among ``strategies.methods``."""
    missing = [m for m in cfg.tune.methods or [] if m not in cfg.strategies.methods]
    if missing:
        raise ConfigError(f"{where}: key 'tune.methods': {', '.join(missing)} not among strategies.methods "
                          f"({', '.join(cfg.strategies.methods)})")


def draw(space: list[Knob], *, budget: int, seed: int, method: str) -> list[dict]:
    """``budget`` points of ``space``'s grid (knob name -> value), the default point first and
    always included; the others a seeded draw without repetition (fewer when the grid is
    smaller than the budget)."""
    default = tuple(k.default for k in space)
    grid = [p for p in itertools.product(*(k.values for k in space)) if p != default]
    rng = random.Random(f"{seed}:{method}")  # a string seed: the same draw on every Python
    picked = rng.sample(grid, min(budget - 1, len(grid)))
    return [dict(zip((k.name for k in space), p)) for p in (default, *picked)]


def grid_size(space: list[Knob]) -> int:
    """Points of the grid, the default point counted once."""
    default = tuple(k.default for k in space)
    n = 1
    for k in space:
        n *= len(k.values)
    inside = all(d in k.values for d, k in zip(default, space))
    return n + (0 if inside else 1)
