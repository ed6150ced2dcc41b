"""
Title: Kernel Inception Distance (KID)
Description: The unbiased squared maximum mean discrepancy between two feature sets under the
cubic polynomial kernel, averaged over random subsets (Binkowski et al., 2018).

## The equation

With k(x, y) = (x . y / d + 1)^3 on d-dimensional features, X of size m and Y of size n:

    MMD^2_u = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(n(n-1)) sum_{i != j} k(y_i, y_j)
              - 2/(mn) sum_{i, j} k(x_i, y_j)

Leaving out the diagonal makes the estimate unbiased: unlike FID, its expectation does not
depend on the sample size, so KID can be compared across N (and can be slightly negative
when the two sets come from one distribution). We average it over ``subsets`` random subsets
of ``subset_size`` per set, and report the mean and the standard deviation over subsets.
"""

from __future__ import annotations

import numpy as np


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x . y / d + 1)^3 for every pair of rows, shape (len(x), len(y))."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between two (N, D) feature sets under ``polynomial_kernel``."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError(f"the unbiased MMD needs at least 2 samples per set, got {m} and {n}")
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    return float((k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
                 + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
                 - 2.0 * k_xy.mean())


def kernel_inception_distance(features1: np.ndarray, features2: np.ndarray, subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 over ``subsets`` random subsets of both sets.

    ``subset_size`` is capped at the smaller set's size; with a set no larger than the subset,
    every subset is the whole set and the std is 0.
    """
    f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature sets must be (N, D) with the same D, got {f1.shape} and {f2.shape}")
    size = min(subset_size, len(f1), len(f2))
    if size >= len(f1) and size >= len(f2):
        subsets = 1
    rng = np.random.default_rng(seed)
    values = [mmd2_unbiased(f1[rng.choice(len(f1), size, replace=False)],
                            f2[rng.choice(len(f2), size, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))
