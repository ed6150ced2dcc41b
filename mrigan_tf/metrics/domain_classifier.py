"""
Title: A domain classifier for brain slices (healthy vs tumor)
Description: A small CNN trained on the real dataset's train split; its penultimate layer is
the default feature space for FID/KID, its softmax the classifier for the Inception Score.

## Why not InceptionV3

FID's InceptionV3 was trained on ImageNet photographs; on grey 64-pixel brain slices its
features respond to textures it has never been taught to tell apart, and its weights must be
downloaded, which the offline tests and many clinical machines cannot do. A classifier trained
on the real data itself (as in many medical-GAN papers, and "domain-specific FID") works
offline, in seconds, and its features are about what matters here: anatomy and lesions.

The price: its numbers are comparable only between evaluations that use the *same* classifier
(same real dataset, same seed), never with published FIDs. The report names it, says what it
was trained on, and gives its accuracy on the held-out real test split, so the reader can
judge whether its features mean anything.

## The network

Three strided 3x3 convolutions (16, 32, 64 filters) with LeakyReLU, global average pooling,
a 64-unit ReLU layer ``features`` (the embedding) and a softmax over the classes. Training
is deterministic for a seed: seeded initialisers, a numpy-shuffled order, no dropout.
Classes are weighted by inverse frequency, and slices are randomly flipped left-right (a
lesion can sit in either hemisphere).
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from mrigan_tf.data.contract import PreparedDataset

FEATURE_LAYER = "features"


def build_domain_classifier(image_size: int, num_classes: int, width: int = 16,
                            feature_dim: int = 64, seed: int = 0) -> keras.Model:
    """The CNN (uncompiled): (size, size, 1) slices in [-1, 1] -> class probabilities."""
    def init(k):
        return keras.initializers.GlorotUniform(seed=seed * 101 + k)

    inputs = keras.Input((image_size, image_size, 1), name="slice")
    x = inputs
    for k, filters in enumerate((width, 2 * width, 4 * width)):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", kernel_initializer=init(k),
                                name=f"conv{k + 1}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"act{k + 1}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(feature_dim, activation="relu", kernel_initializer=init(10),
                           name=FEATURE_LAYER)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", kernel_initializer=init(11),
                                 name="probabilities")(x)
    return keras.Model(inputs, outputs, name="domain_classifier")


@dataclasses.dataclass
class DomainClassifier:
    """A trained classifier, its embedding model, and what it was trained on."""

    model: keras.Model
    trained_on: str
    train_slices: int
    steps: int
    test_accuracy: float | None
    seed: int

    def __post_init__(self) -> None:
        self.embedding = keras.Model(self.model.input, self.model.get_layer(FEATURE_LAYER).output,
                                     name="domain_embedding")

    def probabilities(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return np.asarray(self.model.predict(np.asarray(images, np.float32),
                                             batch_size=batch_size, verbose=0), np.float64)

    def features(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return np.asarray(self.embedding.predict(np.asarray(images, np.float32),
                                                 batch_size=batch_size, verbose=0), np.float64)

    def describe(self) -> dict:
        return {"trained_on": self.trained_on, "train_slices": self.train_slices,
                "steps": self.steps, "seed": self.seed, "test_accuracy": self.test_accuracy}


def train_domain_classifier(dataset: PreparedDataset, steps: int = 1000, batch_size: int = 64,
                            seed: int = 0, learning_rate: float = 2e-3,
                            heldout: PreparedDataset | None = None) -> DomainClassifier:
    """Train the classifier on ``dataset.select("train")``; accuracy on ``heldout`` if given
    (default: the dataset's test split, when it has one)."""
    train = dataset.select("train")
    if len(train) < 2 or len(np.unique(train.labels)) < 2:
        raise ValueError("the domain classifier needs a train split with at least two classes; "
                         f"found {len(train)} slices of {len(np.unique(train.labels))} class(es)")
    model = build_domain_classifier(train.image_size, train.num_classes, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", jit_compile=False)
    counts = np.bincount(train.labels, minlength=train.num_classes).astype(np.float64)
    class_weight = np.where(counts > 0, len(train) / (train.num_classes * np.maximum(counts, 1)),
                            0.0).astype(np.float32)
    rng = np.random.default_rng(seed)
    batch_size = min(batch_size, len(train))
    steps_per_epoch = max(1, len(train) // batch_size)
    epochs = max(1, int(np.ceil(steps / steps_per_epoch)))
    # The whole schedule up front (a numpy permutation per epoch, a flip per draw), then one
    # fit() over it: deterministic for the seed, and no per-epoch fit() overhead.
    order = np.concatenate([rng.permutation(len(train))[:steps_per_epoch * batch_size]
                            for _ in range(epochs)]).astype(np.int32)
    flips = rng.random(len(order)) < 0.5
    images = tf.constant(train.images)
    labels = tf.constant(train.labels)
    weights = tf.constant(class_weight)

    def gather(index, flip):
        x = tf.gather(images, index)
        x = tf.where(flip[:, None, None, None], tf.reverse(x, axis=[2]), x)
        y = tf.gather(labels, index)
        return x, y, tf.gather(weights, y)

    schedule = (tf.data.Dataset.from_tensor_slices((order, flips))
                .batch(batch_size).map(gather).prefetch(2))
    model.fit(schedule, epochs=1, shuffle=False, verbose=0)
    if heldout is None and np.any(dataset.split == "test"):
        heldout = dataset.select("test")
    accuracy = None
    if heldout is not None and len(heldout):
        predictions = model.predict(heldout.images, batch_size=256, verbose=0).argmax(axis=1)
        accuracy = float(np.mean(predictions == heldout.labels))
    source = dataset.meta.get("source", "?")
    return DomainClassifier(model=model, trained_on=f"{source} train split",
                            train_slices=len(train), steps=epochs * steps_per_epoch,
                            test_accuracy=accuracy, seed=seed)
