"""The loops notebook cells used to hold, now in the package: known answers, tiny and fast."""

from __future__ import annotations

import numpy as np

from mrigan_tf.experiments import snapshot_diversity
from mrigan_tf.visualization import plot_diversity_and_drift, plot_nearest_real


def _frames(epochs=3, n=6, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (n, size, size, 1)).astype("float32") for _ in range(epochs)]


def test_snapshot_diversity_drift_is_the_mean_absolute_change():
    frames = _frames()
    frames[1] = frames[0] + 0.5    # every pixel moved by 0.5
    frames[2] = frames[1]          # nothing moved
    curves = snapshot_diversity(frames, max_pairs=10, seed=0)
    assert curves["epochs"].tolist() == [1, 2, 3]
    assert curves["drift_epochs"].tolist() == [2, 3]
    assert np.allclose(curves["drift"], [0.5, 0.0], atol=1e-6)
    assert curves["ms_ssim"].shape == (3,)


def test_snapshot_diversity_identical_samples_score_one():
    same = np.repeat(_frames(1)[0][:1], 6, axis=0)   # a collapsed generator: one slice six times
    curves = snapshot_diversity([_frames(1)[0], same], max_pairs=10)
    assert np.isclose(curves["ms_ssim"][1], 1.0, atol=1e-4)
    assert curves["ms_ssim"][0] < 0.5                 # independent noise is not alike


def test_snapshot_diversity_of_one_epoch_has_no_drift():
    curves = snapshot_diversity(_frames(1), max_pairs=5)
    assert curves["drift"].shape == (0,) and curves["drift_epochs"].shape == (0,)


def test_plot_diversity_and_drift_draws_one_line_per_run_and_the_real_floor():
    curves = {name: snapshot_diversity(_frames(seed=s), max_pairs=5)
              for s, name in enumerate(["a", "b"])}
    fig = plot_diversity_and_drift(curves, real_ms_ssim=0.3)
    left, right = fig.axes
    assert len(left.lines) == 3 and len(right.lines) == 2      # + the dotted real line
    assert np.allclose(right.lines[0].get_ydata(), curves["a"]["drift"])
    assert left.lines[-1].get_ydata()[0] == 0.3


def test_plot_nearest_real_pairs_each_sample_with_its_neighbour():
    fake, reference = _frames(1, n=3)[0], _frames(1, n=5, seed=1)[0]
    fig = plot_nearest_real(fake, reference, np.array([0.9, 0.8, 0.7]), np.array([4, 0, 2]))
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(images) == 6
    assert np.allclose(images[3], reference[4, ..., 0]) and np.allclose(images[5], reference[2, ..., 0])
    assert fig.axes[3].get_title() == "nearest real, r=0.90"
