"""Typed dataclass configs overlaid by YAML and ``--set key=value``.

Every config section is a dataclass with defaults; a YAML file only
overlays values. Unknown keys and values of the wrong type fail with one
line naming the key and the file. Hand-written because neither PyYAML nor
the standard library validates nested dataclasses, and pulling in a
validation framework for ~100 lines is not worth the dependency.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml


class ConfigError(ValueError):
    """A bad config key or value; the message is one line naming key and file."""


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in typing.get_args(tp))}]"
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp, key: str, where: str):
    def fail(why: str = ""):
        raise ConfigError(f"{where}: key '{key}': expected {_type_name(tp)}, got {value!r}{why}")

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
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key, where)
            except ConfigError as e:
                errors.append(e)
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
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail()
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            fail()
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        fail()
    return value


def overlay(base, data: dict, *, where: str = "config", prefix: str = ""):
    """Return a copy of dataclass ``base`` with ``data`` (a nested dict) laid over it."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {'key ' + repr(prefix) + ': ' if prefix else ''}"
                          f"expected a mapping, got {data!r}")
    hints = typing.get_type_hints(type(base))
    names = {f.name for f in dataclasses.fields(base)}
    changes = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in names:
            raise ConfigError(f"{where}: unknown key '{key}' (known here: {', '.join(sorted(names))})")
        current = getattr(base, k)
        if dataclasses.is_dataclass(current) and isinstance(v, dict):
            changes[k] = overlay(current, v, where=where, prefix=key)
        else:
            changes[k] = _coerce(v, hints[k], key, where)
    try:
        out = dataclasses.replace(base, **changes)
    except (ValueError, TypeError) as e:  # a section's own __post_init__ checks
        raise ConfigError(f"{where}: {e}") from None
    if hasattr(out, "validate"):
        out.validate(where=where)
    return out


def parse_override(text: str) -> dict:
    """``a.b.c=value`` -> ``{"a": {"b": {"c": value}}}`` with the value parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. training.epochs=3")
    key, raw = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: bad key {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({e.problem})") from None
    out: dict = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config file does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{line}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    return data


def to_dict(cfg) -> dict:
    """A plain dict (for YAML/JSON) of a dataclass config."""
    return dataclasses.asdict(cfg)
