"""
Title: Inception Score, computed with the domain classifier
Description: How confidently and how evenly a classifier labels the generated images.

## The equation

    IS = exp( E_x [ KL( p(y|x) || p(y) ) ] ),   p(y) = E_x [ p(y|x) ]

It is high when each image is classified confidently (low-entropy p(y|x)) and the classes
are used evenly (high-entropy p(y)). It lies in [1, K] for K classes: 1 when every image gets
the same prediction, K when each image is one-hot and the K classes are balanced.

Salimans et al. used the ImageNet Inception network; on brain slices ImageNet classes mean
nothing, so the evaluation feeds it the domain classifier's healthy/tumor probabilities
(``domain_classifier.py``). With K = 2 the score is read as "do the generated slices look
clearly healthy or clearly tumorous, in balanced numbers?" It says nothing about whether
they look like the real data: read it next to FID/KID.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def inception_score(probabilities: np.ndarray, splits: int = 1) -> tuple[float, float]:
    """(mean, std) of the Inception Score of (N, K) class probabilities over ``splits`` chunks."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"probabilities must be (N, K) with N >= 1, got {p.shape}")
    if np.any(p < -1e-6) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("each row of probabilities must be a distribution (>= 0, summing to 1)")
    if not 1 <= splits <= len(p):
        raise ValueError(f"splits must be in [1, {len(p)}], got {splits}")
    scores = []
    for chunk in np.array_split(np.clip(p, 0.0, 1.0), splits):
        marginal = chunk.mean(axis=0, keepdims=True)
        kl = np.sum(chunk * (np.log(chunk + _EPS) - np.log(marginal + _EPS)), axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))
