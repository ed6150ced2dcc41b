"""Joint GAN + U-Net training: the mask-consistency loss (``--mask-consistency LAMBDA``).

Known answers on a stand-in segmenter whose output is known (P(tumor) = sigmoid(20 x)),
controls (a mask that outlines what is segmented scores low, a shifted one high), the
gradient reaching both the generated image and mask, the exact term added to the generator
loss, and one tiny run through the command line's path (a U-Net run as the segmenter;
model.keras round trip; a run that resumes rebuilds it).
"""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from mrigan_tf.errors import MriganError
from mrigan_tf.models.cwgan_gp import make_cwgan_gp
from mrigan_tf.models.progan import make_progan
from mrigan_tf.models.mask_consistency import DICE_SMOOTHING, mask_consistency_loss

SIZE = 16


def threshold_segmenter(size: int = SIZE) -> keras.Model:
    """A stand-in U-Net with a known answer: P(tumor) = sigmoid(20 x) per pixel."""
    image = keras.Input((size, size, 1))
    probability = keras.layers.Conv2D(1, 1, activation="sigmoid",
                                      kernel_initializer=keras.initializers.Constant(20.0))(image)
    return keras.Model(image, probability)


def _reference(fake: np.ndarray) -> float:
    """The module docstring's formula in NumPy, float64."""
    image, mask = fake[..., :1].astype(np.float64), fake[..., 1:].astype(np.float64)
    s = 1.0 / (1.0 + np.exp(-20.0 * image))
    m = np.clip((mask + 1.0) / 2.0, 1e-6, 1 - 1e-6)
    bce = -np.mean(s * np.log(m) + (1 - s) * np.log(1 - m))
    dice = np.mean((2 * (s * m).sum(axis=(1, 2, 3)) + DICE_SMOOTHING)
                   / (s.sum(axis=(1, 2, 3)) + m.sum(axis=(1, 2, 3)) + DICE_SMOOTHING))
    return bce + 1.0 - dice


def _blob_pairs(n: int = 6, shift: int = 0, seed: int = 0) -> np.ndarray:
    """Images with a bright square (a "tumor") on a dark background, and its mask moved
    right by ``shift`` pixels; both channels in [-1, 1]."""
    rng = np.random.default_rng(seed)
    pairs = np.full((n, SIZE, SIZE, 2), -1.0, np.float32)
    for i in range(n):
        y, x = rng.integers(2, SIZE - 8, 2)
        pairs[i, y:y + 5, x:x + 5, 0] = 1.0
        pairs[i, y:y + 5, x + shift:x + shift + 5, 1] = 1.0
    return pairs


def test_the_loss_is_the_formula():
    fake = np.random.default_rng(0).uniform(-1, 1, (4, SIZE, SIZE, 2)).astype(np.float32)
    got = float(mask_consistency_loss(fake, threshold_segmenter()))
    np.testing.assert_allclose(got, _reference(fake), rtol=1e-5)


def test_a_mask_that_outlines_the_tumor_scores_low_and_a_shifted_one_high():
    segmenter = threshold_segmenter()
    matching = float(mask_consistency_loss(_blob_pairs(), segmenter))
    shifted = float(mask_consistency_loss(_blob_pairs(shift=4), segmenter))
    # Healthy slices: nothing to segment and an empty mask is perfect as well.
    healthy = np.full((3, SIZE, SIZE, 2), -1.0, np.float32)
    assert matching < 0.01 and float(mask_consistency_loss(healthy, segmenter)) < 0.01
    # 4 of the square's 5 columns off: Dice 0.2, and BCE on the 40 disagreeing pixels.
    assert shifted > 1.0
    np.testing.assert_allclose(shifted, _reference(_blob_pairs(shift=4)), rtol=1e-3)  # float32 logs


def test_the_gradient_reaches_the_image_and_the_mask():
    # Intensities near 0, where the stand-in's sigmoid(20 x) is not saturated.
    fake = tf.Variable(np.random.default_rng(1).uniform(-0.2, 0.2, (4, SIZE, SIZE, 2))
                       .astype(np.float32))
    with tf.GradientTape() as tape:
        loss = mask_consistency_loss(fake, threshold_segmenter())
    grad = tape.gradient(loss, fake).numpy()
    assert np.abs(grad[..., 0]).max() > 1e-4        # through the frozen segmenter
    assert np.abs(grad[..., 1]).max() > 1e-4        # the mask itself
    # A small step down it lowers the loss.
    moved = fake.numpy() - 0.05 * grad / np.abs(grad).max()
    assert float(mask_consistency_loss(moved, threshold_segmenter())) < float(loss)


