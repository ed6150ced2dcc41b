"""
Title: SSIM, MS-SSIM and the diversity of a set of slices
Description: Structural similarity between pairs of slices with TensorFlow's own
``tf.image.ssim`` / ``tf.image.ssim_multiscale``, and mean pairwise MS-SSIM within a class as
a mode-collapse signal.

## Conventions

Slices live in [-1, 1]; SSIM's luminance term is not shift-invariant, so we map them to
[0, 1] and use ``max_val=1`` (data range 1). The window is the standard 11x11 Gaussian with
sigma 1.5; ``tf.image.ssim`` then equals ``skimage.metrics.structural_similarity(...,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)`` (tested).

## MS-SSIM on small slices

MS-SSIM (Wang et al., 2003) compares the images at 5 scales, halving the size each time,
with the weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333). Every scale must still hold the
11-pixel window, so 5 scales need at least 11 * 2^4 = 176 pixels; our slices are 64 px.
Upsampling them would invent fine scales that hold no information, so instead we drop the
coarse scales that do not fit: we use the first S scales, where S is the largest with
``size / 2^(S-1) >= 11`` (64 px -> 3 scales, 128 px -> 4, 32 px -> 2, below 22 px -> 1, which
is plain SSIM), and renormalise their weights to sum to 1 (so identical images still score
exactly 1 and the value stays in [0, 1]). ``ms_ssim_power_factors`` returns what was used,
and the evaluation report prints it. Values are therefore comparable between two sets at the
same image size, not with published MS-SSIM numbers at 256 px. Note also that
``tf.image.ssim_multiscale`` clips negative (anti-correlated) per-scale terms to 0, so
MS-SSIM lies in [0, 1] where SSIM lies in [-1, 1].

## Diversity

The mean MS-SSIM over random pairs of *different* slices of one class: the higher, the more
alike the slices are. A generator that collapses onto a few modes produces a set whose
pairwise MS-SSIM is well above the real data's (Odena et al., 2017, used exactly this).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

FILTER_SIZE = 11
FILTER_SIGMA = 1.5
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _to_unit_range(images: np.ndarray) -> tf.Tensor:
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise ValueError(f"expected (N, H, W, C) images, got shape {arr.shape}")
    return tf.convert_to_tensor((np.clip(arr, -1.0, 1.0) + 1.0) / 2.0)


def _check_pairs(a: np.ndarray, b: np.ndarray) -> None:
    if np.shape(a) != np.shape(b):
        raise ValueError(f"image batches differ in shape: {np.shape(a)} vs {np.shape(b)}")
    if min(np.shape(a)[1:3]) < FILTER_SIZE:
        raise ValueError(f"SSIM needs images of at least {FILTER_SIZE} px, got {np.shape(a)[1:3]}")


def ssim_pairs(a: np.ndarray, b: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """SSIM of ``a[i]`` with ``b[i]`` for [-1, 1] images of shape (N, H, W, C), shape (N,)."""
    _check_pairs(a, b)
    out = []
    for start in range(0, len(a), batch_size):
        x = _to_unit_range(a[start:start + batch_size])
        y = _to_unit_range(b[start:start + batch_size])
        out.append(tf.image.ssim(x, y, max_val=1.0, filter_size=FILTER_SIZE,
                                 filter_sigma=FILTER_SIGMA).numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def ms_ssim_power_factors(size: int) -> tuple[float, ...]:
    """The MS-SSIM scale weights used at ``size`` px (see the module docstring), summing to 1."""
    scales = 1
    while scales < len(MS_SSIM_WEIGHTS) and size / 2 ** scales >= FILTER_SIZE:
        scales += 1
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales], dtype=np.float64)
    return tuple(float(w) for w in weights / weights.sum())


def ms_ssim_pairs(a: np.ndarray, b: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """MS-SSIM of ``a[i]`` with ``b[i]`` for [-1, 1] images, shape (N,)."""
    _check_pairs(a, b)
    factors = ms_ssim_power_factors(min(np.shape(a)[1:3]))
    out = []
    for start in range(0, len(a), batch_size):
        x = _to_unit_range(a[start:start + batch_size])
        y = _to_unit_range(b[start:start + batch_size])
        out.append(tf.image.ssim_multiscale(x, y, max_val=1.0, power_factors=factors,
                                            filter_size=FILTER_SIZE,
                                            filter_sigma=FILTER_SIGMA).numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def random_pairs(n: int, max_pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``max_pairs`` distinct unordered pairs (i, j), i != j, of ``n`` items."""
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    total = n * (n - 1) // 2
    rng = np.random.default_rng(seed)
    if total <= max_pairs:
        i, j = np.triu_indices(n, k=1)
        return i, j
    # Sampling with replacement among ~n^2/2 pairs: duplicates are rare and harmless to a mean.
    i = rng.integers(0, n, max_pairs)
    j = (i + rng.integers(1, n, max_pairs)) % n
    return i, j


def pairwise_ms_ssim(images: np.ndarray, max_pairs: int = 1000, seed: int = 0) -> dict:
    """Mean (and std) MS-SSIM over random pairs of different slices: high = low diversity."""
    i, j = random_pairs(len(images), max_pairs, seed)
    if len(i) == 0:
        return {"mean": None, "std": None, "pairs": 0}
    images = np.asarray(images)
    values = ms_ssim_pairs(images[i], images[j])
    return {"mean": float(values.mean()), "std": float(values.std()), "pairs": int(len(values))}
