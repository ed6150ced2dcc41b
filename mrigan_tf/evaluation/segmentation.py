"""Scoring a U-Net: Dice and IoU per slice and per subject, and false positives on healthy slices.

The numbers TSTR and ``mrigan-tf train --model unet`` report. A slice's Dice is computed on
the slices whose true mask is non-empty; on healthy slices (empty true mask) the figure is
the share on which the U-Net draws any tumor pixel, the false-positive rate that shows
when synthetic training data teaches a segmenter to see tumors everywhere. Per subject, the
slices are pooled (a 3-D Dice). The metric functions are ``mrigan_tf.metrics.overlap``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mrigan_tf.atomic import atomic_file
from mrigan_tf.data.contract import PreparedDataset, load_dataset
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.metrics.overlap import dice_iou, overlap_counts
from mrigan_tf.models.unet import THRESHOLD
from mrigan_tf.training.segmentation import SegmentationConfig, train_unet

#: A U-Net run's scores on its dataset's test subjects, beside its model.
EVALUATION_FILE = "evaluation.json"


def train_and_score_unet(config: SegmentationConfig, run_dir: str | os.PathLike,
                         resume: bool = False, split: str = "test", **fit_options):
    """``train_unet`` (``fit_options``: callbacks, verbose), then the scores on ``split``
    written to ``RUN/evaluation.json`` (skipped when the dataset has no such slices): the
    test subjects touched once, at the end. Returns ``(model, history, scores or None)``."""
    model, history = train_unet(config, run_dir, resume=resume, **fit_options)
    dataset = load_dataset(config.data)
    scores = None
    if np.any(dataset.split == split):
        scores = evaluate_segmentation(model, dataset, split=split)
        with atomic_file(Path(run_dir) / EVALUATION_FILE) as tmp:
            tmp.write_text(json.dumps(scores, indent=2) + "\n")
    return model, history, scores


def predict_masks(model: keras.Model, images: np.ndarray, batch_size: int = 64,
                  threshold: float = THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Tumor probabilities (float32) and binary masks (uint8, ``p > threshold``), (N, H, W, 1)."""
    expected = tuple(model.input_shape[1:])
    if tuple(images.shape[1:]) != expected:
        raise MriganError(f"the U-Net takes slices of shape {expected}, the data has "
                          f"{tuple(images.shape[1:])}; train a U-Net at this image size")
    probs = np.asarray(model.predict(images, batch_size=batch_size, verbose=0), np.float32)
    return probs, (probs > threshold).astype(np.uint8)


def _mean(values: np.ndarray) -> float | None:
    # None (JSON null) rather than NaN: "no tumor slice in this split" is not a number.
    return float(np.mean(values)) if len(values) else None


def evaluate_segmentation(model: keras.Model, dataset: str | os.PathLike | PreparedDataset,
                          split: str | None = "test", batch_size: int = 64,
                          threshold: float = THRESHOLD) -> dict[str, Any]:
    """Dice / IoU of ``model`` on one split of ``dataset``, per slice and per subject.

    Returns a JSON-ready dict: ``slice_dice_mean`` / ``slice_iou_mean`` (+ std, median)
    over the slices with a non-empty true mask; ``healthy_false_positive_rate`` (the share
    of slices with an empty true mask on which anything is predicted) and the mean
    number of predicted pixels there; ``subject_dice_mean`` / ``subject_iou_mean`` over the
    subjects with a tumor, from their slices pooled (3-D); ``healthy_subject_false_positive_rate``;
    ``pooled_dice`` over every pixel; and ``per_subject`` scores. A mean over nothing is None.
    """
    source = dataset if isinstance(dataset, PreparedDataset) else load_dataset(dataset)
    subset = source.select(split) if split is not None else source
    if len(subset) == 0:
        where = None if isinstance(dataset, PreparedDataset) else dataset
        raise DataError(where, f"split {split!r} holds no slices to evaluate on")
    _, pred = predict_masks(model, subset.images, batch_size=batch_size, threshold=threshold)
    inter, true, predicted = overlap_counts(subset.masks, pred)
    dice, iou = dice_iou(inter, true, predicted)
    tumor = true > 0
    healthy = ~tumor

    per_subject: dict[str, dict[str, Any]] = {}
    for sid in sorted(set(subset.subjects.tolist())):
        rows = subset.subjects == sid
        counts = inter[rows].sum(), true[rows].sum(), predicted[rows].sum()
        d, j = dice_iou(*counts)
        per_subject[sid] = {"dice": float(d), "iou": float(j), "slices": int(rows.sum()),
                            "tumor_slices": int(tumor[rows].sum()),
                            "tumor_pixels": int(counts[1]), "predicted_pixels": int(counts[2])}
    tumor_subjects = [s for s in per_subject.values() if s["tumor_pixels"] > 0]
    healthy_subjects = [s for s in per_subject.values() if s["tumor_pixels"] == 0]
    pooled_dice, _ = dice_iou(inter.sum(), true.sum(), predicted.sum())
    return {
        "split": split,
        "threshold": float(threshold),
        "slices": len(subset),
        "tumor_slices": int(tumor.sum()),
        "healthy_slices": int(healthy.sum()),
        "slice_dice_mean": _mean(dice[tumor]),
        "slice_dice_std": float(np.std(dice[tumor])) if tumor.any() else None,
        "slice_dice_median": float(np.median(dice[tumor])) if tumor.any() else None,
        "slice_iou_mean": _mean(iou[tumor]),
        "healthy_false_positive_rate": _mean((predicted[healthy] > 0).astype(float)),
        "healthy_false_positive_pixels_mean": _mean(predicted[healthy].astype(float)),
        "subjects": len(per_subject),
        "tumor_subjects": len(tumor_subjects),
        "subject_dice_mean": _mean(np.array([s["dice"] for s in tumor_subjects])),
        "subject_iou_mean": _mean(np.array([s["iou"] for s in tumor_subjects])),
        "healthy_subject_false_positive_rate": _mean(
            np.array([float(s["predicted_pixels"] > 0) for s in healthy_subjects])),
        "pooled_dice": float(pooled_dice),
        "per_subject": per_subject,
    }
