"""Check a quickstart run against the committed reference, or write that reference.

The quickstart tables of README.md and docs/results.md are ``cfer compare docs/results/quickstart``
of the committed reference file (docs/results/quickstart/results.json, a reduced results.json).
``.ci/run`` re-runs the quickstart as the README says and checks it here, so the table cannot drift
from the code unnoticed:

    python tools/check_quickstart.py RUN_DIR              # exit 0: RUN_DIR matches the reference
    python tools/check_quickstart.py RUN_DIR --write      # replace the reference with RUN_DIR's
    python tools/check_quickstart.py --docs               # exit 0: the docs' generated tables are current
    python tools/check_quickstart.py --update             # regenerate them
    python tools/check_quickstart.py --docs FILE.md ...   # (--update) only these files

The docs are README.md and every ``docs/**/*.md``. A generated block is the output of
``cfer compare`` between two markers, ``md`` (as ``--out x.md`` writes it) or ``tex`` (in a
latex code fence), its paths relative to the repository root as a reader types them there
(relative to the file's folder for a file outside this repository)::

    <!-- cfer compare docs/results/quickstart --tables summary (md) -->
    ...
    <!-- end cfer compare -->

What must match (docs/results/README.md says why):

- the config digest of every method (a changed quickstart config needs a new reference),
  the methods, and the runs (class order, fold, seed) of each;
- each method's summary mean of every metric: exactly (1e-9) when the run's environment
  equals the reference's on :data:`SAME_MACHINE_KEYS` (same CPU model and instruction set,
  thread count and package versions: CPU runs repeat bit for bit there), else within
  :func:`tolerance`: the larger of a floor per metric (``cross_cpu_floor`` of its record in
  ``cfer.core.metrics``, with the reason beside it) and :data:`STANDARD_ERRORS` standard
  errors of the difference of the two means.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

from cfer.core import metrics

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "results" / "quickstart" / "results.json"

#: Another CPU model rounds differently, and training amplifies that as a different seed
#: would: the tolerance also allows this many standard errors of the difference of the two
#: means, sqrt(s_run^2 / n + s_ref^2 / n) (the issue-15 case: 3 x 2.7 = 8.0 points > 3.2).
STANDARD_ERRORS = 3.0
#: Tolerance of a run on the reference's own machine: CPU runs repeat exactly (docs/running.md).
EXACT = 1e-9
#: The environment entries (cfer.experiments.run.environment) that must be equal for exactness.
SAME_MACHINE_KEYS = ("cpu_model", "device.type", "device.cpu_capability", "threads", "packages.torch",
                     "packages.numpy", "packages.avalanche-lib", "packages.torchvision")
#: What a run record keeps in the reference: enough to recompute every summary metric and
#: the paired statistics (cfer.core.metrics.run_scalars), and nothing heavy.
RUN_KEYS = ("order", "fold", "seed", "order_index", "n_basic", "test_sizes", "accuracy_matrix",
            "step_accuracy", "new_class_f1")


def _value(block, dotted: str):
    for part in dotted.split("."):
        block = block.get(part) if isinstance(block, Mapping) else None
    return block


def reduce(results: Mapping) -> dict:
    """The reference form of a results.json: its head (schema version, environment, config,
    config digests, data set) and, per method, the run records' :data:`RUN_KEYS` and the
    summary of the runs, computed by this code (cfer.core.metrics.summarize_runs: a pure
    function of the runs, so a results.json written before a metric was added gives the
    summary a new run would)."""
    head = {k: results[k] for k in ("schema_version", "environment", "config", "config_digests", "dataset")
            if k in results}
    methods = {m: {"runs": [{k: r[k] for k in RUN_KEYS if k in r} for r in e["runs"]],
                   "summary": metrics.summarize_runs(e["runs"])} for m, e in results["methods"].items()}
    return {**head, "methods": methods}


def same_machine(run: Mapping, reference: Mapping) -> bool:
    """True when the two environment blocks agree on every :data:`SAME_MACHINE_KEYS` entry."""
    a, b = run.get("environment"), reference.get("environment")
    return bool(a and b) and all(_value(a, k) == _value(b, k) for k in SAME_MACHINE_KEYS)


def tolerance(metric: str, *, got: Mapping, ref: Mapping) -> float:
    """The cross-CPU tolerance (in the stored unit: a fraction for percentages) of ``metric``
    between two summaries ``{mean, std, n}``."""
    se2 = sum((s.get("std") or 0.0) ** 2 / max(int(s.get("n") or 1), 1) for s in (got, ref))
    return max(metrics.get(metric).tolerance_floor, STANDARD_ERRORS * se2 ** 0.5)


def predates(reference: Mapping) -> bool:
    """True when ``reference`` was written by an older schema than this code writes: a metric
    it cannot have (new-class F1 needs per-step predictions a version 2 file lacks) is not
    checked, and :func:`unchecked` names it, rather than failing every run against it."""
    from cfer.experiments.run.environment import SCHEMA_VERSION

    return int(reference.get("schema_version", 1)) < SCHEMA_VERSION


def unchecked(run: Mapping, reference: Mapping) -> list[str]:
    """The metrics :func:`problems` skips: undefined in an older reference, defined in ``run``."""
    if not predates(reference):
        return []
    def mean(results: Mapping, method: str, metric: str):
        return (((results["methods"].get(method) or {}).get("summary") or {}).get(metric) or {}).get("mean")

    names = [m for m in metrics.names()
             if any(mean(reference, method, m) is None and mean(run, method, m) is not None
                    for method in reference["methods"])]
    return [f"{', '.join(names)}: not in the reference (schema version {reference.get('schema_version', 1)}, "
            "written before they were recorded), not checked; regenerate it (docs/results/README.md)"] \
        if names else []


def problems(run: Mapping, reference: Mapping, *, exact: bool) -> list[str]:
    """One line per way ``run`` (a results.json dict) departs from ``reference``; [] if none."""
    out = []
    if "config_digests" not in reference:
        return ["the reference has no config digests (written before results.json recorded them): "
                "regenerate it (docs/results/README.md)"]
    if run.get("config_digests") != reference.get("config_digests"):
        return [f"config digests differ (run {run.get('config_digests')}, reference "
                f"{reference.get('config_digests')}): the quickstart config changed; "
                "regenerate the reference (docs/results/README.md)"]
    if list(run["methods"]) != list(reference["methods"]):
        return [f"methods differ: run {list(run['methods'])}, reference {list(reference['methods'])}"]
    key = lambda r: (tuple(r.get("order") or ()), r.get("fold"), r.get("seed"))  # noqa: E731
    for method, ref in reference["methods"].items():
        got = run["methods"][method]
        if sorted(map(key, got["runs"])) != sorted(map(key, ref["runs"])):
            out.append(f"{method}: the runs (order, fold, seed) differ from the reference's")
            continue
        for metric in metrics.names():
            s_got, s_ref = got["summary"].get(metric), ref["summary"].get(metric)
            if s_got is None or s_ref is None:
                out.append(f"{method}.{metric}: missing from the " + ("run" if s_got is None else "reference")
                           + "'s summary (written by another cfer: regenerate the reference, "
                             "docs/results/README.md)")
                continue
            a, b = s_got["mean"], s_ref["mean"]
            if a is None or b is None:
                if a != b and not (b is None and predates(reference)):
                    out.append(f"{method}.{metric}: {a} vs reference {b}")
                continue
            record = metrics.get(metric)
            limit = EXACT if exact else tolerance(metric, got=s_got, ref=s_ref)
            if abs(a - b) > limit:
                unit = "points" if record.unit == "percent" else record.unit + "s"
                x = record.scale
                allowed = "exactly (same machine)" if exact else f"within {x * limit:.2f} {unit}"
                out.append(f"{method}.{metric}: {x * a:.2f} vs reference {x * b:.2f} "
                           f"(difference {x * (a - b):+.2f} {unit}; must match {allowed})")
    return out


#: A generated docs block: the ``cfer compare`` arguments, the format, the generated text.
BLOCK = re.compile(r"(?P<open><!-- cfer compare (?P<args>[^>]*?) \((?P<fmt>md|tex)\) -->\n)"
                   r"(?P<body>.*?)(?P<close><!-- end cfer compare -->)", re.S)


def doc_files() -> list[Path]:
    """The files whose generated blocks ``--docs`` and ``--update`` cover by default."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def render_block(args: str, fmt: str) -> str:
    """The text ``cfer compare ARGS`` writes to an ``fmt`` file (run from the current folder)."""
    from cfer.experiments.cli import build_parser
    from cfer.experiments.report.compare import render_args

    text = render_args(build_parser().parse_args(["compare", *shlex.split(args)]), fmt)
    return f"```latex\n{text}```\n" if fmt == "tex" else text


