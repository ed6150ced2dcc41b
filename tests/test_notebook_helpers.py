"""The loops notebook cells used to hold, now in the package: known answers, tiny and fast."""

from __future__ import annotations

import numpy as np

from mrigan_tf.experiments import (RESIZE_METHODS, critic_surface, fid_by_extractor,
                                   resize_round_trips, ring_and_blob, snapshot_diversity,
                                   train_toy_critic)
from mrigan_tf.visualization import (format_counts, format_rows, plot_class_rows, plot_critic_surfaces,
                                     plot_diversity_and_drift, plot_histograms,
                                     plot_joint_batch, plot_nearest_real,
                                     plot_segmentation_predictions, plot_split_counts)


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


def test_format_rows_aligns_columns_and_prints_missing_values_as_a_dash():
    text = format_rows({"a": {"x": 1.23456, "n": 7}, "longer name": {"x": None, "n": 12}},
                       [("x", "X value", ".2f"), ("n", "N", "d")], name_title="row")
    lines = text.splitlines()
    assert lines[0].split() == ["row", "X", "value", "N"]
    assert lines[1].split() == ["a", "1.23", "7"] and lines[2].split() == ["longer", "name", "-", "12"]
    # Right-aligned: every line's columns end where the header's do.
    assert len({len(line) for line in lines}) == 1


def test_plot_histograms_shares_bins_and_draws_the_yardstick_and_its_percentile():
    rng = np.random.default_rng(0)
    fig = plot_histograms({"a": rng.uniform(0, 0.5, 100), "b": rng.uniform(0.2, 0.9, 100)},
                          "x", bins=11, upper=1.0, yardstick=("real", np.linspace(0, 1, 101)),
                          percentile=95)
    ax = fig.axes[0]
    assert np.isclose(ax.lines[0].get_xdata()[0], 0.95)            # the 95th percentile
    bars = [p for p in ax.patches if type(p).__name__ == "Rectangle"]
    assert len(bars) == 2 * 10                                      # 11 edges: 10 bins per set
    assert np.isclose(min(b.get_x() for b in bars), 0.0)
    assert np.isclose(max(b.get_x() + b.get_width() for b in bars), 1.0)


def test_plot_segmentation_predictions_shows_the_largest_masks_first():
    images = np.zeros((4, 8, 8, 1), "float32")
    masks = np.zeros((4, 8, 8, 1), "uint8")
    for i, area in enumerate([1, 9, 4, 0]):
        masks[i].ravel()[:area] = 1
    predicted = 1 - masks
    fig = plot_segmentation_predictions(images, masks, predicted, titles=["s0", "s1", "s2", "s3"],
                                        n=2)
    top = fig.axes[:2]
    assert [ax.get_title() for ax in top] == ["s1", "s2"]          # areas 9, then 4
    # Bottom row: the prediction of the same slices (red where predicted).
    bottom = fig.axes[2].images[0].get_array()
    assert np.allclose(bottom[..., 0][predicted[1, ..., 0] == 1], 0.35 * 1.0 + 0.65 * 0.5)


def test_resize_round_trips_keep_shape_and_range_and_a_constant_image():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (3, 16, 16, 1)).astype("float32")
    images[0] = 0.25                                                  # constant: unchanged
    out = resize_round_trips(images, factor=2)
    assert list(out) == list(RESIZE_METHODS)
    for name, resized in out.items():
        assert resized.shape == images.shape and resized.dtype == np.float32
        assert resized.min() >= -1 and resized.max() <= 1
        assert np.allclose(resized[0], 0.25, atol=1e-6), name
        assert np.abs(resized[1:] - images[1:]).mean() > 0.05, name   # detail was lost


class _Identity:
    dim = 3

    def __call__(self, images):
        return np.asarray(images).reshape(len(images), -1)[:, :3].astype("float64")


def test_fid_by_extractor_is_zero_for_the_reference_itself_and_gives_the_ratio():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(200, 1, 3, 1))
    shifted = reference + 1.0                                       # every feature moved by 1
    heldout = rng.normal(size=(200, 1, 3, 1))
    result = fid_by_extractor({"id": _Identity()}, reference, shifted, heldout)["id"]
    assert result["dim"] == 3
    assert np.isclose(result["fid"], 3.0, atol=1e-6)                 # |mean shift|^2 = 3, same cov
    assert 0 < result["floor"] < 0.3
    assert np.isclose(result["ratio"], result["fid"] / result["floor"])


def test_plot_histograms_of_nothing_draws_an_empty_axis():
    fig = plot_histograms({"none": np.zeros(0)}, "x")
    assert fig.axes[0].get_xlabel() == "x"


