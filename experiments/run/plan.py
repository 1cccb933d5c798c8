"""The plan of ``phase: continual``: one :class:`RunSpec` per method x class order x fold x seed,
in a fixed order (method-major), with the seeded class orders drawn without repetition."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cfer.experiments.config.sections import ExperimentConfig
from cfer.experiments.run.data import compound_classes


@dataclass(frozen=True)
class RunSpec:
    """One (method, class order, fold, seed) run."""

    method: str
    order_index: int
    order: tuple[str, ...]
    fold: int
    seed: int
    # The basic-phase digest of its experience 0 (ContinualRunner.keyed; None: not computed
    # yet, or no shared basic model): the runs with equal keys start from one basic model.
    basic_key: str | None = dataclasses.field(default=None, compare=False)
    # An offline method's run (joint): the class order its model is trained in, the first planned
    # order of its fold and seed (offline_model.first_orders; None: it trains its own model).
    offline_order: tuple[str, ...] | None = dataclasses.field(default=None, compare=False)

    def matches(self, rec: dict) -> bool:
        # The order index too: two orders are distinct, but a record must not stand for another
        # index's run (files written before order_index was recorded match on the order alone).
        return (list(self.order) == rec["order"] and self.fold == rec["fold"]
                and self.seed == rec["seed"] and rec.get("order_index", self.order_index) == self.order_index)

    @property
    def label(self) -> str:
        return f"{self.method} order {self.order_index} fold {self.fold} seed {self.seed}"

    @property
    def slug(self) -> str:
        return f"{self.method}/order{self.order_index}_fold{self.fold}_seed{self.seed}"


def plan_runs(cfg: ExperimentConfig, class_names: tuple[str, ...]) -> list[RunSpec]:
    """All runs of a config, in a fixed order (method-major)."""
    from cfer.experiments.config.validate import check_orders

    compounds = compound_classes(class_names, cfg.benchmark.compounds)
    if cfg.protocol.class_orders:
        orders = [tuple(o) for o in cfg.protocol.class_orders]
        for k, o in enumerate(orders):
            if sorted(o) != sorted(compounds):
                raise ValueError(f"protocol.class_orders[{k}]: must be a permutation of {compounds}")
    else:
        check_orders(cfg.protocol.orders, n_classes=len(compounds), where="config")
        orders = distinct_orders(compounds, cfg.protocol.orders)

    def seeds(k: int) -> list[int]:  # protocol.seed_per_order: order k has seed seeds[0] + k
        return [cfg.protocol.seeds[0] + k] if cfg.protocol.seed_per_order else cfg.protocol.seeds
    return [RunSpec(m, k, o, f, s) for m in cfg.strategies.methods for k, o in enumerate(orders)
            for f in cfg.protocol.folds for s in seeds(k)]


def distinct_orders(compounds, n: int) -> list[tuple[str, ...]]:
    """``n`` distinct seeded orders of ``compounds``: order k is ``seeded_order(compounds, s)``
    for the k-th seed s whose order is not already drawn (without repetition; for 15 classes
    no draw repeats, so the orders are those of seeds 0..n-1). ``n`` must be at most the number
    of permutations (:func:`~cfer.experiments.config.validate.check_orders`)."""
    from cfer.benchmarks.splits import seeded_order

    orders: list[tuple[str, ...]] = []
    seed = 0
    while len(orders) < n:
        order = tuple(seeded_order(list(compounds), seed))
        if order not in orders:
            orders.append(order)
        seed += 1
    return orders
