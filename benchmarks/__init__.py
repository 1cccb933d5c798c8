"""Expression data sets as Avalanche class-incremental benchmarks.

Importing this package stays cheap (no torch, no Avalanche): the modules
below import those only inside the functions that build a benchmark.
"""

from cfer.benchmarks import taxonomy
from cfer.benchmarks.cache import load_images
from cfer.benchmarks.dataset import FaceDataset, concat
from cfer.benchmarks.prepare import PrepareConfig, prepare_faces
from cfer.benchmarks.readers.cfee import load_cfee, parse_cfee_name
from cfer.benchmarks.readers.folder import load_folder, parse_folder_spec
from cfer.benchmarks.readers.rafce import load_rafce, load_rafce_stream
from cfer.benchmarks.readers.rafdb import load_rafdb, load_rafdb_stream
from cfer.benchmarks.scenario import StreamInfo, class_orders, compound_benchmark
from cfer.benchmarks.splits import subject_folds
from cfer.benchmarks.synthetic_faces.action_units import AU_TABLE
from cfer.benchmarks.synthetic_faces.config import SyntheticConfig
from cfer.benchmarks.synthetic_faces.writer import synthetic, write_synthetic

__all__ = [
    "AU_TABLE", "FaceDataset", "PrepareConfig", "StreamInfo", "SyntheticConfig", "class_orders",
    "compound_benchmark", "concat", "load_cfee", "load_folder", "load_images", "load_rafce",
    "load_rafce_stream", "load_rafdb", "load_rafdb_stream", "parse_cfee_name", "parse_folder_spec",
    "prepare_faces", "subject_folds", "synthetic", "taxonomy", "write_synthetic",
]
