"""The conditional WGAN-GP: the penalty is right, the step is right, the model learns."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers, ops

from mrigan_tf.models.cwgan_gp import (ConditionalWGANGP, build_conditional_critic,
                                       build_conditional_generator, make_cwgan_gp)
from mrigan_tf.models.losses import (gradient_penalty, hinge_discriminator_loss,
                                     hinge_generator_loss, interpolate, lsgan_discriminator_loss,
                                     lsgan_generator_loss, ns_discriminator_loss,
                                     ns_generator_loss, wasserstein_critic_loss,
                                     wasserstein_generator_loss)


def _critic_from(fn, size=4, channels=2):
    image = keras.Input((size, size, channels))
    label = keras.Input((), dtype="int32")
    return keras.Model([image, label], fn(image))


def _tiny_generator(size=4, channels=2, latent_dim=4, num_classes=2):
    """(z, class) -> (size, size, channels): the other player, for a model around a critic."""
    z = keras.Input((latent_dim,))
    label = keras.Input((), dtype="int32")
    x = layers.Concatenate()([z, layers.Embedding(num_classes, 2)(label)])
    x = layers.Dense(size * size * channels, activation="tanh")(x)
    return keras.Model([z, label], layers.Reshape((size, size, channels))(x))


def _model_around(critic, size=4, channels=2, **options):
    return ConditionalWGANGP(_tiny_generator(size, channels), critic, latent_dim=4, **options)


def _penalty(model, real, fake, labels, alpha):
    """The gradient penalty as the model's critic loss computes it."""
    return gradient_penalty(model.input_gradients(interpolate(real, fake, alpha), labels))


def _linear_critic(w, size=4, channels=2):
    critic = _critic_from(lambda x: layers.Dense(1)(layers.Flatten()(x)), size, channels)
    critic.layers[-1].set_weights([w, np.zeros(1, np.float32)])
    return critic


def test_gradient_penalty_of_a_linear_critic_is_the_squared_norm_gap():
    # D(x) = <w, x> + b has gradient w everywhere: GP = (||w|| - 1)^2 exactly.
    w = np.random.default_rng(0).normal(size=(32, 1)).astype(np.float32)
    model = _model_around(_linear_critic(w))
    real = tf.random.normal((5, 4, 4, 2))
    fake = tf.random.normal((5, 4, 4, 2))
    alpha = tf.random.uniform((5, 1, 1, 1))
    labels = tf.zeros(5, tf.int32)
    # The input gradient is w for every sample, in the image's layout (Flatten is row-major).
    grads = model.input_gradients(interpolate(real, fake, alpha), labels).numpy()
    assert grads.dtype == np.float32
    np.testing.assert_allclose(grads, np.broadcast_to(w.reshape(4, 4, 2), grads.shape), rtol=1e-6)
    gp = float(_penalty(model, real, fake, labels, alpha))
    assert gp == pytest.approx((np.linalg.norm(w) - 1.0) ** 2, rel=1e-5)


def test_gradient_penalty_of_a_quadratic_critic_matches_a_hand_computation():
    # D(x) = sum(x^2): gradient 2 x_hat, with x_hat = alpha*real + (1-alpha)*fake per sample.
    model = _model_around(_critic_from(lambda x: ops.sum(ops.square(x), axis=(1, 2, 3))))
    rng = np.random.default_rng(1)
    real = rng.normal(size=(6, 4, 4, 2)).astype(np.float32)
    fake = rng.normal(size=(6, 4, 4, 2)).astype(np.float32)
    alpha = rng.uniform(size=(6, 1, 1, 1)).astype(np.float32)
    labels = tf.zeros(6, tf.int32)
    x_hat = alpha * real + (1 - alpha) * fake
    np.testing.assert_allclose(model.input_gradients(interpolate(real, fake, alpha), labels),
                               2 * x_hat, rtol=1e-5, atol=1e-6)
    norms = np.sqrt(((2 * x_hat) ** 2).reshape(6, -1).sum(axis=1))
    expected = np.mean((norms - 1.0) ** 2)
    gp = float(_penalty(model, real, fake, labels, alpha))
    assert gp == pytest.approx(expected, rel=1e-5)


