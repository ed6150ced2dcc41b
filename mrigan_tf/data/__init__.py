"""Data: the embedded phantom, NIfTI preprocessing, the dataset contract, tf.data pipelines.

Submodules are imported on demand; ``mrigan_tf.data.pipeline`` is the only one that
imports TensorFlow.
"""

from mrigan_tf.data.contract import PreparedDataset, load_dataset, save_dataset

__all__ = ["PreparedDataset", "load_dataset", "save_dataset"]
