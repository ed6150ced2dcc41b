"""FID (Frechet distance), KID, Inception Score and per-image Dice/IoU: known answers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from mrigan_tf.metrics.frechet import (feature_statistics, frechet_distance,
                                       frechet_distance_from_features)
from mrigan_tf.metrics.inception_score import inception_score
from mrigan_tf.metrics.kid import kernel_inception_distance, mmd2_unbiased, polynomial_kernel
from mrigan_tf.metrics.overlap import dice_per_image, iou_per_image


def _scipy_frechet(mu1, s1, mu2, s2):
    """The textbook formula with scipy's general matrix square root (the FID reference code)."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean)


@pytest.mark.parametrize("dim", [3, 16, 64])
def test_frechet_matches_scipy_sqrtm_reference(dim):
    rng = np.random.default_rng(dim)
    a = rng.normal(size=(600, dim)) @ rng.normal(size=(dim, dim))
    b = rng.normal(0.3, 1.0, size=(500, dim)) @ rng.normal(size=(dim, dim)) + 0.5
    stats_a, stats_b = feature_statistics(a), feature_statistics(b)
    ours = frechet_distance(*stats_a, *stats_b)
    reference = _scipy_frechet(*stats_a, *stats_b)
    assert ours == pytest.approx(reference, rel=1e-6)
    assert frechet_distance_from_features(a, b) == pytest.approx(ours, rel=1e-12)


def test_frechet_known_answers():
    # 1-D Gaussians: d^2 = (m1 - m2)^2 + (s1 - s2)^2.
    assert frechet_distance(np.array([0.0]), np.array([[1.0]]),
                            np.array([3.0]), np.array([[4.0]])) == pytest.approx(9.0 + 1.0)
    # Commuting diagonal covariances: sum over dimensions.
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 4.0, 1.0])
    expected = 1.0 + (1 - 2) ** 2 + (2 - 2) ** 2 + (3 - 1) ** 2
    assert frechet_distance(np.zeros(3), s1, np.array([1.0, 0, 0]), s2) == pytest.approx(expected)


def test_frechet_identical_and_singular_covariances():
    rng = np.random.default_rng(0)
    few = rng.normal(size=(10, 64))   # fewer samples than dimensions: singular covariance
    assert frechet_distance_from_features(few, few) == pytest.approx(0.0, abs=1e-8)
    d = frechet_distance_from_features(few, rng.normal(size=(12, 64)) + 1.0)
    assert np.isfinite(d) and d > 64 * 0.9   # the mean shift alone contributes 64
    with pytest.raises(ValueError):
        frechet_distance_from_features(few, rng.normal(size=(10, 8)))


def test_mmd_matches_explicit_sums():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(5, 3)), rng.normal(1.0, 1.0, size=(4, 3))

    def k(a, b):
        return (a @ b / 3 + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(5) for j in range(5) if i != j) / 20
    yy = sum(k(y[i], y[j]) for i in range(4) for j in range(4) if i != j) / 12
    xy = sum(k(x[i], y[j]) for i in range(5) for j in range(4)) / 20
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    assert polynomial_kernel(x, y).shape == (5, 4)


def test_kid_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    same_mean, same_std = kernel_inception_distance(a, b, subsets=20, subset_size=200)
    shifted_mean, _ = kernel_inception_distance(a, b + 0.5, subsets=20, subset_size=200)
    assert abs(same_mean) < 3 * same_std + 0.01
    assert shifted_mean > 0.1 and shifted_mean > 10 * abs(same_mean)
    # Deterministic for a seed, and the whole set when it is smaller than a subset.
    assert kernel_inception_distance(a, b, subsets=5, subset_size=50, seed=3) == \
        kernel_inception_distance(a, b, subsets=5, subset_size=50, seed=3)
    mean, std = kernel_inception_distance(a[:30], b[:30], subsets=10, subset_size=100)
    assert std == 0.0 and mean == pytest.approx(mmd2_unbiased(a[:30], b[:30]))


def test_inception_score_known_answers():
    assert inception_score(np.full((10, 2), 0.5))[0] == pytest.approx(1.0)
    for k in (2, 3, 5):
        one_hot = np.eye(k)[np.arange(10 * k) % k]
        assert inception_score(one_hot)[0] == pytest.approx(k, rel=1e-6)
    # Confident but all one class: no diversity, score 1.
    assert inception_score(np.eye(3)[np.zeros(9, int)])[0] == pytest.approx(1.0)
    # In between for soft, balanced predictions.
    soft = np.array([[0.8, 0.2], [0.2, 0.8]] * 5)
    assert 1.0 < inception_score(soft)[0] < 2.0
    mean, std = inception_score(np.eye(2)[np.arange(20) % 2], splits=2)
    assert mean == pytest.approx(2.0) and std == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError):
        inception_score(np.array([[0.9, 0.9]]))


def test_dice_and_iou_per_image_known_answers():
    ref = np.zeros((4, 4, 4, 1), np.uint8)
    pred = np.zeros_like(ref)
    ref[0, :2, :2] = 1; pred[0, :2, :2] = 1         # identical: 1, 1
    ref[1, :2, :2] = 1; pred[1, :2, :1] = 1         # |Y|=4, |P|=2, inter 2: Dice 2/3, IoU 1/2
    pred[2, 0, 0] = 1                               # empty reference, one false pixel: 0, 0
    # image 3: both empty -> 1, 1 by convention
    np.testing.assert_allclose(dice_per_image(ref, pred), [1.0, 2 / 3, 0.0, 1.0])
    np.testing.assert_allclose(iou_per_image(ref, pred), [1.0, 0.5, 0.0, 1.0])
    # Soft predictions are thresholded at 0.5; a single 2-D mask is one image.
    np.testing.assert_allclose(dice_per_image(ref[1, ..., 0], 0.7 * pred[1, ..., 0]), [2 / 3])
    with pytest.raises(ValueError):
        dice_per_image(ref, pred[:2])
