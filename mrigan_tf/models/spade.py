"""
Title: SPADE: an MRI slice rendered from its layout, so the mask is right by construction
Description: spatially-adaptive normalization (Park et al., 2019) conditioned on a label map.

## Why a layout

The joint models (cWGAN-GP, ProGAN) draw an image and its mask together and hope that the
mask outlines the tumor drawn. SPADE turns the question around: it is *given* the layout, the
label map of every pixel (background, tissues, edema, enhancing rim, necrotic core:
``mrigan_tf.data.layout``), and renders an image for it. The mask is then not generated at
all: it is the tumor classes of the layout, exactly, pixel for pixel. Where the layouts come
from is the first stage of a two-stage synthesis (brainSPADE, Fernandez et al. 2022): a layout
generator, or, for now and labelled as such, the real layouts of the train split.

## Spatially-adaptive normalization

Batch norm followed by a learned affine map washes a label map fed as input away (a region of
one class becomes a constant, normalized to zero). SPADE feeds the layout to every
normalization instead: normalize without parameters, then modulate with a scale and a shift
*predicted per pixel* from the layout, resized to the feature map's size,

    h_out = (h - mu) / sigma * (1 + gamma(m)) + beta(m),       a = ReLU(conv3x3(m)),
    gamma(m) = conv3x3(a),  beta(m) = conv3x3(a)

with ``m`` the one-hot layout (here with the class, one-hot, broadcast as further channels)
and ``mu``, ``sigma`` batch (or instance) statistics. ``1 + gamma`` rather than ``gamma``: with
zero weights the block is the plain normalization (a known answer the tests check). The layout
is resized by *area* (average pooling), not nearest neighbour as in the paper: at 4x4 a small
tumor would fall between the nearest samples and vanish; its area fraction does not (and the
powers of two make both backends compute the same).

The generator: ``z -> dense -> 4x4``, then SPADE residual blocks with nearest upsampling
between them up to the image size (each block: SPADE, LeakyReLU, 3x3 conv, twice, plus a
shortcut, a SPADE + 1x1 conv when the width changes), then LeakyReLU, 3x3 conv, tanh.
Its output is the image only.

## The discriminator and the losses

A multi-scale PatchGAN (pix2pixHD, Wang et al. 2018): ``scales`` copies of a small fully
convolutional discriminator, the first on the image, each further one on it downsampled by 2,
every one judging ``concat(image, one-hot layout, class)`` patch by patch (instance norm,
spectral norm on its convolutions, as in SPADE). Hinge loss (Lim & Ye 2017), averaged over the
scales' patches, and the discriminator's feature matching (pix2pixHD eq. 4) for the generator:

    L_D = 1/S sum_s [ E max(0, 1 - D_s(x, m)) + E max(0, 1 + D_s(G(z, m), m)) ]
    L_G = 1/S sum_s [ -E D_s(G(z, m), m) ]  +  lambda_FM 1/S sum_s 1/T sum_i E |D_s^i(x, m) - D_s^i(G(z, m), m)|

with ``D_s^i`` the i-th intermediate features of scale s and lambda_FM = 10. The real image and
the generated one share the layout ``m``, so their features are compared pair by pair.

**No VGG perceptual loss**: the paper adds one (lambda = 10) from an ImageNet VGG-19, whose
weights cannot be downloaded here (no network at run time, none shipped offline); feature
matching on the discriminator's own features stands in for it.

## Two backends, one step

``BaseGAN``'s step (and the generic JAX trainer) pass the players one ``labels`` tensor. Here
it is the *condition map* (B, H, W, 1) int32 that packs the layout and the class into one
integer per pixel, ``layout + L * class`` (``mrigan_tf.data.layout.condition_map``), which both players decode
(``ConditionMap``). So SPADE trains through the shared steps unchanged, on TensorFlow
(``fit`` on ``(images, conditions)``) and on JAX (``JaxGANTrainer``) alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from mrigan_tf.data.layout import condition_map, mask_from_layout
from mrigan_tf.models.base import SYNCHRONIZED_BATCH_NORM, BaseGAN, check_image_shape, latent_noise
from mrigan_tf.models.blocks import spectral_norm as sn
from mrigan_tf.models.losses import (discriminator_feature_matching_loss,
                                     hinge_discriminator_loss, hinge_generator_loss)

NORMS = ("batch", "instance")


# ## The condition map: layout and class in one integer per pixel

@keras.saving.register_keras_serializable(package="mrigan_tf")
class ConditionMap(layers.Layer):
    """Condition map (B, H, W, 1) int -> (B, H, W, L + K): the one-hot layout, then the
    one-hot class broadcast over the pixels (``condition_map`` in reverse)."""

    def __init__(self, num_layout_classes: int, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.num_layout_classes = int(num_layout_classes)
        self.num_classes = int(num_classes)

    def call(self, condition):
        condition = ops.cast(condition[..., 0], "int32")
        layout = ops.one_hot(condition % self.num_layout_classes, self.num_layout_classes)
        label = ops.one_hot(condition // self.num_layout_classes, self.num_classes)
        return ops.cast(ops.concatenate([layout, label], axis=-1), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.num_layout_classes + self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_layout_classes": self.num_layout_classes,
                "num_classes": self.num_classes}


# ## The SPADE normalization

@keras.saving.register_keras_serializable(package="mrigan_tf")
class SPADE(layers.Layer):
    """``[h, m] -> norm(h) * (1 + gamma(m)) + beta(m)`` (see the module docstring).

    ``h`` (B, h, w, C) features; ``m`` (B, H, W, M) the one-hot condition at full size,
    area-resized to (h, w). ``norm``: ``"batch"`` (Park et al.) or ``"instance"``, both
    without parameters of their own. ``hidden``: channels of the shared conv.
    """

    def __init__(self, hidden: int = 32, norm: str = "batch", epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        if norm not in NORMS:
            raise ValueError(f"SPADE norm must be one of {NORMS}, got {norm!r}")
        self.hidden, self.norm_kind, self.epsilon = int(hidden), norm, float(epsilon)
        if norm == "batch":
            self.norm = layers.BatchNormalization(center=False, scale=False, epsilon=epsilon,
                                                  synchronized=SYNCHRONIZED_BATCH_NORM)
        else:
            self.norm = layers.GroupNormalization(groups=-1, center=False, scale=False,
                                                  epsilon=epsilon)
        self.shared = layers.Conv2D(self.hidden, 3, padding="same", activation="relu")
        self.pool = None

    def build(self, input_shape):
        features, condition = input_shape
        factor = int(condition[1]) // int(features[1])
        if factor < 1 or factor * int(features[1]) != int(condition[1]):
            raise ValueError(f"SPADE: the condition's size {condition[1]} must be a multiple of "
                             f"the features' {features[1]}")
        if factor > 1:
            self.pool = layers.AveragePooling2D(factor)
        channels = int(features[-1])
        self.gamma = layers.Conv2D(channels, 3, padding="same", name="gamma")
        self.beta = layers.Conv2D(channels, 3, padding="same", name="beta")
        self.norm.build(features)
        resized = (condition[0], features[1], features[2], condition[-1])
        self.shared.build(resized)
        hidden = (condition[0], features[1], features[2], self.hidden)
        self.gamma.build(hidden)
        self.beta.build(hidden)

    def modulation(self, condition):
        """``(gamma(m), beta(m))`` at the features' size."""
        if self.pool is not None:
            condition = self.pool(condition)
        shared = self.shared(condition)
        return self.gamma(shared), self.beta(shared)

    def call(self, inputs, training=None):
        features, condition = inputs
        normalized = self.norm(features, training=training)
        gamma, beta = self.modulation(ops.cast(condition, normalized.dtype))
        return normalized * (1.0 + gamma) + beta

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "norm": self.norm_kind,
                "epsilon": self.epsilon}


