"""The one typed-overlay engine: frozen dataclass configs, YAML and ``--set key=value`` laid over them.

Every typed setting of the package goes through here: the YAML sections of an experiment
(:mod:`cfer.experiments.config`), the ``training:`` section, each strategy's params and each
plugin's params. A dataclass holds the defaults (each written once, with its citation) and
checks its own values once, in ``__post_init__``, with :meth:`Checked.check`; a YAML mapping
only overlays values (:func:`overlay`). Unknown keys, values of the wrong type and values out
of range are one-line errors naming the file and the full key; a dataclass reached under
another key (a plugin's params through a method, the training section through a method's
overrides) has its errors named with that key.

YAML 1.1, which PyYAML implements, reads ``1e-4`` (no dot) as a string; :func:`load_yaml`
reads it as the float YAML 1.2 and every reader of numbers mean, and :func:`overlay` reads a
numeric string such as ``"1e-4"`` given for a float setting as that float.

Hand-written because neither PyYAML nor the standard library validates nested dataclasses,
and a validation framework for ~200 lines is not worth the dependency.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Union

import yaml

from cfer.core import safe_yaml


class ConfigError(ValueError):
    """A bad config key or value; the message is one line naming key and file."""


class ConfigTypeError(ConfigError, TypeError):
    """A value of the wrong type (also a ``TypeError``, as Python's own type errors are)."""


class SettingError(ConfigError):
    """A value its dataclass refuses (:meth:`Checked.check`): ``<key>: <detail>``. ``key`` and
    ``detail`` are kept apart so that a dataclass reached under another key can be named so."""

    def __init__(self, key: str, detail: str):
        super().__init__(f"{key}: {detail}")
        self.key, self.detail = key, detail

    def renamed(self, old_prefix: str, new_prefix: str) -> SettingError:
        """The same error with ``old_prefix`` of its key replaced by ``new_prefix``."""
        if not old_prefix or old_prefix == new_prefix or not self.key.startswith(old_prefix + "."):
            return self
        return SettingError(new_prefix + self.key[len(old_prefix):], self.detail)


class Checked:
    """Base of a typed config dataclass whose values are checked once, where it is defined.

    ``section`` is the config key its fields live under (``"training"``, ``"data"``,
    ``"benchmark.augment"``); its errors name ``<section>.<field>``. Subclasses check their
    values in ``__post_init__`` with :meth:`check` (and :meth:`check_choice`).
    """

    section: ClassVar[str] = ""

    @classmethod
    def prefix(cls) -> str:
        """The config key the fields of this dataclass live under."""
        return cls.section

    @classmethod
    def key(cls, name: str) -> str:
        """The config key of field ``name``."""
        return f"{cls.prefix()}.{name}" if cls.prefix() else name

    @classmethod
    def no_keys_hint(cls) -> str:
        """Said after "known here: none" when the dataclass has no field."""
        return ""

    def check(self, name: str, ok: bool, rule: str) -> None:
        """Unless ``ok``: ``SettingError("<key of name>: must be <rule>, got <value>")``."""
        if not ok:
            raise SettingError(self.key(name), f"must be {rule}, got {getattr(self, name)!r}")

    def check_choice(self, name: str, allowed) -> None:
        """Field ``name`` must be one of ``allowed`` (a tuple, or a ``Literal`` type)."""
        if typing.get_origin(allowed) is Literal:
            allowed = typing.get_args(allowed)
        self.check(name, getattr(self, name) in allowed, f"one of {', '.join(map(str, allowed))}")


# --------------------------------------------------------------------------- YAML

#: A number written as text: what a float setting accepts as a string ("1e-4", "0.5", "3").
_NUMBER = re.compile(r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$")


def load_yaml(text: str, *, where: str = "YAML"):
    """``text`` parsed as YAML (safe, within :mod:`cfer.core.safe_yaml`'s size and alias
    budget), with YAML 1.2 floats (``1e-4`` is a float)."""
    return safe_yaml.load(text, where=where)


def read_yaml(path: str | Path) -> dict:
    """A YAML file whose top level is a mapping (one-line errors naming the file and line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config file does not exist")
    try:
        data = safe_yaml.load_file(path) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{line}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    return data


def parse_value(raw: str, *, what: str):
    """One value written on the command line, parsed as YAML (``""`` for an empty one)."""
    try:
        return load_yaml(raw, where=what) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"{what}: value is not valid YAML ({getattr(e, 'problem', e)})") from None


def parse_override(text: str) -> dict:
    """``a.b.c=value`` -> ``{"a": {"b": {"c": value}}}`` with the value parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. training.epochs=3")
    key, raw = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: bad key {key!r}")
    value = parse_value(raw, what=f"--set {text!r}")
    out: dict = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


# --------------------------------------------------------------------------- overlay

def type_name(tp) -> str:
    """A type as a config error names it (``'grow' | 'limit'``, ``int | null``)."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return f"{origin.__name__}[{', '.join(type_name(a) for a in typing.get_args(tp))}]"
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp, key: str, where: str):
    def fail(why: str = ""):
        raise ConfigTypeError(f"{where}: key '{key}': expected {type_name(tp)}, got {value!r}{why}")

    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            fail()
        return overlay(tp(), value, where=where, prefix=key)
    if origin is Literal:
        if value not in typing.get_args(tp):
            fail()
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            fail()
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key, where)
            except ConfigTypeError:
                pass
        fail()
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            fail()
        (inner, *_) = typing.get_args(tp) or (Any,)
        items = [_coerce(v, inner, f"{key}[{i}]", where) for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            fail()
        kt, vt = typing.get_args(tp) or (Any, Any)
        return {_coerce(k, kt, key, where): _coerce(v, vt, f"{key}.{k}", where) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            fail()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail()
        return value
    if tp is float:
        if isinstance(value, str) and _NUMBER.match(value):  # "1e-4": YAML 1.1 left it a string
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail()
        if not math.isfinite(value):  # .inf / .nan: a learning rate of inf trains on NaN losses
            fail(" (a finite number)")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            fail()
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        fail()
    return value


def overlay(base, data: Mapping, *, where: str = "config", prefix: str = ""):
    """A copy of dataclass ``base`` with ``data`` (a nested mapping) laid over it.

    ``prefix`` is the config key ``base`` is reached under (``"training"``,
    ``"strategies.params.kd_psmr"``); keys and errors are named from it. Nested dataclass
    fields take nested mappings. The dataclass's own checks (``__post_init__``) run on the
    result; a ``validate(where=...)`` method, if any, after them.
    """
    if not isinstance(data, Mapping):
        raise ConfigTypeError(f"{where}: {'key ' + repr(prefix) + ': ' if prefix else ''}"
                              f"expected a mapping, got {data!r}")
    cls = type(base)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(base)]
    changes = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in names:
            hint = cls.no_keys_hint() if hasattr(cls, "no_keys_hint") else ""
            known = ", ".join(sorted(names)) if names else f"none{hint}"
            raise ConfigError(f"{where}: unknown key '{key}' (known here: {known})")
        current = getattr(base, k)
        if dataclasses.is_dataclass(current) and isinstance(v, Mapping):
            changes[k] = overlay(current, v, where=where, prefix=key)
        else:
            changes[k] = _coerce(v, hints[k], key, where)
    try:
        out = dataclasses.replace(base, **changes)
    except SettingError as e:  # the dataclass's own check, named under the key it is reached by
        own = cls.prefix() if hasattr(cls, "prefix") else ""
        raise ConfigError(f"{where}: {e.renamed(own, prefix) if prefix else e}") from None
    except (ValueError, TypeError) as e:  # a section's own __post_init__ checks
        raise ConfigError(f"{where}: {e}") from None
    if hasattr(out, "validate"):
        out.validate(where=where)
    return out


def resolve(cls: type, value, *, where: str, prefix: str = ""):
    """``value`` as an instance of dataclass ``cls``: None (the defaults), an instance, or a
    mapping laid over the defaults (:func:`overlay`, keys named under ``prefix``)."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"{where}: params must be None, a mapping or a {cls.__name__}, "
                        f"got {type(value).__name__}")
    own = cls.prefix() if hasattr(cls, "prefix") else ""
    return overlay(cls(), value, where=where, prefix=prefix or own)


def to_dict(cfg) -> dict:
    """A plain dict (for YAML/JSON) of a dataclass config."""
    return dataclasses.asdict(cfg)


def record(params) -> dict:
    """The settings of a params object as a flat dict (results files, digests): what the
    object's own ``record()`` says (a composed method's params), else a dataclass's fields."""
    if hasattr(params, "record"):
        return dict(params.record())
    return dataclasses.asdict(params)
