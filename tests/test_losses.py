"""The GAN losses and penalties of ``mrigan_tf.models.losses``: known answers on small
hand-computed arrays, each with a control that a wrong formula would fail.

Nothing trains here: every check is a few ``keras.ops`` calls on arrays of a handful of
numbers, and the gradients (where a property is about a gradient) come from the backend's
own differentiation of one loss call.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from mrigan_tf.models.losses import (GP_EPSILON, auxiliary_classifier_loss, drift_penalty,
                                     feature_matching_loss, gradient_penalty, hinge_discriminator_loss,
                                     hinge_generator_loss, interpolate, lsgan_discriminator_loss,
                                     lsgan_generator_loss, ns_discriminator_loss,
                                     ns_generator_loss, r1_penalty, wasserstein_critic_loss,
                                     wasserstein_generator_loss)

LOG2 = float(np.log(2.0))


def f32(values) -> np.ndarray:
    return np.asarray(values, np.float32)


def column(*values) -> np.ndarray:
    """Scores as a discriminator returns them: shape (B, 1), float32."""
    return f32(values).reshape(-1, 1)


def value(tensor) -> float:
    return float(ops.convert_to_numpy(tensor))


def gradient(fn, x) -> np.ndarray:
    """d fn(x) / dx for a scalar ``fn``, with the backend's own differentiation."""
    x = f32(x)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        # A stopped gradient is 0 (as in JAX), not None.
        return tape.gradient(y, x, unconnected_gradients=tf.UnconnectedGradients.ZERO).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(fn)(x))
    pytest.skip(f"no gradient helper for the {backend} backend")


def softplus(x) -> np.ndarray:
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)


def bce_from_logits(logits, target) -> np.ndarray:
    """-t log sigmoid(l) - (1 - t) log(1 - sigmoid(l)) = softplus(l) - t l (stable form)."""
    logits = np.asarray(logits, np.float64)
    return softplus(logits) - target * logits


# ## Non-saturating binary cross-entropy


def test_ns_discriminator_loss_is_bce_real_to_one_and_fake_to_zero():
    real, fake = column(2.0, -1.0, 0.5), column(-0.3, 0.7, 1.5)
    expected = bce_from_logits(real, 1.0).mean() + bce_from_logits(fake, 0.0).mean()
    assert value(ns_discriminator_loss(real, fake)) == pytest.approx(expected, rel=1e-6)
    # At logit 0 (D says 0.5 to everything) each term is log 2.
    assert value(ns_discriminator_loss(column(0.0, 0.0), column(0.0, 0.0))) == pytest.approx(
        2 * LOG2, rel=1e-6)
    # Control: which batch is real matters. A discriminator that gets both right (+2 / -2)
    # pays 2 softplus(-2) = 0.25; swapped, it pays 2 softplus(2) = 4.25.
    right, wrong = column(2.0, 2.0), column(-2.0, -2.0)
    assert value(ns_discriminator_loss(right, wrong)) == pytest.approx(2 * softplus(-2.0), rel=1e-6)
    assert value(ns_discriminator_loss(wrong, right)) == pytest.approx(2 * softplus(2.0), rel=1e-6)


def test_ns_discriminator_loss_is_stable_at_large_logits():
    # log(sigmoid(l)) computed naively is log(0) = -inf at l = -100; from logits it is exact.
    confident = value(ns_discriminator_loss(column(100.0, 50.0), column(-100.0, -50.0)))
    wrong = value(ns_discriminator_loss(column(-100.0), column(100.0)))
    assert 0.0 <= confident < 1e-6
    assert wrong == pytest.approx(200.0, rel=1e-5)


