"""Every touch of Avalanche's private attributes is in plugins/workarounds/, where an Avalanche
upgrade is checked (plugins/workarounds/__init__.py).

Precise, not a grep for ``._``: the names Avalanche keeps private are read from its installed
source (attributes its classes assign on ``self``, and their ``_methods``); a module of ours
touches one when it reads or writes such a name on ``self`` inside a class deriving from that
Avalanche class, or on any other object when the name is one Avalanche defines and we never do
(``getattr(x, "_name")`` counts too). Our own private names, also on our Avalanche subclasses,
do not count.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import lint_imports  # noqa: E402

ROOM = ROOT / "plugins" / "workarounds"
#: Private names of Avalanche read outside the room on purpose, with why (keep it minimal).
ALLOWED: dict[str, str] = {}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_privates(cls_node: ast.ClassDef) -> set[str]:
    """Private names a class defines: its methods and class attributes, and ``self._x = ...``."""
    out = set()
    for stmt in cls_node.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and _private(stmt.name):
            out.add(stmt.name)
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
        out |= {t.id for t in targets if isinstance(t, ast.Name) and _private(t.id)}
    for node in ast.walk(cls_node):
        if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _private(node.attr)
                and isinstance(node.value, ast.Name) and node.value.id == "self"):
            out.add(node.attr)
    return out


def _base_name(expr) -> str:
    return ast.unparse(expr).split("[")[0].split(".")[-1]


def avalanche_classes() -> dict[str, tuple[list[str], set[str]]]:
    """Avalanche class name -> (its base class names, the private names it defines)."""
    import avalanche

    out: dict[str, tuple[list[str], set[str]]] = {}
    for path in Path(avalanche.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases, names = out.get(node.name, ([], set()))
                bases = bases + [_base_name(b) for b in node.bases]
                out[node.name] = (bases, names | _defined_privates(node))
    return out


def avalanche_privates(name: str, classes: dict, seen=None) -> set[str]:
    """The private names Avalanche class ``name`` and its Avalanche ancestors define."""
    seen = set() if seen is None else seen
    if name in seen or name not in classes:
        return set()
    seen.add(name)
    bases, names = classes[name]
    return set(names).union(*(avalanche_privates(b, classes, seen) for b in bases))


def _avalanche_names(tree) -> dict[str, str]:
    """Local name -> the Avalanche class (or module) it is bound to by the module's imports."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "avalanche":
            out.update({(a.asname or a.name): a.name for a in node.names})
        elif isinstance(node, ast.Import):
            out.update({(a.asname or a.name).split(".")[0]: a.name for a in node.names
                        if a.name.split(".")[0] == "avalanche"})
    return out


def touches(files, classes) -> list[str]:
    """``path:line: name`` for each touch of an Avalanche private attribute in ``files``."""
    every_avalanche_private = set().union(*(names for _, names in classes.values()))
    trees = {p: ast.parse(p.read_text(encoding="utf-8")) for p in files}
    # Our classes: which Avalanche classes they derive from (through ours too), and our own privates.
    ours: dict[str, list[str]] = {}
    own_privates: set[str] = set()
    for tree in trees.values():
        imported = _avalanche_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = []
                for b in node.bases:
                    root = ast.unparse(b).split(".")[0]
                    bases.append(_base_name(b) if root in imported else f"ours:{_base_name(b)}")
                ours[node.name] = bases

    def inherited(cls: str, seen=()) -> set[str]:
        out = set()
        for b in ours.get(cls, []):
            if b.startswith("ours:"):
                if b[5:] not in seen:
                    out |= inherited(b[5:], (*seen, cls))
            else:
                out |= avalanche_privates(b, classes)
        return out

    for tree in trees.values():  # privates our classes add themselves (not Avalanche's)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                own_privates |= _defined_privates(node) - inherited(node.name)
    found = []
    for path, tree in trees.items():
        where = path.relative_to(ROOT)
        for cls in [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]:
            theirs = inherited(cls.name)
            for node in ast.walk(cls):
                if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                        and node.value.id == "self" and node.attr in theirs):
                    found.append(f"{where}:{node.lineno}: self.{node.attr} ({cls.name}'s Avalanche base)")
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Attribute) and _private(node.attr):
                if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                    name = node.attr
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) > 1
                  and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
                  and _private(node.args[1].value)):
                name = node.args[1].value
            if name and name in every_avalanche_private and name not in own_privates and name not in ALLOWED:
                found.append(f"{where}:{node.lineno}: .{name}")
    return sorted(set(found))


def package_files(*, outside_room: bool = True) -> list[Path]:
    files = sorted(p for top in ("cfer", *lint_imports.LAYERS) for p in (ROOT / top).rglob("*.py")
                   if "__pycache__" not in p.parts)
    return [p for p in files if ROOM not in p.parents] if outside_room else files


def test_avalanche_internals_are_touched_only_in_the_workarounds_room():
    assert touches(package_files(), avalanche_classes()) == []


def test_the_check_finds_a_touch_and_spares_our_own_privates(tmp_path, monkeypatch):
    import tests.test_workarounds_room as me

    src = tmp_path / "mod.py"
    src.write_text('''
from avalanche.evaluation.metrics import accuracy as av_accuracy
from avalanche.training.plugins import EvaluationPlugin, SupervisedPlugin

class Mine(av_accuracy.Accuracy):
    def __init__(self):
        super().__init__()
        self._queue = []                      # ours
        self._mean_accuracy = None            # Accuracy's

class Replays(EvaluationPlugin):
    def before_eval_exp(self, strategy, **kwargs):
        self._update_metrics_and_loggers(strategy, "before_eval_exp")

class Plain(SupervisedPlugin):
    def __init__(self):
        self._state = None                    # ours: no base of Plain defines it

def swap(experience, metric, data):
    experience._dataset = data
    metric._queue.append(getattr(metric, "_mean_loss", None))
''')
    monkeypatch.setattr(me, "ROOT", tmp_path)
    assert touches([src], avalanche_classes()) == [
        "mod.py:13: self._update_metrics_and_loggers (Replays's Avalanche base)",
        "mod.py:20: ._dataset",
        "mod.py:21: ._mean_loss",
        "mod.py:9: self._mean_accuracy (Mine's Avalanche base)",
    ]
