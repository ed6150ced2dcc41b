"""
Title: DCGAN
Description: the vanilla GAN's game, played by convolutional networks.

A fully connected generator must learn separately, for every position, what a ventricle
edge looks like. Convolutions share that knowledge across the image, and Radford, Metz and
Chintala (2016), "Unsupervised representation learning with deep convolutional GANs", found
the architecture guidelines that make convolutional GANs train stably:

* no pooling: the discriminator downsamples with **strided convolutions**, the generator
  upsamples with **transposed convolutions** (both learn their own resampling);
* **batch normalization** in both players, except the generator's output layer and the
  discriminator's input layer (normalizing those made samples oscillate);
* **ReLU** in the generator with a **tanh** output, **LeakyReLU(0.2)** in the discriminator;
* no fully connected hidden layers: the latent vector is projected once to a 4x4 feature
  map, and the discriminator's last 4x4 map is flattened into one logit;
* weights drawn from N(0, 0.02); **Adam(2e-4, beta_1=0.5)** (beta_1 = 0.9 oscillated).

Batch norm is ``synchronized``: under ``tf.distribute`` its statistics are those of the
global batch, not of each replica's slice, so training on several GPUs is the same
computation as on one (outside a strategy it is ordinary batch norm).

The objective is the vanilla GAN's non-saturating loss, so ``DCGAN`` is a ``VanillaGAN``
with these players (label smoothing and feature matching still apply). Resolution follows
the data: each factor of two above 4x4 adds one block to each player, 4 blocks for 64 px,
5 for 128 px.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import layers

from mrigan_tf.models.base import SYNCHRONIZED_BATCH_NORM, check_image_shape
from mrigan_tf.models.blocks import MinibatchStdDev, spectral_norm as sn
from mrigan_tf.models.gan import FEATURE_LAYER, VanillaGAN

#: The smallest feature map: the generator projects to it, the discriminator ends at it.
BASE_SIZE = 4


def dcgan_init() -> keras.initializers.Initializer:
    """N(0, 0.02), the DCGAN paper's weight initialisation."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def block_widths(size: int, width: int, max_width_factor: int = 8) -> list[int]:
    """Channels of each feature map from 4x4 up to size/2 in the generator (coarse first).

    The finest map has ``width`` channels and each halving of resolution doubles them, capped
    at ``max_width_factor * width`` so 128 and 256 px models stay trainable; the discriminator
    uses the same widths in reverse.
    """
    n_blocks = int(math.log2(size // BASE_SIZE))
    return [width * min(2 ** (n_blocks - 1 - i), max_width_factor) for i in range(n_blocks)]


# ## Create the generator


def build_dcgan_generator(image_shape: Sequence[int], latent_dim: int = 100,
                          width: int = 64) -> keras.Model:
    """Latent -> 4x4 map -> (ConvTranspose stride 2, BatchNorm, ReLU)* -> tanh image."""
    size, _, channels = check_image_shape(image_shape, min_size=2 * BASE_SIZE)
    widths = block_widths(size, width)
    latent = keras.Input((latent_dim,), name="latent")
    # Bias is redundant before batch norm, which subtracts the mean anyway.
    x = layers.Dense(BASE_SIZE * BASE_SIZE * widths[0], use_bias=False,
                     kernel_initializer=dcgan_init())(latent)
    x = layers.Reshape((BASE_SIZE, BASE_SIZE, widths[0]))(x)
    x = layers.BatchNormalization(synchronized=SYNCHRONIZED_BATCH_NORM)(x)
    x = layers.ReLU()(x)
    for filters in widths[1:]:
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False,
                                   kernel_initializer=dcgan_init())(x)
        x = layers.BatchNormalization(synchronized=SYNCHRONIZED_BATCH_NORM)(x)
        x = layers.ReLU()(x)
    # The output layer: no batch norm, tanh to land in the data's [-1, 1].
    image = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="tanh",
                                   kernel_initializer=dcgan_init(), name="image")(x)
    return keras.Model(latent, image, name="dcgan_generator")


# ## Create the discriminator


def build_dcgan_discriminator(image_shape: Sequence[int], width: int = 64,
                              batch_norm: bool = True, minibatch_std: int = 0,
                              spectral_norm: bool = False,
                              name: str = "dcgan_discriminator") -> keras.Model:
    """Image -> (Conv stride 2, BatchNorm, LeakyReLU)* down to 4x4 -> one linear logit.

    The input block has no batch norm. The flattened 4x4 map is the ``"features"`` layer of
    feature matching. The output is linear, so the same network is the WGAN critic.
    ``batch_norm=False`` drops normalization everywhere. ``minibatch_std=G``: a minibatch
    standard-deviation feature map (groups of ``G``) on the 4x4 map; ``spectral_norm``:
    every convolution and the logit's dense layer spectrally normalized.
    """
    size, _, channels = check_image_shape(image_shape, min_size=2 * BASE_SIZE)
    widths = block_widths(size, width)[::-1]
    image = keras.Input((size, size, channels), name="image")
    x = image
    for i, filters in enumerate(widths):
        x = sn(layers.Conv2D(filters, 4, strides=2, padding="same",
                             use_bias=not (batch_norm and i), kernel_initializer=dcgan_init()),
               spectral_norm)(x)
        if batch_norm and i > 0:
            x = layers.BatchNormalization(synchronized=SYNCHRONIZED_BATCH_NORM)(x)
        x = layers.LeakyReLU(0.2)(x)
    if minibatch_std:
        x = MinibatchStdDev(minibatch_std, name="minibatch_std")(x)
    features = layers.Flatten(name=FEATURE_LAYER)(x)
    logit = sn(layers.Dense(1, kernel_initializer=dcgan_init(), name="logit"),
               spectral_norm)(features)
    return keras.Model(image, logit, name=name)


# ## The model


@keras.saving.register_keras_serializable(package="mrigan_tf")
class DCGAN(VanillaGAN):
    """A ``VanillaGAN`` whose players follow the DCGAN guidelines (see the module docstring).

    Same arguments, losses and logged metrics (``d_loss``, ``g_loss``, ``d_real``,
    ``d_fake``) as ``VanillaGAN``; build it with ``make_dcgan``.
    """


def make_dcgan(image_shape: Sequence[int], latent_dim: int = 100, width: int = 64,
               label_smoothing: float = 0.0, feature_matching: bool = False,
               minibatch_std: int = 0, spectral_norm: bool = False, ema_decay: float = 0.0,
               r1_weight: float = 0.0, seed: int | None = None) -> DCGAN:
    """A ``DCGAN`` for square images of ``image_shape`` (H, W, C), H a power of two >= 8.

    ``width`` is the channel count of the finest feature map (64 in the paper's 64 px model,
    whose coarsest map has 8 * 64 = 512 channels). ``minibatch_std=G`` adds a minibatch
    standard-deviation feature map (groups of ``G``) to the discriminator, ``spectral_norm``
    spectrally normalizes its layers (``mrigan_tf.models.blocks``); ``ema_decay`` and
    ``r1_weight``: see ``BaseGAN``.
    """
    return DCGAN(build_dcgan_generator(image_shape, latent_dim, width),
                 build_dcgan_discriminator(image_shape, width, minibatch_std=minibatch_std,
                                           spectral_norm=spectral_norm),
                 latent_dim=latent_dim, label_smoothing=label_smoothing,
                 feature_matching=feature_matching, ema_decay=ema_decay, r1_weight=r1_weight,
                 seed=seed, name="dcgan")