def test_label_smoothing_shifts_the_loss_by_s_times_the_mean_real_logit():
    real, fake = column(2.0, -1.0, 0.5, 3.0), column(-0.3, 0.7, 1.5, 0.0)
    plain = value(ns_discriminator_loss(real, fake, 0.0))
    for s in (0.1, 0.25):
        smoothed = value(ns_discriminator_loss(real, fake, s))
        # BCE(l, 1 - s) = BCE(l, 1) + s * l
        assert smoothed - plain == pytest.approx(s * real.mean(), abs=1e-6)
        expected = bce_from_logits(real, 1.0 - s).mean() + bce_from_logits(fake, 0.0).mean()
        assert smoothed == pytest.approx(expected, rel=1e-6)
    # One-sided: the fake targets stay 0, so the fake term does not depend on s.
    other_fake = column(2.0, -2.0, 0.3, 0.1)
    for s in (0.0, 0.1):
        assert (value(ns_discriminator_loss(real, other_fake, s))
                - value(ns_discriminator_loss(real, fake, s))) == pytest.approx(
            bce_from_logits(other_fake, 0.0).mean() - bce_from_logits(fake, 0.0).mean(), abs=1e-6)


def test_ns_generator_loss_is_minus_log_d_and_does_not_saturate():
    fake = column(-0.3, 0.7, 1.5, -4.0)
    # -log sigmoid(l) = softplus(-l)
    assert value(ns_generator_loss(fake)) == pytest.approx(softplus(-fake).mean(), rel=1e-6)
    assert value(ns_generator_loss(column(0.0))) == pytest.approx(LOG2, rel=1e-6)
    # Where D rejects a sample with confidence (l = -10), the non-saturating loss still has a
    # gradient of about -1/B per sample; the minimax loss log(1 - sigmoid(l)) has ~-4.5e-5/B.
    rejected = column(-10.0, -10.0)
    ns = gradient(ns_generator_loss, rejected)
    # The minimax generator minimises E log(1 - D(G(z))): minus L_D's fake term (the real
    # logits, confidently right, contribute nothing to the gradient).
    minimax = gradient(lambda l: -ns_discriminator_loss(column(100.0, 100.0), l), rejected)
    np.testing.assert_allclose(ns, -0.5, rtol=1e-3)
    assert np.all(np.abs(minimax) < 1e-4), minimax


def test_feature_matching_loss_is_the_squared_distance_of_the_batch_means():
    features = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32)
    # The same features in another order: the same mean, loss 0 (per-sample pairing ignored).
    assert value(feature_matching_loss(features, features[::-1])) == pytest.approx(0.0, abs=1e-10)
    shift = f32([1.0, 0.0, 2.0, 0.0, 0.0])
    assert value(feature_matching_loss(features, features + shift)) == pytest.approx(5.0, rel=1e-5)
    # Feature maps (B, H, W, C) are flattened per sample: the same numbers, the same loss.
    maps = features.reshape(6, 5, 1, 1)
    assert value(feature_matching_loss(maps, maps + shift.reshape(5, 1, 1))) == pytest.approx(
        5.0, rel=1e-5)


def test_feature_matching_moves_only_the_fake_features():
    rng = np.random.default_rng(1)
    real, fake = (rng.normal(size=(4, 3)).astype(np.float32) for _ in "rf")
    # d/d fake_i = 2 (mean_fake - mean_real) / B for every sample i
    expected = np.broadcast_to(2 * (fake.mean(0) - real.mean(0)) / 4, fake.shape)
    np.testing.assert_allclose(gradient(lambda f: feature_matching_loss(real, f), fake),
                               expected, rtol=1e-5, atol=1e-7)
    # The real mean is a target (stop_gradient), not something the generator can move.
    np.testing.assert_array_equal(gradient(lambda r: feature_matching_loss(r, fake), real), 0.0)


# ## Least squares


