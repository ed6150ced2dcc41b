"""tf.data pipelines: from a dataset directory to batches for training.

The arrays of a prepared dataset fit in memory at the sizes we train on (10,000 slices at
64 px are 330 MB), so the pipeline slices in-memory tensors: no Python runs per batch,
``cache`` keeps the decoded tensors, ``prefetch`` overlaps the next batch with the current
training step.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from mrigan_tf.data.contract import PreparedDataset, load_dataset
from mrigan_tf.data.layout import condition_map
from mrigan_tf.errors import DataError

OUTPUTS = ("joint", "image", "segmentation", "layout")


def make_dataset(data: str | os.PathLike | PreparedDataset, split: str | None = "train",
                 batch_size: int = 64, output: str = "joint", shuffle: bool = True,
                 cache: bool = True, seed: int | None = 0, drop_remainder: bool = True,
                 repeat: bool = False) -> tf.data.Dataset:
    """Batches of one split of a dataset.

    ``output`` picks what each element is:

    * ``"joint"``: ``(concat([image, 2*mask-1], -1), label)``, shape (B, H, W, 2): the
      conditional GAN's input, image and mask both in [-1, 1];
    * ``"image"``: ``(image, label)``, shape (B, H, W, 1): for the unconditional GANs;
    * ``"segmentation"``: ``(image, mask)``, mask float32 in {0, 1}: for the U-Net;
    * ``"layout"``: ``(image, condition map)``, the layout and the class packed into one int32
      per pixel (``mrigan_tf.data.layout.condition_map``): for SPADE.

    ``drop_remainder`` keeps every batch the same shape (XLA compiles once).
    ``split=None`` uses every slice.
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    source = data if isinstance(data, PreparedDataset) else load_dataset(data)
    where = None if isinstance(data, PreparedDataset) else data
    subset = source.select(split) if split is not None else source
    n = len(subset)
    if n == 0:
        raise DataError(where, f"split {split!r} holds no slices")
    if drop_remainder and n < batch_size:
        raise DataError(where, f"split {split!r} holds {n} slices, fewer than the batch size "
                        f"{batch_size}; lower --batch-size or build a larger dataset")

    if output == "layout" and subset.layout is None:
        raise DataError(where, "this dataset has no layouts (the `layout` array), which a "
                        "layout-conditioned model trains on; make it again with "
                        "`mrigan-tf phantom` or `mrigan-tf prepare` of this version")
    if output == "joint":
        tensors = (subset.joint().astype(np.float32), subset.labels)
    elif output == "image":
        tensors = (subset.images, subset.labels)
    elif output == "layout":
        tensors = (subset.images, condition_map(subset.layout, subset.labels,
                                                len(subset.layout_classes)))
    else:
        tensors = (subset.images, subset.masks.astype(np.float32))
    ds = tf.data.Dataset.from_tensor_slices(tensors)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)