def test_gradient_penalty_stays_finite_when_the_gradient_is_exactly_zero():
    # A critic with all-zero weights has gradient 0: sqrt'(0) would be infinite without eps.
    critic = _critic_from(lambda x: layers.Dense(1, kernel_initializer="zeros")(layers.Flatten()(x)))
    model = _model_around(critic)
    real, fake = tf.random.normal((4, 4, 4, 2)), tf.random.normal((4, 4, 4, 2))
    with tf.GradientTape() as tape:
        gp = _penalty(model, real, fake, tf.zeros(4, tf.int32), tf.fill((4, 1, 1, 1), 0.5))
    kernel = critic.layers[-1].kernel    # the penalty depends on the kernel, not the bias
    grad = tape.gradient(gp, kernel)
    assert float(gp) == pytest.approx(1.0, abs=1e-5)
    assert grad is not None and np.all(np.isfinite(grad.numpy()))


def test_critic_and_generator_losses_of_a_linear_critic():
    # D(x) = <w, x>: every term of the two loss methods is known in closed form.
    rng = np.random.default_rng(4)
    w = rng.normal(size=(32, 1)).astype(np.float32)
    real, fake = (rng.normal(size=(6, 4, 4, 2)).astype(np.float32) for _ in "rf")
    labels = tf.constant([0, 1, 0, 1, 1, 0], tf.int32)
    alpha = tf.constant(rng.uniform(size=(6, 1, 1, 1)).astype(np.float32))
    d_real, d_fake = real.reshape(6, -1) @ w, fake.reshape(6, -1) @ w
    real, fake = tf.constant(real), tf.constant(fake)
    wasserstein = d_real.mean() - d_fake.mean()
    gp = (np.linalg.norm(w) - 1.0) ** 2
    for gp_every, drift in ((1, 0.0), (2, 0.0), (1, 0.5)):
        model = _model_around(_linear_critic(w), n_critic=2, gp_every=gp_every, drift_weight=drift)
        unpenalized = -wasserstein + drift * np.mean(d_real ** 2)
        loss, logs = model.discriminator_loss(real, fake, labels, None)
        assert set(logs) == {"d_loss", "wasserstein"}
        assert float(loss) == pytest.approx(unpenalized, rel=1e-5)
        assert float(logs["wasserstein"]) == pytest.approx(wasserstein, rel=1e-5)
        # With interpolation weights: + gp_every * lambda * GP (lazy regularization's weight)
        loss, logs = model.discriminator_loss(real, fake, labels, alpha)
        assert float(logs["gp"]) == pytest.approx(gp, rel=1e-5)
        assert float(logs["d_loss"]) == pytest.approx(unpenalized, rel=1e-5)
        assert float(loss) == pytest.approx(unpenalized + gp_every * 10.0 * gp, rel=1e-5)
        # The logged d_loss is -W + lambda * GP whatever gp_every is.
        assert float(model.finish_logs(logs)["d_loss"]) == pytest.approx(
            unpenalized + 10.0 * gp, rel=1e-5)
        g_loss, g_logs = model.generator_loss(real, fake, labels)
        assert float(g_loss) == float(g_logs["g_loss"]) == pytest.approx(-d_fake.mean(), rel=1e-5)


