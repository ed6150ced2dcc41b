"""
Title: The GAN losses and penalties, written once for every backend
Description: ``keras.ops`` functions of the players' scores (and of given gradients).

Every family's training step calls these, on TensorFlow (inside ``tf.GradientTape``) and on
JAX (inside ``jax.value_and_grad``) alike: only the gradient machinery differs between the
backends, never the arithmetic. Scores are the discriminator's raw outputs (logits; a
critic's unbounded scores), one per sample, in float32.

The discriminator losses (minimised by the discriminator, ``l`` a logit, ``s`` a score):

    non-saturating (ns)  L_D = BCE(l_real, 1 - smoothing) + BCE(l_fake, 0)     Goodfellow 2014
                         L_G = BCE(l_fake, 1) = -E log D(G(z))
    least squares        L_D = 1/2 E(l_real - 1)^2 + 1/2 E l_fake^2             Mao 2017
                         L_G = 1/2 E(l_fake - 1)^2
    hinge                L_D = E max(0, 1 - l_real) + E max(0, 1 + l_fake)      Lim & Ye 2017
                         L_G = -E l_fake
    Wasserstein          L_D = E s_fake - E s_real                              Arjovsky 2017
                         L_G = -E s_fake

The penalties keep the discriminator smooth. They take *gradients already computed* by the
backend (``BaseGAN.input_gradients``), so that they too are plain ``keras.ops``:

    gradient penalty     E (sqrt(||grad_x D(x_hat)||^2 + eps) - 1)^2,
                         x_hat = alpha x_real + (1 - alpha) x_fake, alpha ~ U[0, 1]  Gulrajani 2017
    R1                   1/2 E ||grad_x D(x_real)||^2                           Mescheder 2018
    drift                E s_real^2 (keeps a critic's scores near 0)            Karras 2018

And the auxiliary classifier of AC-GAN (Odena 2017): ``-E log p(y | x)`` of the class logits.

Feature matching, two kinds: the batch means of one layer's features (Salimans 2016, for an
unconditional generator), and the discriminator's features of a real sample and of the fake
drawn for the *same* condition, layer by layer (pix2pixHD, Wang 2018; SPADE, Park 2019):

    1/T sum_i E_x |D^i(x, m) - D^i(G(z, m), m)|_1      (mean absolute difference per layer)
"""

from __future__ import annotations

from keras import ops

#: Inside the square root of the gradient norm: the norm's gradient is finite at a zero
#: gradient (``sqrt`` alone has an infinite derivative at 0, and NaN weights follow).
GP_EPSILON = 1e-12


def _per_sample_sum(values):
    """Sum over every axis but the batch axis."""
    return ops.sum(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)


# ## Non-saturating binary cross-entropy (the vanilla GAN, DCGAN)

def ns_discriminator_loss(real_logits, fake_logits, label_smoothing: float = 0.0):
    """BCE of real (target ``1 - label_smoothing``) against fake (target 0) logits.

    One-sided label smoothing (Salimans et al., 2016): only the real targets move.
    """
    real_targets = ops.full_like(real_logits, 1.0 - label_smoothing)
    real_loss = ops.mean(ops.binary_crossentropy(real_targets, real_logits, from_logits=True))
    fake_loss = ops.mean(ops.binary_crossentropy(ops.zeros_like(fake_logits), fake_logits,
                                                 from_logits=True))
    return real_loss + fake_loss


def ns_generator_loss(fake_logits):
    """``-E log D(G(z))``: the generator wants its samples labelled real."""
    return ops.mean(ops.binary_crossentropy(ops.ones_like(fake_logits), fake_logits,
                                            from_logits=True))


def minimax_generator_loss(fake_logits):
    """The generator's loss of the original minimax game (Goodfellow et al., 2014):
    ``E log(1 - D(G(z)))``, minus the discriminator's own loss on fakes. It *saturates*: where
    the discriminator is sure a sample is fake (``D -> 0``) its gradient vanishes, which is
    why every family here trains the generator with the non-saturating ``ns`` loss instead.
    Kept for the comparison (notebook 10), trained by no model."""
    return -ops.mean(ops.binary_crossentropy(ops.zeros_like(fake_logits), fake_logits,
                                             from_logits=True))


