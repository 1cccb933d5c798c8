"""Checks of a whole config that need no data, and of a data set's taxonomy once it is read.

:func:`check_config` runs when a config is loaded (and again when a run starts), before
any data set is generated or read and before the run directory exists, so that a
misspelt model or an impossible fold fails in a second with one line naming the key
and the file, not after minutes of data generation. What only the data can tell
(which classes it holds) is :func:`check_taxonomy`, run right after the data set is read.

Everything here raises :class:`~cfer.core.typed.ConfigError` (a ValueError).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from cfer.core.typed import ConfigError

#: Limits of the synthetic generator (``cfer.benchmarks.synthetic_faces.writer.write_synthetic``
#: checks them too, after the fact and without the key): CFEE's file names have a
#: 3-digit subject and a 4-digit running number over 22 expressions.
SYNTH_MIN_SIZE = 64
SYNTH_MAX_SUBJECTS = 9999 // 22


def check_config(cfg, *, where: str, paths: bool = False) -> None:
    """Everything about ``cfg`` (an ExperimentConfig) that can be checked without data:
    model, strategies of the phase, synthetic-data sizes, folds, class names; with ``paths``
    (when a run starts, not when a config is only loaded) also that the data set folders and
    the weights file it names exist."""
    for check in (_model, _phase, _dataset, _folds, _classes):
        check(cfg, where)
    if paths:
        _paths(cfg, where)


def _installed(module: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except ValueError:  # sys.modules[module] is None: imports of it fail
        return False


def _fail(where: str, key: str, what: str):
    raise ConfigError(f"{where}: key '{key}': {what}")


def _model(cfg, where: str) -> None:
    from cfer.strategies.models import model_entry

    name = cfg.model.name
    try:
        entry = model_entry(name)
    except ValueError as e:  # "model.name: unknown model ...; available: ..."
        _fail(where, "model.name", str(e).removeprefix("model.name: "))
    except ImportError as e:  # timm:<name> asks timm whether it has the model
        _fail(where, "model.name", str(e).removeprefix("model.name: "))
    if entry.needs and not _installed(entry.needs):
        _fail(where, "model.name", f'{name} needs {entry.needs}; pip install "cfer[{entry.needs}]"')
    low = entry.min_image_size
    if cfg.benchmark.image_size < low:
        _fail(where, "benchmark.image_size",
              f"{name} needs at least {low} px, got {cfg.benchmark.image_size}")


def _paths(cfg, where: str) -> None:
    weights = cfg.model.weights
    if (weights not in ("none", "imagenet") and not weights.startswith("hf-hub:")
            and not Path(weights).expanduser().is_file()):
        _fail(where, "model.weights",
              f"{weights}: no such file (use none, imagenet, hf-hub:<repo> or a saved state dict)")
    if cfg.dataset.kind == "synthetic":  # generated into dataset.root (or the cache) if absent
        return
    for key in ("root", "rafdb_root"):
        value = getattr(cfg.dataset, key)
        if value and not Path(value).expanduser().is_dir():
            _fail(where, f"dataset.{key}", f"{value}: no such folder")


def _phase(cfg, where: str) -> None:
    """``phase: fewshot`` adds each class to one method's basic model (the rule of
    ``cfer.experiments.run.fewshot.fewshot_method``, checked here before any data is read)."""
    if cfg.phase != "fewshot":
        return
    methods = list(cfg.strategies.methods)
    if len(methods) != 1:
        _fail(where, "strategies.methods", f"phase fewshot runs one method, got {methods} "
              "(e.g. --set 'strategies.methods=[kd_only]')")
    if cfg.method_entry(methods[0]).offline:
        _fail(where, "strategies.methods", f"{methods[0]!r} trains offline on the whole stream; "
              "phase fewshot needs a method that learns experience by experience")


def _dataset(cfg, where: str) -> None:
    ds = cfg.dataset
    if ds.kind == "synthetic":
        if not 1 <= ds.subjects <= SYNTH_MAX_SUBJECTS:
            _fail(where, "dataset.subjects", f"must be in 1..{SYNTH_MAX_SUBJECTS} for the synthetic faces, "
                  f"got {ds.subjects}")
        if ds.size < SYNTH_MIN_SIZE:
            _fail(where, "dataset.size", f"the synthetic faces are drawn at >= {SYNTH_MIN_SIZE} px, got "
                  f"{ds.size} (benchmark.image_size sets the model input)")
        if ds.seed < 0:
            _fail(where, "dataset.seed", f"must be >= 0, got {ds.seed}")


def _folds(cfg, where: str) -> None:
    n, proto = cfg.benchmark.n_folds, cfg.protocol
    low = 3 if proto.name == "heldout" else 2  # heldout: a test, a validation and a training fold
    if n < low:
        _fail(where, "benchmark.n_folds", f"protocol {proto.name} needs at least {low} folds, got {n}")
    bad = [f for f in proto.folds if not 0 <= f < n]
    if bad:
        _fail(where, "protocol.folds", f"{bad} not in 0..{n - 1} (benchmark.n_folds is {n})")
    for key in ("folds", "seeds"):
        values = getattr(proto, key)
        if len(set(values)) != len(values):
            _fail(where, f"protocol.{key}", f"{values} repeats a value (the runs would be the same)")
    if cfg.dataset.kind == "synthetic" and cfg.dataset.subjects < n:
        _fail(where, "benchmark.n_folds", f"{n} subject-disjoint folds need at least {n} subjects; "
              f"dataset.subjects is {cfg.dataset.subjects}")
    if not 0 < cfg.benchmark.valid_fraction < 1:
        _fail(where, "benchmark.valid_fraction", f"must be in (0, 1), got {cfg.benchmark.valid_fraction}")


def _known_compounds(key: str, names: Sequence[str], where: str) -> None:
    from cfer.benchmarks.taxonomy import COMPOUND

    unknown = [c for c in names if c not in COMPOUND]
    if unknown:
        _fail(where, key, f"{unknown}: not compound expressions (known: {', '.join(COMPOUND)})")
    if len(set(names)) != len(names):
        _fail(where, key, f"names a class twice: {list(names)}")


def _classes(cfg, where: str) -> None:
    chosen = cfg.benchmark.compounds
    if chosen is not None:
        if not chosen:
            _fail(where, "benchmark.compounds", "empty list; name at least one compound class or use null")
        _known_compounds("benchmark.compounds", chosen, where)
    for k, order in enumerate(cfg.protocol.class_orders or []):
        key = f"protocol.class_orders[{k}]"
        _known_compounds(key, order, where)
        if chosen is not None and sorted(order) != sorted(chosen):
            _fail(where, key, f"must be a permutation of benchmark.compounds {list(chosen)}")
    if cfg.fewshot.classes is not None:
        _known_compounds("fewshot.classes", cfg.fewshot.classes, where)
    if chosen and not cfg.protocol.class_orders:
        check_orders(cfg.protocol.orders, n_classes=len(chosen), where=where)


def check_orders(orders: int, *, n_classes: int, where: str) -> None:
    """``protocol.orders`` seeded orders must be distinct: refuse more than the ``n_classes!``
    orders that exist (repeated orders would be counted as independent runs)."""
    import math

    if n_classes <= 10 and orders > math.factorial(n_classes):  # 10! is far above the orders allowed
        _fail(where, "protocol.orders", f"{orders} class orders asked for, but {n_classes} compound "
              f"class(es) have only {math.factorial(n_classes)} distinct orders; set protocol.orders to "
              "at most that")


# --------------------------------------------------------------------------- the data's taxonomy

def expected_classes(kind: str, class_names: Sequence[str]) -> tuple[str, ...]:
    """The classes a data set of ``kind`` should hold: the 6 basic expressions and the
    compounds of that data set (CFEE's 15 for cfee and the synthetic faces, RAF-DB's and
    RAF-CE's own lists); a folder tree is expected to hold what its spec names."""
    from cfer.benchmarks.taxonomy import BASIC, CFEE_COMPOUND, NEUTRAL

    if kind in ("synthetic", "cfee"):
        compounds: Sequence[str] = CFEE_COMPOUND
    elif kind == "rafdb":
        from cfer.benchmarks.readers.rafdb import RAFDB_COMPOUND

        compounds = tuple(RAFDB_COMPOUND.values())
    elif kind == "rafce":
        from cfer.benchmarks.readers.rafce import RAFCE_LABELS

        compounds = tuple(RAFCE_LABELS.values())
    else:
        compounds = tuple(c for c in class_names if c not in BASIC and c != NEUTRAL)
    return tuple(BASIC) + tuple(c for c in compounds if c not in BASIC)


def check_taxonomy(cfg, *, class_counts: Mapping[str, int], name: str) -> list[str]:
    """The expected classes that data set ``name`` has no image of (``class_counts``: images
    per class, after unreadable ones were dropped).

    A run needs compound classes and the chosen ones (``benchmark.compounds``,
    ``protocol.class_orders``, ``fewshot.classes``) in any case. Any other missing class
    (a basic expression, one of the data set's compounds) is a one-line error unless
    ``benchmark.partial_taxonomy`` is true; then the missing classes are returned, for the
    run to report."""
    from cfer.benchmarks.taxonomy import BASIC, is_compound

    present = [c for c, n in class_counts.items() if n > 0]
    if not any(is_compound(c) for c in present):
        raise ConfigError(f"{name}: the data set has no image of any compound class (it holds "
                          f"{', '.join(present) or 'nothing'}); a continual run needs at least one")
    wanted = [("benchmark.compounds", cfg.benchmark.compounds or []),
              ("fewshot.classes", cfg.fewshot.classes or [])]
    wanted += [(f"protocol.class_orders[{k}]", o) for k, o in enumerate(cfg.protocol.class_orders or [])]
    for key, names in wanted:
        absent = [c for c in names if c not in present]
        if absent:
            raise ConfigError(f"{name}: key '{key}' names {absent}, which the data set has no image of")
    chosen = cfg.benchmark.compounds
    expected = (BASIC + tuple(chosen)) if chosen else expected_classes(cfg.dataset.kind, list(class_counts))
    missing = [c for c in expected if c not in present]
    if missing and not cfg.benchmark.partial_taxonomy:
        raise ConfigError(f"{name}: the data set has no image of {', '.join(missing)}; set "
                          "benchmark.partial_taxonomy: true to run without them")
    return missing
