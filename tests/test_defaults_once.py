"""Every default of a config or params dataclass is written once in the package.

A default is a field of a config/params dataclass assigned a literal (``temperature: float =
3.0``). Writing the same setting's default a second time (a function signature
``temperature=3.0`` beside ``DistillationParams.temperature``, a hard-coded ``gamma=0.1``
somewhere, a subclass re-typing an inherited default, another dataclass copying the field) lets
the two drift apart. A default taken from the dataclass (``= PrecisionConfig.precision``) is not
a second writing: it is the first one, read.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import lint_imports  # noqa: E402

#: Names of the dataclasses whose fields are settings: configs, params and rules.
SETTINGS_CLASS = ("Config", "Params", "Rule")
#: Values too common to identify a setting by themselves: their re-writing is only flagged where
#: it surely is the same setting (in code that uses the dataclass, or in a subclass of it).
COMMON = (None, True, False, 0, 1, 0.0, 1.0, "", ())
#: Two settings ("Class.field", or the file that writes the other value) that share a name and a
#: value by their sources, not by copying, with why.
SAME_BY_SOURCE = {
    frozenset({"LwFParams.temperature", "BiCParams.temperature"}):
        "LwF's and BiC's own distillation temperatures; Li & Hoiem and Wu et al. both use T = 2",
    frozenset({"GEMParams.patterns_per_exp", "AGEMParams.patterns_per_exp"}):
        "GEM's and A-GEM's own memories per experience, each the toolkit's choice (Avalanche has none)",
    frozenset({"BenchConfig.device", "strategies/builder.py"}):
        "cfer bench's default device and build()'s, where a caller names none: both the CPU",
}


def package_files() -> list[Path]:
    return sorted(p for top in ("cfer", *lint_imports.LAYERS) for p in (ROOT / top).rglob("*.py")
                  if "__pycache__" not in p.parts)


def literal(node):
    """The value of a literal expression, or ``...`` (Ellipsis) when it is not one."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return ...
    if isinstance(value, list):
        value = tuple(value)
    try:
        hash(value)
    except TypeError:  # a dict or set literal: no setting's default here is one
        return ...
    return value


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b


def _is_dataclass(node: ast.ClassDef) -> bool:
    return any("dataclass" in ast.unparse(d) for d in node.decorator_list)


def settings_classes(files) -> dict[str, dict]:
    """Class name -> {"file", "bases", "defaults": {field: (value, line)}} of every settings
    dataclass of the package."""
    out = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and _is_dataclass(node) and node.name.endswith(SETTINGS_CLASS):
                defaults = {}
                for stmt in node.body:
                    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
                        value = literal(stmt.value)
                        if value is not ...:
                            defaults[stmt.target.id] = (value, stmt.lineno)
                out[node.name] = {"file": path, "bases": [ast.unparse(b).split(".")[-1] for b in node.bases],
                                  "defaults": defaults}
    return out


def ancestors(name: str, classes: dict) -> set[str]:
    seen, todo = set(), list(classes.get(name, {}).get("bases", []))
    while todo:
        base = todo.pop()
        if base not in seen:
            seen.add(base)
            todo += classes.get(base, {}).get("bases", [])
    return seen


def rewritten_defaults(files) -> list[str]:
    """One line per place that writes a settings dataclass's default again."""
    classes = settings_classes(files)
    owners: dict[tuple, list[str]] = {}  # (field, type, value) -> the "Class.field"s defining it
    for cls, info in classes.items():
        for field, (value, _) in info["defaults"].items():
            owners.setdefault((field, type(value), value), []).append(f"{cls}.{field}")
    return sorted({line for path in files for line in _rewrites_in(path, classes, owners)})


def _rewrites_in(path: Path, classes: dict, owners: dict) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    where = str(path.relative_to(ROOT))
    found = []

    def context(node) -> set[str]:
        """The names the enclosing functions and classes of ``node`` use (which dataclasses
        that code works with), and the classes it is in with their ancestors."""
        names = set()
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                if isinstance(node, ast.ClassDef):
                    names |= {node.name} | ancestors(node.name, classes)
        return names

    def check(node, field, value_node, what, *, own_class=None, call=False):
        value = literal(value_node)
        if value is ...:
            return
        for owner in owners.get((field, type(value), value), []):
            cls = owner.split(".")[0]
            site = f"{own_class}.{field}" if own_class else where
            if own_class == cls or frozenset({owner, site}) in SAME_BY_SOURCE:
                continue
            # A call's argument is a value chosen there unless it is a number (a hard-coded
            # setting) or the code works with the dataclass; any other value is distinctive
            # unless it is too common to tell.
            distinctive = not any(_same(value, c) for c in COMMON) and (
                not call or isinstance(value, (int, float)) and not isinstance(value, bool))
            inherited = own_class is not None and cls in ancestors(own_class, classes)
            if distinctive or inherited or cls in context(node):
                found.append(f"{where}:{node.lineno}: {what} writes the default of {owner} again")

    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = node.args
            pairs = list(zip(args.args[len(args.args) - len(args.defaults):], args.defaults))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
            for arg, default in pairs:
                check(default, arg.arg, default, f"the signature default {arg.arg}=")
        elif isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg is not None:
                    check(kw, kw.arg, kw.value, f"the argument {kw.arg}=", call=True)
        elif isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
                    check(stmt, stmt.target.id, stmt.value, f"{node.name}.{stmt.target.id} =",
                          own_class=node.name)
    return found


def test_every_settings_default_is_written_once():
    assert rewritten_defaults(package_files()) == []


def test_the_check_finds_a_default_written_twice(tmp_path, monkeypatch):
    """A signature re-typing the KD temperature, a hard-coded one, a subclass re-typing an
    inherited default and another dataclass copying a field are all found; reading the default
    from the dataclass, and other values, are not."""
    import tests.test_defaults_once as me

    src = tmp_path / "mod.py"
    src.write_text('''
from dataclasses import dataclass

@dataclass(frozen=True)
class KDParams:
    temperature: float = 3.0
    decay: bool = True
    teacher: str = "basic"

@dataclass(frozen=True)
class OtherKDParams(KDParams):
    decay: bool = True

@dataclass(frozen=True)
class CopyConfig:
    temperature: float = 3.0

class Plugin:
    def __init__(self, *, temperature: float = 3.0, decay: bool = True):
        self.params = KDParams(temperature=temperature, decay=decay)

def fine(*, temperature: float = KDParams.temperature, decay: bool = KDParams.decay):
    return load(temperature, decay, teacher="previous", alpha=2.0)

def hard_coded():
    return gamma_at(0, temperature=3.0)
''')
    monkeypatch.setattr(me, "ROOT", tmp_path)
    assert rewritten_defaults([src]) == [
        "mod.py:12: OtherKDParams.decay = writes the default of KDParams.decay again",
        "mod.py:16: CopyConfig.temperature = writes the default of KDParams.temperature again",
        "mod.py:19: the signature default decay= writes the default of KDParams.decay again",
        "mod.py:19: the signature default temperature= writes the default of CopyConfig.temperature again",
        "mod.py:19: the signature default temperature= writes the default of KDParams.temperature again",
        "mod.py:26: the argument temperature= writes the default of CopyConfig.temperature again",
        "mod.py:26: the argument temperature= writes the default of KDParams.temperature again",
        "mod.py:6: KDParams.temperature = writes the default of CopyConfig.temperature again",
    ]