def refresh(doc: Path) -> tuple[str, list[str]]:
    """``doc``'s text with every generated block regenerated, and the arguments of the stale ones."""
    text = doc.read_text(encoding="utf-8")
    stale = []
    here = Path.cwd()
    path = doc.resolve()
    os.chdir(ROOT if path.is_relative_to(ROOT) else path.parent)  # where the blocks' paths start
    try:
        def sub(m: re.Match) -> str:
            body = render_block(m["args"], m["fmt"])
            if body != m["body"]:
                stale.append(m["args"])
            return m["open"] + body + m["close"]

        new = BLOCK.sub(sub, text)
    finally:
        os.chdir(here)
    return new, stale


def _read(path: Path) -> dict:
    """A results.json in the current layout (older schema versions upgraded as
    ``cfer compare`` reads them)."""
    from cfer.experiments.run.environment import check_schema
    from cfer.experiments.run.results_store import upgraded

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return upgraded(data, check_schema(data, where=str(path)))
    except (OSError, json.JSONDecodeError, ValueError) as e:
        raise SystemExit(f"check_quickstart: {path}: cannot read it ({e})") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", nargs="?", help="a quickstart run directory (cfer run [--out RUN_DIR])")
    parser.add_argument("--reference", default=str(REFERENCE),
                        help="the committed reference results.json (default: %(default)s)")
    parser.add_argument("--write", action="store_true",
                        help="write RUN_DIR's reduced results as the reference instead of checking")
    parser.add_argument("--tolerance", choices=("auto", "exact", "cross-cpu"), default="auto",
                        help="auto (default): exact on the reference's machine, else the cross-CPU "
                             "tolerances")
    parser.add_argument("--docs", nargs="*", default=None, metavar="FILE.md",
                        help="check that the generated `cfer compare` blocks of these files are "
                             "current (none named: README.md and docs/**/*.md)")
    parser.add_argument("--update", action="store_true",
                        help="regenerate the blocks (of the --docs files, or of all the docs)")
    args = parser.parse_args(argv)
    if args.docs is None and args.update:
        args.docs = []
    if args.docs is not None:
        named = [Path(d) for d in args.docs]
        status = _docs(named or doc_files(), update=args.update, each=bool(named))
        if status or not args.run_dir:
            return status
    elif not args.run_dir:
        parser.error("give RUN_DIR, --docs [FILE.md ...], --update, or RUN_DIR with one of them")
    run = _read(Path(args.run_dir) / "results.json")
    ref_path = Path(args.reference)
    if args.write:
        from cfer.core.atomic import atomic_write_json

        atomic_write_json(ref_path, reduce(run))
        print(f"wrote {ref_path}")
        return 0
    reference = _read(ref_path)
    exact = args.tolerance == "exact" or (args.tolerance == "auto" and same_machine(run, reference))
    found = problems(run, reference, exact=exact)
    how = "exactly (same machine)" if exact else "within the cross-CPU tolerances"
    for line in unchecked(run, reference) if not found else []:
        print(f"check_quickstart: note: {line}")
    for line in found:
        print(f"check_quickstart: {line}", file=sys.stderr)
    if found:
        print(f"check_quickstart: {args.run_dir} does not match {ref_path} {how}", file=sys.stderr)
        return 1
    print(f"check_quickstart: {args.run_dir} matches {ref_path} {how}")
    return 0


def _docs(docs: list[Path], *, update: bool, each: bool) -> int:
    """Check (or ``update``) the generated blocks of ``docs``. A file named on the command line
    (``each``) must hold a block; of the default set, at least one file must."""
    found, status = 0, 0
    for doc in docs:
        new, stale = refresh(doc)
        blocks = len(BLOCK.findall(new))
        found += blocks
        if update:
            if stale:
                from cfer.core.atomic import atomic_write_text

                atomic_write_text(doc, new)
            if blocks:
                print(f"check_quickstart: {doc}: {len(stale)} of {blocks} generated block(s) regenerated")
            continue
        for args in stale:
            print(f"check_quickstart: {doc}: the block of `cfer compare {args}` is not what it "
                  f"outputs now; run python tools/check_quickstart.py --update",
                  file=sys.stderr)
            status = 1
        if each and not blocks:
            print(f"check_quickstart: {doc}: no generated `cfer compare` block", file=sys.stderr)
            status = 1
    if not found:
        print("check_quickstart: no generated `cfer compare` block in " + ", ".join(map(str, docs)),
              file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
