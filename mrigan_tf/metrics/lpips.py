"""
Title: LPIPS-VGG (unweighted): a perceptual distance between slices
Description: Compare two images through the activations of an ImageNet VGG16, as the LPIPS
metric does, but without LPIPS' learned per-channel weights.

## The equation

For VGG16 activations at the layers LPIPS uses (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3,
which Keras names block{1..5}_conv{2,2,3,3,3}; their ReLU is built in), unit-normalise each
spatial position's channel vector, then

    d(x, y) = sum_l  mean_{h,w}  sum_c ( f_l(x)_{hwc} - f_l(y)_{hwc} )^2

Zhang et al. (2018) multiply each channel's squared difference by a learned weight w_c
("lin" layers, fitted to human judgements); those weights are not part of Keras and we do
not fetch them, so every w_c = 1 here (the paper's "baseline" variant). The report calls
this "LPIPS-VGG (unweighted)": useful for comparing diversity between two sets, not equal to
published LPIPS values.

## Weights

Only with the ImageNet VGG16 weights does the distance mean anything perceptually. They are
read from the local Keras cache (``keras_weights.py``) and never downloaded; when they are
missing, ``load_lpips`` returns ``None`` and the reason, and the report says "unavailable".
A network with random weights (``weights=None``) exists for tests of the plumbing only.

## Input

Grey [-1, 1] slices become RGB in [0, 255] with VGG's Caffe preprocessing (BGR, mean
subtracted). Slices below 32 px are upsampled to 32 (VGG16's minimum input).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from mrigan_tf.metrics.keras_weights import VGG16_NOTOP, WeightsUnavailable, require_cached_weights
from mrigan_tf.metrics.ssim import random_pairs

NAME = "LPIPS-VGG (unweighted)"
LPIPS_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
VGG_MIN_SIZE = 32
_EPS = 1e-10


class LpipsVGG:
    """Unweighted LPIPS distance on VGG16 features (see the module docstring)."""

    def __init__(self, weights: str | None = "imagenet", min_size: int = VGG_MIN_SIZE):
        if weights == "imagenet":
            path = require_cached_weights(VGG16_NOTOP, "VGG16")
            weights_arg, self.weights = str(path), f"ImageNet (Keras cache: {path})"
        elif weights is None:
            weights_arg, self.weights = None, "random initialisation (weights=None): tests only"
        else:
            weights_arg, self.weights = str(weights), f"from file {weights}"
        vgg = keras.applications.VGG16(include_top=False, weights=weights_arg,
                                       input_shape=(None, None, 3))
        self.trunk = keras.Model(vgg.input, [vgg.get_layer(n).output for n in LPIPS_LAYERS],
                                 name="lpips_vgg16")
        self.min_size = min_size
        self.name = NAME

    def _features(self, images: tf.Tensor) -> list[tf.Tensor]:
        size = max(int(images.shape[1]), self.min_size)
        x = tf.image.resize(images, (size, size)) if size != images.shape[1] else images
        rgb = tf.repeat((tf.clip_by_value(x, -1.0, 1.0) + 1.0) * 127.5, 3, axis=-1)
        feats = self.trunk(keras.applications.vgg16.preprocess_input(rgb), training=False)
        return [f / tf.sqrt(tf.reduce_sum(f * f, axis=-1, keepdims=True) + _EPS) for f in feats]

    def distance(self, a: np.ndarray, b: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """LPIPS-VGG (unweighted) between ``a[i]`` and ``b[i]``, (N, H, W, 1) in [-1, 1]; (N,)."""
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        if a.shape != b.shape or a.ndim != 4 or a.shape[-1] != 1:
            raise ValueError(f"expected two batches of grey slices of one shape (N, H, W, 1), "
                             f"got {a.shape} and {b.shape}")
        out = []
        for s in range(0, len(a), batch_size):
            fa = self._features(tf.constant(a[s:s + batch_size]))
            fb = self._features(tf.constant(b[s:s + batch_size]))
            d = sum(tf.reduce_mean(tf.reduce_sum((x - y) ** 2, axis=-1), axis=(1, 2))
                    for x, y in zip(fa, fb))
            out.append(d.numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def pairwise_diversity(self, images: np.ndarray, max_pairs: int = 200, seed: int = 0) -> dict:
        """Mean LPIPS over random pairs of different slices: the higher, the more diverse."""
        i, j = random_pairs(len(images), max_pairs, seed)
        if len(i) == 0:
            return {"mean": None, "std": None, "pairs": 0}
        values = self.distance(np.asarray(images)[i], np.asarray(images)[j])
        return {"mean": float(values.mean()), "std": float(values.std()), "pairs": int(len(values))}


def load_lpips(weights: str | None = "imagenet") -> tuple[LpipsVGG | None, str | None]:
    """(the metric, None), or (None, why it is unavailable) when the weights are not cached."""
    try:
        return LpipsVGG(weights), None
    except WeightsUnavailable as exc:
        return None, str(exc)
