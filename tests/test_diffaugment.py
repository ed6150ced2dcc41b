"""DiffAugment: geometry moves image and mask together, intensity touches the image only,
gradients flow, and it compiles under XLA."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from mrigan_tf.models.diffaugment import DiffAugment, cutout, translate


def _squares(batch=8, size=16):
    x = np.full((batch, size, size, 2), -1.0, np.float32)
    x[:, 6:10, 6:10, :] = 1.0          # a bright square and its mask, aligned
    return tf.constant(x)


def test_translation_moves_image_and_mask_together_and_keeps_content():
    y = translate(_squares(), keras.random.SeedGenerator(3)).numpy()
    assert np.array_equal(y[..., 0], y[..., 1])
    # Shifts are at most 2 px at 16 px, so the 4x4 square never leaves the picture.
    assert all((y[b, ..., 0] > 0).sum() == 16 for b in range(len(y)))
    moved = [tuple(np.argwhere(y[b, ..., 0] > 0).min(axis=0)) for b in range(len(y))]
    assert len(set(moved)) > 1, "every sample got the same shift"
    assert all(abs(r - 6) <= 2 and abs(c - 6) <= 2 for r, c in moved)


def test_cutout_erases_to_background_in_both_channels():
    x = tf.ones((16, 16, 16, 2))
    y = cutout(x, keras.random.SeedGenerator(0)).numpy()
    erased = y[..., 0] == -1.0
    assert np.array_equal(erased, y[..., 1] == -1.0)
    assert 0 < erased.mean() < 0.5     # at most a quarter of each image (a half-size square)


def test_intensity_changes_touch_the_image_only():
    x = _squares()
    y = DiffAugment("brightness,contrast", seed=1)(x).numpy()
    assert np.array_equal(y[..., 1], x.numpy()[..., 1])
    assert not np.allclose(y[..., 0], x.numpy()[..., 0])


def test_full_policy_keeps_masks_binary():
    y = DiffAugment(seed=2)(_squares()).numpy()
    assert set(np.unique(y[..., 1]).tolist()) <= {-1.0, 1.0}


def test_gradient_flows_to_the_input():
    x = tf.Variable(_squares())
    layer = DiffAugment(seed=0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) ** 2)
    grad = tape.gradient(loss, x)
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0


def test_compiles_with_xla_and_draws_new_randomness_each_call():
    layer = DiffAugment(seed=0)
    step = tf.function(lambda t: layer(t), jit_compile=True)
    a, b = step(_squares()).numpy(), step(_squares()).numpy()
    assert a.shape == (8, 16, 16, 2)
    assert not np.array_equal(a, b)


def test_empty_policy_is_identity_and_unknown_policy_is_refused():
    x = _squares()
    assert np.array_equal(DiffAugment("")(x).numpy(), x.numpy())
    with pytest.raises(ValueError, match="unknown DiffAugment"):
        DiffAugment("translation,rotate")


def test_config_round_trip():
    layer = DiffAugment("cutout,translation", image_channels=1, seed=5)
    clone = DiffAugment.from_config(layer.get_config())
    assert clone.policy == "translation,cutout" and clone.seed == 5