def spade_residual_block(x, condition, filters: int, hidden: int, norm: str, name: str):
    """SPADE ResBlk (Park et al., Fig. 4): two SPADE-LeakyReLU-conv3x3 steps and a shortcut,
    learned (SPADE, conv1x1) when the width changes."""
    shortcut = x
    if int(x.shape[-1]) != filters:
        shortcut = SPADE(hidden, norm, name=f"{name}_shortcut_spade")([x, condition])
        shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_shortcut")(shortcut)
    middle = min(int(x.shape[-1]), filters)
    y = SPADE(hidden, norm, name=f"{name}_spade_0")([x, condition])
    y = layers.Conv2D(middle, 3, padding="same", name=f"{name}_conv_0")(layers.LeakyReLU(0.2)(y))
    y = SPADE(hidden, norm, name=f"{name}_spade_1")([y, condition])
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv_1")(layers.LeakyReLU(0.2)(y))
    return layers.Add(name=f"{name}_out")([shortcut, y])


# ## The generator: noise + layout + class -> image

def build_spade_generator(image_size: int = 64, channels: int = 1, num_layout_classes: int = 7,
                          num_classes: int = 2, latent_dim: int = 64, width: int = 32,
                          hidden: int | None = None, norm: str = "batch",
                          name: str = "spade_generator") -> keras.Model:
    """``[z, condition map] -> (H, W, channels)`` in [-1, 1] (see the module docstring).

    Widths halve from ``width * 2**blocks`` (capped at 512) at 4x4 to ``width`` at full
    size; ``hidden`` (default ``2 * width``) channels in each SPADE's shared conv.
    """
    check_image_shape((image_size, image_size, channels))
    blocks = int(math.log2(image_size)) - 2
    filters = [min(512, width * 2 ** (blocks - i)) for i in range(blocks + 1)]
    hidden = 2 * width if hidden is None else int(hidden)
    z = keras.Input((latent_dim,), name="latent")
    condition_map = keras.Input((image_size, image_size, 1), dtype="int32", name="condition")
    condition = ConditionMap(num_layout_classes, num_classes, name="one_hot")(condition_map)
    x = layers.Dense(4 * 4 * filters[0], name="from_latent")(z)
    x = layers.Reshape((4, 4, filters[0]))(x)
    for i, f in enumerate(filters):
        x = spade_residual_block(x, condition, f, hidden, norm, name=f"block_{i}")
        if i < blocks:
            x = layers.UpSampling2D(interpolation="nearest")(x)
    x = layers.LeakyReLU(0.2)(x)
    image = layers.Conv2D(channels, 3, padding="same", activation="tanh", dtype="float32",
                          name="image")(x)
    return keras.Model([z, condition_map], image, name=name)


