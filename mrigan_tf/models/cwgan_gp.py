"""
Title: Conditional WGAN-GP that generates an MRI slice and its tumor mask together
Description: the project's central model: one generator, a labelled segmented dataset.

## Why this model

A segmentation model needs images *with* masks. Generating an image and then asking someone
to draw its mask defeats the purpose, so the generator produces both at once: its output
has two channels, the slice and ``2*mask-1``, and the critic judges the *pair*. It learns
the joint distribution of anatomy and lesion, so a generated mask outlines the generated
tumor. Conditioning on the class (healthy / tumor) lets us ask for as many slices of each
class as we like.

## The Wasserstein loss with a gradient penalty (Gulrajani et al., 2017)

The critic ``D`` estimates the Wasserstein-1 distance between real and generated pairs,
which needs ``D`` to be 1-Lipschitz. Weight clipping (the WGAN of notebook 04) enforces that
crudely. The gradient penalty enforces it softly where it matters, on points between real
and fake samples:

    x_hat = alpha * x + (1 - alpha) * G(z, y),     alpha ~ U[0, 1] per sample
    L_D   = E[D(G(z, y), y)] - E[D(x, y)] + lambda * E[(||grad_x_hat D(x_hat, y)||_2 - 1)^2]
    L_G   = -E[D(G(z, y), y)]

with lambda = 10, five critic steps per generator step, and Adam(1e-4, beta_1=0, beta_2=0.9).

The penalty is the costliest part of a critic step: a gradient of a gradient, a second
backward pass through the critic. *Lazy regularization* (Karras et al., 2020, StyleGAN2)
computes it on only every k-th critic update and weights it by ``k * lambda``, so that on
average the critic feels the same penalty; ``gp_every=k`` turns it on. It changes the method
(between penalties the critic is free of the constraint for k - 1 updates), so it is off by
default, and its effect on the result is measured in the README (Speed on a CPU).
Two details that published code often gets wrong: alpha is *uniform* in [0, 1] (not
normal), and the norm is ``sqrt(sum(g^2) + eps)``: the gradient of ``sqrt`` at 0 is infinite,
and one exact zero gradient would turn every weight into NaN.

The critic must not use batch normalization (the penalty is per sample; batch norm mixes
samples), so it uses layer normalization or none. The class enters the critic as a
*projection* (Miyato & Koyama, 2018): ``D(x, y) = w . phi(x) + embed(y) . phi(x)``.

Architectures and losses use only ``keras.layers`` / ``keras.ops``, so they run on every
Keras backend. The model writes its two losses (``discriminator_loss``, ``generator_loss``);
the step around them is ``BaseGAN.train_step`` on TensorFlow and
``mrigan_tf.training.jax_trainer`` on JAX.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from mrigan_tf.models.base import (SYNCHRONIZED_BATCH_NORM, BaseGAN, check_image_shape,
                                   latent_noise)
from mrigan_tf.models.diffaugment import DiffAugment
from mrigan_tf.models.losses import (drift_penalty, gradient_penalty, interpolate,
                                     wasserstein_critic_loss, wasserstein_generator_loss)


# ## The generator: latent + class -> (image, mask)

def build_conditional_generator(image_size: int = 64, channels: int = 2, latent_dim: int = 128,
                                num_classes: int = 2, width: int = 64,
                                name: str = "cwgan_generator") -> keras.Model:
    """(z, class) -> (H, W, channels) in [-1, 1]; upsample + 3x3 conv blocks from 4x4.

    The number of blocks follows the resolution (4 -> 8 -> ... -> image_size); channels
    halve at each block, starting from ``width * 2**(blocks-1)`` capped at 512. Upsampling
    followed by a convolution avoids the checkerboard artefacts of strided transposed
    convolutions (Odena et al., 2016). Batch norm is ``synchronized`` (global-batch
    statistics under ``tf.distribute``, so several replicas compute what one device does).
    """
    check_image_shape((image_size, image_size, channels))
    blocks = int(math.log2(image_size)) - 2
    filters = [min(512, width * 2 ** (blocks - 1 - i)) for i in range(blocks)]
    z = keras.Input((latent_dim,), name="latent")
    label = keras.Input((), dtype="int32", name="label")
    embedded = layers.Embedding(num_classes, latent_dim, name="class_embedding")(label)
    x = layers.Concatenate()([z, embedded])
    x = layers.Dense(4 * 4 * filters[0], use_bias=False)(x)
    x = layers.Reshape((4, 4, filters[0]))(x)
    x = layers.BatchNormalization(synchronized=SYNCHRONIZED_BATCH_NORM)(x)
    x = layers.ReLU()(x)
    for f in filters:
        x = layers.UpSampling2D(interpolation="nearest")(x)
        x = layers.Conv2D(f, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(synchronized=SYNCHRONIZED_BATCH_NORM)(x)
        x = layers.ReLU()(x)
    out = layers.Conv2D(channels, 3, padding="same", activation="tanh", dtype="float32",
                        name="image_and_mask")(x)
    return keras.Model([z, label], out, name=name)


# ## The critic: (image, mask) + class -> an unbounded score

def build_conditional_critic(image_size: int = 64, channels: int = 2, num_classes: int = 2,
                             width: int = 64, norm: str = "layer",
                             name: str = "cwgan_critic") -> keras.Model:
    """Strided 4x4 convolutions down to 4x4 features, then a projection head; linear output.

    ``norm`` is ``"layer"`` (normalize each sample over H, W, C: compatible with the
    per-sample gradient penalty) or ``"none"``. Never batch norm.
    """
    check_image_shape((image_size, image_size, channels))
    if norm not in ("layer", "none"):
        raise ValueError(f"critic norm must be 'layer' or 'none' (never batch norm), got {norm!r}")
    blocks = int(math.log2(image_size)) - 2
    image = keras.Input((image_size, image_size, channels), name="image_and_mask")
    label = keras.Input((), dtype="int32", name="label")
    x = image
    for i in range(blocks):
        f = min(512, width * 2 ** i)
        x = layers.Conv2D(f, 4, strides=2, padding="same")(x)
        if norm == "layer" and i > 0:
            x = layers.GroupNormalization(groups=1, epsilon=1e-5)(x)   # layer norm, per-channel affine
        x = layers.LeakyReLU(0.2)(x)
    # Flatten, not global pooling: pooling would discard *where* things are, and anatomy is
    # positional (a critic that cannot tell left from right cannot judge a brain).
    features = layers.Flatten()(x)
    score = layers.Dense(1, name="unconditional_score")(features)
    embedded = layers.Embedding(num_classes, features.shape[-1], name="class_projection")(label)
    projection = ops.sum(embedded * features, axis=-1, keepdims=True)
    out = layers.Add(dtype="float32", name="score")([score, projection])
    return keras.Model([image, label], out, name=name)


# ## The model

@keras.saving.register_keras_serializable(package="mrigan_tf")
class ConditionalWGANGP(BaseGAN):
    """Conditional WGAN-GP on joint (image, mask) tensors.

    Args:
        generator: ``build_conditional_generator(...)``: (z, class) -> (H, W, 2).
        critic: ``build_conditional_critic(...)``: ((H, W, 2), class) -> score.
        latent_dim: size of z (default 128).
        num_classes: number of classes the generator is conditioned on.
        n_critic: critic updates per generator update (5).
        gp_weight: lambda, the gradient-penalty weight (10).
        gp_every: lazy regularization: the penalty on every ``gp_every``-th critic update
            (the first of each group), weighted ``gp_every * gp_weight``; 1 (the default):
            on every update, as in Gulrajani et al. Must divide ``n_critic``, so that every
            training step has the same penalty pattern (and one compiled graph).
        drift_weight: weight of ``E[D(x)^2]``, which keeps critic scores near 0
            (Karras et al., 2018); 0 turns it off.
        augment: a DiffAugment policy (e.g. ``"translation,cutout,brightness,contrast"``)
            applied to real and fake before the critic; ``""`` for none.
        image_channels: leading channels that are intensities (the rest are masks).
        seed: seeds the noise and augmentation streams.
    """

    METRIC_NAMES = ("d_loss", "g_loss", "gp", "wasserstein")
    #: Trained on (joint image+mask, class) batches and sampled per class.
    CONDITIONAL = True

    def __init__(self, generator: keras.Model, discriminator: keras.Model, latent_dim: int = 128,
                 num_classes: int = 2, gp_weight: float = 10.0, n_critic: int = 5,
                 drift_weight: float = 0.0, augment: str = "", image_channels: int = 1,
                 gp_every: int = 1, seed: int | None = None, **kwargs):
        super().__init__(generator, discriminator, latent_dim, seed=seed, **kwargs)
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        if gp_every < 1 or n_critic % gp_every:
            divisors = [k for k in range(1, n_critic + 1) if n_critic % k == 0]
            raise ValueError(f"gp_every must divide n_critic ({n_critic}): one of {divisors}, "
                             f"got {gp_every}")
        self.gp_every = int(gp_every)
        self.num_classes = int(num_classes)
        self.gp_weight = float(gp_weight)
        self.n_critic = int(n_critic)
        self.drift_weight = float(drift_weight)
        self.image_channels = int(image_channels)
        self.augment_policy = augment or ""
        # float32 whatever the global policy: augmentation is arithmetic on the data, not
        # on activations, and the critic casts its input itself.
        self.augmenter = DiffAugment(self.augment_policy, image_channels=image_channels,
                                     seed=None if seed is None else seed + 1, dtype="float32")
        # It has no weights; marked built so that fit() under tf.distribute (which checks
        # every layer before the first step) does not try to build the whole GAN by calling it.
        self.augmenter.build(generator.output_shape)

    @property
    def critic(self) -> keras.Model:
        return self.discriminator

    @staticmethod
    def default_optimizers():
        # beta_1 = 0: momentum fights the moving target the critic chases (Gulrajani et al.).
        return (keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9),
                keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9))

    def call(self, inputs, training: bool = False):
        latent, labels = inputs
        return self.generator([latent, labels], training=training)

    # ## The losses (the step around them: BaseGAN.train_step, or the JAX trainer)

    def generate(self, latent, labels=None, training: bool = True):
        return self.generator([latent, ops.cast(labels, "int32")], training=training)

    def discriminate(self, images, labels=None):
        return ops.cast(self.critic([images, ops.cast(labels, "int32")], training=True), "float32")

    def penalizes(self, critic_update: int) -> bool:
        # Lazy regularization: the penalty on the first critic update of every gp_every.
        return critic_update % self.gp_every == 0

    def discriminator_loss(self, real, fake, labels, alpha):
        real, fake = self.augment(real), self.augment(fake)
        # One critic call on both batches: the critic treats every sample on its own (layer
        # norm, never batch norm), so this computes what two calls would, faster.
        scores = self.discriminate(ops.concatenate([real, fake], axis=0),
                                   ops.concatenate([labels, labels], axis=0))
        d_real, d_fake = ops.split(scores, 2, axis=0)
        loss = wasserstein_critic_loss(d_real, d_fake)
        if self.drift_weight:
            loss += self.drift_weight * drift_penalty(d_real)
        logs = {"d_loss": loss, "wasserstein": -wasserstein_critic_loss(d_real, d_fake)}
        if alpha is not None:
            logs["gp"] = gradient_penalty(self.input_gradients(interpolate(real, fake, alpha),
                                                               labels))
            # Weighted gp_every x lambda: on average the critic feels lambda.
            loss += self.gp_every * self.gp_weight * logs["gp"]
        return loss, logs

    def generator_loss(self, real, fake, labels):
        loss = wasserstein_generator_loss(self.discriminate(self.augment(fake), labels))
        return loss, {"g_loss": loss}

    def finish_logs(self, logs):
        # d_loss as the method defines it (-W + lambda * GP), with the latest penalty, so
        # that its curve means the same whatever gp_every is.
        return {**logs, "d_loss": logs["d_loss"] + self.gp_weight * logs["gp"]}

    # ## Sampling

    def balanced_labels(self, n: int) -> np.ndarray:
        """``n`` class labels cycling through the classes: 0, 1, ..., K-1, 0, 1, ..."""
        return (np.arange(n) % self.num_classes).astype(np.int32)

    def sample(self, n: int = 16, seed: int = 0, labels: np.ndarray | None = None,
               latent: np.ndarray | None = None, batch_size: int = 256) -> np.ndarray:
        """``n`` generated (image, mask) pairs, shape (n, H, W, 2), for a fixed latent seed.

        ``labels`` defaults to a balanced cycle through the classes.
        """
        if latent is None:
            latent = latent_noise(n, self.latent_dim, seed)
        labels = self.balanced_labels(len(latent)) if labels is None else np.asarray(labels, np.int32)
        if labels.shape != (len(latent),):
            raise ValueError(f"need one label per sample: {len(latent)} samples, labels {labels.shape}")
        bad = np.setdiff1d(labels, np.arange(self.num_classes))
        if bad.size:
            raise ValueError(f"labels {bad.tolist()} outside the {self.num_classes} classes")
        chunks = [keras.ops.convert_to_numpy(
                      self.generator([latent[i:i + batch_size], labels[i:i + batch_size]],
                                     training=False))
                  for i in range(0, len(latent), batch_size)]
        return np.concatenate(chunks, axis=0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes,
                "gp_weight": self.gp_weight, "gp_every": self.gp_every, "n_critic": self.n_critic,
                "drift_weight": self.drift_weight, "augment": self.augment_policy,
                "image_channels": self.image_channels}


def make_cwgan_gp(image_shape=(64, 64, 2), num_classes: int = 2, latent_dim: int = 128,
                  width: int = 64, critic_norm: str = "layer", gp_weight: float = 10.0,
                  n_critic: int = 5, drift_weight: float = 0.0, augment: str = "",
                  gp_every: int = 1, seed: int | None = None) -> ConditionalWGANGP:
    """A ConditionalWGANGP with the default generator and critic for ``image_shape``.

    ``image_shape`` is (H, W, C): C = 2 for the joint (image, mask) tensor.
    """
    size, _, channels = check_image_shape(tuple(image_shape))
    generator = build_conditional_generator(size, channels, latent_dim, num_classes, width)
    critic = build_conditional_critic(size, channels, num_classes, width, critic_norm)
    return ConditionalWGANGP(generator, critic, latent_dim=latent_dim, num_classes=num_classes,
                             gp_weight=gp_weight, n_critic=n_critic, drift_weight=drift_weight,
                             augment=augment, image_channels=1, gp_every=gp_every, seed=seed)
