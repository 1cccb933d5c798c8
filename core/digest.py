"""The one short digest cfer names settings by: 16 hex digits of the SHA-256 of a value as
canonical JSON (sorted keys). results.json's config digests, the basic-phase and offline model
digests (experiments/run/environment.py and its callers) and the best-args operating-point
digest (experiments/config/best_args.py) are all this function, so equal settings give equal
digests wherever they are computed."""

from __future__ import annotations

import hashlib
import json


def digest(obj) -> str:
    """16 hex digits of the SHA-256 of ``obj`` as canonical JSON (sorted keys; a value JSON
    cannot hold is written as its ``str``)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
