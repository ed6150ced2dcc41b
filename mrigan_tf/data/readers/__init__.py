"""Readers of real brain-MRI datasets, one module per source.

Each module holds a reader class (its options are the class's fields) with two methods,
``discover`` and ``read_subject`` (see ``mrigan_tf.data.readers.common``); the driver that
runs them and writes the dataset is ``mrigan_tf.data.prepare.prepare_dataset``. The modules are
imported on demand, so listing the sources costs nothing.
"""

from __future__ import annotations

import dataclasses
import importlib

from mrigan_tf.errors import MriganError

READERS = {
    "brats": ("mrigan_tf.data.readers.brats", "BratsReader"),
    "oasis": ("mrigan_tf.data.readers.oasis", "OasisReader"),
    "ppmi": ("mrigan_tf.data.readers.ppmi", "PpmiReader"),
    "bids": ("mrigan_tf.data.readers.bids", "BidsReader"),
    "folder": ("mrigan_tf.data.readers.folder", "FolderReader"),
}
SOURCES = tuple(READERS)


def get_reader(source: str, **options):
    """The reader of ``source`` configured with ``options`` (clear error on a typo)."""
    if source not in READERS:
        raise MriganError(f"unknown source {source!r}; choose from {', '.join(SOURCES)}")
    module, name = READERS[source]
    cls = getattr(importlib.import_module(module), name)
    known = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise MriganError(f"{source} has no option {', '.join(unknown)}; its options are "
                          f"{', '.join(sorted(known)) or 'none'}")
    return cls(**{k: v for k, v in options.items() if v is not None})


__all__ = ["READERS", "SOURCES", "get_reader"]
