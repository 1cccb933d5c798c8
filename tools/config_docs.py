"""docs/config.md: every config key with its type, default and meaning, from the config dataclasses.

    python tools/config_docs.py            # exit 0: docs/config.md is what the dataclasses say
    python tools/config_docs.py --write    # regenerate it

The keys are read by walking :class:`cfer.experiments.config.sections.ExperimentConfig`
(a section is a field whose type is a dataclass; a ``dict[str, <dataclass>]`` field is a
section per name) and, for ``strategies.params.<method>``, each registered strategy's params
dataclass. Nothing here names a field: a new field, section or strategy appears on the
next ``--write``. Per field:

- **type**: the annotation, as a YAML writer reads it (``Literal`` choices, ``| null``);
- **default**: the dataclass default (``default_factory`` called), written as YAML;
- **meaning**: the field's comments in the source of the class that declares it, read
  with :mod:`ast` and :mod:`tokenize`: the comment lines directly above it, the comment
  at the end of its line (and comment lines right below that continue it, indented
  past the ``#``), and a string literal right below it (an attribute docstring).
  Comment lines starting ``# --`` are section rulers, not meanings.

A section's intro is its class docstring. ``tests/test_docs.py`` fails when docs/config.md
is not what this writes, and when a key has no meaning.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import re
import sys
import tokenize
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "config.md"


# -- comments of a dataclass's fields -------------------------------------------------------------

@cache
def _module_comments(module: str) -> tuple[ast.Module, dict[int, tuple[str, bool]]]:
    """A module's syntax tree, and line -> (comment text, whether code precedes it on the line)."""
    source = inspect.getsource(sys.modules[module])
    comments: dict[int, tuple[str, bool]] = {}
    lines = source.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            comments[row] = (tok.string, bool(lines[row - 1][:col].strip()))
    return ast.parse(source), comments


def _class_node(tree: ast.Module, cls: type) -> ast.ClassDef | None:
    """The class statement of ``cls``: by its qualified name, or, for a class defined inside a
    function, by its name (and first line where Python records it, 3.13+)."""
    body: list[ast.stmt] = tree.body
    node = None
    for part in cls.__qualname__.split("."):
        node = next((n for n in body if isinstance(n, ast.ClassDef) and n.name == part), None)
        if node is None:
            break
        body = node.body
    if node is not None:
        return node
    named = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls.__name__]
    first = getattr(cls, "__firstlineno__", None)
    if first is not None:
        named = [n for n in named if first in (n.lineno, *(d.lineno for d in n.decorator_list))]
    return named[0] if len(named) == 1 else None


def _text(comment: str) -> str:
    return comment.lstrip("#").strip()


def _declared_comments(cls: type) -> dict[str, str]:
    """Field name -> its meaning, for the fields ``cls`` itself declares (not its bases)."""
    tree, comments = _module_comments(cls.__module__)
    node = _class_node(tree, cls)
    if node is None:
        return {}
    out: dict[str, str] = {}
    claimed: set[int] = set()  # comment lines already read as a continuation of a field above
    body = node.body
    for i, stmt in enumerate(body):
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        above: list[str] = []
        row = stmt.lineno - 1
        while row in comments and not comments[row][1] and row not in claimed:
            text = comments[row][0]
            if re.match(r"#\s*--", text):  # a ruler: "# -- optimisation ----"
                break
            above.insert(0, _text(text))
            row -= 1
        trailing = [_text(comments[r][0]) for r in range(stmt.lineno, stmt.end_lineno + 1)
                    if r in comments and comments[r][1]]
        row = stmt.end_lineno + 1
        # a comment line right below, indented past its "#", continues the trailing comment
        while (trailing and row in comments and not comments[row][1]
               and re.match(r"#\s{2,}", comments[row][0])):
            trailing.append(_text(comments[row][0]))
            claimed.add(row)
            row += 1
        doc = []
        nxt = body[i + 1] if i + 1 < len(body) else None
        if (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)):
            doc = [inspect.cleandoc(nxt.value.value)]
        text = " ".join(part for part in (*above, *trailing, *doc) if part)
        out[stmt.target.id] = text.replace("``", "`")
    return out


