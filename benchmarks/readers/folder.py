"""Reader for a class-per-folder tree, ``<root>/<class folder>/<image>``, described by a spec.

The spec (a YAML file or a dict) says which folders hold basic and which
compound expressions, and optionally how to read a subject id::

    name: my_faces                  # optional, default: the root folder's name
    basic: [happy, sad, fear, angry, surprise, disgust]   # or {folder: taxonomy name}
    compound:                       # {folder: components | taxonomy name | {name, components}}
      happily_surprised: [happy, surprised]
      Sadly-Angry:
      awe: {name: awed, components: [fearful, surprised]}
    subject: '^(?P<subject>S\\d+)_'  # optional regular expression

A folder maps to the taxonomy name written next to it, else to its own name
lower-cased with ``_``/``-`` read as spaces (``fear``, ``surprise`` ... are
accepted for the basic names). Components, when given, must agree with the
taxonomy. The subject expression is searched in each image's path relative
to its class folder (``S001_03.jpg`` or ``S001/03.jpg``); it takes the group
named ``subject``, else group 1, else the whole match. Images may sit in
sub-folders of a class folder. Folders under ``root`` that the spec does not
name are left out (logged).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfer.benchmarks.dataset import FaceDataset
from cfer.benchmarks.taxonomy import BASIC, COMPONENTS, NEUTRAL, check_class

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
SPEC_KEYS = ("name", "basic", "compound", "subject")
#: Common spellings of the basic expressions in folder names.
BASIC_ALIASES: Mapping[str, str] = {
    "happiness": "happy", "joy": "happy", "sadness": "sad", "fear": "fearful", "anger": "angry",
    "surprise": "surprised", "disgust": "disgusted",
}


@dataclass(frozen=True)
class FolderClass:
    """One class folder: its folder name, taxonomy name and basic components."""

    folder: str
    name: str
    components: tuple[str, ...]


@dataclass(frozen=True)
class FolderSpec:
    """A parsed folder spec (see the module docstring)."""

    classes: tuple[FolderClass, ...]  # basic first, then compound, in spec order
    subject: re.Pattern | None = None
    name: str | None = None


def _taxonomy_name(folder: str, given: Any, *, where: str) -> str:
    if given is not None and not isinstance(given, str):
        raise ValueError(f"{where}: expected a class name, got {given!r}")
    raw = given if given is not None else folder
    name = " ".join(raw.replace("_", " ").replace("-", " ").lower().split())
    name = BASIC_ALIASES.get(name, name)
    return check_class(name, where=where)


def _check_components(name: str, components: Any, *, where: str) -> tuple[str, ...]:
    expected = COMPONENTS[name]
    if components is None:
        return expected
    if not isinstance(components, (list, tuple)) or not all(isinstance(c, str) for c in components):
        raise ValueError(f"{where}: components must be a list of two basic expressions, got {components!r}")
    given = tuple(BASIC_ALIASES.get(c.strip().lower(), c.strip().lower()) for c in components)
    if sorted(given) != sorted(expected):
        raise ValueError(f"{where}: components {list(components)} disagree with the taxonomy: "
                         f"{name!r} is {expected[0]} + {expected[1]}")
    return expected


def _compound_entry(folder: str, value: Any, *, where: str) -> FolderClass:
    if value is None or isinstance(value, str):
        name, comps = _taxonomy_name(folder, value, where=where), None
    elif isinstance(value, (list, tuple)):
        name, comps = _taxonomy_name(folder, None, where=where), value
    elif isinstance(value, Mapping):
        extra = sorted(set(value) - {"name", "components"})
        if extra:
            raise ValueError(f"{where}: unknown keys {extra} (use 'name', 'components')")
        name, comps = _taxonomy_name(folder, value.get("name"), where=where), value.get("components")
    else:
        raise ValueError(f"{where}: expected components, a class name or {{name, components}}, got {value!r}")
    if name not in COMPONENTS:
        raise ValueError(f"{where}: {name!r} is not a compound expression (it belongs under 'basic')")
    return FolderClass(folder, name, _check_components(name, comps, where=where))


def _basic_entry(folder: str, value: Any, *, where: str) -> FolderClass:
    name = _taxonomy_name(folder, value, where=where)
    if name not in BASIC and name != NEUTRAL:
        raise ValueError(f"{where}: {name!r} is not a basic expression (it belongs under 'compound')")
    return FolderClass(folder, name, (name,) if name != NEUTRAL else ())


def _entries(section: Any, *, key: str, where: str) -> list[tuple[str, Any]]:
    if section is None:
        return []
    if isinstance(section, Mapping):
        return [(str(k), v) for k, v in section.items()]
    if isinstance(section, (list, tuple)):
        return [(str(k), None) for k in section]
    raise ValueError(f"{where}: '{key}' must be a list of folders or a mapping, got {type(section).__name__}")


def parse_folder_spec(spec: str | Path | Mapping[str, Any]) -> FolderSpec:
    """Parse and check a folder spec (a YAML file path or a dict)."""
    where = "folder spec"
    if isinstance(spec, (str, Path)):
        import yaml

        from cfer.core import safe_yaml

        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: folder spec file does not exist")
        where = str(path)
        try:
            spec = safe_yaml.load_file(path)  # with a size and alias budget
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: expected a mapping with keys {SPEC_KEYS}")
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (known: {', '.join(SPEC_KEYS)})")
    classes = [_basic_entry(f, v, where=f"{where}: basic[{f!r}]")
               for f, v in _entries(spec.get("basic"), key="basic", where=where)]
    classes += [_compound_entry(f, v, where=f"{where}: compound[{f!r}]")
                for f, v in _entries(spec.get("compound"), key="compound", where=where)]
    if not classes:
        raise ValueError(f"{where}: names no class folders (give 'basic' and/or 'compound')")
    seen: dict[str, str] = {}
    for c in classes:
        if c.name in seen:
            raise ValueError(f"{where}: folders {seen[c.name]!r} and {c.folder!r} both map to {c.name!r}")
        seen[c.name] = c.folder
    folders = [c.folder for c in classes]
    if len(set(folders)) != len(folders):
        raise ValueError(f"{where}: a folder is listed twice ({folders})")
    pattern = None
    if spec.get("subject") is not None:
        try:
            pattern = re.compile(str(spec["subject"]))
        except re.error as e:
            raise ValueError(f"{where}: 'subject' is not a valid regular expression "
                             f"('{spec['subject']}': {e})") from None
    name = spec.get("name")
    return FolderSpec(tuple(classes), pattern, None if name is None else str(name))


def _subject(pattern: re.Pattern, rel: str, *, path: Path) -> str:
    m = pattern.search(rel)
    if m is None:
        raise ValueError(f"{path}: subject expression '{pattern.pattern}' does not match {rel!r}")
    if "subject" in pattern.groupindex:
        value = m.group("subject")
    else:
        value = m.group(1) if pattern.groups else m.group(0)
    if not value:
        raise ValueError(f"{path}: subject expression '{pattern.pattern}' "
                         f"matched an empty subject in {rel!r}")
    return value


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def load_folder(root: str | Path, spec: str | Path | Mapping[str, Any]) -> FaceDataset:
    """Read ``<root>/<class folder>/<image>`` as described by ``spec`` (a YAML path or dict).

    Subjects are read when the spec has a ``subject`` expression, so folds are
    subject-independent; without it folds are made by image (logged).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: image folder root does not exist")
    parsed = parse_folder_spec(spec)
    paths, labels, subjects = [], [], []
    for label, cls in enumerate(parsed.classes):
        folder = root / cls.folder
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: class folder named in the spec does not exist")
        files = _images(folder)
        if not files:
            raise ValueError(f"{folder}: class folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        for f in files:
            paths.append(f)
            labels.append(label)
            if parsed.subject is not None:
                subjects.append(_subject(parsed.subject, f.relative_to(folder).as_posix(), path=f))
    named = {c.folder for c in parsed.classes}
    unused = sorted(p.name for p in root.iterdir()
                    if p.is_dir() and p.name not in named and not p.name.startswith("."))
    if unused:
        log.info("%s: folders not named in the spec are left out: %s", root, ", ".join(unused))
    return FaceDataset(
        paths=tuple(paths),
        labels=labels,
        class_names=tuple(c.name for c in parsed.classes),
        subjects=subjects if parsed.subject is not None else None,
        name=parsed.name or root.name,
        root=root,
    )
