"""A stock Avalanche class's keyword arguments as a typed, frozen params dataclass, so that a
config's keys for ``avalanche:<Class>`` are checked (unknown key, wrong type, missing required
value: one line naming the key) before any data is read.

Types come from the constructor's annotations (``Optional[int]`` -> ``int | None``,
``Sequence[float]`` -> ``list[float]``, ``Literal``s kept); an argument without one takes its
default's type (an int default takes ``int | float``: Avalanche writes ``alpha=1`` for a float;
a required one without either is a number, as ``ewc_lambda`` and ``lambda_e`` are). Arguments
YAML cannot hold (a model, a buffer, a scheduler: any other annotation) are left out when they
have a default; ``device`` and ``num_workers`` stay the strategy's. A memory size
(:data:`MEMORY_KEYS`) also takes ``paper``: the paper's rule over the stream (the
``training.memory_*`` keys every replay method shares), which is its default here.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import types
import typing
from typing import Any, Literal, Union

#: Constructor arguments a memory size is passed in; ``paper`` takes the paper's rule.
MEMORY_KEYS = ("mem_size", "memory_size", "max_size")
#: Arguments cfer sets itself, never from a config.
OWNED = ("self", "device", "num_workers")
#: What cfer supplies for an argument a config cannot write (the table's ``inject``).
INJECTABLE = ("model", "feature_extractor", "input_size", "n_classes")
REQUIRED = "required"  # the default of a field a config must set (checked in __post_init__)


def yaml_type(annotation, default):
    """The config type of a constructor argument, or None when YAML cannot hold it."""
    if annotation is inspect.Parameter.empty:
        if default is inspect.Parameter.empty:  # a required number (ewc_lambda, lambda_e)
            return int | float
        if default is None:
            return Any
        if isinstance(default, bool):
            return bool
        if isinstance(default, int):
            return int | float
        if isinstance(default, (float, str)):
            return type(default)
        if isinstance(default, (list, tuple)):
            return list[Any]
        return None
    return _convert(annotation)


def _convert(tp):
    if tp is Any or tp in (int, float, bool, str, type(None)):
        return tp
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return tp
    if origin in (Union, types.UnionType):
        inner = [_convert(a) for a in args]
        if any(a is None for a in inner):
            return None
        out = inner[0]
        for a in inner[1:]:
            out = out | a if a is not Any and out is not Any else Any
        return out
    if origin in (list, tuple, collections.abc.Sequence) and len(args) <= 2:
        inner = _convert(args[0]) if args else Any
        return None if inner is None else list[inner]
    if origin in (dict, collections.abc.Mapping) and len(args) == 2 and args[0] is str:
        inner = _convert(args[1])
        return None if inner is None else dict[str, inner]
    return None


def constructor(cls) -> inspect.Signature:
    return inspect.signature(cls.__init__)


def params_dataclass(cls, *, base: type, name: str, skip=(), inject=()):
    """A frozen dataclass (subclass of ``base``) of ``cls``'s keyword arguments a config may
    set; ``skip``: arguments cfer passes itself (the template's model, optimizer...); ``inject``:
    arguments cfer computes. Raises ValueError (one line) for a required argument a config
    cannot write."""
    fields = []
    required = []
    for p in constructor(cls).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in (*OWNED, *skip, *inject):
            continue
        tp = yaml_type(p.annotation, p.default)
        if p.name in MEMORY_KEYS and tp is not None:
            fields.append((p.name, int | Literal["paper"], dataclasses.field(default="paper")))
            continue
        if tp is None:
            if p.default is inspect.Parameter.empty:
                raise ValueError(f"{name}: its argument {p.name!r} is an object a config cannot write "
                                 f"(annotated {p.annotation!r}), and cfer does not supply it")
            continue  # left at Avalanche's default
        if p.default is inspect.Parameter.empty:
            required.append(p.name)
            fields.append((p.name, tp | Literal["required"], dataclasses.field(default=REQUIRED)))
        else:
            default = list(p.default) if isinstance(p.default, tuple) else p.default
            if isinstance(default, list):
                fields.append((p.name, tp, dataclasses.field(default_factory=lambda d=default: list(d))))
            else:
                fields.append((p.name, tp, dataclasses.field(default=default)))

    # Checked once every value is laid over (the definition's and strategies.params.<method>'s:
    # compose.method_params), not by each overlay: a required value may come from either.
    def check_required(self, *, where: str) -> None:
        missing = [k for k in required if getattr(self, k) == REQUIRED]
        if missing:
            from cfer.core.typed import ConfigError

            raise ConfigError(f"{where}: key '{self.key(missing[0])}' is required (Avalanche's "
                              f"{cls.__name__} has no default for it)")

    made = dataclasses.make_dataclass(f"{cls.__name__}Params", fields, bases=(base,), frozen=True,
                                      namespace={"check_required": check_required,
                                                 "__doc__": f"The settings of {name}."})
    return made


def build_kwargs(params, *, ctx, inject=()) -> dict:
    """The keyword arguments of the stock constructor: ``params``' values (``paper`` memory
    sizes resolved over the stream), and the ``inject``ed ones from the build context."""
    params.check_required(where="build")  # a required value cannot be left unset
    out = dataclasses.asdict(params)
    for k in MEMORY_KEYS:
        if out.get(k) == "paper":
            out[k] = int(ctx.memory_budget())
    for k in inject:
        out[k] = supplied(k, ctx)
    return out


def supplied(key: str, ctx):
    """What cfer passes for argument ``key`` (:data:`INJECTABLE`)."""
    model = ctx.model
    if key == "model":
        return model
    if key == "feature_extractor":
        return model.feature_extractor
    if key == "n_classes":
        return int(ctx.n_classes)
    if key == "input_size":  # the benchmark's images: 3 x side x side
        size = int(ctx.benchmark.info.image_size)
        return [3, size, size]
    raise ValueError(f"cfer does not supply {key!r}")


#: Callbacks that place a stock plugin not in the table (:func:`infer_phase`).
def infer_phase(callbacks: set[str]) -> str:
    """The phase of a plugin from the callbacks it defines: one that changes the loss or the
    gradients (``before_backward``/``after_backward``) regularises; one that touches a step
    or the training data otherwise changes what a step trains on (memory); any other changes
    the schedule (weights, layers, learning rate between experiences)."""
    from cfer.plugins.registry import STEP_CALLBACKS, TRAIN_DATA_CALLBACKS

    if callbacks & {"before_backward", "after_backward"}:
        return "regularize"
    if callbacks & {*STEP_CALLBACKS, *TRAIN_DATA_CALLBACKS, "before_training_exp",
                    "before_training_iteration"}:
        return "memory"
    return "schedule"