def feature_matching_loss(real_features, fake_features):
    """Squared L2 distance between the batch means of the discriminator's features."""
    real_mean = ops.mean(ops.reshape(real_features, (ops.shape(real_features)[0], -1)), axis=0)
    fake_mean = ops.mean(ops.reshape(fake_features, (ops.shape(fake_features)[0], -1)), axis=0)
    return ops.sum(ops.square(ops.stop_gradient(real_mean) - fake_mean))


def discriminator_feature_matching_loss(real_features, fake_features):
    """``1/T sum_i mean |D^i(x) - D^i(G(z))|``: the L1 distance of the discriminator's
    features of paired real and fake samples (same layout), averaged over the ``T`` layers
    (lists of tensors, one per layer); the real features are constants (Wang et al., 2018)."""
    distances = [ops.mean(ops.abs(ops.stop_gradient(ops.cast(real, "float32"))
                                  - ops.cast(fake, "float32")))
                 for real, fake in zip(real_features, fake_features, strict=True)]
    return sum(distances) / len(distances)


# ## Least squares (LSGAN)

def lsgan_discriminator_loss(real_logits, fake_logits):
    """``1/2 E(D(x) - 1)^2 + 1/2 E D(G(z))^2`` (targets 1 for real, 0 for fake)."""
    return 0.5 * ops.mean(ops.square(real_logits - 1.0)) + 0.5 * ops.mean(ops.square(fake_logits))


def lsgan_generator_loss(fake_logits):
    """``1/2 E(D(G(z)) - 1)^2``."""
    return 0.5 * ops.mean(ops.square(fake_logits - 1.0))


# ## Hinge

def hinge_discriminator_loss(real_logits, fake_logits):
    """``E max(0, 1 - D(x)) + E max(0, 1 + D(G(z)))``."""
    return ops.mean(ops.relu(1.0 - real_logits)) + ops.mean(ops.relu(1.0 + fake_logits))


def hinge_generator_loss(fake_logits):
    """``-E D(G(z))``."""
    return -ops.mean(fake_logits)


# ## Wasserstein

def wasserstein_critic_loss(real_scores, fake_scores):
    """``E f(fake) - E f(real)``: minus the critic's estimate of the Earth-Mover distance."""
    return ops.mean(fake_scores) - ops.mean(real_scores)


def wasserstein_generator_loss(fake_scores):
    """``-E f(G(z))``: the generator raises the critic's score of its samples."""
    return -ops.mean(fake_scores)


# ## Penalties

def interpolate(real, fake, alpha):
    """``alpha * real + (1 - alpha) * fake`` in float32; ``alpha`` (B, 1, 1, 1) per sample."""
    real, fake = ops.cast(real, "float32"), ops.cast(fake, "float32")
    return alpha * real + (1.0 - alpha) * fake


def gradient_penalty(gradients):
    """``E (||g||_2 - 1)^2`` over the batch, from the per-sample gradients ``g`` of the
    critic at the interpolates (shape (B, ...)), with ``GP_EPSILON`` inside the root."""
    gradients = ops.cast(gradients, "float32")
    norm = ops.sqrt(_per_sample_sum(ops.square(gradients)) + GP_EPSILON)
    return ops.mean(ops.square(norm - 1.0))


def r1_penalty(gradients):
    """``1/2 E ||g||_2^2`` from the gradients ``g`` of the discriminator at *real* samples."""
    gradients = ops.cast(gradients, "float32")
    return 0.5 * ops.mean(_per_sample_sum(ops.square(gradients)))


def drift_penalty(real_scores):
    """``E D(x)^2``: keeps a critic's scores near 0 (Karras et al., 2018)."""
    return ops.mean(ops.square(real_scores))


# ## Auxiliary classifier (AC-GAN)

def auxiliary_classifier_loss(class_logits, labels):
    """``-E log p(y | x)``: the cross-entropy of the discriminator's class logits (B, K)
    against the true classes ``labels`` (B,) (Odena et al., 2017)."""
    return ops.mean(ops.sparse_categorical_crossentropy(ops.cast(labels, "int32"),
                                                        ops.cast(class_logits, "float32"),
                                                        from_logits=True))