@pytest.mark.parametrize("offset", [0.25, 2.0])
def test_penalty_drives_the_critic_gradient_norm_to_its_optimum(offset):
    # Two point clouds a distance d apart (4 coordinates, each offset by +-offset). Along the
    # line between them, maximizing d*s - lambda*(s - 1)^2 over the slope s gives the known
    # answer s* = 1 + d / (2*lambda): ~1 for nearby clouds (1.05 at d = 1), 1.4 at d = 8.
    keras.utils.set_random_seed(0)
    critic = _critic_from(lambda x: layers.Dense(1)(layers.Dense(32, activation="tanh")(
        layers.Flatten()(x))), size=2, channels=1)
    model = _model_around(critic, size=2, channels=1)
    real = tf.random.normal((64, 2, 2, 1)) * 0.02 + offset
    fake = tf.random.normal((64, 2, 2, 1)) * 0.02 - offset
    distance = 2 * offset * 2.0          # |(+o) - (-o)| in each of 4 coordinates
    optimum = 1.0 + distance / (2 * 10.0)
    labels = tf.zeros(64, tf.int32)
    opt = keras.optimizers.Adam(1e-2)

    def grad_norms():
        x_hat = tf.random.uniform((64, 1, 1, 1)) * (real - fake) + fake
        with tf.GradientTape() as tape:
            tape.watch(x_hat)
            s = critic([x_hat, labels])
        g = tape.gradient(s, x_hat)
        return np.sqrt(np.sum(g.numpy() ** 2, axis=(1, 2, 3)))

    before = np.abs(np.median(grad_norms()) - optimum)
    for _ in range(300):
        with tf.GradientTape() as tape:
            w = tf.reduce_mean(critic([real, labels])) - tf.reduce_mean(critic([fake, labels]))
            loss = -w + 10.0 * _penalty(model, real, fake, labels,
                                        tf.random.uniform((64, 1, 1, 1)))
        opt.apply_gradients(zip(tape.gradient(loss, critic.trainable_variables),
                                critic.trainable_variables))
    after = np.abs(np.median(grad_norms()) - optimum)
    assert before > 0.2 and after < 0.06, (before, after, optimum)


def _toy_data(n=64, size=16, seed=0):
    """Class 0: a bright square on the left with its mask; class 1: on the right."""
    rng = np.random.default_rng(seed)
    x = np.full((n, size, size, 2), -1.0, np.float32)
    labels = rng.integers(0, 2, n).astype(np.int32)
    for i, k in enumerate(labels):
        r = rng.integers(3, 8)
        c = rng.integers(1, 4) + (8 if k else 0)
        x[i, r:r + 5, c:c + 5, :] = 1.0
    return x, labels


def _small_model(**kwargs):
    keras.utils.set_random_seed(0)
    return make_cwgan_gp((16, 16, 2), latent_dim=16, width=16, seed=0, **kwargs)


def test_train_step_updates_both_players_and_logs_its_losses():
    model = _small_model(n_critic=3)
    model.compile(jit_compile=False)
    x, y = _toy_data(32)
    g_before = [w.numpy().copy() for w in model.generator.trainable_weights]
    d_before = [w.numpy().copy() for w in model.critic.trainable_weights]
    logs = model.train_step((tf.constant(x), tf.constant(y)))
    assert set(logs) == {"d_loss", "g_loss", "gp", "wasserstein"}
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(g_before, model.generator.trainable_weights))
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(d_before, model.critic.trainable_weights))
    assert int(model.d_optimizer.iterations) == 3 and int(model.g_optimizer.iterations) == 1


