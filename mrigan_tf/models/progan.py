"""
Title: ProGAN: growing the image and its mask from 4x4 to full size, with fade-in
Description: progressive growing, equalized learning rate, pixel norm, minibatch stddev.

## Why grow

A GAN that starts at 64x64 must learn the coarse layout of a brain and the texture of its
tissue at once, from a critic that is just as lost. Karras et al. (2018, "Progressive Growing
of GANs for Improved Quality, Stability, and Variation") start both players at 4x4, where the
game is easy, and add a resolution at a time: the generator gains an upsampling block and a
new ``to_rgb`` head, the critic a new ``from_rgb`` head and a downsampling block. Each new
level is *faded in*: for ``fade_steps`` steps the output is a blend of the old head's image,
upsampled, and the new head's,

    x_out = (1 - alpha) * upsample(to_rgb_{l-1}(h_{l-1})) + alpha * to_rgb_l(h_l),

with ``alpha`` ramping linearly from 0 to 1; the critic blends its two input paths with the
same ``alpha``, and the real images it sees are blended alike (downsampled, upsampled back,
mixed with the sharp ones), so that real and fake are alike in everything but realism.
Then the level trains on its own (``alpha = 1``) for ``phase_steps`` steps.

The schedule is a function of the step alone (``growth_schedule``): ``phase_steps`` at the
start resolution, then per new level ``fade_steps`` fading and ``phase_steps`` stable; the
last level stays. So resuming a run is restoring its step and weights.

## Equalized learning rate

Adam divides each update by a running estimate of the gradient's scale, so a layer's
effective step does not depend on its fan-in, while its weights' useful scale does
(He et al. 2015: ``std = sqrt(2 / fan_in)``). ProGAN initialises every weight from
``N(0, 1)`` and multiplies it *at run time* by He's constant,

    W_used = c * W,    c = gain / sqrt(fan_in),    gain = sqrt(2)  (1 for the output heads),

so every layer learns at the same speed (``EqualizedDense``, ``EqualizedConv2D``).

## Pixelwise feature normalization (generator)

After each convolution, each pixel's feature vector is scaled to unit mean square,
``b = a / sqrt(mean_c(a^2) + 1e-8)`` (``PixelNorm``): no batch statistics, and the generator's
signal cannot escalate in its game with the critic.

## The rest, shared with the cWGAN-GP

Minibatch standard deviation before the critic's last block
(``mrigan_tf.models.blocks.MinibatchStdDev``); the loss is WGAN-GP with the drift term,
``L_D = E D(G(z)) - E D(x) + lambda E(||grad D(x_hat)|| - 1)^2 + eps_drift E D(x)^2`` with
lambda = 10, eps_drift = 0.001, one critic update per generator update and
Adam(1e-3, beta_1=0, beta_2=0.99); the generator's weights are averaged (EMA, decay 0.999)
for sampling. ``ProGAN`` *is* a ``ConditionalWGANGP``: the same losses (``discriminator_loss``
on faded reals), the same class conditioning (the class embedding joins the latent vector;
a projection in the critic), the same joint (image, 2*mask-1) output and sampling, so
``mrigan-tf generate`` and ``evaluate`` read a ProGAN run as they read a cWGAN-GP one, and
both backends train it through the shared steps (``BaseGAN.train_step``, the JAX trainer).

## One static graph for every phase (a design choice)

The networks are built once at full resolution with every head, and the current level and
alpha are two non-trainable variables in each ``FadeIn`` layer. The generator always
outputs a full-size image (at level ``l`` an upsampled ``4 * 2**l`` image) and the critic
always reads one, as Karras et al.'s own TensorFlow code did (its "linear" structure). So one
compiled step (``tf.function``/XLA, ``jax.jit``) serves every phase, the run directory,
backups, sample grids and ``model.keras`` see one fixed model, and a resumed run restores
its phase with its weights. The cost: layers above the current level run with weight 0 in
the early phases (wasted FLOPs there, none at full size). The growth state is set after
every generator update (``after_generator_update``) to the next step's, on both backends.

Two departures from the paper: the output passes through ``tanh`` after the blend (the
dataset contract's [-1, 1] range, as the cWGAN-GP's generator; nearest upsampling commutes
with it, so the fade-in endpoints are exact), and the class is a learned embedding
concatenated to z with a projection critic (the paper's conditional variant used one-hot
labels and an auxiliary classifier). Its gradient penalty is taken on the full-size images,
as in the paper's code.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import layers, ops

from mrigan_tf.models.base import check_image_shape
from mrigan_tf.models.blocks import MinibatchStdDev, projection_critic
from mrigan_tf.models.cwgan_gp import ConditionalWGANGP

#: He's gain for layers followed by a leaky ReLU (the output heads use 1).
HE_GAIN = math.sqrt(2.0)
LEAKY_SLOPE = 0.2


# ## The growth schedule: resolution level and fade-in alpha as a function of the step

def level_of(size: int) -> int:
    """The level of a resolution: 4 px is level 0, 8 px level 1, ..., 64 px level 4."""
    return int(math.log2(size)) - 2


def growth_schedule(step, start_level: int, max_level: int, phase_steps: int, fade_steps: int):
    """``(level, alpha)`` at generator step ``step`` (a number or a tensor; float32 tensors out).

    ``phase_steps`` steps at ``start_level`` (alpha 1); then, for each level up to
    ``max_level``, ``fade_steps`` steps with alpha = (steps into the fade) / ``fade_steps``
    (0, 1/F, ..., (F-1)/F), then ``phase_steps`` with alpha = 1. The last level stays.
    """
    step = ops.cast(step, "float32")
    cycle = float(fade_steps + phase_steps)
    since = step - float(phase_steps)                 # < 0 during the start level's phase
    grown = ops.where(since < 0, 0.0, ops.floor(since / cycle) + 1.0)
    into_fade = since - (grown - 1.0) * cycle         # steps into this level's fade-in
    alpha = ops.where(since < 0, 1.0, ops.minimum(into_fade / float(fade_steps), 1.0))
    level = float(start_level) + grown
    alpha = ops.where(level > max_level, 1.0, alpha)  # fully grown: the last level stays
    return ops.minimum(level, float(max_level)), alpha


def full_size_step(start_level: int, max_level: int, phase_steps: int, fade_steps: int) -> int:
    """The first step at full size with alpha = 1 (the end of the last fade-in)."""
    # phase_steps at the start, then per level fade_steps + phase_steps, less the last
    # level's phase_steps (it has begun): levels * (fade + phase) - phase + phase.
    return (max_level - start_level) * (fade_steps + phase_steps)


# ## The layers: equalized learning rate, pixel norm, fade-in

def _normal_init():
    return keras.initializers.RandomNormal(0.0, 1.0)


@keras.saving.register_keras_serializable(package="mrigan_tf")
class EqualizedDense(layers.Dense):
    """``Dense`` with ``N(0, 1)`` weights scaled at run time by ``gain / sqrt(fan_in)``."""

    def __init__(self, units: int, gain: float = HE_GAIN, **kwargs):
        kwargs.setdefault("kernel_initializer", _normal_init())
        super().__init__(units, **kwargs)
        self.gain = float(gain)

    @property
    def scale(self) -> float:
        """He's constant ``c = gain / sqrt(fan_in)`` (fan_in: the input features)."""
        return self.gain / math.sqrt(self.kernel.shape[0])

    def call(self, inputs):
        kernel = self.kernel * ops.cast(self.scale, self.kernel.dtype)
        outputs = ops.matmul(inputs, ops.cast(kernel, inputs.dtype))
        if self.use_bias:
            outputs = ops.add(outputs, ops.cast(self.bias, outputs.dtype))
        return self.activation(outputs) if self.activation is not None else outputs

    def get_config(self):
        return {**super().get_config(), "gain": self.gain}


