"""The GAN walk (vanilla GAN, DCGAN, WGAN): each test can fail, on tiny shapes.

Everything runs on 16 or 32 px images with a few channels per layer, eagerly traced
(``jit_compile=False``) except the one XLA test, so the file runs in well under a minute on
a laptop CPU.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from mrigan_tf.models import (DCGAN, FAMILIES, WGAN, VanillaGAN, default_optimizers,
                              latent_noise, make_gan)
from mrigan_tf.models.losses import (feature_matching_loss, ns_discriminator_loss,
                                     ns_generator_loss, wasserstein_critic_loss,
                                     wasserstein_generator_loss)
from mrigan_tf.training.callbacks import (LossHistoryPlot, SampleGridCallback,
                                          joint_to_image_and_mask, plot_history)
from mrigan_tf.visualization import plt

# Keras 3.15's fit() warns that its default shuffle=True does nothing for a tf.data input;
# our datasets shuffle themselves.
pytestmark = pytest.mark.filterwarnings("ignore:`shuffle=True` was passed")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Small players: enough capacity for the toy problem, fast on a CPU.
TINY = {
    "gan": dict(latent_dim=16, generator_units=(64, 128), discriminator_units=(128, 64)),
    "dcgan": dict(latent_dim=16, width=8),
    "wgan": dict(latent_dim=16, width=8, n_critic=2),
}


def tiny_model(family: str, image_shape=(16, 16, 1), seed: int = 0, **options):
    keras.utils.set_random_seed(seed)
    return make_gan(family, image_shape, seed=seed, **{**TINY[family], **options})


def random_batch(image_shape=(16, 16, 1), batch_size: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (batch_size, *image_shape)).astype(np.float32)
    return images, np.zeros(batch_size, np.int32)


def batches(images: np.ndarray, batch_size: int, seed: int = 0) -> tf.data.Dataset:
    """(image, label) batches forever, like ``make_dataset(..., repeat=True)``."""
    labels = np.zeros(len(images), np.int32)
    return (tf.data.Dataset.from_tensor_slices((images, labels))
            .shuffle(len(images), seed=seed).repeat().batch(batch_size, drop_remainder=True))


def snapshot(model: keras.Model) -> list[np.ndarray]:
    return [v.numpy().copy() for v in model.trainable_variables]


def changed(before: list[np.ndarray], model: keras.Model) -> bool:
    return any(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables))


def same_weights(target: keras.Model, source: keras.Model) -> None:
    target.generator.set_weights(source.generator.get_weights())
    target.discriminator.set_weights(source.discriminator.get_weights())


# ## One training step


@pytest.mark.parametrize("family, image_shape", [
    ("gan", (16, 16, 1)),
    ("dcgan", (16, 16, 2)),   # the joint image+mask input
    ("wgan", (32, 32, 1)),
])
def test_fit_updates_both_players_and_logs_finite_losses(family, image_shape):
    model = tiny_model(family, image_shape)
    model.compile(jit_compile=False)
    generator_before = snapshot(model.generator)
    discriminator_before = snapshot(model.discriminator)
    images, _ = random_batch(image_shape, 16)

    # fit() hands train_step (images, labels) tuples; the labels must be ignored.
    history = model.fit(batches(images, 8), steps_per_epoch=2, epochs=1, verbose=0)

    assert changed(generator_before, model.generator), "the generator did not move"
    assert changed(discriminator_before, model.discriminator), "the discriminator did not move"
    assert set(history.history) == set(type(model).METRIC_NAMES)
    assert all(math.isfinite(values[-1]) for values in history.history.values())
    assert model.d_optimizer.iterations.numpy() == 2 * getattr(model, "n_critic", 1)
    assert model.g_optimizer.iterations.numpy() == 2
    assert model.sample(3).shape == (3, *image_shape)


def test_metric_names_are_the_documented_ones():
    assert VanillaGAN.METRIC_NAMES == ("d_loss", "g_loss", "d_real", "d_fake")
    assert DCGAN.METRIC_NAMES == VanillaGAN.METRIC_NAMES
    assert WGAN.METRIC_NAMES == ("d_loss", "g_loss", "em_distance")


def test_wgan_train_step_compiles_with_xla():
    # The seed generator, the unrolled critic loop and the in-place clipping under XLA.
    model = tiny_model("wgan")
    model.compile(jit_compile=True)
    images, labels = random_batch(batch_size=8)
    history = model.fit(images, labels, batch_size=8, epochs=1, verbose=0)
    assert model.jit_compile is True
    assert all(math.isfinite(v[-1]) for v in history.history.values())
    assert np.abs(np.concatenate([v.numpy().ravel() for v in model.critic.trainable_variables])
                  ).max() <= model.clip_value + 1e-7


# ## What makes each family that family


def test_wgan_critic_weights_stay_within_clip_value():
    model = tiny_model("wgan", n_critic=3)
    model.compile(jit_compile=False)
    images, _ = random_batch(batch_size=16)
    # Batch-norm scales start at 1 and N(0, 0.02) kernels exceed 0.01: clipping must act.
    initial = np.concatenate([v.numpy().ravel() for v in model.critic.trainable_variables])
    assert np.abs(initial).max() > model.clip_value

    model.fit(batches(images, 8), steps_per_epoch=3, epochs=1, verbose=0)

    for weight in model.critic.trainable_variables:
        values = weight.numpy()
        assert np.abs(values).max() <= model.clip_value + 1e-7, weight.path
    assert model.clip_value == 0.01  # the paper's c is the default


def test_wasserstein_losses():
    real = np.array([[2.0], [4.0]], np.float32)
    fake = np.array([[1.0], [-1.0]], np.float32)
    # critic: E f(fake) - E f(real) = 0 - 3; generator: -E f(fake) = 0
    assert float(wasserstein_critic_loss(real, fake)) == pytest.approx(-3.0)
    assert float(wasserstein_generator_loss(np.array([[1.0], [3.0]], np.float32))) == (
        pytest.approx(-2.0))


def test_label_smoothing_shifts_the_discriminator_loss_by_s_times_the_real_logit():
    real_logits = np.array([[2.0], [-1.0], [0.5]], np.float32)
    fake_logits = np.array([[-0.3], [0.7], [1.5]], np.float32)
    plain = float(ns_discriminator_loss(real_logits, fake_logits, 0.0))
    smoothed = float(ns_discriminator_loss(real_logits, fake_logits, 0.1))
    # BCE(l, 1 - s) = BCE(l, 1) + s * l
    assert smoothed - plain == pytest.approx(0.1 * real_logits.mean(), abs=1e-6)
    # the non-saturating generator loss is -log sigmoid(l) = softplus(-l)
    expected = np.log1p(np.exp(-fake_logits)).mean()
    assert float(ns_generator_loss(fake_logits)) == pytest.approx(expected, rel=1e-5)


def test_each_family_writes_its_losses_from_the_shared_ones():
    # A family's loss methods are the shared losses of its discriminator's scores, with its
    # own options (smoothing, feature matching) and logs; the step around them is BaseGAN's.
    real, labels = (tf.constant(a) for a in random_batch(batch_size=8))
    fake = tf.constant(random_batch(batch_size=8, seed=1)[0])
    gan = tiny_model("gan", label_smoothing=0.1)
    real_logits, fake_logits = gan.discriminate(real), gan.discriminate(fake)
    loss, logs = gan.discriminator_loss(real, fake, labels, None)
    assert set(logs) == {"d_loss", "d_real", "d_fake"}
    assert float(loss) == float(logs["d_loss"]) == pytest.approx(
        float(ns_discriminator_loss(real_logits, fake_logits, 0.1)), rel=1e-6)
    assert float(logs["d_real"]) == pytest.approx(float(tf.reduce_mean(tf.sigmoid(real_logits))))
    assert float(logs["d_fake"]) == pytest.approx(float(tf.reduce_mean(tf.sigmoid(fake_logits))))
    loss, logs = gan.generator_loss(real, fake, labels)
    assert float(loss) == float(logs["g_loss"]) == pytest.approx(
        float(ns_generator_loss(fake_logits)), rel=1e-6)

    matching = tiny_model("gan", feature_matching=True)
    features = matching.feature_extractor
    loss, _ = matching.generator_loss(real, fake, labels)
    assert float(loss) == pytest.approx(float(feature_matching_loss(
        features(real, training=True), features(fake, training=True))), rel=1e-6)
    assert float(loss) != pytest.approx(float(ns_generator_loss(matching.discriminate(fake))),
                                        rel=1e-2)

    wgan = tiny_model("wgan")
    real_scores, fake_scores = wgan.discriminate(real), wgan.discriminate(fake)
    loss, logs = wgan.discriminator_loss(real, fake, labels, None)
    assert float(loss) == pytest.approx(
        float(wasserstein_critic_loss(real_scores, fake_scores)), rel=1e-5, abs=1e-7)
    assert float(logs["em_distance"]) == -float(loss)
    loss, logs = wgan.generator_loss(real, fake, labels)
    assert float(loss) == pytest.approx(float(wasserstein_generator_loss(fake_scores)),
                                        rel=1e-5, abs=1e-7)
    # Only the WGAN constrains its discriminator after an update.
    weights = snapshot(gan.discriminator)
    gan.constrain_discriminator()
    assert not changed(weights, gan.discriminator)
    wgan.constrain_discriminator()
    assert max(np.abs(v.numpy()).max() for v in wgan.critic.trainable_variables) <= wgan.clip_value


def test_label_smoothing_changes_the_discriminator_loss_in_train_step():
    images, labels = random_batch(batch_size=8)
    plain = tiny_model("gan", seed=3)
    smoothed = tiny_model("gan", seed=3, label_smoothing=0.1)
    same_weights(smoothed, plain)
    for model in (plain, smoothed):
        model.compile(jit_compile=False)
    real_logits = plain.discriminator(images, training=True).numpy()

    plain_logs = plain.train_step((images, labels))
    smoothed_logs = smoothed.train_step((images, labels))

    # Same weights, same noise: the first discriminator loss differs exactly by s * E[l(x)].
    difference = float(smoothed_logs["d_loss"]) - float(plain_logs["d_loss"])
    assert abs(difference) > 1e-4
    assert difference == pytest.approx(0.1 * real_logits.mean(), abs=1e-5)


def test_feature_matching_loss():
    features = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32)
    assert float(feature_matching_loss(features, features[::-1])) == pytest.approx(0.0, abs=1e-10)
    shifted = features + np.array([1.0, 0.0, 2.0, 0.0, 0.0], np.float32)
    assert float(feature_matching_loss(features, shifted)) == pytest.approx(5.0, rel=1e-5)


def test_feature_matching_changes_the_generator_loss_only():
    images, labels = random_batch(batch_size=8)
    plain = tiny_model("gan", seed=4)
    matching = tiny_model("gan", seed=4, feature_matching=True)
    same_weights(matching, plain)
    for model in (plain, matching):
        model.compile(jit_compile=False)
    generator_before = snapshot(matching.generator)

    plain_logs = plain.train_step((images, labels))
    matching_logs = matching.train_step((images, labels))

    # The discriminator's step is the same game; only the generator's objective changed.
    assert float(matching_logs["d_loss"]) == pytest.approx(float(plain_logs["d_loss"]), rel=1e-5)
    assert float(matching_logs["g_loss"]) != pytest.approx(float(plain_logs["g_loss"]), rel=1e-2)
    assert changed(generator_before, matching.generator)
    # the feature extractor is a view of the discriminator, not a copy
    assert matching.feature_extractor.layers[-1] is matching.discriminator.get_layer("features")


def test_dcgan_follows_the_radford_guidelines():
    model = tiny_model("dcgan", (32, 32, 2))
    generator, discriminator = model.generator, model.discriminator
    g_types = [type(layer).__name__ for layer in generator.layers]
    d_types = [type(layer).__name__ for layer in discriminator.layers]
    # strided (transposed) convolutions, no pooling, no dense hidden layers in D
    assert not any("Pooling" in t for t in g_types + d_types)
    assert g_types.count("Conv2DTranspose") == 3 and d_types.count("Conv2D") == 3
    assert all(layer.strides == (2, 2) for layer in generator.layers + discriminator.layers
               if type(layer).__name__ in ("Conv2D", "Conv2DTranspose"))
    # batch norm except G's output and D's input, ReLU in G, LeakyReLU(0.2) in D, tanh out
    assert g_types[-1] == "Conv2DTranspose" and generator.layers[-1].activation.__name__ == "tanh"
    assert d_types[1] == "Conv2D" and d_types[2] == "LeakyReLU"
    assert g_types.count("BatchNormalization") == 3 and d_types.count("BatchNormalization") == 2
    assert "ReLU" in g_types and "LeakyReLU" not in g_types
    assert all(layer.negative_slope == pytest.approx(0.2) for layer in discriminator.layers
               if type(layer).__name__ == "LeakyReLU")
    assert generator.output_shape == (None, 32, 32, 2)
    assert discriminator.output_shape == (None, 1)


@pytest.mark.parametrize("size", [16, 64, 128, 256])
def test_dcgan_size_follows_the_data(size):
    model = make_gan("dcgan", (size, size, 1), latent_dim=4, width=2)
    assert model.generator.output_shape == (None, size, size, 1)
    assert model.discriminator.input_shape == (None, size, size, 1)


@pytest.mark.parametrize("image_shape", [(48, 48, 1), (32, 16, 1), (32, 32)])
def test_conv_models_reject_shapes_they_cannot_generate(image_shape):
    with pytest.raises(ValueError, match="power of two|square|height, width"):
        make_gan("dcgan", image_shape, width=2)


def test_default_optimizers_are_the_papers():
    d_adam, g_adam = default_optimizers("dcgan")
    assert isinstance(d_adam, keras.optimizers.Adam) and d_adam is not g_adam
    assert float(d_adam.learning_rate) == pytest.approx(2e-4)
    assert float(g_adam.beta_1) == pytest.approx(0.5)
    d_rms, g_rms = default_optimizers("wgan")
    assert isinstance(d_rms, keras.optimizers.RMSprop)
    assert isinstance(g_rms, keras.optimizers.RMSprop)
    assert float(d_rms.learning_rate) == pytest.approx(5e-5)
    d_gp, g_gp = default_optimizers("cwgan-gp")
    assert float(d_gp.learning_rate) == pytest.approx(1e-4)
    assert float(d_gp.beta_1) == 0.0 and float(g_gp.beta_2) == pytest.approx(0.9)
    assert set(FAMILIES) >= {"gan", "dcgan", "wgan", "cwgan-gp", "progan"}
    with pytest.raises(ValueError, match="unknown model"):
        make_gan("stylegan", (16, 16, 1))


def test_compile_builds_both_optimizers_and_rejects_a_shared_one():
    model = tiny_model("gan")
    with pytest.raises(ValueError, match="two optimizer"):
        shared = keras.optimizers.Adam()
        model.compile(shared, shared, jit_compile=False)
    model.compile(jit_compile=False)
    assert model.d_optimizer.built and model.g_optimizer.built
    assert model.jit_compile is False


# ## Learning something real


def two_square_images(size: int = 16, square: int = 6) -> np.ndarray:
    """The toy data set: a bright square in the left or the right half of a dark slice."""
    images = []
    for column in (1, size // 2 + 1):
        for row in range(2, size - square - 1):
            image = -np.ones((size, size, 1), np.float32)
            image[row:row + square, column:column + square] = 1.0
            images.append(image)
    return np.stack(images)


def nearest_distances(samples: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: RMS pixel distance to its nearest data image, and that image's index."""
    distances = np.sqrt(((samples[:, None] - data[None]) ** 2).mean(axis=(2, 3, 4)))
    return distances.min(axis=1), distances.argmin(axis=1)