def test_lsgan_losses_at_chosen_logits():
    # Perfect: real at 1, fake at 0.
    assert value(lsgan_discriminator_loss(column(1.0, 1.0), column(0.0, 0.0))) == 0.0
    # 1/2 mean((0 - 1)^2, (2 - 1)^2) + 1/2 mean(1^2, (-1)^2) = 1/2 + 1/2
    assert value(lsgan_discriminator_loss(column(0.0, 2.0), column(1.0, -1.0))) == pytest.approx(1.0)
    # 1/2 mean((0 - 1)^2, (3 - 1)^2) + 1/2 mean(0.5^2) = 1.25 + 0.125
    assert value(lsgan_discriminator_loss(column(0.0, 3.0), column(0.5))) == pytest.approx(1.375)
    # Control: the perfect batches swapped cost 1/2 + 1/2 (targets 1 and 0 are not symmetric).
    assert value(lsgan_discriminator_loss(column(0.0, 0.0), column(1.0, 1.0))) == pytest.approx(1.0)
    # Generator: 1/2 mean((1 - 1)^2, (3 - 1)^2) = 1
    assert value(lsgan_generator_loss(column(1.0, 3.0))) == pytest.approx(1.0)
    assert value(lsgan_generator_loss(column(1.0))) == 0.0
    assert value(lsgan_generator_loss(column(-1.0))) == pytest.approx(2.0)


# ## Hinge


def test_hinge_losses_at_chosen_logits_and_their_zero_region():
    # mean(relu(1 - [0, 0.5, 2])) + mean(relu(1 + [0, -0.5, -2])) = 0.5 + 0.5
    real, fake = column(0.0, 0.5, 2.0), column(0.0, -0.5, -2.0)
    assert value(hinge_discriminator_loss(real, fake)) == pytest.approx(1.0)
    # Beyond the margins (real >= 1, fake <= -1) the loss is 0 and so is its gradient:
    # confident, correct samples stop pushing the discriminator.
    assert value(hinge_discriminator_loss(column(1.0, 5.0), column(-1.0, -7.0))) == 0.0
    np.testing.assert_array_equal(
        gradient(lambda r: hinge_discriminator_loss(r, column(-3.0)), column(1.5, 4.0)), 0.0)
    # Inside the margin the gradient is -1/B for real and +1/B for fake.
    np.testing.assert_allclose(
        gradient(lambda r: hinge_discriminator_loss(r, column(-3.0)), column(0.2, -1.0)), -0.5)
    np.testing.assert_allclose(
        gradient(lambda f: hinge_discriminator_loss(column(3.0), f), column(0.2, -0.5)), 0.5)
    # Control: wrong-side logits cost 1 + |l| each.
    assert value(hinge_discriminator_loss(column(-2.0), column(3.0))) == pytest.approx(7.0)
    # The generator's loss is linear, never saturates: -mean(D(G(z))).
    assert value(hinge_generator_loss(column(2.0, -5.0, 0.0))) == pytest.approx(1.0)
    assert value(hinge_generator_loss(column(-3.0))) == pytest.approx(3.0)


# ## Wasserstein


def test_wasserstein_losses_and_their_signs():
    real, fake = column(2.0, 4.0), column(1.0, -1.0)
    # critic: E f(fake) - E f(real) = 0 - 3 (negative: the critic tells them apart)
    assert value(wasserstein_critic_loss(real, fake)) == pytest.approx(-3.0)
    # the critic that ranks them the wrong way round has the opposite loss
    assert value(wasserstein_critic_loss(fake, real)) == pytest.approx(3.0)
    # generator: -E f(fake)
    assert value(wasserstein_generator_loss(column(1.0, 3.0))) == pytest.approx(-2.0)
    # The critic raises real and lowers fake scores; the generator raises fake ones.
    np.testing.assert_allclose(gradient(lambda r: wasserstein_critic_loss(r, fake), real), -0.5)
    np.testing.assert_allclose(gradient(lambda f: wasserstein_critic_loss(real, f), fake), 0.5)
    np.testing.assert_allclose(gradient(wasserstein_generator_loss, fake), -0.5)
    # Shifting every score by a constant changes nothing: only differences are measured.
    assert value(wasserstein_critic_loss(real + 10, fake + 10)) == pytest.approx(-3.0)