def test_penalty_and_train_step_compile_with_xla():
    # The penalty's nested tape (a gradient of a gradient) under jit_compile=True must give
    # what it gives without XLA, its weight gradient (the double backward pass) included.
    critic = build_conditional_critic(16, 2, width=8)
    model = _model_around(critic, size=16)
    rng = np.random.default_rng(3)
    real, fake = (tf.constant(rng.normal(size=(6, 16, 16, 2)).astype(np.float32)) for _ in "rf")
    labels = tf.constant([0, 1, 0, 1, 1, 0], tf.int32)
    alpha = tf.constant(rng.uniform(size=(6, 1, 1, 1)).astype(np.float32))

    def penalty_and_gradient(real, fake, labels, alpha):
        with tf.GradientTape() as tape:
            gp = _penalty(model, real, fake, labels, alpha)
        return gp, tape.gradient(gp, critic.trainable_variables)

    results = [tf.function(penalty_and_gradient, jit_compile=jit)(real, fake, labels, alpha)
               for jit in (False, True)]
    (gp, grads), (gp_xla, grads_xla) = results
    assert float(gp) > 0 and float(gp_xla) == pytest.approx(float(gp), rel=1e-4)
    assert [g is None for g in grads] == [g is None for g in grads_xla]   # biases: no say in GP
    assert sum(g is not None for g in grads) >= 4
    for g, g_xla in zip(grads, grads_xla):
        if g is None:
            continue
        g, g_xla = tf.convert_to_tensor(g).numpy(), tf.convert_to_tensor(g_xla).numpy()
        np.testing.assert_allclose(g_xla, g, rtol=1e-3, atol=1e-4 * np.abs(g).max() + 1e-8)

    # The whole step (unrolled critic steps, UpSampling2D in the generator, DiffAugment)
    # compiles into one XLA function, and trains both players.
    model = _small_model(n_critic=2, augment="translation,cutout")
    model.compile(jit_compile=True)
    x, y = _toy_data(16)
    g_before = [w.numpy().copy() for w in model.generator.trainable_weights]
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert model.jit_compile is True
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    assert int(model.d_optimizer.iterations) == 4 and int(model.g_optimizer.iterations) == 2
    assert any(not np.allclose(a, b.numpy())
               for a, b in zip(g_before, model.generator.trainable_weights))


def _critic_update(gp_every, penalize, x, y):
    """The critic's weight change from one critic step with SGD(lr=1), i.e. -gradient."""
    model = _small_model(n_critic=2, gp_every=gp_every)
    model.compile(keras.optimizers.SGD(1.0), keras.optimizers.SGD(1.0), jit_compile=False)
    before = [w.numpy().copy() for w in model.critic.trainable_weights]
    logs = model.discriminator_step(tf.constant(x), tf.constant(y), penalize=penalize)
    after = [w.numpy() for w in model.critic.trainable_weights]
    assert int(model.d_optimizer.iterations) == 1 and int(model.g_optimizer.iterations) == 0
    return np.concatenate([(a - b).ravel() for a, b in zip(after, before)]), logs.get("gp")


def test_lazy_regularization_weights_the_penalty_by_k_on_the_steps_that_take_it():
    # Same weights, same noise: exact (lambda), lazy (k * lambda) and unpenalized updates.
    # The penalty's part of the update must be exactly k times as large under lazy.
    x, y = _toy_data(16)
    exact, gp_exact = _critic_update(1, True, x, y)
    lazy, gp_lazy = _critic_update(2, True, x, y)
    bare, gp_bare = _critic_update(2, False, x, y)
    assert gp_bare is None and float(gp_lazy) == pytest.approx(float(gp_exact), rel=1e-6)
    penalty_part = exact - bare
    assert np.linalg.norm(penalty_part) > 0.1 * np.linalg.norm(bare), "penalty too weak to test"
    np.testing.assert_allclose(lazy - bare, 2 * penalty_part, rtol=1e-4,
                               atol=1e-5 * np.abs(penalty_part).max())


def test_lazy_regularization_penalizes_one_critic_step_in_k_and_logs_the_full_loss(monkeypatch):
    import mrigan_tf.models.cwgan_gp as cwgan_gp

    # Counted twice: the penalty where the critic loss looks it up, and the input gradient
    # (the second backward pass through the critic) that it is computed from.
    calls, input_calls = [], []
    penalty = cwgan_gp.gradient_penalty
    monkeypatch.setattr(cwgan_gp, "gradient_penalty",
                        lambda *a, **k: calls.append(1) or penalty(*a, **k))
    input_gradients = ConditionalWGANGP.input_gradients
    monkeypatch.setattr(ConditionalWGANGP, "input_gradients",
                        lambda self, *a, **k: input_calls.append(1) or input_gradients(self, *a, **k))
    x, y = _toy_data(16)
    for gp_every, expected in ((1, 4), (2, 2), (4, 1)):
        calls.clear()
        input_calls.clear()
        model = _small_model(n_critic=4, gp_every=gp_every)
        model.compile(run_eagerly=True)   # every call of the penalty is a Python call
        logs = model.train_step((tf.constant(x), tf.constant(y)))
        assert len(calls) == len(input_calls) == expected
        assert int(model.d_optimizer.iterations) == 4
        # d_loss is -W + lambda * GP whatever gp_every is (the latest penalty measured).
        assert float(logs["d_loss"]) == pytest.approx(
            -float(logs["wasserstein"]) + 10.0 * float(logs["gp"]), rel=1e-5)
    with pytest.raises(ValueError, match=r"gp_every must divide n_critic \(4\): one of \[1, 2, 4\]"):
        _small_model(n_critic=4, gp_every=3)
    assert make_cwgan_gp((16, 16, 2), gp_every=5).get_config()["gp_every"] == 5


