"""The ``tune`` section of a config: what ``cfer tune`` searches and with how many trials.

Light on purpose (no torch, nothing of the sections module): the sections module imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cfer.core.typed import ConfigError


@dataclass(frozen=True)
class TuneConfig:
    """``cfer tune``: every method gets ``budget`` trials, scored on the validation subjects of
    ``orders`` class orders (experiments/tune/tune.py, docs/tuning.md). ``cfer run`` ignores it."""

    budget: int = 4  # trials per method, the same for every method (its default point is one of them)
    orders: int = 1  # class orders each trial runs (the first ones of protocol.orders' draw)
    # methods to tune (default: strategies.methods); the others keep the config's values
    methods: list[str] | None = None
    # knob -> values, replacing the grid its params declare (a `search` ClassVar): `lr` (every
    # continual method), `gamma` (every method that has it) or `kd_psmr.gamma` (that method only;
    # also written kd_psmr: {gamma: [...]})
    space: dict[str, Any] = field(default_factory=dict)
    seed: int = 0  # the draw of each method's trials from its grid
    dir: str | None = None  # where the trials run (default runs/<name>_tune)

    def __post_init__(self) -> None:
        # `--set tune.space.kd_psmr.gamma=[...]` arrives nested: one key per knob, `method.knob`
        flat = {}
        for key, values in self.space.items():
            if isinstance(values, dict):
                flat.update({f"{key}.{k}": v for k, v in values.items()})
            else:
                flat[key] = values
        object.__setattr__(self, "space", flat)

    def validate(self, *, where: str) -> None:
        if self.budget < 1:
            raise ConfigError(f"{where}: key 'tune.budget' must be >= 1, got {self.budget}")
        if self.orders < 1:
            raise ConfigError(f"{where}: key 'tune.orders' must be >= 1, got {self.orders}")
        for key, values in self.space.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{where}: key 'tune.space.{key}' must list at least one value, "
                                  f"got {values!r}")
            if any(v == w for k, v in enumerate(values) for w in values[:k]):
                raise ConfigError(f"{where}: key 'tune.space.{key}': {values} repeats a value")