def test_losses_are_float32_scalars():
    real, fake = column(0.5, -0.5), column(0.1, 0.2)
    for loss in (ns_discriminator_loss(real, fake), ns_generator_loss(fake),
                 lsgan_discriminator_loss(real, fake), lsgan_generator_loss(fake),
                 hinge_discriminator_loss(real, fake), hinge_generator_loss(fake),
                 wasserstein_critic_loss(real, fake), wasserstein_generator_loss(fake),
                 drift_penalty(real), feature_matching_loss(real, fake),
                 gradient_penalty(np.ones((2, 3), np.float32)),
                 r1_penalty(np.ones((2, 3), np.float32))):
        assert tuple(ops.shape(loss)) == () and keras.backend.standardize_dtype(
            loss.dtype) == "float32"


# ## Penalties


def test_interpolate_mixes_each_sample_with_its_own_weight():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(3, 2, 2, 1)).astype(np.float32)
    fake = rng.normal(size=(3, 2, 2, 1)).astype(np.float32)
    alpha = f32([1.0, 0.0, 0.25]).reshape(3, 1, 1, 1)
    x_hat = ops.convert_to_numpy(interpolate(real, fake, alpha))
    np.testing.assert_allclose(x_hat[0], real[0], rtol=1e-6)        # alpha 1: the real sample
    np.testing.assert_allclose(x_hat[1], fake[1], rtol=1e-6)        # alpha 0: the fake one
    np.testing.assert_allclose(x_hat[2], 0.25 * real[2] + 0.75 * fake[2], rtol=1e-6)
    # float16 images (mixed precision) interpolate in float32
    half = interpolate(real.astype(np.float16), fake.astype(np.float16), alpha)
    assert keras.backend.standardize_dtype(half.dtype) == "float32"


def test_gradient_penalty_is_zero_at_unit_norm_and_the_squared_gap_otherwise():
    # Per-sample gradients (B, 2, 2, 1) with norms 1, 2, 0.5 and 3.
    unit = np.zeros((4, 2, 2, 1), np.float32)
    unit[0, 0, 0, 0] = 1.0
    unit[1, :, :, 0] = 0.5                      # four entries of 0.5: norm 1
    unit[2, 0, :, 0] = [0.6, 0.8]
    unit[3, 1, 1, 0] = -1.0
    assert value(gradient_penalty(unit)) == pytest.approx(0.0, abs=1e-10)

    g = np.zeros((4, 2, 2, 1), np.float32)
    g[0, 0, 0, 0] = 1.0                         # norm 1
    g[1, :, :, 0] = 1.0                         # norm 2
    g[2, 0, :, 0] = [0.3, 0.4]                  # norm 0.5
    g[3, 1, :, 0] = [-3.0, 0.0]                 # norm 3
    expected = np.mean((np.array([1.0, 2.0, 0.5, 3.0]) - 1.0) ** 2)  # (0 + 1 + 0.25 + 4) / 4
    assert value(gradient_penalty(g)) == pytest.approx(expected, rel=1e-6)
    # Any shape (B, ...): flat gradients give the same answer.
    assert value(gradient_penalty(g.reshape(4, -1))) == pytest.approx(expected, rel=1e-6)


def test_gradient_penalty_takes_the_norm_per_sample():
    # Two samples of unit norm: 0. (The norm of the whole batch, sqrt(2), would give 0.17.)
    g = f32([[1.0, 0.0], [0.0, 1.0]])
    assert value(gradient_penalty(g)) == pytest.approx(0.0, abs=1e-10)
    # And the penalty is a mean over samples, not a sum: a batch of copies scores the same.
    g = f32([[2.0, 0.0]])
    assert value(gradient_penalty(np.repeat(g, 5, axis=0))) == pytest.approx(1.0, rel=1e-6)


