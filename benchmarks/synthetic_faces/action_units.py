"""The facial action units (AUs) of every expression the synthetic faces show.

Each basic and compound expression is a set of primary AUs plus optional secondary AUs
(Du, Tao & Martinez 2014, Table 1, in :data:`AU_TABLE`). A compound shares some AUs of its
basic components but is not their union, and some classes have identical primaries
(``tools/synthetic_au_separability.py`` measures it; docs/datasets.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cfer.benchmarks.taxonomy import NEUTRAL

#: FACS action units used by the renderer (number -> name).
AU_NAMES: Mapping[int, str] = MappingProxyType({
    1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser",
    6: "cheek raiser", 7: "lid tightener", 9: "nose wrinkler", 10: "upper lip raiser",
    11: "nasolabial deepener", 12: "lip corner puller", 15: "lip corner depressor",
    17: "chin raiser", 20: "lip stretcher", 23: "lip tightener", 24: "lip pressor",
    25: "lips part", 26: "jaw drop",
})


@dataclass(frozen=True)
class AUPattern:
    """The AUs of one expression: ``primary`` are active in more than 70% of
    CFEE's subjects, ``secondary`` in some subjects only."""

    primary: tuple[int, ...]
    secondary: tuple[int, ...] = ()

    @property
    def all(self) -> frozenset[int]:
        return frozenset(self.primary) | frozenset(self.secondary)


#: Prototypical AUs per expression: Du, Tao & Martinez, "Compound facial
#: expressions of emotion", PNAS 111(15) E1454-E1462, 2014, Table 1 (primary AUs,
#: then the bracketed inter-subject ones). The table's per-AU percentages are
#: replaced by one probability, ``SyntheticConfig.secondary_prob``.
AU_TABLE: Mapping[str, AUPattern] = MappingProxyType({
    NEUTRAL: AUPattern(()),
    "happy": AUPattern((12, 25), (6,)),
    "sad": AUPattern((4, 15), (1, 6, 11, 17)),
    "fearful": AUPattern((1, 4, 20, 25), (2, 5, 26)),
    "angry": AUPattern((4, 7, 24), (10, 17, 23)),
    "surprised": AUPattern((1, 2, 25, 26), (5,)),
    "disgusted": AUPattern((9, 10, 17), (4, 24)),
    "happily surprised": AUPattern((1, 2, 12, 25), (5, 26)),
    "happily disgusted": AUPattern((10, 12, 25), (4, 6, 9)),
    "sadly fearful": AUPattern((1, 4, 20, 25), (2, 5, 6, 15)),
    "sadly angry": AUPattern((4, 15), (6, 7, 11, 17)),
    "sadly surprised": AUPattern((1, 4, 25, 26), (2, 6)),
    "sadly disgusted": AUPattern((4, 10), (1, 6, 9, 11, 15, 17, 25)),
    "fearfully angry": AUPattern((4, 20, 25), (5, 7, 10, 11)),
    "fearfully surprised": AUPattern((1, 2, 5, 20, 25), (4, 10, 11, 26)),
    "fearfully disgusted": AUPattern((1, 4, 10, 20, 25), (2, 5, 6, 9, 15)),
    "angrily surprised": AUPattern((4, 25, 26), (5, 7, 10)),
    "angrily disgusted": AUPattern((4, 10, 17), (7, 9, 24)),
    "disgustedly surprised": AUPattern((1, 2, 5, 10), (9, 17, 24, 26)),
    "appalled": AUPattern((4, 10), (6, 9, 17, 24)),
    "hatred": AUPattern((4, 10), (7, 9, 17, 24)),
    "awed": AUPattern((1, 2, 5, 25), (4, 20, 26)),
})
