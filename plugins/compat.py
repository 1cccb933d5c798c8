"""Every workaround for Avalanche 0.6.0 (on torch 2.14, numpy 2.x) in one place.

Each function or class here says what breaks in stock Avalanche and why the
workaround is needed, so an Avalanche upgrade is checked against this one module:
delete what the new release fixes. Nothing else in the project patches, mocks
or reads private attributes of Avalanche objects.
"""

from __future__ import annotations