@keras.saving.register_keras_serializable(package="mrigan_tf")
class EqualizedConv2D(layers.Conv2D):
    """``Conv2D`` (same padding) with ``N(0, 1)`` weights scaled at run time by
    ``gain / sqrt(k * k * in_channels)``."""

    def __init__(self, filters: int, kernel_size, gain: float = HE_GAIN, **kwargs):
        kwargs.setdefault("kernel_initializer", _normal_init())
        kwargs.setdefault("padding", "same")
        super().__init__(filters, kernel_size, **kwargs)
        self.gain = float(gain)

    @property
    def scale(self) -> float:
        """He's constant ``c = gain / sqrt(fan_in)``, fan_in = k_h * k_w * in_channels."""
        return self.gain / math.sqrt(math.prod(self.kernel.shape[:-1]))

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, kernel * ops.cast(self.scale, kernel.dtype))

    def get_config(self):
        return {**super().get_config(), "gain": self.gain}


@keras.saving.register_keras_serializable(package="mrigan_tf")
class PixelNorm(layers.Layer):
    """Each pixel's feature vector scaled to unit mean square: ``a / sqrt(mean_c a^2 + eps)``."""

    def __init__(self, epsilon: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, x):
        return x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="mrigan_tf")
class FadeIn(layers.Layer):
    """``low + w * (high - low)`` at the transition into level ``transition``.

    ``w = clip(level - transition + alpha, 0, 1)``: 1 for levels already grown (the new
    path alone), ``alpha`` while this level fades in, 0 above the current level (the lower
    path alone). ``level`` and ``alpha`` are non-trainable variables (saved with the weights,
    set by ``set_growth``), so the same graph serves every phase.
    """

    def __init__(self, transition: int, **kwargs):
        super().__init__(**kwargs)
        self.transition = int(transition)
        self.level = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                     name="level", dtype="float32")
        self.alpha = self.add_weight(shape=(), initializer="ones", trainable=False,
                                     name="alpha", dtype="float32")

    def weight(self):
        return ops.clip(self.level - float(self.transition) + self.alpha, 0.0, 1.0)

    def call(self, inputs):
        low, high = inputs
        return low + ops.cast(self.weight(), low.dtype) * (high - low)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "transition": self.transition}


