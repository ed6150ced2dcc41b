"""Memorization audit: flags near-copies of training slices, passes an independent set."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from mrigan_tf.metrics.memorization import memorization_audit, nearest_training_slices
from mrigan_tf.metrics.nearest_neighbour import nearest_neighbour_correlation, top_k_correlation


def _population(n, seed, size=24):
    """Smooth random blobs: every slice an independent draw from one distribution."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=(n, size, size))
    return np.stack([np.tanh(3 * gaussian_filter(x, 2.0)) for x in raw])[..., None].astype(np.float32)


@pytest.fixture(scope="module")
def populations():
    return _population(60, 0), _population(30, 1), _population(30, 2)   # train, held-out, new


def test_top_k_correlation_agrees_with_nearest_neighbour(populations):
    train, heldout, _ = populations
    best, where = nearest_neighbour_correlation(heldout, train)
    top, idx = top_k_correlation(heldout, train, k=5)
    assert top.shape == idx.shape == (30, 5)
    np.testing.assert_allclose(top[:, 0], best)
    np.testing.assert_array_equal(idx[:, 0], where)
    assert np.all(np.diff(top, axis=1) <= 1e-12)   # best first


def test_nearest_training_slice_of_a_copy_is_itself(populations):
    train, _, _ = populations
    nearest = nearest_training_slices(train[[3, 17, 42]], train, top_k=4)
    np.testing.assert_array_equal(nearest.ssim_index, [3, 17, 42])
    np.testing.assert_allclose(nearest.ssim, 1.0, atol=1e-5)
    np.testing.assert_allclose(nearest.correlation, 1.0, atol=1e-9)


def test_audit_flags_noisy_copies_and_passes_an_independent_set(populations):
    train, heldout, new = populations
    rng = np.random.default_rng(3)
    copies = np.clip(train[rng.choice(len(train), 30, replace=False)]
                     + rng.normal(0, 0.05, (30,) + train.shape[1:]), -1, 1).astype(np.float32)
    flagged = memorization_audit(copies, train, heldout, top_k=4, n_pairs=5)
    passed = memorization_audit(new, train, heldout, top_k=4, n_pairs=5)

    assert flagged["suspected"] and flagged["ssim"]["suspected"]
    assert flagged["ssim"]["exceedance"]["p0"]["fraction_synthetic_above"] > 0.9
    assert flagged["correlation"]["exceedance"]["p5"]["fraction_synthetic_above"] > 0.9
    assert not passed["suspected"]
    assert passed["ssim"]["exceedance"]["p5"]["fraction_synthetic_above"] < 0.15
    assert flagged["ssim"]["synthetic_nn"]["median"] > passed["ssim"]["synthetic_nn"]["median"]

    pairs = flagged["closest_pairs"]
    assert len(pairs) == 5 and pairs[0]["ssim"] >= pairs[-1]["ssim"]
    for pair in pairs:   # the closest training slice of a noisy copy is its original
        original = copies[pair["synthetic_index"]]
        assert np.abs(train[pair["train_index"]] - original).max() < 0.3
    with pytest.raises(ValueError):
        memorization_audit(new[:0], train, heldout)


def test_audit_thresholds_per_class(populations):
    train, heldout, new = populations
    held_labels = np.arange(len(heldout)) % 2
    new_labels = np.arange(len(new)) % 2
    audit = memorization_audit(new, train, heldout, top_k=4, synthetic_labels=new_labels,
                               heldout_labels=held_labels)
    assert audit["thresholds_per_class"]
    assert set(audit["ssim"]["exceedance"]["p5"]["thresholds"]) == {"0", "1"}
    assert not audit["suspected"]
    with pytest.raises(ValueError, match="both"):
        memorization_audit(new, train, heldout, synthetic_labels=new_labels)