def test_plot_split_counts_stacks_the_classes():
    counts = {"train": {"healthy": 5, "tumor": 2}, "test": {"healthy": 3, "tumor": 1}}
    ax = plot_split_counts(counts).axes[0]
    bars = ax.patches
    assert [b.get_height() for b in bars] == [5, 3, 2, 1]            # healthy, then tumor
    assert [b.get_y() for b in bars] == [0, 0, 5, 3]                  # tumor on top of healthy


def test_format_counts_totals_rows_and_columns():
    counts = {"train": {"healthy": 494, "tumor": 174}, "test": {"healthy": 1107, "tumor": 0}}
    lines = format_counts(counts).splitlines()
    assert lines[0].split() == ["slices", "healthy", "tumor", "total"]
    assert lines[1].split() == ["train", "494", "174", "668"]
    assert lines[2].split() == ["test", "1,107", "0", "1,107"]
    assert lines[3].split() == ["all", "1,601", "174", "1,775"]
    # Right-aligned numbers: every line ends at the same column.
    assert len({len(line) for line in lines}) == 1
    # One split: no "all" row repeating it.
    assert len(format_counts({"train": {"healthy": 5}}).splitlines()) == 2


def test_plot_joint_batch_shows_image_over_mask_channel():
    joint = np.stack([np.full((4, 4, 2), [0.5, -1.0]), np.full((4, 4, 2), [0.1, 1.0])]).astype("float32")
    fig = plot_joint_batch(joint, np.array([0, 1]), ["healthy", "tumor"], n=6)
    assert len(fig.axes) == 4                                          # n capped at the batch
    assert [fig.axes[i].get_title() for i in (0, 1)] == ["healthy", "tumor"]
    assert np.allclose(fig.axes[1].images[0].get_array(), 0.1)        # row 0: images
    assert np.allclose(fig.axes[3].images[0].get_array(), 1.0)        # row 1: the mask channel


class _Conditional:
    """A generator whose sample is its label everywhere (image) and a mask for class 1."""

    def sample(self, latent, labels):
        n = len(latent)
        image = np.broadcast_to(np.asarray(labels, "float32")[:, None, None, None], (n, 4, 4, 1))
        mask = np.where(np.asarray(labels)[:, None, None, None] == 1, 1.0, -1.0) * np.ones((n, 4, 4, 1))
        return np.concatenate([image, mask], axis=-1)


def test_plot_class_rows_draws_one_row_per_class_with_the_same_latents():
    fig = plot_class_rows(_Conditional(), np.zeros((3, 8)), ["healthy", "tumor"])
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes] == ["healthy"] * 3 + ["tumor"] * 3
    # Row 2 (tumor): the mask is tinted red, so red exceeds green there.
    tumor = fig.axes[3].images[0].get_array()
    assert np.all(tumor[..., 0] > tumor[..., 1])
    healthy = fig.axes[0].images[0].get_array()
    assert np.allclose(healthy[..., 0], healthy[..., 1])


def test_plot_critic_surfaces_one_panel_per_method_with_its_slope():
    xs = np.linspace(-1, 1, 5)
    surfaces = {"a": (np.outer(xs, xs), 0.5), "b": (np.zeros((5, 5)) + xs, 1.0)}
    real, fake = np.zeros((10, 1, 1, 2)), np.ones((10, 1, 1, 2))
    fig = plot_critic_surfaces(surfaces, xs, real, fake, points=4)
    assert [ax.get_title() for ax in fig.axes] == ["a: median |grad f| = 0.5",
                                                   "b: median |grad f| = 1"]
    assert len(fig.axes[0].collections[-1].get_offsets()) == 4      # the fake points drawn


def test_toy_critics_clipping_bounds_the_weights_and_the_penalty_reaches_slope_one():
    real, fake = ring_and_blob(512, seed=0)
    xs = np.linspace(-3, 3, 31, dtype="float32")
    clipped = train_toy_critic("weight clipping", real, fake, 200, clip_value=0.01, batch_size=128)
    assert max(float(np.abs(w.numpy()).max()) for w in clipped.trainable_variables) <= 0.01
    penalized = train_toy_critic("gradient penalty", real, fake, 200, batch_size=128)
    slope_clipped, slope_penalized = critic_surface(clipped, xs)[1], critic_surface(penalized, xs)[1]
    assert slope_penalized > 10 * slope_clipped          # notebook 04's assertion, in small
    assert 0.3 < slope_penalized < 2.0                   # of order 1, as the penalty asks