def fade_layers(network: keras.Model) -> list[FadeIn]:
    """The ``FadeIn`` layers of a network, lowest transition first."""
    found = [layer for layer in network._flatten_layers(include_self=False)
             if isinstance(layer, FadeIn)]
    return sorted(found, key=lambda layer: layer.transition)


def set_growth(network: keras.Model, level, alpha) -> None:
    """Put every ``FadeIn`` of ``network`` at resolution ``level`` with fade-in ``alpha``."""
    for layer in fade_layers(network):
        layer.level.assign(ops.cast(level, "float32"))
        layer.alpha.assign(ops.cast(alpha, "float32"))


def _upsample(x):
    """Nearest-neighbour 2x upsampling (what the generator's fade-in uses), in keras.ops."""
    return ops.repeat(ops.repeat(x, 2, axis=1), 2, axis=2)


def _downsample(x):
    """2x2 average pooling (the critic's downsampling), in keras.ops."""
    return ops.average_pool(x, 2, strides=2, padding="valid")


def _filters(level: int, max_level: int, width: int) -> int:
    # Channels halve with every doubling of resolution, full size has ``width`` (cap 512).
    return min(512, width * 2 ** (max_level - level))


def _size(level: int) -> str:
    return f"{4 * 2 ** level}x{4 * 2 ** level}"


# ## The generator: (z, class) -> (image, mask), every resolution's head blended

def build_progressive_generator(image_size: int = 64, channels: int = 2, latent_dim: int = 128,
                                num_classes: int = 2, width: int = 64,
                                name: str = "progan_generator") -> keras.Model:
    """(z, class) -> (H, W, channels) in [-1, 1], grown from 4x4 (Karras et al., Table 2).

    Per level: 2x nearest upsampling, two equalized 3x3 convolutions, each with leaky ReLU
    and pixel norm; a 1x1 ``to_rgb_<size>`` head (gain 1, linear); the heads are blended by
    ``FadeIn`` layers ``fade_in_<size>`` and the full-size blend passes through tanh.
    """
    check_image_shape((image_size, image_size, channels), min_size=8)
    max_level = level_of(image_size)

    def conv(x, filters):
        x = EqualizedConv2D(filters, 3)(x)
        return PixelNorm()(layers.LeakyReLU(LEAKY_SLOPE)(x))

    def to_rgb(x, level):
        return EqualizedConv2D(channels, 1, gain=1.0, name=f"to_rgb_{_size(level)}")(x)

    z = keras.Input((latent_dim,), name="latent")
    label = keras.Input((), dtype="int32", name="label")
    embedded = layers.Embedding(num_classes, latent_dim, name="class_embedding")(label)
    x = PixelNorm(name="normalize_latent")(layers.Concatenate()([z, embedded]))
    f0 = _filters(0, max_level, width)
    # The first block is a 4x4 "convolution" of a 1x1 input: a dense layer (gain sqrt(2)/4
    # as in the paper's code: its 16 outputs per channel share one input).
    x = EqualizedDense(16 * f0, gain=HE_GAIN / 4)(x)
    x = PixelNorm()(layers.LeakyReLU(LEAKY_SLOPE)(layers.Reshape((4, 4, f0))(x)))
    x = conv(x, f0)
    rgb = to_rgb(x, 0)
    for level in range(1, max_level + 1):
        x = layers.UpSampling2D(interpolation="nearest")(x)
        x = conv(conv(x, _filters(level, max_level, width)), _filters(level, max_level, width))
        rgb = FadeIn(level, name=f"fade_in_{_size(level)}")(
            [layers.UpSampling2D(interpolation="nearest")(rgb), to_rgb(x, level)])
    out = layers.Activation("tanh", dtype="float32", name="image_and_mask")(rgb)
    return keras.Model([z, label], out, name=name)


