"""The expression taxonomy: one table that every reader maps its labels onto.

Basic expressions and the compound expressions of CFEE follow Du, Tao &
Martinez, "Compound facial expressions of emotion", PNAS 111(15), 2014. The
two extra compounds of RAF-CE (happily fearful, happily sad) are included so
that every supported data set maps onto the same names.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

NEUTRAL = "neutral"

#: The six basic expressions, in CFEE's id order (ids 02-07).
BASIC: tuple[str, ...] = ("happy", "sad", "fearful", "angry", "surprised", "disgusted")

#: Compound expression -> its two basic components (Du et al. 2014, Table 1).
COMPONENTS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "happily surprised": ("happy", "surprised"),
        "happily disgusted": ("happy", "disgusted"),
        "sadly fearful": ("sad", "fearful"),
        "sadly angry": ("sad", "angry"),
        "sadly surprised": ("sad", "surprised"),
        "sadly disgusted": ("sad", "disgusted"),
        "fearfully angry": ("fearful", "angry"),
        "fearfully surprised": ("fearful", "surprised"),
        "fearfully disgusted": ("fearful", "disgusted"),
        "angrily surprised": ("angry", "surprised"),
        "angrily disgusted": ("angry", "disgusted"),
        "disgustedly surprised": ("disgusted", "surprised"),
        "appalled": ("disgusted", "angry"),
        "hatred": ("disgusted", "angry"),
        "awed": ("fearful", "surprised"),
        # RAF-CE only (not in CFEE).
        "happily fearful": ("happy", "fearful"),
        "happily sad": ("happy", "sad"),
    }
)

#: The 15 compound expressions of CFEE, in CFEE's id order (ids 08-22).
CFEE_COMPOUND: tuple[str, ...] = tuple(list(COMPONENTS)[:15])

#: Every compound expression known to the toolkit.
COMPOUND: tuple[str, ...] = tuple(COMPONENTS)

#: All class names known to the toolkit (neutral excluded).
ALL_CLASSES: tuple[str, ...] = BASIC + COMPOUND

#: CFEE's two-digit emotion ids: 01 neutral, 02-07 basic, 08-22 compound.
CFEE_IDS: Mapping[int, str] = MappingProxyType(
    {1: NEUTRAL, **{i + 2: name for i, name in enumerate(BASIC)},
     **{i + 8: name for i, name in enumerate(CFEE_COMPOUND)}}
)


def is_basic(name: str) -> bool:
    return name in BASIC


def is_compound(name: str) -> bool:
    return name in COMPONENTS


def components(name: str) -> tuple[str, ...]:
    """Basic components of a class: itself for a basic class, two for a compound."""
    if name in BASIC:
        return (name,)
    if name in COMPONENTS:
        return COMPONENTS[name]
    raise KeyError(f"unknown expression {name!r}; known: {', '.join(ALL_CLASSES)}")


def check_class(name: str, *, where: str = "") -> str:
    """Return ``name`` if it is in the taxonomy, else raise a one-line ValueError."""
    if name == NEUTRAL or name in BASIC or name in COMPONENTS:
        return name
    prefix = f"{where}: " if where else ""
    raise ValueError(f"{prefix}class {name!r} is not in the taxonomy "
                     f"(known: {', '.join(ALL_CLASSES)}, {NEUTRAL})")
