"""What ``cfer run`` shows while it trains: one tqdm bar per run, with the epoch inside it.

Each run gets a bar over its experiences that stays on screen as the run's line when
it is done; while an experience trains, :class:`EpochProgress` (an Avalanche plugin the
run context adds to every strategy built while a bar is open) writes the experience, the
epoch and the epoch's mean loss into the bar's postfix, so that a long basic training
is not a bar sitting at 0. Log lines go through ``tqdm.write`` (``logging_redirect_tqdm``
in the command line) and so never tear a bar.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cfer.plugins.registry import register_plugin

# Observes only (nothing here touches a random generator or the model): phase evaluate, inert.
register_plugin("progress", path="cfer.experiments.run.epoch_progress:EpochProgress", phase="evaluate",
                first_experience="inert", description="experience, epoch and loss on the run's progress bar")


@contextmanager
def run_bar(owner, *, total: int, desc: str, unit: str, enabled: bool) -> Iterator[object]:
    """A tqdm bar, set as ``owner.active_bar`` while it is open (``None`` again after), unless
    it counts whole runs (``unit="run"``: the backends' bar, whose postfix is its own)."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=True, dynamic_ncols=True)
    owner.active_bar = None if bar.disable or unit == "run" else bar
    try:
        yield bar
    finally:
        owner.active_bar = None
        bar.close()


def epoch_plugin(bar):
    """An :class:`~cfer.experiments.run.epoch_progress.EpochProgress` writing into ``bar``
    (Avalanche is imported only there)."""
    from cfer.experiments.run.epoch_progress import EpochProgress

    return EpochProgress(bar)
