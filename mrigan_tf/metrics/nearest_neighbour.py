"""Nearest-neighbour similarity between two sets of slices.

For each query slice: the highest Pearson correlation with any slice of a reference set.
It answers two questions in this project: does a slice-level split leak (test slices have
near-copies in training), and does a generator memorize (synthetic slices are closer to
training slices than unseen real slices are)?
"""

from __future__ import annotations

import numpy as np


def _standardize(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(len(x), -1).astype(np.float64)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(flat, axis=1, keepdims=True)
    return flat / np.where(norm > 0, norm, 1.0)


def nearest_neighbour_correlation(queries: np.ndarray, reference: np.ndarray,
                                  chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Per query: (max Pearson correlation with any reference slice, index of that slice).

    Correlation is computed as a dot product of standardized vectors, in chunks so that
    10,000 x 10,000 comparisons fit in memory.
    """
    if len(queries) == 0 or len(reference) == 0:
        raise ValueError(f"need at least one query and one reference slice, "
                         f"got {len(queries)} and {len(reference)}")
    q, r = _standardize(queries), _standardize(reference)
    best = np.empty(len(q))
    where = np.empty(len(q), dtype=np.int64)
    for start in range(0, len(q), chunk):
        sims = q[start:start + chunk] @ r.T
        where[start:start + chunk] = sims.argmax(axis=1)
        best[start:start + chunk] = sims.max(axis=1)
    return best, where


def top_k_correlation(queries: np.ndarray, reference: np.ndarray, k: int,
                      chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Per query: the ``k`` highest correlations with reference slices, best first, and their
    indices; both of shape (len(queries), min(k, len(reference))).

    The memorization audit uses these as candidates for the (slower) SSIM comparison.
    """
    if len(queries) == 0 or len(reference) == 0:
        raise ValueError(f"need at least one query and one reference slice, "
                         f"got {len(queries)} and {len(reference)}")
    k = max(1, min(int(k), len(reference)))
    q, r = _standardize(queries), _standardize(reference)
    best = np.empty((len(q), k))
    where = np.empty((len(q), k), dtype=np.int64)
    for start in range(0, len(q), chunk):
        sims = q[start:start + chunk] @ r.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        where[start:start + chunk] = np.take_along_axis(top, order, axis=1)
        best[start:start + chunk] = np.take_along_axis(top_sims, order, axis=1)
    return best, where
