"""
Title: The vanilla GAN
Description: two multilayer perceptrons on flattened slices, the non-saturating loss,
label smoothing and feature matching.

Goodfellow et al. (2014) pit a generator ``G`` against a discriminator ``D`` that outputs
the probability ``D(x) = sigmoid(l(x))`` that ``x`` is real (``l`` is the logit). ``D``
minimises the binary cross-entropy of telling real from fake:

    L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]

Letting ``G`` minimise ``log(1 - D(G(z)))`` (the minimax game) gives it almost no gradient
early on, when ``D`` rejects every sample with confidence. The *non-saturating* loss the
paper recommends instead has the same fixed point and strong gradients exactly then:

    L_G = -E_z[log D(G(z))]

Both losses are computed from logits (``binary_crossentropy(..., from_logits=True)``), which
is numerically stable where ``log(sigmoid(.))`` is not.

Salimans et al. (2016), "Improved techniques for training GANs", add two tricks that this
model offers as options:

* **one-sided label smoothing**: real targets ``1 - s`` (e.g. 0.9) instead of 1, so ``D``
  cannot grow arbitrarily confident on real data and pass ever-sharper gradients to ``G``.
  Fake targets stay 0 (smoothing them would reward ``G`` for samples where data is absent).
  With a logit ``l`` the target moves the loss by exactly ``s * l``:
  ``BCE(l, 1 - s) = BCE(l, 1) + s * l``.
* **feature matching**: instead of fooling ``D``'s last layer, ``G`` matches the mean of an
  intermediate feature ``f`` of ``D`` on real and on generated data,
  ``L_G = || E_x f(x) - E_z f(G(z)) ||_2^2``; a moving target that is harder to
  over-fit than the discriminator's current verdict.

The players are fully connected: every pixel sees every other pixel, nothing knows that
neighbouring pixels are related. That is the weakness DCGAN (``dcgan.py``) fixes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import layers, ops

# ``tf`` is TensorFlow, imported when a train step first runs (see models/base.py).
from mrigan_tf.models.base import BaseGAN
from mrigan_tf.models.blocks import MinibatchStdDev, spectral_norm as sn
from mrigan_tf.models.losses import (feature_matching_loss, ns_discriminator_loss,
                                     ns_generator_loss)

FEATURE_LAYER = "features"


# ## Create the generator and the discriminator


def build_mlp_generator(image_shape: Sequence[int], latent_dim: int = 100,
                        hidden_units: Sequence[int] = (256, 512, 1024)) -> keras.Model:
    """Latent vector -> Dense/LeakyReLU stack -> ``H*W*C`` tanh outputs -> image."""
    image_shape = tuple(int(s) for s in image_shape)
    latent = keras.Input((latent_dim,), name="latent")
    x = latent
    for units in hidden_units:
        x = layers.Dense(units)(x)
        x = layers.LeakyReLU(0.2)(x)
    # tanh matches the data's [-1, 1] range.
    x = layers.Dense(int(np.prod(image_shape)), activation="tanh")(x)
    image = layers.Reshape(image_shape, name="image")(x)
    return keras.Model(latent, image, name="mlp_generator")


def build_mlp_discriminator(image_shape: Sequence[int],
                            hidden_units: Sequence[int] = (1024, 512, 256),
                            minibatch_std: int = 0, spectral_norm: bool = False) -> keras.Model:
    """Image -> flatten -> Dense/LeakyReLU stack -> one logit.

    The last hidden activation is the layer named ``"features"``, the ``f`` of feature
    matching. No sigmoid: the losses take logits. ``minibatch_std=G``: the minibatch
    standard deviation of the features (groups of ``G``) joins them before the logit;
    ``spectral_norm``: every dense layer spectrally normalized.
    """
    if not hidden_units:
        raise ValueError("the discriminator needs at least one hidden layer (the features)")
    image = keras.Input(tuple(int(s) for s in image_shape), name="image")
    x = layers.Flatten()(image)
    for i, units in enumerate(hidden_units):
        x = sn(layers.Dense(units), spectral_norm)(x)
        last = i == len(hidden_units) - 1
        x = layers.LeakyReLU(0.2, name=FEATURE_LAYER if last else None)(x)
    if minibatch_std:
        x = MinibatchStdDev(minibatch_std, name="minibatch_std")(x)
    logit = sn(layers.Dense(1, name="logit"), spectral_norm)(x)
    return keras.Model(image, logit, name="mlp_discriminator")


# ## Override train_step


@keras.saving.register_keras_serializable(package="mrigan_tf")
class VanillaGAN(BaseGAN):
    """The non-saturating GAN, with one-sided label smoothing and feature matching as options.

    Works with any discriminator that returns one logit per image; feature matching also
    needs a layer named ``feature_layer`` in it (``build_mlp_discriminator`` and
    ``build_dcgan_discriminator`` name theirs ``"features"``).

    Args:
        generator, discriminator, latent_dim, seed: see ``BaseGAN``.
        label_smoothing: ``s`` in the real targets ``1 - s``; 0 turns smoothing off, the
            paper's value is 0.1 (targets 0.9).
        feature_matching: train the generator on the feature-matching loss instead of the
            non-saturating loss.
        feature_layer: name of the discriminator layer whose output is ``f``.

    Logs ``d_loss``, ``g_loss`` (the feature-matching loss when it is on), and ``d_real`` /
    ``d_fake``: the mean probability ``D`` gives real and generated images of being real
    (both drift towards 0.5 when the game is balanced; ``d_fake`` near 0 means ``G`` lost).
    """

    METRIC_NAMES = ("d_loss", "g_loss", "d_real", "d_fake")

    def __init__(self, generator: keras.Model, discriminator: keras.Model, latent_dim: int,
                 label_smoothing: float = 0.0, feature_matching: bool = False,
                 feature_layer: str = FEATURE_LAYER, seed: int | None = None, **kwargs):
        super().__init__(generator, discriminator, latent_dim, seed=seed, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self.feature_matching = bool(feature_matching)
        self.feature_layer = feature_layer
        # f(x) shares the discriminator's layers and weights: a view, not a copy.
        self.feature_extractor = (
            keras.Model(discriminator.input, discriminator.get_layer(feature_layer).output,
                        name="discriminator_features")
            if feature_matching else None)

    def discriminator_loss(self, real, fake, labels, alpha):
        # Real and fake go through D separately so that batch-norm statistics are never
        # mixed (Radford et al.).
        real_logits, fake_logits = self.discriminate(real), self.discriminate(fake)
        loss = ns_discriminator_loss(real_logits, fake_logits, self.label_smoothing)
        return loss, {"d_loss": loss, "d_real": ops.mean(ops.sigmoid(real_logits)),
                      "d_fake": ops.mean(ops.sigmoid(fake_logits))}

    def generator_loss(self, real, fake, labels):
        if self.feature_matching:
            loss = feature_matching_loss(
                ops.cast(self.feature_extractor(real, training=True), "float32"),
                ops.cast(self.feature_extractor(fake, training=True), "float32"))
        else:
            loss = ns_generator_loss(self.discriminate(fake))
        return loss, {"g_loss": loss}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "label_smoothing": self.label_smoothing,
                "feature_matching": self.feature_matching, "feature_layer": self.feature_layer}


def make_vanilla_gan(image_shape: Sequence[int], latent_dim: int = 100,
                     generator_units: Sequence[int] = (256, 512, 1024),
                     discriminator_units: Sequence[int] = (1024, 512, 256),
                     label_smoothing: float = 0.0, feature_matching: bool = False,
                     minibatch_std: int = 0, spectral_norm: bool = False,
                     ema_decay: float = 0.0, r1_weight: float = 0.0,
                     seed: int | None = None) -> VanillaGAN:
    """A ``VanillaGAN`` with MLP players for images of ``image_shape`` (H, W, C).

    ``minibatch_std=G`` adds a minibatch standard-deviation feature (groups of ``G``) before
    the last layer, ``spectral_norm`` spectrally normalizes every dense and convolution
    layer (``mrigan_tf.models.blocks``); ``ema_decay`` and ``r1_weight``: see ``BaseGAN``.
    """
    return VanillaGAN(build_mlp_generator(image_shape, latent_dim, generator_units),
                      build_mlp_discriminator(image_shape, discriminator_units,
                                              minibatch_std=minibatch_std,
                                              spectral_norm=spectral_norm),
                      latent_dim=latent_dim, label_smoothing=label_smoothing,
                      feature_matching=feature_matching, ema_decay=ema_decay,
                      r1_weight=r1_weight, seed=seed, name="vanilla_gan")