def field_meanings(cls: type) -> dict[str, str]:
    """Field name -> meaning for every field of dataclass ``cls``, each read from the class of
    its MRO that declares it (a subclass that redeclares a field speaks for it)."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or "__annotations__" not in vars(klass):
            continue
        declared = _declared_comments(klass)
        for name in vars(klass)["__annotations__"]:
            if declared.get(name):  # a redeclared default without a comment keeps the base's
                out[name] = declared[name]
    return out


# -- types and defaults ---------------------------------------------------------------------------

def _yaml_scalar(value: Any) -> str:
    import yaml

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # a string YAML would read as something else (false, 1e-5, "") is written quoted
        return value if value and yaml.safe_load(value) == value and ":" not in value else repr(value)
    return str(value)


def yaml_value(value: Any) -> str:
    """``value`` as it would be written in a YAML config (flow style)."""
    if dataclasses.is_dataclass(value):
        return "(section)"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{yaml_value(k)}: {yaml_value(v)}" for k, v in value.items()) + "}"
    return _yaml_scalar(value)


def type_name(hint: Any) -> str:
    """An annotation as a YAML writer reads it: ``"a" | "b"`` for a Literal, ``null`` for None,
    ``list[...]`` for lists and tuples, ``mapping`` keys and values for dicts."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None):
        return "null"
    if hint is Any:
        return "any"
    if origin is typing.Literal:
        return " | ".join(_yaml_scalar(a) if not isinstance(a, str) else f'"{a}"' for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin in (list, tuple, set, frozenset):
        inner = [a for a in args if a is not Ellipsis]
        return f"list[{' | '.join(type_name(a) for a in inner)}]" if inner else "list"
    if origin is dict:
        return f"dict[{type_name(args[0])}, {type_name(args[1])}]" if args else "dict"
    if dataclasses.is_dataclass(hint):
        return "section"
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


# -- the walk -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Key:
    key: str
    type: str
    default: str
    meaning: str


@dataclass(frozen=True)
class Section:
    key: str  # "" for the top level
    cls: type
    intro: str
    keys: tuple[Key, ...]


def _dict_value_dataclass(hint: Any) -> type | None:
    if typing.get_origin(hint) is dict:
        args = typing.get_args(hint)
        if len(args) == 2 and dataclasses.is_dataclass(args[1]):
            return args[1]
    return None


def _doc(cls: type) -> str:
    """A class's own docstring (not an inherited or dataclass-made one), as markdown."""
    doc = vars(cls).get("__doc__")
    if not doc or doc.startswith(f"{cls.__name__}("):  # dataclasses write the signature
        return ""
    text = inspect.cleandoc(doc)
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)  # :class:`~cfer.x.Y` -> `cfer.x.Y`
    text = text.replace("``", "`")
    return "\n\n".join(" ".join(p.split()) for p in text.split("\n\n"))


def sections(cls: type, prefix: str = "") -> Iterator[Section]:
    """Every section of dataclass ``cls`` under key ``prefix``, depth first (the section itself
    first, then its subsections in field order)."""
    hints = typing.get_type_hints(cls)
    meanings = field_meanings(cls)
    keys, subs = [], []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            subs.append((hint, f"{key}."))
            continue
        value_cls = _dict_value_dataclass(hint)
        if value_cls is not None:
            subs.append((value_cls, f"{key}.<name>."))
        default = default_of(f)
        keys.append(Key(key=key, type=type_name(hint),
                        default="(required)" if default is dataclasses.MISSING else yaml_value(default),
                        meaning=meanings.get(f.name, "")))
    yield Section(key=prefix.rstrip("."), cls=cls, intro=_doc(cls), keys=tuple(keys))
    for sub, sub_prefix in subs:
        yield from sections(sub, sub_prefix)


def strategy_sections() -> Iterator[tuple[str, str, Section, tuple[str, ...]]]:
    """``strategies.params.<method>``: each registered strategy's params dataclass. Yields
    (method, description, section with the keys relative to the method, keys it does not read:
    a params class may name fields of its base that its strategy ignores in ``unused``)."""
    from cfer.strategies.registry import available, entry

    for name in available():
        e = entry(name)
        if e.definition is not None:
            yield name, e.description, composed_section(e), ()
            continue
        section = next(sections(e.params, prefix=""))
        yield name, e.description, section, tuple(getattr(e.params, "unused", ()))


