"""Precision, recall, density and coverage: the reference implementation and known answers."""

from __future__ import annotations

import numpy as np
import pytest

from mrigan_tf.metrics.prdc import (k_nearest_neighbours, neighbourhood_radii,
                                    precision_recall_density_coverage)

prdc = pytest.importorskip("prdc", reason="the reference implementation (dev extra 'prdc')")


@pytest.mark.parametrize("n_real, n_synthetic, dim, k, shift", [
    (120, 100, 8, 5, 0.0),
    (100, 150, 16, 5, 0.5),
    (200, 80, 3, 3, 1.0),
    (60, 60, 32, 1, 0.2),
    (90, 110, 2, 10, 0.0),
])
def test_matches_the_reference_implementation(n_real, n_synthetic, dim, k, shift, capsys):
    rng = np.random.default_rng(n_real + dim + k)
    real = rng.normal(size=(n_real, dim))
    synthetic = rng.normal(shift, 1.3, size=(n_synthetic, dim))
    # A small block forces many blocks: the blocked sums must equal the whole-matrix ones.
    ours = precision_recall_density_coverage(real, synthetic, nearest_k=k, block_elements=500)
    reference = prdc.compute_prdc(real, synthetic, nearest_k=k)
    capsys.readouterr()   # the reference prints the set sizes
    for name in ("precision", "recall", "density", "coverage"):
        assert getattr(ours, name) == pytest.approx(float(reference[name]), abs=1e-12), name
    assert (ours.nearest_k, ours.n_real, ours.n_synthetic) == (k, n_real, n_synthetic)


def test_float32_features_and_images_are_accepted():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(40, 4, 4, 1)).astype(np.float32)
    synthetic = rng.normal(size=(30, 4, 4, 1)).astype(np.float32)
    as_images = precision_recall_density_coverage(real, synthetic)
    as_vectors = precision_recall_density_coverage(real.reshape(40, -1), synthetic.reshape(30, -1))
    assert as_images == as_vectors


@pytest.mark.parametrize("offset", [0.0, 1e4])   # far from the origin: cancellation-prone
def test_identical_sets_are_perfect(offset):
    real = np.random.default_rng(2).normal(size=(200, 16)) * 10.0 + offset
    result = precision_recall_density_coverage(real, real.copy())
    assert result.precision == 1.0 and result.recall == 1.0 and result.coverage == 1.0
    # Each real ball holds the sample itself and its k - 1 nearer neighbours; the k-th lies
    # on the boundary, outside: exactly k per ball.
    assert result.density == 1.0


def test_disjoint_far_apart_sets_score_zero():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(100, 8))
    synthetic = rng.normal(size=(100, 8)) + 1000.0
    result = precision_recall_density_coverage(real, synthetic)
    assert (result.precision, result.recall, result.density, result.coverage) == (0, 0, 0, 0)


def test_collapse_onto_a_few_real_points():
    """Mode collapse: every synthetic sample is (nearly) one of 3 real samples."""
    rng = np.random.default_rng(4)
    real = rng.normal(size=(300, 8))
    modes = real[[0, 1, 2]]
    synthetic = modes[rng.integers(0, 3, 300)] + rng.normal(0, 1e-3, (300, 8))
    result = precision_recall_density_coverage(real, synthetic)
    assert result.precision == 1.0                    # all on the real manifold
    assert result.recall < 0.1 and result.coverage < 0.1   # ... but covering almost none of it


def test_same_distribution_gives_density_near_one():
    rng = np.random.default_rng(5)
    result = precision_recall_density_coverage(rng.normal(size=(1000, 4)),
                                               rng.normal(size=(1000, 4)))
    assert result.density == pytest.approx(1.0, abs=0.1)
    assert result.coverage > 0.9 and result.precision > 0.8 and result.recall > 0.8


def test_k_nearest_neighbours_are_exact_and_sorted():
    rng = np.random.default_rng(6)
    reference = rng.normal(size=(50, 5)) * 1e3 + 1e4    # large norms: cancellation-prone
    queries = np.concatenate([reference[:3], rng.normal(size=(7, 5)) * 1e3 + 1e4])
    distances, indices = k_nearest_neighbours(queries, reference, 4, block_elements=60)
    brute = np.linalg.norm(queries[:, None] - reference[None], axis=2)
    assert np.array_equal(indices, np.argsort(brute, axis=1)[:, :4])
    assert np.allclose(distances, np.sort(brute, axis=1)[:, :4], rtol=1e-12)
    assert np.all(distances[:3, 0] == 0.0)           # exact copies at distance exactly 0
    radii = neighbourhood_radii(reference, k=2)
    assert np.allclose(radii, np.sort(np.linalg.norm(reference[:, None] - reference[None], axis=2),
                                      axis=1)[:, 2])


def test_clear_errors():
    rng = np.random.default_rng(7)
    real = rng.normal(size=(20, 3))
    with pytest.raises(ValueError, match="synthetic set is empty"):
        precision_recall_density_coverage(real, np.zeros((0, 3)))
    with pytest.raises(ValueError, match="real set is empty"):
        precision_recall_density_coverage([], real)
    with pytest.raises(ValueError, match="differ in size"):
        precision_recall_density_coverage(real, rng.normal(size=(20, 4)))
    with pytest.raises(ValueError, match="more than 5 samples"):
        precision_recall_density_coverage(real, real[:5])
    with pytest.raises(ValueError, match="nearest_k"):
        precision_recall_density_coverage(real, real, nearest_k=0)
