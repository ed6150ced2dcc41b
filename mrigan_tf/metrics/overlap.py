"""
Title: Dice and IoU of binary masks, per image (numpy, for evaluation)
Description: Overlap between a reference mask and a predicted (or generated) mask, one score
per image, with a stated convention for empty masks.

    Dice = 2 |Y ^ P| / (|Y| + |P|)          IoU = |Y ^ P| / (|Y| + |P| - |Y ^ P|)

These are the evaluation versions: numpy arrays in, one score per image out, so that a report
can give a distribution (mean, median, per class) rather than one pooled number. The Keras
metric classes ``DiceCoefficient`` / ``IoU`` in ``mrigan_tf.models.unet`` pool the counts over
an epoch for training-time monitoring; the two are deliberately separate.

## Empty masks

A healthy slice has an empty reference mask. If the prediction is empty too, the answer is
perfect and scores 1 (0/0 is defined as 1); any predicted pixel on it scores 0.
"""

from __future__ import annotations

import numpy as np


def _binary_per_image(masks: np.ndarray, threshold: float, name: str) -> np.ndarray:
    arr = np.asarray(masks)
    if arr.ndim < 2:
        raise ValueError(f"{name} must be (N, H, W[, 1]) masks, got shape {arr.shape}")
    if arr.ndim == 2:
        arr = arr[None]
    return (arr > threshold).reshape(len(arr), -1)


def _counts(reference: np.ndarray, prediction: np.ndarray, threshold: float):
    y = _binary_per_image(reference, threshold, "reference")
    p = _binary_per_image(prediction, threshold, "prediction")
    if y.shape != p.shape:
        raise ValueError(f"reference and prediction shapes differ: {np.shape(reference)} "
                         f"vs {np.shape(prediction)}")
    inter = np.sum(y & p, axis=1).astype(np.float64)
    return inter, y.sum(axis=1).astype(np.float64), p.sum(axis=1).astype(np.float64)


def dice_per_image(reference: np.ndarray, prediction: np.ndarray,
                   threshold: float = 0.5) -> np.ndarray:
    """Dice of each image's masks (binarised with ``> threshold``), shape (N,); 1 if both empty."""
    inter, y, p = _counts(reference, prediction, threshold)
    total = y + p
    return np.where(total > 0, 2.0 * inter / np.where(total > 0, total, 1.0), 1.0)


def iou_per_image(reference: np.ndarray, prediction: np.ndarray,
                  threshold: float = 0.5) -> np.ndarray:
    """IoU (Jaccard) of each image's masks, shape (N,); 1 if both empty."""
    inter, y, p = _counts(reference, prediction, threshold)
    union = y + p - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 1.0)
