"""SSIM / MS-SSIM against scikit-image, the small-image scale rule, and pairwise diversity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity

from mrigan_tf.metrics.ssim import (MS_SSIM_WEIGHTS, ms_ssim_pairs, ms_ssim_power_factors,
                                    pairwise_ms_ssim, random_pairs, ssim_pairs)


def _smooth_images(n, size, seed):
    rng = np.random.default_rng(seed)
    raw = rng.uniform(-1, 1, (n, size, size))
    return np.stack([np.clip(gaussian_filter(x, 1.5) * 4, -1, 1) for x in raw])[..., None] \
        .astype(np.float32)


def test_ssim_matches_skimage():
    a = _smooth_images(4, 32, 0)
    rng = np.random.default_rng(1)
    b = np.clip(a + rng.normal(0, 0.15, a.shape), -1, 1).astype(np.float32)
    ours = ssim_pairs(a, b)
    # skimage on the same [0, 1] images with TF's window: Gaussian 11x11, sigma 1.5,
    # population covariance, data range 1.
    reference = [structural_similarity((a[i, ..., 0] + 1) / 2, (b[i, ..., 0] + 1) / 2,
                                       gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, data_range=1.0)
                 for i in range(len(a))]
    np.testing.assert_allclose(ours, reference, atol=1e-4)
    assert 0.2 < ours.min() and ours.max() < 0.99
    np.testing.assert_allclose(ssim_pairs(a, a), 1.0, atol=1e-5)


def test_ms_ssim_scales_for_small_images():
    assert ms_ssim_power_factors(256) == pytest.approx(MS_SSIM_WEIGHTS / np.sum(MS_SSIM_WEIGHTS))
    assert len(ms_ssim_power_factors(64)) == 3
    assert len(ms_ssim_power_factors(128)) == 4
    assert len(ms_ssim_power_factors(32)) == 2
    assert ms_ssim_power_factors(16) == (1.0,)
    for size in (16, 32, 64, 128):
        assert sum(ms_ssim_power_factors(size)) == pytest.approx(1.0)
    # One scale is plain SSIM, except that TF clips negative (anti-correlated) values to 0.
    a, b = _smooth_images(3, 16, 2), _smooth_images(3, 16, 3)
    near = np.clip(a + 0.2 * b, -1, 1)
    assert np.all(ssim_pairs(a, near) > 0.3)
    np.testing.assert_allclose(ms_ssim_pairs(a, near), ssim_pairs(a, near), atol=1e-5)
    np.testing.assert_allclose(ms_ssim_pairs(a, b), np.maximum(ssim_pairs(a, b), 0), atol=1e-5)


def test_ms_ssim_at_64px_orders_similarity():
    a = _smooth_images(3, 64, 4)
    rng = np.random.default_rng(5)
    slightly = np.clip(a + rng.normal(0, 0.05, a.shape), -1, 1).astype(np.float32)
    very = np.clip(a + rng.normal(0, 0.5, a.shape), -1, 1).astype(np.float32)
    same, near, far = ms_ssim_pairs(a, a), ms_ssim_pairs(a, slightly), ms_ssim_pairs(a, very)
    np.testing.assert_allclose(same, 1.0, atol=1e-5)
    assert np.all(near < same) and np.all(far < near) and np.all(far > 0)


def test_pairwise_diversity_flags_a_collapsed_set():
    diverse = _smooth_images(12, 32, 6)
    rng = np.random.default_rng(7)
    collapsed = np.clip(diverse[:1] + rng.normal(0, 0.03, diverse.shape), -1, 1).astype(np.float32)
    d, c = pairwise_ms_ssim(diverse, max_pairs=40), pairwise_ms_ssim(collapsed, max_pairs=40)
    assert d["pairs"] == c["pairs"] == 40
    assert c["mean"] > 0.8 > d["mean"] + 0.3
    assert pairwise_ms_ssim(diverse[:1])["pairs"] == 0
    i, j = random_pairs(5, 100)
    assert len(i) == 10 and np.all(i != j)
    i, j = random_pairs(50, 30, seed=1)
    assert len(i) == 30 and np.all(i != j)


@pytest.mark.parametrize("shape", [(5, 64, 64, 1), (4, 37, 45, 1), (3, 23, 23, 2)])
def test_ssim_and_ms_ssim_equal_tensorflows(shape):
    """Our separable NumPy filters against the reference, tf.image.ssim(_multiscale): odd
    sides (TensorFlow pads them before halving) and two channels (averaged) included."""
    import tensorflow as tf

    rng = np.random.default_rng(sum(shape))
    a = rng.uniform(-1, 1, shape).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.3, shape), -1, 1).astype(np.float32)
    x, y = tf.constant((a + 1) / 2), tf.constant((b + 1) / 2)
    factors = ms_ssim_power_factors(min(shape[1:3]))
    expected_ssim = tf.image.ssim(x, y, 1.0, filter_size=11, filter_sigma=1.5).numpy()
    expected_ms = tf.image.ssim_multiscale(x, y, 1.0, power_factors=factors, filter_size=11,
                                           filter_sigma=1.5).numpy()
    assert len(factors) >= 2 and np.ptp(expected_ms) > 1e-3     # several scales, distinct pairs
    np.testing.assert_allclose(ssim_pairs(a, b), expected_ssim, atol=1e-5)    # float32 rounding
    np.testing.assert_allclose(ms_ssim_pairs(a, b), expected_ms, atol=1e-5)
