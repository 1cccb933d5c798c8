"""Typed hyperparameters of one strategy: a frozen dataclass next to its factory.

Each ``strategies/zoo/<name>.py`` declares ``@dataclass(frozen=True) class ...(StrategyParams)``
with defaults that cite their source and registers it with the factory,
``@register_strategy("<name>", params=...)``; the factory reads the instance as
``ctx.params``. Configs set them under the strategy's name
(``strategies: {params: {lwf: {alpha: 2.0}}}``, ``--set strategies.params.lwf.alpha=2``).
Ranges and choices are checked in the dataclass's ``__post_init__`` (with
:meth:`~cfer.core.typed.Checked.check`), so errors name ``strategies.params.<name>.<key>``.
Laying a mapping over the defaults is the one engine of :mod:`cfer.core.typed`.

Light on purpose (no torch): configs are validated before torch is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from cfer.core.typed import Checked


class StrategyParams(Checked):
    """Base of a strategy's hyperparameter dataclass.

    ``method`` is the strategy it belongs to, set by ``register_strategy``; a
    dataclass serves one strategy (strategies that share settings subclass a
    common dataclass).
    """

    method: ClassVar[str] = ""

    @classmethod
    def prefix(cls) -> str:
        return f"strategies.params.{cls.method or cls.__name__}"

    @classmethod
    def no_keys_hint(cls) -> str:
        return f", strategy {cls.method!r} has no hyperparameters"


@dataclass(frozen=True)
class NoParams(StrategyParams):
    """The hyperparameters of a strategy that has none of its own."""