# ## The critic: (image, mask) + class -> a score, every resolution's input path blended

def build_progressive_critic(image_size: int = 64, channels: int = 2, num_classes: int = 2,
                             width: int = 64, minibatch_std: int = 4,
                             name: str = "progan_critic") -> keras.Model:
    """((H, W, channels), class) -> an unbounded score; the generator's mirror image.

    Per level, from full size down: a ``from_rgb_<size>`` 1x1 head on the input
    average-pooled to that size, two equalized 3x3 convolutions (leaky ReLU, no
    normalization: the gradient penalty is per sample) and 2x average pooling, blended by
    ``FadeIn`` with the next lower level's ``from_rgb`` path. At 4x4: minibatch stddev (groups
    of ``minibatch_std``; 0: none), a 3x3 convolution, a dense layer, and the score plus the
    projection of the class embedding onto the features (Miyato & Koyama, 2018).
    """
    check_image_shape((image_size, image_size, channels), min_size=8)
    max_level = level_of(image_size)

    def conv(x, filters):
        return layers.LeakyReLU(LEAKY_SLOPE)(EqualizedConv2D(filters, 3)(x))

    def from_rgb(x, level):
        x = EqualizedConv2D(_filters(level, max_level, width), 1, name=f"from_rgb_{_size(level)}")(x)
        return layers.LeakyReLU(LEAKY_SLOPE)(x)

    image = keras.Input((image_size, image_size, channels), name="image_and_mask")
    pyramid = {max_level: image}                      # the input at every level's size
    for level in range(max_level - 1, -1, -1):
        pyramid[level] = layers.AveragePooling2D(2)(pyramid[level + 1])
    x = from_rgb(image, max_level)
    for level in range(max_level, 0, -1):
        x = conv(x, _filters(level, max_level, width))
        x = layers.AveragePooling2D(2)(conv(x, _filters(level - 1, max_level, width)))
        x = FadeIn(level, name=f"fade_in_{_size(level)}")([from_rgb(pyramid[level - 1], level - 1), x])
    if minibatch_std:
        x = MinibatchStdDev(minibatch_std, name="minibatch_std")(x)
    f0 = _filters(0, max_level, width)
    x = conv(x, f0)
    features = layers.LeakyReLU(LEAKY_SLOPE)(EqualizedDense(f0)(layers.Flatten()(x)))
    score = EqualizedDense(1, gain=1.0, name="unconditional_score")(features)
    return projection_critic(image, features, score, num_classes, name)


# ## The model