def fast_adam():
    return keras.optimizers.Adam(1e-3, beta_1=0.5), keras.optimizers.Adam(1e-3, beta_1=0.5)


def fast_rmsprop():
    return keras.optimizers.RMSprop(1e-3), keras.optimizers.RMSprop(1e-3)


LEARNING = {
    # (family options, optimizers, generator steps): faster learning rates than the papers'
    # so a few hundred steps are enough on the toy set. The clipped WGAN critic needs more
    # channels than the others to tell the two modes apart within that budget.
    "gan": (TINY["gan"], fast_adam, 500),
    "dcgan": (dict(latent_dim=16, width=16), fast_adam, 300),
    "wgan": (dict(latent_dim=16, width=32), fast_rmsprop, 300),
}


@pytest.mark.parametrize("family", ["gan", "dcgan", "wgan"])
def test_learns_the_two_mode_toy_distribution(family):
    options, optimizers, steps = LEARNING[family]
    keras.utils.set_random_seed(0)
    modes = two_square_images()
    left = np.arange(len(modes)) < len(modes) // 2
    data = modes[np.random.default_rng(0).integers(0, len(modes), 1024)]
    model = make_gan(family, data.shape[1:], seed=0, **options)
    model.compile(*optimizers(), jit_compile=False)
    # A generator that only learned the average slice (both squares, blurred) scores this.
    average_image_distance = nearest_distances(modes.mean(0, keepdims=True), modes)[0][0]

    initial, _ = nearest_distances(model.sample(128, seed=1), modes)
    model.fit(batches(data, 32), steps_per_epoch=steps, epochs=1, verbose=0)
    final, nearest = nearest_distances(model.sample(128, seed=1), modes)

    assert final.mean() < 0.6 * initial.mean(), (initial.mean(), final.mean())
    assert final.mean() < average_image_distance, (final.mean(), average_image_distance)
    # Both modes are generated: no collapse onto one side.
    share_left = left[nearest].mean()
    assert 0.15 < share_left < 0.85, share_left