def test_generator_outputs_image_and_mask_for_every_size_and_uses_the_class():
    for size in (16, 32, 64, 128):
        g = build_conditional_generator(size, latent_dim=8, width=8)
        d = build_conditional_critic(size, width=8)
        labels = tf.constant([0, 1], tf.int32)
        out = g([tf.zeros((2, 8)), labels])
        assert out.shape == (2, size, size, 2)
        assert d([out, labels]).shape == (2, 1)
    model = _small_model()
    z = np.repeat(np.random.default_rng(0).normal(size=(1, 16)).astype(np.float32), 2, axis=0)
    a = model.sample(latent=z, labels=np.array([0, 1]))
    assert a.shape == (2, 16, 16, 2) and np.all(np.abs(a) <= 1)
    assert not np.allclose(a[0], a[1]), "the class must change the output"
    with pytest.raises(ValueError, match="outside"):
        model.sample(2, labels=np.array([0, 5]))


def test_critic_refuses_batch_norm():
    with pytest.raises(ValueError, match="never batch norm"):
        build_conditional_critic(16, norm="batch")


def test_save_and_load_reproduce_samples(tmp_path):
    model = _small_model(augment="translation,cutout")
    model.compile(jit_compile=False)
    x, y = _toy_data(32)
    model.train_step((tf.constant(x), tf.constant(y)))
    path = tmp_path / "cwgan.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, ConditionalWGANGP)
    assert loaded.augment_policy == "translation,cutout" and loaded.n_critic == 5
    np.testing.assert_allclose(loaded.sample(8, seed=3), model.sample(8, seed=3), atol=1e-6)


@pytest.mark.parametrize("gp_every", [1, 2])
def test_learns_a_toy_conditional_distribution(gp_every):
    """Class 0 puts its square left, class 1 right, and the mask sits on the square.

    Measured: the fraction of each sample's bright image mass on the side its class
    demands, and the agreement between the image's bright pixels and the mask channel.
    Also with lazy regularization (the penalty on one critic step in two).
    """
    x, y = _toy_data(256)
    model = _small_model(n_critic=2, gp_every=gp_every)
    # A toy problem: a faster learning rate than the MRI default, same betas.
    model.compile(keras.optimizers.Adam(1e-3, beta_1=0.0, beta_2=0.9),
                  keras.optimizers.Adam(1e-3, beta_1=0.0, beta_2=0.9), jit_compile=False)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(256, seed=0).batch(64, drop_remainder=True)

    def scores():
        s = model.sample(200, seed=7)
        labels = model.balanced_labels(200)
        bright = np.clip(s[..., 0], 0, None)
        left = bright[:, :, :8].sum(axis=(1, 2)) / (bright.sum(axis=(1, 2)) + 1e-6)
        on_side = np.where(labels == 0, left, 1 - left).mean()
        agree = np.mean((s[..., 0] > 0) == (s[..., 1] > 0))
        return on_side, agree

    side0, agree0 = scores()
    model.fit(ds.repeat(), steps_per_epoch=100, epochs=1, verbose=0)
    side1, agree1 = scores()
    assert side1 > 0.85 and side1 > side0 + 0.3, (side0, side1)
    assert agree1 > 0.95 and agree1 > agree0 + 0.3, (agree0, agree1)


