"""Packaging: one top-level package, ``cfer``, whose subpackages are the repository's
top-level folders (``benchmarks/`` -> ``cfer.benchmarks`` and so on).

Why a mapping rather than a ``cfer/`` source tree: the five folders at the top of the
repository are the project's documented layout; ``package_dir`` installs them under
``cfer`` so that nothing with a generic name (``plugins``, ``experiments``) lands in
site-packages, where a user's own folders of that name would shadow it.
"""

from setuptools import find_packages, setup

LAYERS = ("core", "benchmarks", "plugins", "strategies", "experiments")

packages = ["cfer"]
package_dir = {"cfer": "cfer"}
for layer in LAYERS:
    package_dir[f"cfer.{layer}"] = layer
    packages += [f"cfer.{p}" for p in find_packages(include=[layer, f"{layer}.*"])]

setup(packages=packages, package_dir=package_dir)