# ## The discriminator: several PatchGANs, each at half the size of the one before

def build_multiscale_discriminator(image_size: int = 64, channels: int = 1,
                                   num_layout_classes: int = 7, num_classes: int = 2,
                                   width: int = 32, scales: int = 2, spectral_norm: bool = True,
                                   name: str = "spade_discriminator") -> keras.Model:
    """``[image, condition map] -> [features..., patch logits] * scales`` (a flat list).

    Each scale: two strided 4x4 convolutions, one more 4x4, then a 4x4 conv to one logit per
    patch; LeakyReLU(0.2), instance norm after all but the first (per sample: R1 stays
    per-sample). The outputs of each scale are its three feature maps, then its logits.
    """
    check_image_shape((image_size, image_size, channels), min_size=2 ** (scales + 2))
    image = keras.Input((image_size, image_size, channels), name="image")
    condition_map = keras.Input((image_size, image_size, 1), dtype="int32", name="condition")
    condition = ConditionMap(num_layout_classes, num_classes, name="one_hot")(condition_map)
    x = layers.Concatenate(name="image_and_condition")([image, condition])
    outputs = []
    for s in range(scales):
        if s:
            x = layers.AveragePooling2D(3, strides=2, padding="same", name=f"downsample_{s}")(x)
        h = x
        for i, (f, stride) in enumerate(((width, 2), (2 * width, 2), (4 * width, 1))):
            h = sn(layers.Conv2D(f, 4, strides=stride, padding="same",
                                 name=f"scale_{s}_conv_{i}"), spectral_norm)(h)
            if i:
                h = layers.GroupNormalization(groups=-1, name=f"scale_{s}_norm_{i}")(h)
            h = layers.LeakyReLU(0.2, name=f"scale_{s}_features_{i}")(h)
            outputs.append(h)
        logits = sn(layers.Conv2D(1, 4, padding="same", name=f"scale_{s}_conv_out"),
                    spectral_norm)(h)
        outputs.append(layers.Activation("linear", dtype="float32", name=f"scale_{s}_logits")(logits))
    return keras.Model([image, condition_map], outputs, name=name)


