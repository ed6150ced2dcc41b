"""
Title: Feature extractors for FID and KID
Description: Turn a batch of [-1, 1] grey slices into feature vectors, with a record of
which network made them and where its weights came from.

Two extractors:

* ``domain`` (the default, works offline): the penultimate layer (64-d) of the healthy/tumor
  CNN of ``domain_classifier.py``, trained on the real dataset's train split.
* ``inception``: InceptionV3 pool features (2048-d, the "pool3" layer of FID), with ImageNet
  weights read from the local Keras cache (never downloaded; see ``keras_weights.py``).
  The slice is repeated to 3 channels (InceptionV3 wants RGB in [-1, 1], which our slices
  already are) and resized bilinearly to 299 px. These are Keras' ImageNet weights, not the
  TF-slim 2015 graph of the reference FID code, so the values are close to but not equal to
  published FIDs; compare them only with each other.

Every extractor carries ``name`` and ``weights`` (pretrained / random / trained on what), and
the evaluation report prints both: a FID without its feature space is not a number.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from mrigan_tf.metrics.domain_classifier import DomainClassifier
from mrigan_tf.metrics.keras_weights import INCEPTION_V3_NOTOP, require_cached_weights

INCEPTION_SIZE = 299
INCEPTION_MIN_SIZE = 75   # keras.applications' minimum input for InceptionV3 without its top


@dataclasses.dataclass
class FeatureExtractor:
    """A named function from (N, H, W, 1) slices in [-1, 1] to (N, D) float64 features."""

    name: str
    weights: str
    dim: int
    embed: Callable[[np.ndarray], np.ndarray]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[-1] != 1:
            raise ValueError(f"expected grey slices of shape (N, H, W, 1), got {images.shape}")
        if len(images) == 0:
            return np.zeros((0, self.dim))
        return np.asarray(self.embed(images), dtype=np.float64)

    def describe(self) -> dict:
        return {"name": self.name, "weights": self.weights, "dim": self.dim}


def domain_extractor(classifier: DomainClassifier) -> FeatureExtractor:
    """Features from the penultimate layer of a trained ``DomainClassifier``."""
    accuracy = ("" if classifier.test_accuracy is None
                else f"; accuracy on the real test split {classifier.test_accuracy:.3f}")
    if classifier.test_balanced_accuracy is not None:
        accuracy += f" (balanced {classifier.test_balanced_accuracy:.3f})"
    weights = (f"trained here on the {classifier.trained_on} ({classifier.train_slices} slices, "
               f"{classifier.steps} steps, seed {classifier.seed}){accuracy}")
    return FeatureExtractor(name="domain CNN (healthy/tumor classifier, penultimate layer)",
                            weights=weights, dim=int(classifier.embedding.output.shape[-1]),
                            embed=classifier.features)


def build_inception(weights: str | None = "imagenet",
                    input_size: int = INCEPTION_SIZE) -> tuple[keras.Model, str]:
    """InceptionV3 without its top, average-pooled (2048-d); and a description of its weights.

    ``weights="imagenet"`` reads the local Keras cache only and raises ``WeightsUnavailable``
    when the file is not there; ``None`` gives a randomly initialised network (for tests).
    """
    if input_size < INCEPTION_MIN_SIZE:
        raise ValueError(f"InceptionV3 needs inputs of at least {INCEPTION_MIN_SIZE} px, "
                         f"got {input_size}")
    if weights == "imagenet":
        path = require_cached_weights(INCEPTION_V3_NOTOP, "InceptionV3")
        weights_arg, described = str(path), f"ImageNet (Keras cache: {path})"
    elif weights is None:
        weights_arg, described = None, "random initialisation (weights=None): for tests only"
    else:
        weights_arg, described = str(weights), f"from file {weights}"
    model = keras.applications.InceptionV3(include_top=False, weights=weights_arg,
                                           input_shape=(input_size, input_size, 3),
                                           pooling="avg")
    return model, described


def inception_extractor(weights: str | None = "imagenet", input_size: int = INCEPTION_SIZE,
                        batch_size: int = 64) -> FeatureExtractor:
    """InceptionV3 pool features of slices repeated to RGB and resized to ``input_size``."""
    model, described = build_inception(weights, input_size)

    @tf.function(jit_compile=False)
    def _embed_batch(batch):
        rgb = tf.repeat(batch, 3, axis=-1)
        rgb = tf.image.resize(rgb, (input_size, input_size), method="bilinear")
        return model(tf.clip_by_value(rgb, -1.0, 1.0), training=False)

    def embed(images: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            # Pad the last batch to the full size: one traced graph instead of two.
            padded = np.concatenate([batch, np.repeat(batch[-1:], batch_size - len(batch), 0)])
            out.append(_embed_batch(tf.constant(padded)).numpy()[:len(batch)])
        return np.concatenate(out)

    return FeatureExtractor(name=f"InceptionV3 pool features (2048-d, input {input_size} px)",
                            weights=described, dim=2048, embed=embed)