def composed_section(e) -> Section:
    """The keys of a method composed of a base and plugins (cfer.strategies.compose): each
    owner's params, the definition's values as defaults, a key two owners share under the
    owner's name."""
    params = e.resolve_params()
    shared = {k for k, owners in params.keys().items() if len(owners) > 1}
    keys = []
    for owner, owned in params.owners():
        for k in next(sections(type(owned), prefix="")).keys:
            keys.append(Key(key=f"{owner}.{k.key}" if k.key in shared else k.key, type=k.type,
                            default=yaml_value(getattr(owned, k.key)), meaning=k.meaning))
    d = e.definition
    plugins = ", ".join(f"`{p}`" for p, _ in d.plugins)
    intro = (f"Base `{d.base}` with the plugins {plugins} ({_rel_path(d.where)}; "
             "[extending.md](extending.md#registering-a-method)); its keys are the plugins'.")
    return Section(key="", cls=type(params), intro=intro, keys=tuple(keys))


def _rel_path(where: str) -> str:
    path = Path(where)
    return str(path.relative_to(ROOT)) if path.is_absolute() and ROOT in path.parents else where


# -- markdown -------------------------------------------------------------------------------------

def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(keys: tuple[Key, ...]) -> list[str]:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for k in keys:
        rows.append(f"| `{k.key}` | {_cell(k.type)} | `{_cell(k.default)}` | {_cell(k.meaning)} |")
    return rows


HEADER = """\
# Config keys

<!-- Generated by `python tools/config_docs.py --write` from the config dataclasses
(experiments/config/sections.py and the sections it nests); tests/test_docs.py fails when
this file is stale. Edit the dataclasses' comments, not this file. -->

Every key of a `cfer run` config, with its type, its default and what it does. A YAML
config is laid over these defaults (keys it leaves out keep them), and `--set KEY=VALUE`
sets one key on the command line, its value read as YAML
(`--set strategies.methods=[naive,kd_psmr]`); an unknown key or a value of the wrong
type stops with one line naming the key and the file. How configs work and the configs
shipped with cfer: [configs.md](configs.md).

Types: `"a" | "b"` is a choice of strings, `null` is YAML's null (Python's None),
`list[...]` a YAML list, `dict[str, ...]` a mapping; a *section* is a nested mapping
whose keys are listed under its own heading.
"""


def render() -> str:
    """The text of docs/config.md."""
    from cfer.experiments.config.sections import ExperimentConfig

    out = [HEADER]
    for section in sections(ExperimentConfig):
        title = f"`{section.key}`" if section.key else "Top level"
        out.append(f"## {title}\n")
        if section.intro:
            out.append(section.intro + "\n")
        out.extend(_table(section.keys))
        out.append("")
    out.append("## `strategies.params.<method>`: each strategy's own hyperparameters\n")
    out.append("Laid over the defaults of the strategy's params dataclass, declared in its "
               "`strategies/zoo/<method>.py` (a method composed of plugins: its plugins' params, "
               "the defaults as its definition sets them); the keys of a strategy that is not run are "
               "checked too. `strategies.overrides.<method>` takes the keys of the `training` "
               "section, for that method only.\n")
    plain = []
    for name, description, section, unused in strategy_sections():
        keys = tuple(k for k in section.keys if k.key not in unused)
        if not keys:
            plain.append(f"- `{name}`: {description}" if description else f"- `{name}`")
            continue
        out.append(f"### `{name}`\n")
        lead = f"{description[:1].upper()}{description[1:].rstrip('.')}." if description else ""
        out.append(" ".join(t for t in (lead, section.intro) if t) + "\n")
        out.extend(_table(keys))
        if unused:
            out.append(f"\nKeys of its params class it does not read (setting one is an error): "
                       f"{', '.join(f'`{k}`' for k in unused)}.")
        out.append("")
    if plain:
        out.append("### Strategies without hyperparameters of their own\n")
        out.extend([*plain, ""])
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"regenerate {OUT.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    text = render()
    rel = OUT.relative_to(ROOT)
    if args.write:
        OUT.write_text(text, encoding="utf-8")
        print(f"config_docs: wrote {rel}")
        return 0
    if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
        print(f"config_docs: {rel} is not what the config dataclasses say; run "
              "python tools/config_docs.py --write", file=sys.stderr)
        return 1
    print(f"config_docs: {rel} is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
