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


def overlap_counts(reference: np.ndarray, prediction: np.ndarray,
                   threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image: ``|Y ^ P|``, ``|Y|``, ``|P|`` of the masks binarised with ``> threshold``.

    Int64 arrays of shape (N,). Counts, unlike scores, add up: summing them over a subject's
    slices gives its 3-D (pooled) overlap.
    """
    y = _binary_per_image(reference, threshold, "reference")
    p = _binary_per_image(prediction, threshold, "prediction")
    if y.shape != p.shape:
        raise ValueError(f"reference and prediction shapes differ: {np.shape(reference)} "
                         f"vs {np.shape(prediction)}")
    return (np.sum(y & p, axis=1, dtype=np.int64), np.sum(y, axis=1, dtype=np.int64),
            np.sum(p, axis=1, dtype=np.int64))


def dice_iou(intersection, true_size, pred_size) -> tuple[np.ndarray, np.ndarray]:
    """Dice and IoU from overlap counts; both 1 where truth and prediction are empty."""
    intersection, true_size, pred_size = (np.asarray(a, np.float64)
                                          for a in (intersection, true_size, pred_size))
    total = true_size + pred_size
    union = total - intersection
    dice = np.divide(2 * intersection, total, out=np.ones_like(total), where=total > 0)
    iou = np.divide(intersection, union, out=np.ones_like(union), where=union > 0)
    return dice, iou


def dice_per_image(reference: np.ndarray, prediction: np.ndarray,
                   threshold: float = 0.5) -> np.ndarray:
    """Dice of each image's masks (binarised with ``> threshold``), shape (N,); 1 if both empty."""
    return dice_iou(*overlap_counts(reference, prediction, threshold))[0]


def iou_per_image(reference: np.ndarray, prediction: np.ndarray,
                  threshold: float = 0.5) -> np.ndarray:
    """IoU (Jaccard) of each image's masks, shape (N,); 1 if both empty."""
    return dice_iou(*overlap_counts(reference, prediction, threshold))[1]
