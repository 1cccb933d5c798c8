"""Expression data sets as Avalanche class-incremental benchmarks.

Public names are imported lazily (PEP 562) so that ``import benchmarks``
stays cheap; torch and Avalanche load only when a benchmark is built.
"""

from importlib import import_module

_EXPORTS = {
    "FaceDataset": "benchmarks.dataset",
    "concat": "benchmarks.dataset",
    "load_cfee": "benchmarks.cfee",
    "parse_cfee_name": "benchmarks.cfee",
    "compound_benchmark": "benchmarks.scenario",
    "class_orders": "benchmarks.scenario",
    "StreamInfo": "benchmarks.scenario",
    "subject_folds": "benchmarks.splits",
    "load_images": "benchmarks.cache",
    "synthetic": "benchmarks.synthfaces",
    "write_synthetic": "benchmarks.synthfaces",
    "SyntheticConfig": "benchmarks.synthfaces",
    "AU_TABLE": "benchmarks.synthfaces",
    "taxonomy": "benchmarks.taxonomy",
    "load_rafdb": "benchmarks.rafdb",
    "load_rafdb_stream": "benchmarks.rafdb",
    "load_rafce": "benchmarks.rafce",
    "load_rafce_stream": "benchmarks.rafce",
    "load_folder": "benchmarks.folder",
    "parse_folder_spec": "benchmarks.folder",
    "prepare_faces": "benchmarks.prepare",
    "PrepareConfig": "benchmarks.prepare",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'benchmarks' has no attribute {name!r}")
    module = import_module(_EXPORTS[name])
    return module if name == "taxonomy" else getattr(module, name)
