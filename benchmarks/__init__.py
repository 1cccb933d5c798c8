"""Expression data sets as Avalanche class-incremental benchmarks.

Public names are imported lazily (PEP 562) so that ``import benchmarks``
stays cheap; torch and Avalanche load only when a benchmark is built.
"""

from importlib import import_module

_EXPORTS = {
    "FaceDataset": "cfer.benchmarks.dataset",
    "concat": "cfer.benchmarks.dataset",
    "load_cfee": "cfer.benchmarks.cfee",
    "parse_cfee_name": "cfer.benchmarks.cfee",
    "compound_benchmark": "cfer.benchmarks.scenario",
    "class_orders": "cfer.benchmarks.scenario",
    "StreamInfo": "cfer.benchmarks.scenario",
    "subject_folds": "cfer.benchmarks.splits",
    "load_images": "cfer.benchmarks.cache",
    "synthetic": "cfer.benchmarks.synthfaces",
    "write_synthetic": "cfer.benchmarks.synthfaces",
    "SyntheticConfig": "cfer.benchmarks.synthfaces",
    "AU_TABLE": "cfer.benchmarks.synthfaces",
    "taxonomy": "cfer.benchmarks.taxonomy",
    "load_rafdb": "cfer.benchmarks.rafdb",
    "load_rafdb_stream": "cfer.benchmarks.rafdb",
    "load_rafce": "cfer.benchmarks.rafce",
    "load_rafce_stream": "cfer.benchmarks.rafce",
    "load_folder": "cfer.benchmarks.folder",
    "parse_folder_spec": "cfer.benchmarks.folder",
    "prepare_faces": "cfer.benchmarks.prepare",
    "PrepareConfig": "cfer.benchmarks.prepare",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cfer.benchmarks' has no attribute {name!r}")
    module = import_module(_EXPORTS[name])
    return module if name == "taxonomy" else getattr(module, name)