# ## The model

@keras.saving.register_keras_serializable(package="mrigan_tf")
class SPADEGAN(BaseGAN):
    """SPADE image generator trained against a multi-scale PatchGAN (module docstring).

    Trained on batches of ``(images, condition maps)`` (``condition_map``); sampled from
    layouts (``sample``), whose mask classes are the masks of the samples (``masks_of``).

    Args:
        generator: ``build_spade_generator(...)``; discriminator:
            ``build_multiscale_discriminator(...)`` with the same classes.
        latent_dim: size of z.
        num_layout_classes: L, the layout's classes; mask_classes: those making the mask.
        num_classes: K, the slice classes (healthy / tumor).
        num_scales: the discriminator's scales.
        feature_matching_weight: lambda_FM (10, as in pix2pixHD and SPADE).
        ema_decay, r1_weight, seed: see ``BaseGAN``.
    """

    METRIC_NAMES = ("d_loss", "g_loss", "g_hinge", "feature_matching", "d_real", "d_fake")
    #: Trained on (image, condition map) batches and sampled from layouts.
    LAYOUT_CONDITIONAL = True

    def __init__(self, generator: keras.Model, discriminator: keras.Model, latent_dim: int = 64,
                 num_layout_classes: int = 7, mask_classes: Sequence[int] = (4, 5, 6),
                 num_classes: int = 2, num_scales: int = 2, feature_matching_weight: float = 10.0,
                 seed: int | None = None, **kwargs):
        super().__init__(generator, discriminator, latent_dim, seed=seed, **kwargs)
        outputs = len(discriminator.outputs)
        if num_scales < 1 or outputs % num_scales:
            raise ValueError(f"the discriminator's {outputs} outputs do not split into "
                             f"{num_scales} scales")
        if feature_matching_weight < 0:
            raise ValueError(f"feature_matching_weight must be >= 0, got {feature_matching_weight}")
        bad = [c for c in mask_classes if not 0 < int(c) < num_layout_classes]
        if bad:
            raise ValueError(f"mask_classes {bad} are not layout classes 1..{num_layout_classes - 1}")
        self.num_layout_classes = int(num_layout_classes)
        self.mask_classes = [int(c) for c in mask_classes]
        self.num_classes = int(num_classes)
        self.num_scales = int(num_scales)
        self.feature_matching_weight = float(feature_matching_weight)
        #: ``(layouts, classes)`` that ``sample`` renders when it is given none (the sample
        #: grids of a training run: real layouts of its train split), or None.
        self.layout_bank: tuple[np.ndarray, np.ndarray] | None = None

    @staticmethod
    def default_optimizers() -> tuple[keras.optimizers.Optimizer, keras.optimizers.Optimizer]:
        """Park et al.: Adam(beta_1=0, beta_2=0.999), the two time-scale rule (Heusel et
        al. 2017) with 4e-4 for the discriminator and 1e-4 for the generator."""
        return (keras.optimizers.Adam(4e-4, beta_1=0.0, beta_2=0.999),
                keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.999))

    # ## The players

    def generate(self, latent, labels=None, training: bool = True):
        """``G(z, m)``; ``labels`` is the condition map."""
        # Tensors both (Keras refuses a list mixing tensors and NumPy arrays).
        return self.generator([ops.convert_to_tensor(latent), ops.convert_to_tensor(labels)],
                              training=training)

    def discriminator_outputs(self, images, labels):
        """Per scale ``(features, logits)`` of ``D(x, m)`` in training mode, in float32."""
        inputs = [ops.convert_to_tensor(images), ops.convert_to_tensor(labels)]
        outputs = [ops.cast(o, "float32") for o in self.discriminator(inputs, training=True)]
        per_scale = len(outputs) // self.num_scales
        return [(outputs[s * per_scale:(s + 1) * per_scale - 1], outputs[(s + 1) * per_scale - 1])
                for s in range(self.num_scales)]

    def discriminate(self, images, labels=None):
        """Every scale's patch logits, flattened: (B, patches). (R1's gradient is of their
        sum.)"""
        return ops.concatenate([ops.reshape(logits, (ops.shape(logits)[0], -1))
                                for _, logits in self.discriminator_outputs(images, labels)],
                               axis=-1)

    # ## The losses

    def _both(self, real, fake, labels):
        """D's outputs per scale for real and fake in one call, split back into halves."""
        scales = self.discriminator_outputs(ops.concatenate([real, fake], axis=0),
                                            ops.concatenate([labels, labels], axis=0))
        halves = lambda t: ops.split(t, 2, axis=0)  # noqa: E731
        return [([halves(f) for f in features], halves(logits)) for features, logits in scales]

    def discriminator_loss(self, real, fake, labels, alpha):
        scales = self._both(real, fake, labels)
        loss = sum(hinge_discriminator_loss(r, f) for _, (r, f) in scales) / self.num_scales
        logs = {"d_loss": loss,
                "d_real": sum(ops.mean(r) for _, (r, _) in scales) / self.num_scales,
                "d_fake": sum(ops.mean(f) for _, (_, f) in scales) / self.num_scales}
        return loss, logs

    def generator_loss(self, real, fake, labels):
        scales = self._both(real, fake, labels)
        hinge = sum(hinge_generator_loss(f) for _, (_, f) in scales) / self.num_scales
        matching = sum(discriminator_feature_matching_loss([r for r, _ in features],
                                                           [f for _, f in features])
                       for features, _ in scales) / self.num_scales
        loss = hinge + self.feature_matching_weight * matching
        return loss, {"g_loss": loss, "g_hinge": hinge, "feature_matching": matching}

    # ## Sampling: an image per layout, and the layout's mask

    def conditions(self, layouts: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Condition maps of ``layouts`` (N, H, W, 1) and classes (N,); classes default to
        the slice class of a tumor dataset, 1 where the layout shows a mask class."""
        layouts = np.asarray(layouts)
        expected = (*self.image_shape[:2], 1)
        if layouts.ndim != 4 or layouts.shape[1:] != expected:
            raise ValueError(f"layouts must have shape (N, {expected[0]}, {expected[1]}, 1), "
                             f"got {layouts.shape}")
        bad = np.unique(layouts[(layouts < 0) | (layouts >= self.num_layout_classes)])
        if bad.size:
            raise ValueError(f"layout values {bad.tolist()} outside the model's "
                             f"{self.num_layout_classes} layout classes")
        if labels is None:
            labels = self.masks_of(layouts).reshape(len(layouts), -1).max(axis=1)
        labels = np.asarray(labels, np.int32)
        if labels.shape != (len(layouts),):
            raise ValueError(f"need one class per layout: {len(layouts)} layouts, "
                             f"classes {labels.shape}")
        bad = np.setdiff1d(labels, np.arange(self.num_classes))
        if bad.size:
            raise ValueError(f"classes {bad.tolist()} outside the {self.num_classes} classes")
        return condition_map(layouts, labels, self.num_layout_classes)

    def masks_of(self, layouts: np.ndarray) -> np.ndarray:
        """The binary masks (N, H, W, 1) uint8 of ``layouts``: their mask (tumor) classes."""
        return mask_from_layout(layouts, self.mask_classes)

    def sample(self, n: int | None = None, seed: int = 0, layouts: np.ndarray | None = None,
               labels: np.ndarray | None = None, latent: np.ndarray | None = None,
               batch_size: int = 256) -> np.ndarray:
        """One generated image (N, H, W, C) per layout, from the latent batch of ``seed``
        (inference mode, the EMA generator when there is one).

        Without ``layouts``: the first ``n`` of ``layout_bank`` (cycled), with its classes.
        """
        if layouts is None:
            if self.layout_bank is None:
                raise ValueError("SPADE renders layouts: pass layouts= (N, H, W, 1), or set "
                                 "layout_bank to the layouts to draw from")
            bank, bank_labels = self.layout_bank
            pick = np.arange(16 if n is None else n) % len(bank)
            layouts, labels = bank[pick], np.asarray(bank_labels)[pick]
        elif n is not None and n != len(layouts):
            raise ValueError(f"n={n} but {len(layouts)} layouts were given")
        conditions = self.conditions(layouts, labels)
        if latent is None:
            latent = latent_noise(len(conditions), self.latent_dim, seed)
        chunks = [keras.ops.convert_to_numpy(self.sampling_generator(
                      [latent[i:i + batch_size], conditions[i:i + batch_size]], training=False))
                  for i in range(0, len(conditions), batch_size)]
        return np.concatenate(chunks, axis=0)

    def sample_pairs(self, layouts: np.ndarray, labels: np.ndarray | None = None,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(images, masks)``: the generated images and their layouts' masks."""
        return self.sample(layouts=layouts, labels=labels, seed=seed), self.masks_of(layouts)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_layout_classes": self.num_layout_classes,
                "mask_classes": list(self.mask_classes), "num_classes": self.num_classes,
                "num_scales": self.num_scales,
                "feature_matching_weight": self.feature_matching_weight}


