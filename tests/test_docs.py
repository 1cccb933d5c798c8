"""The docs keep what they promise: docs/config.md is what the config dataclasses say, the
commands marked runnable run, every docs page is reachable from the README's index, links
resolve, and the README stays a five-minute read.

A fenced block preceded by the line ``<!-- runnable -->`` (invisible on GitHub) is run here:
``bash`` blocks with ``bash -euo pipefail``, ``python`` blocks with this interpreter, each in
a fresh folder that sees the repository's top-level folders (``docs/``, ``experiments/``, ...)
and an empty ``$CFER_CACHE``. Mark only commands that take seconds on tiny data; the
quickstart and other commands that take minutes stay unmarked (CI runs the quickstart).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import config_docs  # noqa: E402

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").rglob("*.md"))
PAGES = [README, ROOT / "CHANGELOG.md", *DOCS]
MARKER = "<!-- runnable -->"
#: A marked block: the marker line, then a fence whose info string names the language.
RUNNABLE = re.compile(r"^<!-- runnable -->\n```(?P<lang>[\w-]*)\n(?P<body>.*?)^```$", re.M | re.S)
README_MAX_LINES = 200


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def runnable_blocks() -> list[tuple[str, str, str]]:
    """(where: file:line, language, body) of every block marked runnable."""
    out = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in RUNNABLE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            out.append((f"{_rel(page)}:{line}", m["lang"], m["body"]))
    return out


# -- docs/config.md ---------------------------------------------------------------------------------

def test_config_md_is_what_the_config_dataclasses_say():
    text = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert text == config_docs.render(), "docs/config.md is stale: run python tools/config_docs.py --write"


def test_every_config_key_has_a_meaning():
    from cfer.experiments.config.sections import ExperimentConfig

    blank = [k.key for s in config_docs.sections(ExperimentConfig) for k in s.keys if not k.meaning]
    for name, _, section, unused in config_docs.strategy_sections():
        blank += [f"strategies.params.{name}.{k.key}" for k in section.keys
                  if not k.meaning and k.key not in unused]
    assert not blank, f"keys without a comment in their dataclass (docs/config.md shows none): {blank}"


def test_config_md_lists_keys_a_new_user_looks_for():
    text = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    for key in ("dataset.subjects", "benchmark.compounds", "benchmark.augment.zoom", "runner.ray.address",
                "training.memory_fraction", "strategies.methods"):
        assert f"| `{key}` |" in text, key
    assert "### `kd_psmr`" in text and "| `temperature` | float | `3.0` |" in text


# A toy config, read by the generator as it reads the real ones.
@dataclass(frozen=True)
class _Inner:
    """Inner section.

    Second paragraph, ``literal``."""

    # the comment above,
    # over two lines
    depth: int = 3
    mode: Literal["a", "b"] = "b"  # the trailing comment
    #                                and its continuation
    # -- a ruler, not a meaning -----
    ratio: float | None = None
    """an attribute docstring"""


@dataclass(frozen=True)
class _Base:
    tags: list[str] = field(default_factory=lambda: ["x", "y"])  # from the base


@dataclass(frozen=True)
class _Toy(_Base):
    inner: _Inner = field(default_factory=_Inner)
    named: dict[str, _Inner] = field(default_factory=dict)  # one inner section per name
    flag: str | bool = "false"  # a string YAML would read as a bool is quoted
    tags: list[str] = field(default_factory=lambda: ["z"])


def test_the_generator_reads_types_defaults_and_comments_of_any_dataclass():
    secs = {s.key: s for s in config_docs.sections(_Toy, prefix="toy.")}
    assert list(secs) == ["toy", "toy.inner", "toy.named.<name>"]
    top = {k.key: k for k in secs["toy"].keys}
    assert list(top) == ["toy.tags", "toy.named", "toy.flag"]  # sections are not keys
    assert top["toy.tags"] == config_docs.Key("toy.tags", "list[str]", "[z]", "from the base")
    assert top["toy.flag"].type == "str | bool" and top["toy.flag"].default == "'false'"
    assert top["toy.named"].type == "dict[str, section]" and top["toy.named"].default == "{}"
    inner = {k.key: k for k in secs["toy.inner"].keys}
    assert inner["toy.inner.depth"].meaning == "the comment above, over two lines"
    assert inner["toy.inner.mode"].type == '"a" | "b"'
    assert inner["toy.inner.mode"].meaning == "the trailing comment and its continuation"
    assert inner["toy.inner.ratio"] == config_docs.Key("toy.inner.ratio", "float | null", "null",
                                                       "an attribute docstring")
    assert secs["toy.inner"].intro == "Inner section.\n\nSecond paragraph, `literal`."
    assert [k.key for k in secs["toy.named.<name>"].keys] == [
        "toy.named.<name>.depth", "toy.named.<name>.mode", "toy.named.<name>.ratio"]


def test_a_new_field_reaches_the_docs():
    @dataclass(frozen=True)
    class Grown(_Inner):
        extra: int = 7  # a field added later

    keys = {k.key: k for k in next(config_docs.sections(Grown)).keys}
    assert keys["extra"] == config_docs.Key("extra", "int", "7", "a field added later")
    assert keys["depth"].meaning == "the comment above, over two lines"  # read from the base


# -- runnable snippets ------------------------------------------------------------------------------

def test_runnable_markers_sit_on_fences_and_the_docs_have_some():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        marked = len(re.findall(rf"^{MARKER}$", text, re.M))  # the marker on a line of its own
        assert marked == len(RUNNABLE.findall(text)), \
            f"{_rel(page)}: a {MARKER} line must come right before a ```bash or ```python fence"
    langs = [lang for _, lang, _ in runnable_blocks()]
    assert set(langs) <= {"bash", "python"}, langs
    assert langs.count("bash") >= 3 and langs.count("python") >= 1


@pytest.mark.parametrize("where,lang,body", runnable_blocks(), ids=[w for w, _, _ in runnable_blocks()])
def test_runnable_snippet_runs(where, lang, body, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    for entry in ROOT.iterdir():  # the paths a reader types from the repository root; not
        if not entry.name.startswith(".") and entry.name != "runs":  # runs/: snippets write there
            (work / entry.name).symlink_to(entry)
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "CFER_CACHE": str(tmp_path / "cache"), "MPLBACKEND": "Agg",
           "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    if lang == "bash":
        cmd = ["bash", "-euo", "pipefail", "-c", body]
    else:
        script = tmp_path / "snippet.py"
        script.write_text(body, encoding="utf-8")
        cmd = [sys.executable, str(script)]
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, \
        f"{where} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


# -- the README and the docs index ------------------------------------------------------------------

LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)  # code is not links
    return [m["target"] for m in LINK.finditer(text)]


def test_readme_is_a_five_minute_read():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move details into a docs/ page"


def test_every_docs_page_is_in_the_readme_index():
    linked = {(ROOT / t.split("#")[0]).resolve() for t in _links(README) if not re.match(r"\w+:", t)}
    missing = [_rel(p) for p in DOCS if p.resolve() not in linked]
    assert not missing, f"docs pages not linked from README.md's index: {missing}"


#: Pages linked before they land, being written on another branch (issue 21). The test fails
#: once one exists, so that its entry goes when the page arrives.
PENDING: set = set()


def test_relative_links_resolve():
    broken = []
    for page in PAGES:
        for target in _links(page):
            if re.match(r"\w+:", target) or target.startswith("#"):
                continue  # web addresses, mail, anchors in the page
            path = (page.parent / target.split("#")[0]).resolve()
            if not path.exists() and path not in PENDING:
                broken.append(f"{_rel(page)}: {target}")
    assert not broken, broken
    landed = [_rel(p) for p in PENDING if p.exists()]
    assert not landed, f"{landed} exist now: remove them from PENDING in tests/test_docs.py"


def test_docs_cite_this_repository_or_public_sources_only():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert "../shared" not in text and "/work/" not in text, _rel(page)
