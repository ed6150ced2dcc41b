"""
Title: SSIM, MS-SSIM and the diversity of a set of slices
Description: Structural similarity between pairs of slices (SSIM, MS-SSIM: the numbers of
TensorFlow's ``tf.image.ssim`` / ``tf.image.ssim_multiscale``, computed with separable NumPy
filters), and mean pairwise MS-SSIM within a class as a mode-collapse signal.

## Conventions

Slices live in [-1, 1]; SSIM's luminance term is not shift-invariant, so we map them to
[0, 1] and use ``max_val=1`` (data range 1). The window is the standard 11x11 Gaussian with
sigma 1.5, applied without padding ("valid"); the result equals ``tf.image.ssim`` and
``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1)`` (both tested).

## Why NumPy, not ``tf.image.ssim``

The memorization audit scores every synthetic slice against its 8 nearest training slices
(16,000 SSIMs for 2,000 slices). ``tf.image.ssim`` filters with an 11x11 depthwise
convolution, which TensorFlow's CPU kernels run at a fraction of a GFLOP/s: 5 CPU seconds for
384 pairs of 64 px slices. The Gaussian window is separable, so here it is two 11-tap passes
(``scipy.ndimage.correlate1d``) in float64: the same numbers, many times faster
(``benchmarks/ssim.py`` measures both in one run), and no TensorFlow at all.

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
same image size, not with published MS-SSIM numbers at 256 px. Like
``tf.image.ssim_multiscale``, which it equals (tested), it clips negative (anti-correlated)
per-scale terms to 0, so MS-SSIM lies in [0, 1] where SSIM lies in [-1, 1]. Between scales
each image is averaged over 2x2 blocks, an odd side first padded by repeating its last row or
column (TensorFlow's symmetric padding).

## Diversity

The mean MS-SSIM over random pairs of *different* slices of one class: the higher, the more
alike the slices are. A generator that collapses onto a few modes produces a set whose
pairwise MS-SSIM is well above the real data's (Odena et al., 2017, used exactly this).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate1d

FILTER_SIZE = 11
FILTER_SIGMA = 1.5
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
K1, K2 = 0.01, 0.03          # the stabilizing constants of Wang et al. (2004), data range 1


def _to_unit_range(images: np.ndarray) -> np.ndarray:
    arr = np.asarray(images, dtype=np.float64)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise ValueError(f"expected (N, H, W, C) images, got shape {arr.shape}")
    return (np.clip(arr, -1.0, 1.0) + 1.0) / 2.0


def _check_pairs(a: np.ndarray, b: np.ndarray) -> None:
    if np.shape(a) != np.shape(b):
        raise ValueError(f"image batches differ in shape: {np.shape(a)} vs {np.shape(b)}")
    if min(np.shape(a)[1:3]) < FILTER_SIZE:
        raise ValueError(f"SSIM needs images of at least {FILTER_SIZE} px, got {np.shape(a)[1:3]}")


def _gaussian_window(size: int, sigma: float) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def _filter_valid(x: np.ndarray, window: np.ndarray) -> np.ndarray:
    """The 2-D Gaussian window over axes 1 and 2 of (N, H, W, C), without padding: the
    separable passes, then the border that saw padding cut away."""
    half = len(window) // 2
    for axis in (1, 2):
        x = correlate1d(x, window, axis=axis, mode="constant")
    return x[:, half:x.shape[1] - (len(window) - 1 - half),
             half:x.shape[2] - (len(window) - 1 - half)]


def _ssim_and_contrast(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image and channel, (N, C): mean SSIM and mean contrast-structure term over the
    valid window positions, as ``tf.image.ssim``'s helper defines them."""
    size = min(FILTER_SIZE, x.shape[1], x.shape[2])
    window = _gaussian_window(size, FILTER_SIGMA)
    c1, c2 = K1 ** 2, K2 ** 2
    mu_x, mu_y = _filter_valid(x, window), _filter_valid(y, window)
    num0, den0 = 2.0 * mu_x * mu_y, mu_x ** 2 + mu_y ** 2
    luminance = (num0 + c1) / (den0 + c1)
    num1 = 2.0 * _filter_valid(x * y, window)
    den1 = _filter_valid(x * x + y * y, window)
    contrast = (num1 - num0 + c2) / (den1 - den0 + c2)
    return (luminance * contrast).mean(axis=(1, 2)), contrast.mean(axis=(1, 2))


def _halve(x: np.ndarray) -> np.ndarray:
    """2x2 block means of (N, H, W, C), an odd side padded by repeating its edge first."""
    pad_h, pad_w = x.shape[1] % 2, x.shape[2] % 2
    if pad_h or pad_w:
        x = np.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="symmetric")
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def ssim_pairs(a: np.ndarray, b: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """SSIM of ``a[i]`` with ``b[i]`` for [-1, 1] images of shape (N, H, W, C), shape (N,)."""
    _check_pairs(a, b)
    out = [_ssim_and_contrast(_to_unit_range(a[s:s + batch_size]),
                              _to_unit_range(b[s:s + batch_size]))[0].mean(axis=-1)
           for s in range(0, len(a), batch_size)]
    return np.concatenate(out) if out else np.zeros(0)


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
    factors = np.asarray(ms_ssim_power_factors(min(np.shape(a)[1:3])))
    out = []
    for start in range(0, len(a), batch_size):
        x = _to_unit_range(a[start:start + batch_size])
        y = _to_unit_range(b[start:start + batch_size])
        terms = []
        for scale in range(len(factors)):
            if scale:
                x, y = _halve(x), _halve(y)
            ssim, contrast = _ssim_and_contrast(x, y)
            terms.append(contrast)
        # The contrast-structure terms of the finer scales, SSIM itself at the coarsest.
        terms[-1] = ssim
        stacked = np.maximum(np.stack(terms, axis=-1), 0.0)        # (N, C, scales)
        out.append(np.prod(stacked ** factors, axis=-1).mean(axis=-1))
    return np.concatenate(out) if out else np.zeros(0)


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
