"""Subject-independent folds and seeded class orders."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Subject-disjoint folds (paper: 10 on CFEE; docs/design.md, protocol); written once here for the
#: benchmark API and the config (``benchmark.n_folds``).
N_FOLDS = 10
#: Share of a data set's official train split held out as validation, for data sets with an
#: official train/test split and no validation one (``benchmark.valid_fraction``); toolkit's own.
VALID_FRACTION = 0.1


def subject_folds(subjects: Sequence, *, n_folds: int, fold: int, validation: bool = True
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split entries by subject: fold ``fold`` is test, the next fold validation.

    Subjects are sorted and cut into ``n_folds`` contiguous folds of (nearly)
    equal numbers of subjects; no subject is in two of train/valid/test.
    Returns index arrays (train, valid, test); valid is empty when
    ``validation`` is False (its subjects then train).
    """
    subjects = np.asarray(subjects)
    uniq = np.unique(subjects)
    min_folds = 3 if validation else 2
    if n_folds < min_folds:
        raise ValueError(f"n_folds={n_folds}: need at least {min_folds} folds")
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold={fold}: must be in 0..{n_folds - 1}")
    if len(uniq) < n_folds:
        raise ValueError(f"{len(uniq)} subjects cannot make {n_folds} subject-disjoint folds")
    groups = np.array_split(uniq, n_folds)
    test_s = groups[fold]
    valid_s = groups[(fold + 1) % n_folds] if validation else uniq[:0]
    test = np.flatnonzero(np.isin(subjects, test_s))
    valid = np.flatnonzero(np.isin(subjects, valid_s))
    train = np.flatnonzero(~np.isin(subjects, np.concatenate([test_s, valid_s])))
    return train, valid, test


def stratified_holdout(labels: Sequence[int], *, fraction: float, seed: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Seeded per-class holdout of ``fraction`` of the entries (at least one per class
    when a class has two or more). Returns (kept, held_out) index arrays."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = int(round(fraction * len(idx)))
        k = max(k, 1) if len(idx) >= 2 else 0
        held.append(rng.permutation(idx)[:k])
    held_idx = np.sort(np.concatenate(held)) if held else np.array([], dtype=np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), held_idx)
    return kept, held_idx


def seeded_order(classes: Sequence[str], seed: int) -> list[str]:
    """A reproducible shuffle of ``classes``: our counterpart of the reference code's shuffled
    class lists (``random.shuffle``, src/data/process.py:103-117), which are not shipped, so
    they cannot be reproduced; pass them as ``protocol.class_orders`` if you have them."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC0FFEE]))
    return [classes[i] for i in rng.permutation(len(classes))]
