"""Readers of expression data sets, each giving a :class:`~cfer.benchmarks.dataset.FaceDataset`.

- :mod:`~cfer.benchmarks.readers.cfee`: CFEE's folder layout (also the synthetic faces');
- :mod:`~cfer.benchmarks.readers.rafdb`: RAF-DB basic and compound;
- :mod:`~cfer.benchmarks.readers.rafce`: RAF-CE, its basic classes from RAF-DB;
- :mod:`~cfer.benchmarks.readers.folder`: any class-per-folder tree with a YAML that says
  which folders are basic and which compound.
"""
