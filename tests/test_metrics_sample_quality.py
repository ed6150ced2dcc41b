"""sample_quality_table: known answers (the reference against itself), a collapsed set against
a diverse one, noise against the real slices, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import build_squares_dataset
from mrigan_tf.metrics.sample_quality import COLUMNS, sample_quality_table


@pytest.fixture(scope="module")
def slices():
    """Toy slices (16 px): training slices, and fresh tumor slices (a bright square placed at
    random) from the same distribution."""
    train = build_squares_dataset(n_subjects=6, slices=8, size=16, seed=0).images
    fresh = build_squares_dataset(n_subjects=4, slices=8, size=16, seed=1)
    return train, fresh.images[fresh.labels == 1]


def test_reference_against_itself_is_the_ceiling(slices):
    train, _ = slices
    row = sample_quality_table({"train": train}, train)["train"]
    assert set(COLUMNS) <= set(row) and row["n"] == len(train)
    # Each slice is its own nearest neighbour (correlation 1), every slice is hit once,
    # and the pixel distributions are identical.
    assert row["nn_corr"] == pytest.approx(1.0, abs=1e-9)
    assert row["coverage"] == 1.0
    assert row["pixel_w1"] == pytest.approx(0.0, abs=1e-12)
    assert 0.0 < row["ms_ssim"] < 1.0


def test_collapse_is_caught_by_coverage_and_ms_ssim(slices):
    train, fresh = slices
    # Total collapse: one image (a tumor slice) for every latent vector.
    collapsed = np.repeat(fresh[:1], len(fresh), axis=0)
    table = sample_quality_table({"diverse": fresh, "collapsed": collapsed}, train, seed=0)
    assert list(table) == ["diverse", "collapsed"]
    diverse, col = table["diverse"], table["collapsed"]
    # All copies of one image share one nearest training slice.
    assert col["coverage"] == pytest.approx(1 / len(collapsed))
    assert diverse["coverage"] > 3 * col["coverage"]
    assert col["ms_ssim"] == pytest.approx(1.0, abs=1e-5)
    assert diverse["ms_ssim"] < 0.9
    # A fresh draw from the same distribution looks like some training slice.
    assert diverse["nn_corr"] > 0.9


def test_noise_raises_pixel_w1_and_lowers_nn_corr(slices):
    train, fresh = slices
    rng = np.random.default_rng(1)
    noise = rng.uniform(-1, 1, fresh.shape).astype(np.float32)
    table = sample_quality_table({"fresh": fresh, "noise": noise}, train)
    assert table["noise"]["pixel_w1"] > 5 * table["fresh"]["pixel_w1"]
    assert table["noise"]["nn_corr"] < 0.3 and table["fresh"]["nn_corr"] > 0.9
    # The pitfall the notebooks warn about: static looks maximally "diverse".
    assert table["noise"]["ms_ssim"] < table["fresh"]["ms_ssim"]


def test_pixel_w1_known_answer():
    # Constant images: W1 between two point masses is the distance between them.
    reference = np.full((4, 16, 16, 1), -0.5, np.float32)
    shifted = np.full((3, 16, 16, 1), 0.25, np.float32)
    row = sample_quality_table({"shifted": shifted}, reference)["shifted"]
    assert row["pixel_w1"] == pytest.approx(0.75, abs=1e-6)


def test_single_slice_has_no_ms_ssim_and_bad_shapes_fail(slices):
    train, fresh = slices
    assert sample_quality_table({"one": fresh[:1]}, train)["one"]["ms_ssim"] is None
    with pytest.raises(ValueError, match="wrong size"):
        sample_quality_table({"wrong size": fresh[:, :8, :8]}, train)
    with pytest.raises(ValueError, match="empty"):
        sample_quality_table({"empty": fresh[:0]}, train)
    with pytest.raises(ValueError, match="reference"):
        sample_quality_table({"fresh": fresh}, train[:0])
