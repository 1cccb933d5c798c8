"""Expression data sets as Avalanche class-incremental benchmarks.

- :mod:`~cfer.benchmarks.readers`: readers of CFEE, RAF-DB, RAF-CE and class-per-folder
  trees, each giving a :class:`~cfer.benchmarks.dataset.FaceDataset`;
- :mod:`~cfer.benchmarks.synthetic_faces`: the built-in synthetic faces (CFEE layout);
- :mod:`~cfer.benchmarks.taxonomy`, :mod:`~cfer.benchmarks.dataset`,
  :mod:`~cfer.benchmarks.splits`: class names, the data set record, subject folds;
- :mod:`~cfer.benchmarks.cache`: decoded images, cached on disk;
- :mod:`~cfer.benchmarks.transforms`, :mod:`~cfer.benchmarks.scenario`: augmentation and
  the Avalanche benchmark (:func:`compound_benchmark`);
- :mod:`~cfer.benchmarks.prepare`: face crops of a raw data set (``cfer prepare``).

Importing this package stays cheap (no torch, no Avalanche): the names below are imported
from their modules when first used (:mod:`cfer.core.lazy`), and those modules import
torch and Avalanche only inside the functions that build a benchmark.
"""

from cfer.core.lazy import lazy_root

#: Public name -> the module (below ``cfer.benchmarks``) that defines it.
_MODULES = {
    'AU_TABLE':           "cfer.benchmarks.synthetic_faces.action_units",
    'FaceDataset':        "cfer.benchmarks.dataset",
    'concat':             "cfer.benchmarks.dataset",
    'PrepareConfig':      "cfer.benchmarks.prepare",
    'prepare_faces':      "cfer.benchmarks.prepare",
    'StreamInfo':         "cfer.benchmarks.scenario",
    'class_orders':       "cfer.benchmarks.scenario",
    'compound_benchmark': "cfer.benchmarks.scenario",
    'SyntheticConfig':    "cfer.benchmarks.synthetic_faces.config",
    'synthetic':          "cfer.benchmarks.synthetic_faces.writer",
    'write_synthetic':    "cfer.benchmarks.synthetic_faces.writer",
    'load_cfee':          "cfer.benchmarks.readers.cfee",
    'parse_cfee_name':    "cfer.benchmarks.readers.cfee",
    'load_folder':        "cfer.benchmarks.readers.folder",
    'parse_folder_spec':  "cfer.benchmarks.readers.folder",
    'load_images':        "cfer.benchmarks.cache",
    'load_rafce':         "cfer.benchmarks.readers.rafce",
    'load_rafce_stream':  "cfer.benchmarks.readers.rafce",
    'load_rafdb':         "cfer.benchmarks.readers.rafdb",
    'load_rafdb_stream':  "cfer.benchmarks.readers.rafdb",
    'subject_folds':      "cfer.benchmarks.splits",
    'taxonomy':           "cfer.benchmarks.taxonomy",
}
__all__ = sorted(_MODULES)
__getattr__, __dir__ = lazy_root(__name__, _MODULES)
