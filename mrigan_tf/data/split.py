"""Subject-level train/val/test splits.

Neighbouring slices of one brain are nearly identical. If slices were split at random,
the test set would hold near-copies of training slices from the same subjects and every
score would be optimistic: the model is tested on people it has already seen. So we split
*subjects*, stratified by their class, and every slice follows its subject.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mrigan_tf.data.contract import SPLITS


def split_subjects(subject_ids: Sequence[str], subject_classes: Sequence[int],
                   fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                   seed: int = 0) -> dict[str, str]:
    """Assign each subject to train/val/test, stratified by class, deterministic for a seed.

    Within each class the subjects are shuffled and cut by ``fractions``; when a class has at
    least three subjects, val and test each get at least one of them, so every split sees
    every class.
    """
    if len(subject_ids) != len(subject_classes):
        raise ValueError("subject_ids and subject_classes must have the same length")
    if len(set(subject_ids)) != len(subject_ids):
        raise ValueError("subject ids must be unique")
    fr = np.asarray(fractions, dtype=float)
    if fr.shape != (3,) or np.any(fr < 0) or not np.isclose(fr.sum(), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    ids = np.asarray(subject_ids)
    classes = np.asarray(subject_classes)
    assignment: dict[str, str] = {}
    for c in sorted(set(classes.tolist())):
        members = ids[classes == c]
        members = members[np.argsort(members, kind="stable")]  # order-independent input
        members = members[rng.permutation(len(members))]
        n = len(members)
        n_val, n_test = int(round(fr[1] * n)), int(round(fr[2] * n))
        if n >= 3:
            n_val = max(n_val, 1) if fr[1] > 0 else 0
            n_test = max(n_test, 1) if fr[2] > 0 else 0
        n_train = max(n - n_val - n_test, 0)
        cut = np.cumsum([n_train, n_val])
        for name, part in zip(SPLITS, np.split(members, cut)):
            for sid in part.tolist():
                assignment[sid] = name
    return assignment