# ## Samples, saving and loading


def test_sample_is_a_function_of_the_seed():
    model = tiny_model("dcgan")
    np.testing.assert_array_equal(model.sample(4, seed=1), model.sample(4, seed=1))
    assert not np.allclose(model.sample(4, seed=1), model.sample(4, seed=2))
    np.testing.assert_allclose(model(latent_noise(4, 16, 1)).numpy(), model.sample(4, seed=1),
                               atol=1e-6)
    assert model.sample(5, seed=1, batch_size=2).shape == (5, 16, 16, 1)


@pytest.mark.parametrize("family, options", [
    ("gan", dict(label_smoothing=0.1, feature_matching=True)),
    ("dcgan", dict()),
    ("wgan", dict(clip_value=0.02)),
])
def test_keras_file_round_trip_reproduces_samples(family, options, tmp_path):
    model = tiny_model(family, **options)
    model.compile(jit_compile=False)
    images, _ = random_batch(batch_size=16)
    # after training, so batch-norm statistics and optimizer slots are not at their defaults
    model.fit(batches(images, 8), steps_per_epoch=2, epochs=1, verbose=0)
    path = tmp_path / f"{family}.keras"
    model.save(path)

    loaded = keras.models.load_model(path)

    assert type(loaded) is type(model)
    np.testing.assert_allclose(loaded.sample(8, seed=5), model.sample(8, seed=5), atol=1e-6)
    for key, value in options.items():
        assert getattr(loaded, key) == value
    assert int(loaded.g_optimizer.iterations) == int(model.g_optimizer.iterations)
    assert int(loaded.d_optimizer.iterations) == int(model.d_optimizer.iterations)
    # and it trains on from there
    history = loaded.fit(batches(images, 8), steps_per_epoch=1, epochs=1, verbose=0)
    assert all(math.isfinite(v[-1]) for v in history.history.values())


