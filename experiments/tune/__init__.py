"""``cfer tune``: each method at its own validated operating point (docs/tuning.md)."""
