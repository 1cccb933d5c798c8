"""The one error of the fast data path: what it cannot reproduce exactly.

Raised while a loader is resolved (its datasets, transforms, item structure);
:class:`cfer.plugins.speed.fast_data.FastDataPlugin` catches it and leaves that
loader stock: the stock path is always correct, only slower. A transform it has no
device version of (:class:`UnsupportedTransform`) is the user's choice, so it is a
warning saying what to do; anything else (the item structure a strategy builds, such
as iCaRL's tensor memory) is nothing a config can change, so a debug log line.
"""

from __future__ import annotations


class Unsupported(ValueError):
    """A dataset, transform or loader that the fast path cannot reproduce exactly."""


class UnsupportedTransform(Unsupported):
    """A transform with no batched device version (the user can swap it, or turn the path off)."""