# ## The other losses, AC-GAN conditioning and the critic's regularizers

LOSS_FUNCTIONS = {
    "wgan-gp": (wasserstein_critic_loss, wasserstein_generator_loss),
    "wgan-clip": (wasserstein_critic_loss, wasserstein_generator_loss),
    "ns": (ns_discriminator_loss, ns_generator_loss),
    "lsgan": (lsgan_discriminator_loss, lsgan_generator_loss),
    "hinge": (hinge_discriminator_loss, hinge_generator_loss),
}


@pytest.mark.parametrize("loss", list(LOSS_FUNCTIONS))
def test_each_loss_is_the_shared_function_of_the_critic_scores(loss):
    """A linear critic, chosen batches: the model's two losses are losses.py's functions of
    the scores, and each logs what its docstring says."""
    w = np.linspace(-0.3, 0.4, 4 * 4 * 2).reshape(-1, 1).astype(np.float32)
    model = _model_around(_linear_critic(w), loss=loss)
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (6, 4, 4, 2)).astype(np.float32)
    fake = rng.uniform(-1, 1, (6, 4, 4, 2)).astype(np.float32)
    labels = np.zeros(6, np.int32)
    s_real, s_fake = real.reshape(6, -1) @ w, fake.reshape(6, -1) @ w
    real, fake, labels = tf.constant(real), tf.constant(fake), tf.constant(labels)
    d_loss_fn, g_loss_fn = LOSS_FUNCTIONS[loss]
    d_loss, logs = model.discriminator_loss(real, fake, labels, None)
    np.testing.assert_allclose(float(d_loss), float(d_loss_fn(s_real, s_fake)), rtol=1e-5)
    g_loss, _ = model.generator_loss(real, fake, labels)
    np.testing.assert_allclose(float(g_loss), float(g_loss_fn(s_fake)), rtol=1e-5)
    if loss.startswith("wgan"):
        np.testing.assert_allclose(float(logs["wasserstein"]), s_real.mean() - s_fake.mean(),
                                   rtol=1e-5)
    else:
        np.testing.assert_allclose(float(logs["d_real"]), s_real.mean(), rtol=1e-5)
    assert model.penalizes(0) == (loss == "wgan-gp")
    assert model.n_critic == (5 if loss.startswith("wgan") else 1)


def _gaussian_players(hidden=32):
    """A conditional 2-D Gaussian as a (1, 1, 2) 'image': tiny MLP players."""
    z, label = keras.Input((4,)), keras.Input((), dtype="int32")
    h = layers.Concatenate()([z, layers.Embedding(2, 4)(label)])
    h = layers.Dense(hidden, activation="relu")(h)
    generator = keras.Model([z, label], layers.Reshape((1, 1, 2))(layers.Dense(2)(h)))
    x, label = keras.Input((1, 1, 2)), keras.Input((), dtype="int32")
    h = layers.Concatenate()([layers.Flatten()(x), layers.Embedding(2, 4)(label)])
    h = layers.LeakyReLU(0.2)(layers.Dense(hidden)(h))
    return generator, keras.Model([x, label], layers.Dense(1)(h))


GAUSSIAN_MEANS = np.array([[1.5, 1.0], [-1.0, 1.5]], np.float32)   # per class