@keras.saving.register_keras_serializable(package="mrigan_tf")
class ProGAN(ConditionalWGANGP):
    """Progressively grown, class-conditional WGAN-GP on joint (image, mask) tensors.

    Args:
        generator, discriminator: ``build_progressive_generator`` / ``build_progressive_critic``.
        phase_steps: generator steps at each level with alpha = 1 (the start level's too).
        fade_steps: generator steps over which each new level fades in (alpha 0 -> 1).
        start_size: the resolution training starts at (4, 8, ...; at most the image size).
        n_critic, gp_weight, drift_weight, ema_decay: the paper's 1, 10, 0.001, 0.999.
        The rest: see ``ConditionalWGANGP`` (whose losses this model trains with).
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, latent_dim: int = 128,
                 phase_steps: int = 500, fade_steps: int = 500, start_size: int = 4,
                 n_critic: int = 1, drift_weight: float = 1e-3, ema_decay: float = 0.999,
                 **kwargs):
        super().__init__(generator, discriminator, latent_dim, n_critic=n_critic,
                         drift_weight=drift_weight, ema_decay=ema_decay, **kwargs)
        self.max_level = level_of(self.image_shape[0])
        if start_size < 4 or start_size & (start_size - 1) or start_size > self.image_shape[0]:
            raise ValueError(f"start_size must be a power of two from 4 to the image size "
                             f"({self.image_shape[0]}), got {start_size}")
        if phase_steps < 0 or fade_steps < 1:
            raise ValueError(f"phase_steps must be >= 0 and fade_steps >= 1, got "
                             f"{phase_steps} and {fade_steps}")
        self.phase_steps, self.fade_steps = int(phase_steps), int(fade_steps)
        self.start_size = int(start_size)
        self.start_level = level_of(self.start_size)
        self.set_growth(*self.growth_at(0))

    @staticmethod
    def default_optimizers():
        # The paper's: lr 1e-3 is safe because equalized learning rate scales every layer.
        return (keras.optimizers.Adam(1e-3, beta_1=0.0, beta_2=0.99, epsilon=1e-8),
                keras.optimizers.Adam(1e-3, beta_1=0.0, beta_2=0.99, epsilon=1e-8))

    # ## Growth

    def growth_at(self, step):
        """``(level, alpha)`` of generator step ``step`` (``growth_schedule``)."""
        return growth_schedule(step, self.start_level, self.max_level, self.phase_steps,
                               self.fade_steps)

    @property
    def full_size_step(self) -> int:
        """The first step at full size with alpha = 1."""
        return full_size_step(self.start_level, self.max_level, self.phase_steps,
                              self.fade_steps)

    @property
    def growth(self) -> tuple[int, float]:
        """The current ``(level, alpha)``, as the generator's fade-in layers hold it."""
        fades = fade_layers(self.generator)
        return (round(float(ops.convert_to_numpy(fades[0].level))),
                float(ops.convert_to_numpy(fades[0].alpha))) if fades else (0, 1.0)

    def set_growth(self, level, alpha) -> None:
        """Put both players (and the generator's average) at ``level`` with ``alpha``."""
        for network in (self.generator, self.discriminator, self.ema_generator):
            if network is not None:
                set_growth(network, level, alpha)

    def after_generator_update(self, step) -> None:
        # The next step's growth state first, so that the EMA update copies it.
        level, alpha = self.growth_at(step)
        set_growth(self.generator, level, alpha)
        set_growth(self.discriminator, level, alpha)
        super().after_generator_update(step)

    def fade_reals(self, images):
        """Real images as the critic must see them at the current level and alpha:
        ``upsample^(L - l)(lerp(upsample(downsample(x_l)), x_l, alpha))`` with ``x_l`` the
        images average-pooled to level ``l`` (the same blend the generator's output has)."""
        images = ops.cast(images, "float32")
        pyramid = [images]                               # full size first
        for _ in range(self.max_level):
            pyramid.append(_downsample(pyramid[-1]))
        faded = pyramid[-1]
        for fade in fade_layers(self.discriminator):
            faded = fade([_upsample(faded), pyramid[self.max_level - fade.transition]])
        return faded

    def discriminator_loss(self, real, fake, labels, alpha):
        return super().discriminator_loss(self.fade_reals(real), fake, labels, alpha)

    def get_config(self) -> dict[str, Any]:
        # ema_decay always: BaseGAN leaves out a 0, and this family's default is 0.999.
        return {**super().get_config(), "ema_decay": self.ema_decay,
                "phase_steps": self.phase_steps, "fade_steps": self.fade_steps,
                "start_size": self.start_size}


def make_progan(image_shape=(64, 64, 2), num_classes: int = 2, latent_dim: int = 128,
                width: int = 64, phase_steps: int = 500, fade_steps: int = 500,
                start_size: int = 4, n_critic: int = 1, gp_weight: float = 10.0,
                drift_weight: float = 1e-3, minibatch_std: int = 4, ema_decay: float = 0.999,
                augment: str = "", mask_consistency: float = 0.0,
                mask_segmenter: keras.Model | None = None, seed: int | None = None) -> ProGAN:
    """A ProGAN for ``image_shape`` (H, W, C; C = 2 for the joint image and mask).

    ``mask_consistency``, ``mask_segmenter``: as ``make_cwgan_gp``'s (the U-Net segments
    the full-size output, which early in growth is the upsampled low-resolution image)."""
    size, _, channels = check_image_shape(tuple(image_shape), min_size=8)
    generator = build_progressive_generator(size, channels, latent_dim, num_classes, width)
    critic = build_progressive_critic(size, channels, num_classes, width, minibatch_std)
    return ProGAN(generator, critic, latent_dim=latent_dim, num_classes=num_classes,
                  phase_steps=phase_steps, fade_steps=fade_steps, start_size=start_size,
                  n_critic=n_critic, gp_weight=gp_weight, drift_weight=drift_weight,
                  ema_decay=ema_decay, augment=augment, image_channels=channels - 1,
                  mask_consistency=mask_consistency, mask_segmenter=mask_segmenter, seed=seed)
