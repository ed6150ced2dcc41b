"""
Title: Frechet distance between feature distributions (the "F" of FID)
Description: Fit a Gaussian to each set of features and measure the 2-Wasserstein distance
between the two Gaussians, in float64 with a symmetric, stable matrix square root.

## The equation

For features of real images ~ N(mu_1, S_1) and of generated images ~ N(mu_2, S_2):

    d^2 = |mu_1 - mu_2|^2 + tr(S_1) + tr(S_2) - 2 tr((S_1 S_2)^(1/2))

FID (Heusel et al., 2017) is this distance on InceptionV3 pool features; here the same
function serves any extractor (see ``features.py``), and the report names which one.

## Why not ``scipy.linalg.sqrtm(S_1 @ S_2)``

``S_1 S_2`` is not symmetric, so ``sqrtm`` goes through a complex Schur decomposition and
returns small imaginary parts (and NaNs for singular covariances, common when there are fewer
images than feature dimensions). Its trace is all we need, and

    tr((S_1 S_2)^(1/2)) = tr((A S_2 A)^(1/2)),  A = S_1^(1/2)

because ``S_1 S_2`` is similar to the symmetric positive semi-definite ``A S_2 A``. Two
``eigh`` calls on symmetric matrices give it exactly; eigenvalues that round-off pushes below
zero are clipped to zero.

## Caveat

FID is biased upwards at small sample sizes (Chong & Forsyth, 2020): compare values only at
equal N, and read them next to the real-vs-real floor the evaluation report computes.
"""

from __future__ import annotations

import numpy as np


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64, ``ddof=1`` as in the FID reference code) of (N, D) features."""
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors of shape (N, D), got {feats.shape}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False).reshape(feats.shape[1], feats.shape[1])


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric PSD matrix; round-off negative eigenvalues become 0."""
    sym = (matrix + matrix.T) / 2.0
    values, vectors = np.linalg.eigh(sym)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``tr((S_1 S_2)^(1/2))`` through the symmetric form ``tr((A S_2 A)^(1/2))``, A = S_1^(1/2)."""
    root1 = _symmetric_sqrt(np.asarray(sigma1, dtype=np.float64))
    middle = root1 @ np.asarray(sigma2, dtype=np.float64) @ root1
    values = np.linalg.eigvalsh((middle + middle.T) / 2.0)
    return float(np.sqrt(np.clip(values, 0.0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"mismatched statistics: means {mu1.shape} / {mu2.shape}, "
                         f"covariances {sigma1.shape} / {sigma2.shape}")
    diff = mu1 - mu2
    value = (diff @ diff + np.trace(sigma1) + np.trace(sigma2)
             - 2.0 * trace_sqrt_product(sigma1, sigma2))
    # Mathematically >= 0; round-off on identical distributions can give -1e-12.
    return float(max(value, 0.0))


def frechet_distance_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """Frechet distance between the Gaussians fitted to two (N, D) feature sets (FID when the
    features are InceptionV3 pool features)."""
    f1, f2 = np.asarray(features1), np.asarray(features2)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature sets must be (N, D) with the same D, got {f1.shape} and {f2.shape}")
    return frechet_distance(*feature_statistics(f1), *feature_statistics(f2))
