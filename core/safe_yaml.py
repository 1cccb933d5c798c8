"""YAML read with a budget, and with YAML 1.2's floats: the one YAML reader of cfer.

``yaml.safe_load`` builds no arbitrary objects, but it still accepts two inputs that
hurt a program that walks the result: aliases (``&a`` / ``*a``) that nest into a
structure of billions of values ("billion laughs"), which take no memory as shared
references but hang any code that copies, compares or serialises the config
(``dataclasses.asdict``, ``json.dumps``), and recursive aliases (``&a [*a]``), which
make such code recurse for ever. So every YAML text is composed into PyYAML's node
graph first, and refused (one line naming ``where``) when it is larger than
:data:`MAX_BYTES`, when it expands (aliases counted each time they are used) to more
than :data:`MAX_NODES` values, when an alias refers to itself, or when a mapping names
a key twice (PyYAML keeps the last one without a word); only then is it constructed.

PyYAML implements YAML 1.1, whose floats need a dot: ``1e-4`` is the string
``"1e-4"`` there, a float in YAML 1.2 and in every other reader a user has met
(JSON, Python). :class:`Loader` adds YAML 1.2's form, so ``--set training.lr=1e-4``,
``lr: 1e-4`` in a file and ``--grid training.lr=1e-4,1e-5`` all read a float.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

#: The largest YAML text read (a config, a ``--set`` value, a folder spec), in bytes.
MAX_BYTES = 1 << 20
#: The most values (scalars, lists, mappings; an alias counts as what it expands to) a
#: YAML text may hold.
MAX_NODES = 100_000


class YAMLBudgetError(ValueError):
    """A YAML text over the budget (one-line message naming where it came from)."""


class Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads YAML 1.2 floats with an exponent (``1e-4``, ``1.5e4``,
    ``-2E3``; YAML 1.1 wants a dot and a signed exponent, ``1.0e-4``, ``1.5e+4``)."""


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))


def _expanded_size(root: yaml.Node, *, where: str) -> int:
    """The number of values ``root`` expands to, aliases counted at each use; refuses a
    node that contains itself. Each distinct node is sized once (memoised), so this takes
    time in the number of distinct nodes, not in the expanded size."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    # Iterative post-order walk: a deep YAML nest must not hit Python's recursion limit.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(c)] for c in _children(node))
            sizes[key] = min(total, MAX_NODES + 1)  # capped: the comparison is all that matters
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise YAMLBudgetError(f"{where}: a YAML alias refers to the value it is inside of "
                                  "(a recursive structure); write the value out")
        on_path.add(key)
        if isinstance(node, yaml.MappingNode):
            _no_repeated_keys(node, where=where)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise YAMLBudgetError(f"{where}: a YAML alias refers to the value it is inside of "
                                      "(a recursive structure); write the value out")
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _no_repeated_keys(node: yaml.MappingNode, *, where: str) -> None:
    """Refuse a mapping that names a key twice (``{epochs: 1, epochs: 5}``): PyYAML keeps the
    last silently, so the file would not say which value runs."""
    seen: set[str] = set()
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode):
            if key.value in seen:
                raise YAMLBudgetError(f"{where}: key {key.value!r} appears twice in one mapping "
                                      f"(line {key.start_mark.line + 1}); keep one")
            seen.add(key.value)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load(text: str, *, where: str):
    """``text`` parsed as YAML (safe: plain data only), within :data:`MAX_BYTES` and
    :data:`MAX_NODES`; None for an empty document. Raises :class:`YAMLBudgetError` over
    the budget and ``yaml.YAMLError`` for invalid YAML."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise YAMLBudgetError(f"{where}: {len(text)} characters of YAML, more than the "
                              f"{MAX_BYTES // 1024} KiB a config may have")
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, where=where)
        if size > MAX_NODES:
            raise YAMLBudgetError(f"{where}: the YAML expands to more than {MAX_NODES} values "
                                  "(aliases counted each time they are used); write it out smaller")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_text(path: str | Path) -> str:
    """The text of the YAML file ``path``, refused (one line) when it is larger than
    :data:`MAX_BYTES`: at most that much is ever read, whatever the file is."""
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise YAMLBudgetError(f"{path}: larger than the {MAX_BYTES // 1024} KiB a YAML file may have "
                              "(is it the right file?)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise YAMLBudgetError(f"{path}: not a UTF-8 text file (byte {e.start}); is it the right file?") \
            from None


def load_file(path: str | Path):
    """The YAML file ``path`` parsed within the budget (:func:`read_text`, :func:`load`)."""
    return load(read_text(path), where=str(path))