@pytest.mark.parametrize("loss", list(LOSS_FUNCTIONS))
def test_each_loss_learns_a_conditional_gaussian(loss):
    """Each loss moves the generated distribution of each class toward the real one: the
    distance between the class means shrinks to under half of where it started, in 100
    generator steps (measured: to 0.39, 0.15, 0.10, 0.13 and 0.17 of it for wgan-gp,
    wgan-clip, ns, lsgan and hinge)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 512).astype(np.int32)
    real = (GAUSSIAN_MEANS[labels] + 0.3 * rng.standard_normal((512, 2))).astype(np.float32)
    generator, critic = _gaussian_players()
    options = dict(n_critic=3) if loss.startswith("wgan") else {}
    model = ConditionalWGANGP(generator, critic, latent_dim=4, loss=loss, seed=0,
                              clip_value=0.1, **options)
    model.compile(keras.optimizers.Adam(1e-2, beta_1=0.0, beta_2=0.9),
                  keras.optimizers.Adam(1e-2, beta_1=0.0, beta_2=0.9), jit_compile=False)

    def mean_error():
        sample_labels = model.balanced_labels(256)
        s = model.sample(256, seed=1).reshape(256, 2)
        return max(np.linalg.norm(s[sample_labels == k].mean(0) - GAUSSIAN_MEANS[k])
                   for k in range(2))

    before = mean_error()
    data = tf.data.Dataset.from_tensor_slices((real.reshape(-1, 1, 1, 2), labels))
    model.fit(data.shuffle(512, seed=0).repeat().batch(64, drop_remainder=True),
              steps_per_epoch=100, epochs=1, verbose=0)
    after = mean_error()
    assert before > 1.0 and after < 0.5 * before, (loss, before, after)


def test_wgan_clip_keeps_every_critic_weight_within_c():
    model = _small_model(loss="wgan-clip", clip_value=0.02, n_critic=2)
    model.compile(jit_compile=False)
    x, y = _toy_data(8)
    model.train_step((tf.constant(x), tf.constant(y)))
    assert max(float(np.max(np.abs(w.numpy()))) for w in model.critic.trainable_weights) <= 0.02 + 1e-7


def test_r1_is_zero_for_a_critic_constant_in_its_input_and_half_the_squared_weight_norm_for_a_linear_one():
    rng = np.random.default_rng(1)
    real = tf.constant(rng.uniform(-1, 1, (5, 4, 4, 2)).astype(np.float32))
    fake = tf.constant(rng.uniform(-1, 1, (5, 4, 4, 2)).astype(np.float32))
    labels = tf.zeros(5, tf.int32)
    constant = _model_around(_critic_from(lambda x: layers.Dense(1)(layers.Flatten()(x * 0.0))),
                             loss="hinge", r1_weight=10.0)
    _, logs = constant.regularized_discriminator_loss(real, fake, labels, None)
    assert float(logs["r1"]) == 0.0
    w = np.linspace(-0.5, 0.5, 32).reshape(-1, 1).astype(np.float32)
    plain = _model_around(_linear_critic(w), loss="hinge")
    linear = _model_around(_linear_critic(w), loss="hinge", r1_weight=10.0)
    base, _ = plain.regularized_discriminator_loss(real, fake, labels, None)
    loss, logs = linear.regularized_discriminator_loss(real, fake, labels, None)
    np.testing.assert_allclose(float(logs["r1"]), 0.5 * float(np.sum(w ** 2)), rtol=1e-5)
    np.testing.assert_allclose(float(loss), float(base) + 10.0 * float(logs["r1"]), rtol=1e-5)
    assert "r1" in linear.metric_names and "r1" not in plain.metric_names


@pytest.mark.parametrize("options, message", [
    (dict(loss="wgan-gp", r1_weight=1.0), "R1"),
    (dict(loss="hinge", gp_every=2, n_critic=2), "gp_every"),
    (dict(acgan_weight=0.5), "acgan"),
    (dict(loss="bce"), "loss must be one of"),
    (dict(conditioning="label"), "conditioning must be one of"),
])
def test_refuses_combinations_it_does_not_train(options, message):
    with pytest.raises(ValueError, match=message):
        make_cwgan_gp((16, 16, 2), latent_dim=4, width=4, **options)


def test_acgan_losses_are_the_cross_entropies_of_the_class_logits():
    """A critic whose score and class logits are known functions of the input: the AC-GAN
    terms are the cross-entropies of those logits, weighted, on real and fake."""
    image = keras.Input((4, 4, 2))
    flat = layers.Flatten()(image)
    score = layers.Dense(1, kernel_initializer="ones")(flat)
    logits = layers.Dense(2, kernel_initializer=keras.initializers.Constant(0.1))(flat)
    critic = keras.Model(image, [score, logits])
    critic.layers[-1].set_weights([np.stack([np.full(32, 0.1), np.full(32, -0.2)], 1)
                                   .astype(np.float32), np.zeros(2, np.float32)])
    model = _model_around(critic, loss="hinge", conditioning="acgan", acgan_weight=0.5)
    rng = np.random.default_rng(2)
    real = rng.uniform(-1, 1, (4, 4, 4, 2)).astype(np.float32)
    fake = rng.uniform(-1, 1, (4, 4, 4, 2)).astype(np.float32)
    labels = np.array([0, 1, 1, 0], np.int32)

    def cross_entropy(x):
        x = np.asarray(x)
        s = x.reshape(4, -1).sum(1)
        z = np.stack([0.1 * s, -0.2 * s], 1)
        log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
        return -log_p[np.arange(4), labels].mean(), np.mean(z.argmax(1) == labels)

    (ce_real, accuracy), (ce_fake, _) = cross_entropy(real), cross_entropy(fake)
    hinge = float(hinge_discriminator_loss(real.reshape(4, -1).sum(1), fake.reshape(4, -1).sum(1)))
    g_expected = -fake.reshape(4, -1).sum(1).mean() + 0.5 * ce_fake
    real, fake = tf.constant(real), tf.constant(fake)
    d_loss, logs = model.discriminator_loss(real, fake, labels, None)
    np.testing.assert_allclose(float(logs["aux_real"]), ce_real, rtol=1e-5)
    np.testing.assert_allclose(float(logs["aux_fake"]), ce_fake, rtol=1e-5)
    np.testing.assert_allclose(float(logs["aux_accuracy"]), accuracy)
    np.testing.assert_allclose(float(d_loss), hinge + 0.5 * (ce_real + ce_fake), rtol=1e-5)
    g_loss, g_logs = model.generator_loss(real, fake, labels)
    np.testing.assert_allclose(float(g_logs["g_aux"]), ce_fake, rtol=1e-5)
    np.testing.assert_allclose(float(g_loss), g_expected, rtol=1e-5)


def test_acgan_critic_has_a_classifier_head_and_the_step_logs_it():
    model = _small_model(loss="ns", conditioning="acgan")
    assert len(model.critic.inputs) == 1 and model.critic.outputs[1].shape[-1] == 2
    with pytest.raises(ValueError, match="critic built with it"):
        ConditionalWGANGP(model.generator, model.critic, latent_dim=16)
    model.compile(jit_compile=False)
    x, y = _toy_data(8)
    logs = model.train_step((tf.constant(x), tf.constant(y)))
    assert set(logs) == {"d_loss", "g_loss", "d_real", "d_fake", "aux_real", "aux_fake",
                         "aux_accuracy", "g_aux"}
    assert all(np.isfinite(float(v)) for v in logs.values())


def test_minibatch_std_keeps_real_and_fake_groups_apart():
    """One critic call on concat([real, fake]) scores the real half as a call on the real
    half alone: groups are consecutive samples, the batch halves are multiples of G."""
    model = _small_model(minibatch_std=2)
    layer = model.critic.get_layer("minibatch_std")
    assert layer.output.shape[-1] == layer.input.shape[-1] + 1
    x, y = _toy_data(8)
    y = tf.constant(y)
    both = model.discriminate(tf.constant(np.concatenate([x[:4], -x[4:]])), y)
    alone = model.discriminate(tf.constant(x[:4]), y[:4])
    np.testing.assert_allclose(np.asarray(both)[:4], np.asarray(alone), rtol=1e-5, atol=1e-6)
    # ... and the statistic does depend on the group: change one group-mate, the score moves.
    moved = model.discriminate(tf.constant(np.concatenate([x[:1], -x[1:2], x[2:4]])), y[:4])
    assert not np.allclose(np.asarray(moved)[0], np.asarray(alone)[0])