def test_gradient_penalty_has_a_finite_gradient_at_an_exactly_zero_gradient():
    zero = np.zeros((3, 2, 2, 1), np.float32)
    assert value(gradient_penalty(zero)) == pytest.approx(1.0, abs=1e-5)
    grad = gradient(gradient_penalty, zero)
    assert np.all(np.isfinite(grad))
    # Control: without the epsilon inside the root, sqrt'(0) is infinite and the same
    # gradient is NaN: the test above can tell the two apart.
    def no_epsilon(gradients):
        norm = ops.sqrt(ops.sum(ops.square(ops.reshape(gradients, (3, -1))), axis=-1))
        return ops.mean(ops.square(norm - 1.0))
    assert not np.all(np.isfinite(gradient(no_epsilon, zero)))
    assert 0 < GP_EPSILON <= 1e-8       # small enough to leave the penalty's value alone


def test_gradient_penalty_gradient_is_the_textbook_one():
    # d/dg (||g|| - 1)^2 / B = 2 (||g|| - 1) g / (||g|| B)
    g = f32([[3.0, 4.0], [0.6, 0.0]])
    norms = np.linalg.norm(g, axis=1, keepdims=True)
    np.testing.assert_allclose(gradient(gradient_penalty, g), (norms - 1) * g / norms,
                               rtol=1e-5)


def test_penalties_are_computed_in_float32_from_float16_gradients():
    # float16 tops out at 65504: 300^2 overflows if the squares stay in float16.
    g = np.full((2, 1), 300.0, np.float16)
    assert value(gradient_penalty(g)) == pytest.approx(299.0 ** 2, rel=1e-5)
    assert value(r1_penalty(g)) == pytest.approx(0.5 * 300.0 ** 2, rel=1e-5)


def test_r1_penalty_is_half_the_mean_squared_norm():
    g = np.zeros((2, 2, 2, 1), np.float32)
    g[0, :, :, 0] = 1.0                         # ||g||^2 = 4
    g[1, 0, :, 0] = [0.3, 0.4]                  # ||g||^2 = 0.25
    assert value(r1_penalty(g)) == pytest.approx(0.5 * (4.0 + 0.25) / 2, rel=1e-6)
    # Zero where the discriminator is flat at the data (unlike the gradient penalty, whose
    # optimum is norm 1), and positive for any unit-norm gradient.
    assert value(r1_penalty(np.zeros((3, 4), np.float32))) == 0.0
    assert value(r1_penalty(f32([[1.0, 0.0], [0.0, -1.0]]))) == pytest.approx(0.5)
    # d/dg = g / B
    np.testing.assert_allclose(gradient(r1_penalty, g), g / 2, rtol=1e-6)


def test_drift_penalty_is_the_mean_squared_real_score():
    assert value(drift_penalty(column(1.0, -2.0, 3.0))) == pytest.approx(14.0 / 3.0)
    assert value(drift_penalty(column(0.0, 0.0))) == 0.0
    # Symmetric: it pulls scores towards 0 from either side.
    np.testing.assert_allclose(gradient(drift_penalty, column(2.0, -2.0)), [[2.0], [-2.0]])


def test_auxiliary_classifier_loss_is_the_cross_entropy_of_the_true_class():
    logits = f32([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    labels = np.array([0, 2], np.int32)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -(log_p[0, 0] + log_p[1, 2]) / 2                 # the second: log 3
    assert value(auxiliary_classifier_loss(logits, labels)) == pytest.approx(expected, rel=1e-6)
    # A confident, right classifier costs ~0; a confident, wrong one its margin.
    assert value(auxiliary_classifier_loss(f32([[30.0, 0.0]]), np.array([0]))) < 1e-6
    assert value(auxiliary_classifier_loss(f32([[30.0, 0.0]]), np.array([1]))) == pytest.approx(30.0)