def test_weights_checkpoint_restores_both_optimizers(tmp_path):
    # What BackupAndRestore does on --resume: save_weights, then load into a fresh model.
    model = tiny_model("dcgan")
    model.compile(jit_compile=False)
    images, _ = random_batch(batch_size=16)
    model.fit(batches(images, 8), steps_per_epoch=3, epochs=1, verbose=0)
    model.save_weights(tmp_path / "run.weights.h5")

    resumed = tiny_model("dcgan", seed=9)
    resumed.compile(jit_compile=False)
    resumed.load_weights(tmp_path / "run.weights.h5")

    for name in ("d_optimizer", "g_optimizer"):
        saved, restored = getattr(model, name), getattr(resumed, name)
        assert int(restored.iterations) == 3
        for a, b in zip(saved.variables, restored.variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(resumed.sample(4, seed=2), model.sample(4, seed=2), atol=1e-6)


# ## Callbacks


def test_joint_samples_split_into_image_and_thresholded_mask():
    samples = np.stack([np.full((4, 4), 0.3), np.full((4, 4), -0.2)], axis=-1)[None]
    images, masks = joint_to_image_and_mask(samples.astype(np.float32))
    assert images.shape == (1, 4, 4, 1) and masks.shape == (1, 4, 4, 1)
    assert masks.dtype == np.uint8 and not masks.any()
    assert joint_to_image_and_mask(samples[..., :1])[1] is None


def test_sample_grid_and_loss_plot_write_a_png_per_epoch(tmp_path):
    model = tiny_model("dcgan", (16, 16, 2))  # joint image+mask: drawn with the mask overlay
    model.compile(jit_compile=False)
    images, _ = random_batch((16, 16, 2), 16)
    grids = SampleGridCallback(tmp_path / "samples", n=4, ncols=2, initial=True)
    curves = LossHistoryPlot(tmp_path / "losses.png")

    history = model.fit(batches(images, 8), steps_per_epoch=1, epochs=3, verbose=0,
                        callbacks=[grids, curves])

    expected = [tmp_path / "samples" / f"samples_epoch{e:04d}.png" for e in range(4)]
    assert grids.paths == expected
    for path in expected + [tmp_path / "losses.png"]:
        assert path.read_bytes()[:8] == PNG_MAGIC, path
    assert not list(tmp_path.glob("**/.*partial*")), "temporary files left behind"
    assert curves.history.keys() == history.history.keys()
    assert len(curves.history["g_loss"]) == 3

    figure = plot_history(history, tmp_path / "from_history.png", title="dcgan")
    assert (tmp_path / "from_history.png").read_bytes()[:8] == PNG_MAGIC
    assert len(figure.axes) == 2  # the losses, and d_real / d_fake on their own scale
    plt.close(figure)
    with pytest.raises(ValueError, match="no values"):
        plot_history({})


# ## The small-data tricks: generator EMA, R1, spectral norm, minibatch stddev


def test_ema_weights_are_the_closed_form_average_after_k_steps():
    """theta_ema after k generator updates with decay_t = min(d, (1 + t) / (10 + t)),
    computed here from the generator's weights after each update; BN statistics copied."""
    model = tiny_model("dcgan", ema_decay=0.2)
    model.compile(jit_compile=False)
    images, labels = random_batch()
    trainable = [w.trainable for w in model.generator.weights]
    expected = [w.numpy().copy() for w in model.generator.weights]
    for t in range(1, 4):
        model.train_step((tf.constant(images), tf.constant(labels)))
        decay = min(0.2, (1 + t) / (10 + t))       # 2/11, then 0.2 (the ramp, then the cap)
        expected = [decay * e + (1 - decay) * w.numpy() if is_trainable else w.numpy()
                    for e, w, is_trainable in zip(expected, model.generator.weights, trainable)]
    for average, value in zip(model.ema_generator.weights, expected):
        np.testing.assert_allclose(average.numpy(), value, rtol=1e-5, atol=1e-7)
    # The average lags behind the generator, and samples are the average's.
    assert not np.allclose(model.ema_generator.weights[0].numpy(), model.generator.weights[0].numpy())
    z = latent_noise(4, 16, seed=2)
    np.testing.assert_allclose(model.sample(latent=z),
                               model.ema_generator(z, training=False).numpy(), atol=1e-6)
    assert not np.allclose(model.sample(latent=z), model.generator(z, training=False).numpy())


def test_ema_is_saved_and_restored_with_the_weights(tmp_path):
    model = tiny_model("gan", ema_decay=0.9)
    model.compile(jit_compile=False)
    images, labels = random_batch()
    model.train_step((tf.constant(images), tf.constant(labels)))
    model.save_weights(tmp_path / "w.weights.h5")
    model.save(tmp_path / "m.keras")
    again = tiny_model("gan", ema_decay=0.9, seed=1)
    again.compile(jit_compile=False)
    again.load_weights(tmp_path / "w.weights.h5")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.ema_decay == 0.9
    for other in (again, loaded):
        np.testing.assert_allclose(other.sample(4, seed=3), model.sample(4, seed=3), atol=1e-6)
    # Without EMA the model keeps its old variables: old backups still load.
    assert tiny_model("gan").ema_generator is None and "ema_decay" not in tiny_model("gan").get_config()


def test_r1_in_the_step_of_a_family_without_its_own_penalty():
    model = tiny_model("dcgan", r1_weight=5.0)
    model.compile(jit_compile=False)
    images, labels = random_batch()
    logs = model.train_step((tf.constant(images), tf.constant(labels)))
    assert set(logs) == {"d_loss", "g_loss", "d_real", "d_fake", "r1"}
    assert float(logs["r1"]) > 0


def test_spectral_norm_makes_the_top_singular_value_one():
    """A kernel with singular values (3, 1, 0.5): after the power iteration, the layer's
    sigma is 3, it computes x (W / sigma) + b, whose top singular value is 1, and the
    stored W is untouched."""
    from mrigan_tf.models.blocks import SpectralNorm, update_spectral_norms

    rng = np.random.default_rng(0)
    left, _ = np.linalg.qr(rng.normal(size=(4, 3)))
    right, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    kernel = (left @ np.diag([3.0, 1.0, 0.5]) @ right.T).astype(np.float32)
    inputs = keras.Input((4,))
    layer = SpectralNorm(keras.layers.Dense(3))
    network = keras.Model(inputs, layer(inputs))
    layer.layer.set_weights([kernel, np.full(3, 0.1, np.float32)])
    for _ in range(20):
        update_spectral_norms(network)
    np.testing.assert_allclose(float(layer.sigma()), 3.0, rtol=1e-4)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    effective = kernel / float(layer.sigma())
    np.testing.assert_allclose(network(x, training=True).numpy(), x @ effective + 0.1, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(np.linalg.svd(effective, compute_uv=False)[0], 1.0, rtol=1e-4)
    np.testing.assert_array_equal(layer.kernel.numpy(), kernel)
    # A family's critic wraps every layer with a kernel; its u follows each critic update.
    model = tiny_model("wgan", spectral_norm=True, batch_norm=False)
    norms = [layer for layer in model.critic._flatten_layers() if isinstance(layer, SpectralNorm)]
    assert len(norms) == 3     # two convolutions and the score
    model.compile(jit_compile=False)
    images, labels = random_batch()
    u = norms[0].vector_u.numpy().copy()
    model.train_step((tf.constant(images), tf.constant(labels)))
    assert not np.array_equal(u, norms[0].vector_u.numpy())


def test_minibatch_std_layer_is_the_mean_group_deviation():
    from mrigan_tf.models.blocks import MinibatchStdDev

    x = np.random.default_rng(0).normal(size=(8, 3, 3, 2)).astype(np.float32)
    out = MinibatchStdDev(4)(x).numpy()
    groups = x.reshape(2, 4, 3, 3, 2)
    expected = np.sqrt(groups.var(axis=1) + 1e-8).mean(axis=(1, 2, 3))
    np.testing.assert_array_equal(out[..., :2], x)
    np.testing.assert_allclose(out[..., 2], np.repeat(expected, 4)[:, None, None]
                               * np.ones((8, 3, 3)), rtol=1e-5)
    # A batch the group size does not divide uses the largest group that divides it.
    assert MinibatchStdDev(4)(x[:6]).shape == (6, 3, 3, 3)
    assert tiny_model("gan", minibatch_std=4).discriminator.get_layer("minibatch_std")