@pytest.mark.parametrize("factory", [make_cwgan_gp, make_progan], ids=["cwgan-gp", "progan"])
def test_the_generator_loss_adds_lambda_times_the_term(factory):
    shape, options = (SIZE, SIZE, 2), dict(latent_dim=8, width=4, seed=1)
    plain = factory(shape, **options)
    joint = factory(shape, **options, mask_consistency=2.5, mask_segmenter=threshold_segmenter())
    joint.generator.set_weights(plain.generator.get_weights())
    joint.critic.set_weights(plain.critic.get_weights())
    assert "mask_consistency" in joint.logged_names()
    latent = keras.ops.convert_to_tensor(np.random.default_rng(0).standard_normal((4, 8)),
                                         "float32")
    labels = np.array([0, 1, 0, 1], np.int32)
    fake = plain.generate(latent, labels, training=False)
    real = _blob_pairs(4)
    plain_loss, _ = plain.generator_loss(real, fake, labels)
    joint_loss, logs = joint.generator_loss(real, fake, labels)
    term = float(mask_consistency_loss(fake, joint.mask_segmenter))
    np.testing.assert_allclose(float(logs["mask_consistency"]), term, rtol=1e-6)
    np.testing.assert_allclose(float(joint_loss) - float(plain_loss), 2.5 * term, rtol=1e-4)
    assert joint.mask_segmenter.trainable is False


@pytest.mark.parametrize("options, words", [
    (dict(mask_consistency=1.0), "go together"),
    (dict(mask_segmenter="S"), "go together"),
    (dict(mask_consistency=-1.0, mask_segmenter="S"), ">= 0"),
])
def test_the_options_go_together(options, words, squares_dir):
    from mrigan_tf.training.runner import TrainConfig

    with pytest.raises(MriganError, match=words):
        TrainConfig(model="cwgan-gp", data=str(squares_dir), epochs=1, model_options=options)
    with pytest.raises(MriganError, match="option of --model cwgan-gp and progan, not of dcgan"):
        TrainConfig(model="dcgan", data=str(squares_dir), epochs=1, model_options=options)


def test_a_segmenter_of_another_size_is_refused():
    with pytest.raises(ValueError, match="must map"):
        make_cwgan_gp((SIZE, SIZE, 2), latent_dim=8, width=4, mask_consistency=1.0,
                      mask_segmenter=threshold_segmenter(SIZE * 2))


def test_a_run_trains_with_a_unet_run_as_segmenter_and_reloads(squares_dir, tmp_path):
    from mrigan_tf.training.runner import TrainConfig, load_run, train_gan
    from mrigan_tf.training.segmentation import SegmentationConfig, train_unet

    unet_run = tmp_path / "unet"
    unet, _ = train_unet(SegmentationConfig(data=str(squares_dir), epochs=1, steps_per_epoch=2,
                                            batch_size=8, jit_compile=False,
                                            model_options={"width": 4}), unet_run, verbose=0)
    options = dict(latent_dim=8, width=4, n_critic=1, mask_consistency=5.0,
                   mask_segmenter=str(unet_run))
    config = TrainConfig(model="cwgan-gp", data=str(squares_dir), epochs=1, steps_per_epoch=2,
                         batch_size=8, jit_compile=False, samples=4, model_options=options)
    run = tmp_path / "gan"
    model, history = train_gan(config, run, verbose=0)
    assert len(history["mask_consistency"]) == 1 and np.isfinite(history["mask_consistency"]).all()
    assert "mask_consistency" in (run / "history.csv").read_text().splitlines()[0]
    # The run's config names the U-Net run; its model.keras holds the frozen U-Net itself.
    saved = json.loads((run / "config.json").read_text())
    assert saved["train"]["model_options"]["mask_segmenter"] == str(unet_run)
    loaded, _, _ = load_run(run)
    assert loaded.mask_consistency == 5.0
    for mine, theirs in zip(loaded.mask_segmenter.weights, unet.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine),
                                      keras.ops.convert_to_numpy(theirs))
    # Its generator is the trained one (the frozen U-Net did not move).
    np.testing.assert_array_equal(loaded.sample(4, seed=0), model.sample(4, seed=0))
    # A GAN run is no segmenter.
    with pytest.raises(MriganError, match="needs a U-Net run"):
        bad = dataclasses.replace(config, model_options={**options, "mask_segmenter": str(run)})
        train_gan(bad, tmp_path / "bad", verbose=0)
    assert not (tmp_path / "bad").exists()
