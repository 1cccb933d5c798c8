"""Typed hyperparameters of one strategy: a frozen dataclass next to its factory.

Each ``strategies/zoo/<name>.py`` declares ``@dataclass(frozen=True) class ...(StrategyParams)``
with defaults that cite their source and registers it with the factory,
``@register_strategy("<name>", params=...)``; the factory reads the instance as
``ctx.params``. Configs set them under the strategy's name
(``strategies: {params: {lwf: {alpha: 2.0}}}``, ``--set strategies.params.lwf.alpha=2``).
Ranges and choices are checked in the dataclass's ``__post_init__`` (with
:meth:`StrategyParams.check`), so errors name ``strategies.params.<name>.<key>``.

Light on purpose (no torch): configs are validated before torch is imported.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Union


class StrategyParams:
    """Base of a strategy's hyperparameter dataclass.

    ``method`` is the strategy it belongs to, set by ``register_strategy``; a
    dataclass serves one strategy (strategies that share settings subclass a
    common dataclass, as the paper's method and its ablations do).
    """

    method: ClassVar[str] = ""

    @classmethod
    def key(cls, name: str) -> str:
        """The config key of field ``name``: ``strategies.params.<method>.<name>``."""
        return f"strategies.params.{cls.method or cls.__name__}.{name}"

    def check(self, name: str, ok: bool, rule: str) -> None:
        """Unless ``ok``: ``ValueError("strategies.params.<method>.<name>: must be <rule>, got ...")``."""
        if not ok:
            raise ValueError(f"{self.key(name)}: must be {rule}, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class NoParams(StrategyParams):
    """The hyperparameters of a strategy that has none of its own."""


def check_keys(name: str, cls: type, keys, *, where: str) -> None:
    """Raise a one-line ``ValueError`` for a key of ``keys`` that ``cls`` does not have."""
    known = sorted(f.name for f in dataclasses.fields(cls))
    for k in keys:
        if k not in known:
            here = ", ".join(known) if known else f"none, strategy {name!r} has no hyperparameters"
            raise ValueError(f"{where}: unknown key 'strategies.params.{name}.{k}' (known here: {here})")


def resolve_params(name: str, cls: type, value, *, where: str):
    """``value`` as an instance of ``cls``, the params dataclass of strategy ``name``.

    ``value``: None (the defaults), an instance of ``cls``, or a mapping laid
    over the defaults (unknown keys and values of the wrong type are one-line
    errors naming ``strategies.params.<name>.<key>``).
    """
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping) or isinstance(value, StrategyParams):
        raise TypeError(f"{where}: params must be None, a mapping or a {cls.__name__}, "
                        f"got {type(value).__name__}")
    check_keys(name, cls, value, where=where)
    hints = typing.get_type_hints(cls)
    values = {k: _typed(v, hints[k], f"strategies.params.{name}.{k}", where) for k, v in value.items()}
    try:
        return dataclasses.replace(cls(), **values)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def _typed(value: Any, tp, key: str, where: str):
    """``value`` if it has type ``tp`` (ints pass as floats); the simple types params use."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        ok = value in typing.get_args(tp)
    elif origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _typed(value, arg, key, where)
            except TypeError:
                pass
        ok = False
    elif tp is type(None):
        ok = value is None
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(tp, type):
        ok = isinstance(value, tp)
    else:  # anything fancier: left to the dataclass's own checks
        ok = True
    if not ok:
        raise TypeError(f"{where}: key '{key}': expected {_type_name(tp)}, got {value!r}")
    return value


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))
