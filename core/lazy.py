"""Package roots that import their modules when a name is first used (PEP 562).

Why: a package root that imports its modules makes every import of any module below it
pay for all of them; the ``cfer.plugins`` root imported torch and Avalanche (6 s on 2 CPU
cores), so a config that only reads :class:`cfer.plugins.speed.config.FastDataConfig`
had to be kept elsewhere. A root made with :func:`lazy_root` names its public names and
the module defining each; a name is imported when it is first read
(``from cfer.plugins import BasicDistillationPlugin`` or
``cfer.plugins.BasicDistillationPlugin``), then kept on the package.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module


def lazy_root(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list]]:
    """``(__getattr__, __dir__)`` for the root module of ``package``. ``names`` maps each
    public name to the module that defines it; a name that is its module's last part (such
    as ``taxonomy`` -> ``cfer.benchmarks.taxonomy``) stands for the module itself."""

    def __getattr__(name: str):
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        loaded = import_module(module)
        value = loaded if module == f"{package}.{name}" else getattr(loaded, name)
        setattr(sys.modules[package], name, value)  # read once; later reads find it
        return value

    def __dir__() -> list:
        return sorted({*vars(sys.modules[package]), *names})

    return __getattr__, __dir__
