"""The one error of the fast data path: what it cannot reproduce exactly.

Raised while a loader is resolved (its datasets, transforms, item structure);
:class:`cfer.plugins.speed.fast_data.FastDataPlugin` catches it and leaves that
loader stock, with a warning: the stock path is always correct, only slower.
"""

from __future__ import annotations


class Unsupported(ValueError):
    """A dataset, transform or loader that the fast path cannot reproduce exactly."""
