"""A run directory's results files: ``results.json`` and ``metrics.csv``.

Reading (one-line errors naming the file) and atomic writing, the phase a results file
belongs to, how many runs it holds, and the plan-order bookkeeping that makes a resumed
run write the same file as an uninterrupted one. No torch: reports read results through
here (:func:`read_results`, :func:`phase_of`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, get_args, get_type_hints

from cfer.core.atomic import atomic_write_json, atomic_write_text
from cfer.experiments.config.sections import ExperimentConfig
from cfer.experiments.run import environment as env

RESULTS = "results.json"
#: The values of ``config.phase`` (the phase a results.json was written by).
PHASES: tuple[str, ...] = get_args(get_type_hints(ExperimentConfig)["phase"])


def phase_of(results: dict) -> str:
    """The phase a results dict was written by: ``config.phase`` ("continual" for files
    written before the phase was recorded)."""
    config = results.get("config")
    phase = (config.get("phase") if isinstance(config, dict) else None) or "continual"
    if phase not in PHASES:
        raise ValueError(f"config.phase: unknown phase {phase!r} (known: {', '.join(PHASES)})")
    return phase


def saved_count(results: dict) -> int:
    """How many runs (few-shot steps for ``phase: fewshot``) a results dict holds."""
    if not results:
        return 0
    if phase_of(results) == "fewshot":
        return len((results.get("fewshot") or {}).get("records") or [])
    return sum(len(b.get("runs") or []) for b in (results.get("methods") or {}).values())


def read_results(run_dir: str | Path) -> dict:
    """results.json of ``run_dir`` as a dict; a one-line FileNotFoundError / ValueError
    naming the file otherwise."""
    path = Path(run_dir) / RESULTS
    if not path.is_file():
        where = "no such directory" if not Path(run_dir).is_dir() else "no results.json in it"
        raise FileNotFoundError(f"{path}: not found ({where}; is {run_dir} a `cfer run` output folder?)")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    if not isinstance(results, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level")
    return upgraded(results, env.check_schema(results, where=str(path)))


#: Summary keys renamed in schema version 3: new-class accuracy is new-class recall, and the
#: unrestricted forgetting is forgetting_all (``forgetting`` counts learnt experiences only).
RENAMED_IN_3 = {"new_class_accuracy": "new_class_recall", "forgetting": "forgetting_all"}


def upgraded(results: dict, version: int) -> dict:
    """``results`` of schema ``version`` in the current layout: before version 3, each
    method's summary gets the keys of :data:`RENAMED_IN_3` under their new names, and the
    metrics it lacks (forgetting over learnt experiences, not learnt, new-class F1) computed
    from the runs (new-class F1 needs per-step values those files lack: n/a)."""
    if version >= 3:
        return results
    from cfer.core.metrics import summarize_runs

    for block in (results.get("methods") or {}).values():
        summary = block.get("summary") if isinstance(block, dict) else None
        if not isinstance(summary, dict):
            continue  # the report's check computes it, or names what is wrong
        if not any(new in summary for new in RENAMED_IN_3.values()):  # not already in the new layout
            for old, new in RENAMED_IN_3.items():
                if old in summary:
                    summary[new] = summary.pop(old)
        try:
            fresh = summarize_runs(block.get("runs") or [])
        except (ValueError, TypeError):
            continue  # the report's check names the bad run
        for key, stat in fresh.items():
            summary.setdefault(key, stat)
    return results


def default_run_dir(cfg: ExperimentConfig) -> Path:
    return Path(cfg.output.dir) if cfg.output.dir else Path("runs") / cfg.name


class ResultsStore:
    """The results files of one run directory, as a phase reads and writes them."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)

    @property
    def path(self) -> Path:
        return self.run_dir / RESULTS

    def load(self) -> dict:
        """results.json of the run directory ({} when there is none yet)."""
        path = self.path
        if not path.exists():
            return {}
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None

    def write(self, results: dict, metrics_csv: str) -> None:
        """results.json and metrics.csv, each written atomically."""
        atomic_write_json(self.path, results)
        atomic_write_text(self.run_dir / "metrics.csv", metrics_csv)


# --------------------------------------------------------------------------- resume bookkeeping

class Spec(Protocol):
    """A planned run of a phase: it knows the records it produced."""

    def matches(self, rec: dict) -> bool: ...


def is_done(spec: Spec, records: Iterable[dict]) -> bool:
    return any(spec.matches(r) for r in records)


def planned(records: Iterable[dict], specs: Sequence[Spec]) -> list[dict]:
    """The records of a resumed run that some planned spec produced (others are dropped)."""
    return [r for r in records if any(s.matches(r) for s in specs)]


def add_in_plan_order(records: list[dict], rec: dict, specs: Sequence[Spec]) -> None:
    """Append ``rec`` and keep ``records`` in the order of ``specs``, so that resumed and
    uninterrupted runs write the same file."""
    records.append(rec)
    records.sort(key=lambda r: next(i for i, s in enumerate(specs) if s.matches(r)))