def make_spade(image_shape=(64, 64, 1), num_layout_classes: int = 7,
               mask_classes: Sequence[int] = (4, 5, 6), num_classes: int = 2,
               latent_dim: int = 64, width: int = 32, hidden: int | None = None,
               norm: str = "batch", scales: int = 2, spectral_norm: bool = True,
               feature_matching_weight: float = 10.0, ema_decay: float = 0.0,
               r1_weight: float = 0.0, seed: int | None = None) -> SPADEGAN:
    """A ``SPADEGAN`` for images of ``image_shape`` (H, W, C: the image alone, no mask
    channel) and layouts of ``num_layout_classes`` classes (the phantom's 7 by default)."""
    size, _, channels = check_image_shape(tuple(image_shape), min_size=2 ** (scales + 2))
    generator = build_spade_generator(size, channels, num_layout_classes, num_classes,
                                      latent_dim, width, hidden, norm)
    discriminator = build_multiscale_discriminator(size, channels, num_layout_classes,
                                                   num_classes, width, scales, spectral_norm)
    return SPADEGAN(generator, discriminator, latent_dim=latent_dim,
                    num_layout_classes=num_layout_classes, mask_classes=mask_classes,
                    num_classes=num_classes, num_scales=scales,
                    feature_matching_weight=feature_matching_weight, ema_decay=ema_decay,
                    r1_weight=r1_weight, seed=seed)
