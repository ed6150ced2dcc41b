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

## Other losses: ``loss=`` (``mrigan-tf train --loss``)

The same conditional players train under five losses (``l`` the critic's score or logit,
all in ``mrigan_tf.models.losses``); ``wgan-gp`` is the default and the method above:

    wgan-gp    L_D = E D(G(z)) - E D(x) + lambda E(||grad D(x_hat)||_2 - 1)^2     L_G = -E D(G(z))
    wgan-clip  L_D = E D(G(z)) - E D(x), every critic weight clipped to [-c, c]  L_G = -E D(G(z))
               after each critic update (Arjovsky et al., 2017)
    ns         L_D = -E log s(l(x)) - E log(1 - s(l(G(z))))                       L_G = -E log s(l(G(z)))
               (s the sigmoid; non-saturating, Goodfellow et al., 2014)
    lsgan      L_D = 1/2 E(l(x) - 1)^2 + 1/2 E l(G(z))^2                          L_G = 1/2 E(l(G(z)) - 1)^2
               (Mao et al., 2017)
    hinge      L_D = E max(0, 1 - l(x)) + E max(0, 1 + l(G(z)))                   L_G = -E l(G(z))
               (Lim & Ye, 2017; Miyato et al., 2018)

Only ``wgan-gp`` has a gradient penalty. The others take their regularizer from the
small-data tricks instead: R1 on real samples (``r1_weight``, gamma/2 E||grad_x D(x)||^2,
Mescheder et al. 2018) and/or spectral normalization of the critic's layers
(``spectral_norm``, Miyato et al. 2018). R1 together with the gradient penalty is refused
(two Lipschitz regularizers pulling the gradient norm to 1 and to 0). The Wasserstein losses
train the critic ``n_critic = 5`` times per generator step by default; ns, lsgan and hinge
once. Logged: ``wasserstein`` for the Wasserstein losses (and ``gp`` for wgan-gp);
``d_real`` / ``d_fake``, the mean critic logits, for the others.

## AC-GAN conditioning: ``conditioning="acgan"`` (Odena et al., 2017)

Instead of the projection, the critic gets a second head, a classifier over the ``K``
classes, and sees no label: ``D(x) = (score, class logits)``. Both players also optimise
the classifier's log-likelihood of the generator's intended class, weighted by
``acgan_weight``:

    L_D += w (-E log p(y | x) - E log p(y | G(z, y)))        L_G += w (-E log p(y | G(z, y)))

logged as ``aux_real`` / ``aux_fake`` (the critic's cross-entropies), ``aux_accuracy`` (its
accuracy on real) and ``g_aux`` (the generator's).

## Minibatch standard deviation: ``minibatch_std=G``

One more feature map before the critic's flatten: the mean standard deviation over groups
of ``G`` samples (``mrigan_tf.models.blocks.MinibatchStdDev``), which lets the critic see a
collapsed generator. Off by default (0).

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
from mrigan_tf.models.blocks import MinibatchStdDev, projection_critic, spectral_norm as sn
from mrigan_tf.models.choices import CONDITIONINGS, LOSS_NAMES, WASSERSTEIN_LOSSES
from mrigan_tf.models.diffaugment import DiffAugment
from mrigan_tf.models.mask_consistency import (check_mask_consistency_options, check_segmenter,
                                               mask_consistency_loss)
from mrigan_tf.models.losses import (auxiliary_classifier_loss, drift_penalty, gradient_penalty,
                                     hinge_discriminator_loss, hinge_generator_loss, interpolate,
                                     lsgan_discriminator_loss, lsgan_generator_loss,
                                     ns_discriminator_loss, ns_generator_loss,
                                     wasserstein_critic_loss, wasserstein_generator_loss)

#: ``loss=`` name -> (discriminator loss, generator loss), functions of the critic's scores.
LOSSES = {
    "wgan-gp": (wasserstein_critic_loss, wasserstein_generator_loss),
    "wgan-clip": (wasserstein_critic_loss, wasserstein_generator_loss),
    "ns": (ns_discriminator_loss, ns_generator_loss),
    "lsgan": (lsgan_discriminator_loss, lsgan_generator_loss),
    "hinge": (hinge_discriminator_loss, hinge_generator_loss),
}
assert tuple(LOSSES) == LOSS_NAMES


def default_n_critic(loss: str) -> int:
    """Critic updates per generator update: 5 for the Wasserstein losses, else 1."""
    return 5 if loss in WASSERSTEIN_LOSSES else 1


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
                             width: int = 64, norm: str = "layer", conditioning: str = "projection",
                             minibatch_std: int = 0, spectral_norm: bool = False,
                             name: str = "cwgan_critic") -> keras.Model:
    """Strided 4x4 convolutions down to 4x4 features, then a projection head; linear output.

    ``norm`` is ``"layer"`` (normalize each sample over H, W, C: compatible with the
    per-sample gradient penalty) or ``"none"``. Never batch norm.
    ``conditioning="acgan"``: no label input; two outputs, the score and ``num_classes``
    class logits. ``minibatch_std=G``: a minibatch standard-deviation feature map (groups
    of ``G``) before the flatten. ``spectral_norm``: every convolution and dense layer
    spectrally normalized (the class embedding of the projection is not).
    """
    check_image_shape((image_size, image_size, channels))
    if norm not in ("layer", "none"):
        raise ValueError(f"critic norm must be 'layer' or 'none' (never batch norm), got {norm!r}")
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"conditioning must be one of {', '.join(CONDITIONINGS)}, "
                         f"got {conditioning!r}")
    blocks = int(math.log2(image_size)) - 2
    image = keras.Input((image_size, image_size, channels), name="image_and_mask")
    x = image
    for i in range(blocks):
        f = min(512, width * 2 ** i)
        x = sn(layers.Conv2D(f, 4, strides=2, padding="same"), spectral_norm)(x)
        if norm == "layer" and i > 0:
            x = layers.GroupNormalization(groups=1, epsilon=1e-5)(x)   # layer norm, per-channel affine
        x = layers.LeakyReLU(0.2)(x)
    if minibatch_std:
        x = MinibatchStdDev(minibatch_std, name="minibatch_std")(x)
    # Flatten, not global pooling: pooling would discard *where* things are, and anatomy is
    # positional (a critic that cannot tell left from right cannot judge a brain).
    features = layers.Flatten()(x)
    score = sn(layers.Dense(1, name="unconditional_score"), spectral_norm)(features)
    if conditioning == "acgan":
        score = layers.Activation("linear", dtype="float32", name="score")(score)
        class_logits = sn(layers.Dense(num_classes, dtype="float32", name="class_logits"),
                          spectral_norm)(features)
        return keras.Model(image, [score, class_logits], name=name)
    return projection_critic(image, features, score, num_classes, name)


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
        loss: one of ``LOSSES`` (see the module docstring); ``wgan-gp`` by default.
        n_critic: ``None``: 5 for the Wasserstein losses, 1 for ns, lsgan and hinge.
        clip_value: ``c`` of ``loss="wgan-clip"``.
        conditioning: ``"projection"`` or ``"acgan"`` (the critic must match:
            ``build_conditional_critic(conditioning=...)``).
        acgan_weight: ``w``, the auxiliary classification loss's weight (AC-GAN only).
        mask_consistency, mask_segmenter: ``LAMBDA`` and the frozen U-Net of the mask-
            consistency generator loss (``models.mask_consistency``); 0 and None: off.
        ema_decay, r1_weight: see ``BaseGAN`` (R1 is refused with wgan-gp's penalty).
        augment: a DiffAugment policy (e.g. ``"translation,cutout,brightness,contrast"``)
            applied to real and fake before the critic; ``""`` for none.
        image_channels: leading channels that are intensities (the rest are masks).
        seed: seeds the noise and augmentation streams.
    """

    METRIC_NAMES = ("d_loss", "g_loss", "gp", "wasserstein")
    #: Trained on (joint image+mask, class) batches and sampled per class.
    CONDITIONAL = True

    def __init__(self, generator: keras.Model, discriminator: keras.Model, latent_dim: int = 128,
                 num_classes: int = 2, gp_weight: float = 10.0, n_critic: int | None = None,
                 drift_weight: float = 0.0, augment: str = "", image_channels: int = 1,
                 gp_every: int = 1, loss: str = "wgan-gp", clip_value: float = 0.01,
                 conditioning: str = "projection", acgan_weight: float = 1.0,
                 mask_consistency: float = 0.0, mask_segmenter: keras.Model | None = None,
                 seed: int | None = None, **kwargs):
        super().__init__(generator, discriminator, latent_dim, seed=seed, **kwargs)
        check_mask_consistency_options(mask_consistency, mask_segmenter)
        if mask_segmenter is not None:
            check_segmenter(mask_segmenter, tuple(generator.output_shape[1:]), image_channels)
            mask_segmenter.trainable = False
        self.mask_consistency = float(mask_consistency)
        self.mask_segmenter = mask_segmenter
        check_cwgan_options(loss, conditioning, self.r1_weight, gp_every, clip_value, acgan_weight)
        n_critic = default_n_critic(loss) if n_critic is None else n_critic
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        if gp_every < 1 or n_critic % gp_every:
            divisors = [k for k in range(1, n_critic + 1) if n_critic % k == 0]
            raise ValueError(f"gp_every must divide n_critic ({n_critic}): one of {divisors}, "
                             f"got {gp_every}")
        self.gp_every = int(gp_every)
        self.loss = loss
        self.clip_value = float(clip_value)
        self.conditioning = conditioning
        self.acgan_weight = float(acgan_weight)
        acgan_outputs = isinstance(discriminator.output, (list, tuple))
        if acgan_outputs != (conditioning == "acgan"):
            raise ValueError(f"conditioning={conditioning!r} needs the critic built with it "
                             f"(build_conditional_critic(conditioning={conditioning!r}))")
        self.track_metrics(self.logged_names())
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

    def logged_names(self) -> tuple[str, ...]:
        """What this model's step logs, for its loss and conditioning."""
        if self.loss == "wgan-gp":
            names = ("d_loss", "g_loss", "gp", "wasserstein")
        elif self.loss == "wgan-clip":
            names = ("d_loss", "g_loss", "wasserstein")
        else:
            names = ("d_loss", "g_loss", "d_real", "d_fake")
        if self.conditioning == "acgan":
            names += ("aux_real", "aux_fake", "aux_accuracy", "g_aux")
        if self.mask_segmenter is not None:
            names += ("mask_consistency",)
        return names

    def critic_outputs(self, images, labels):
        """``(scores, class_logits)`` in float32; ``class_logits`` is None unless AC-GAN."""
        if self.conditioning == "acgan":
            scores, class_logits = self.critic(images, training=True)
            return ops.cast(scores, "float32"), ops.cast(class_logits, "float32")
        return ops.cast(self.critic([images, ops.cast(labels, "int32")], training=True),
                        "float32"), None

    def discriminate(self, images, labels=None):
        return self.critic_outputs(images, labels)[0]

    def penalizes(self, critic_update: int) -> bool:
        # Lazy regularization: the penalty on the first critic update of every gp_every.
        return self.loss == "wgan-gp" and critic_update % self.gp_every == 0

    def constrain_discriminator(self) -> None:
        if self.loss == "wgan-clip":
            for weight in self.critic.trainable_variables:
                weight.assign(ops.clip(weight, -self.clip_value, self.clip_value))

    def discriminator_loss(self, real, fake, labels, alpha):
        real, fake = self.augment(real), self.augment(fake)
        # One critic call on both batches: the critic treats every sample on its own (layer
        # norm, never batch norm), so this computes what two calls would, faster.
        scores, class_logits = self.critic_outputs(ops.concatenate([real, fake], axis=0),
                                                   ops.concatenate([labels, labels], axis=0))
        d_real, d_fake = ops.split(scores, 2, axis=0)
        loss = LOSSES[self.loss][0](d_real, d_fake)
        if self.drift_weight:
            loss += self.drift_weight * drift_penalty(d_real)
        if self.loss in WASSERSTEIN_LOSSES:
            logs = {"wasserstein": -wasserstein_critic_loss(d_real, d_fake)}
        else:
            logs = {"d_real": ops.mean(d_real), "d_fake": ops.mean(d_fake)}
        if class_logits is not None:
            real_logits, fake_logits = ops.split(class_logits, 2, axis=0)
            logs["aux_real"] = auxiliary_classifier_loss(real_logits, labels)
            logs["aux_fake"] = auxiliary_classifier_loss(fake_logits, labels)
            logs["aux_accuracy"] = ops.mean(ops.cast(
                ops.argmax(real_logits, axis=-1) == ops.cast(labels, "int32"), "float32"))
            loss += self.acgan_weight * (logs["aux_real"] + logs["aux_fake"])
        logs["d_loss"] = loss
        if alpha is not None:
            logs["gp"] = gradient_penalty(self.input_gradients(interpolate(real, fake, alpha),
                                                               labels))
            # Weighted gp_every x lambda: on average the critic feels lambda.
            loss += self.gp_every * self.gp_weight * logs["gp"]
        return loss, logs

    def generator_loss(self, real, fake, labels):
        scores, class_logits = self.critic_outputs(self.augment(fake), labels)
        loss = LOSSES[self.loss][1](scores)
        logs = {}
        if class_logits is not None:
            logs["g_aux"] = auxiliary_classifier_loss(class_logits, labels)
            loss += self.acgan_weight * logs["g_aux"]
        if self.mask_segmenter is not None:
            logs["mask_consistency"] = mask_consistency_loss(fake, self.mask_segmenter,
                                                             self.image_channels)
            loss += self.mask_consistency * logs["mask_consistency"]
        return loss, {"g_loss": loss, **logs}

    def finish_logs(self, logs):
        if "gp" not in logs:
            return logs
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
                      self.sampling_generator([latent[i:i + batch_size], labels[i:i + batch_size]],
                                              training=False))
                  for i in range(0, len(latent), batch_size)]
        return np.concatenate(chunks, axis=0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes,
                "gp_weight": self.gp_weight, "gp_every": self.gp_every, "n_critic": self.n_critic,
                "drift_weight": self.drift_weight, "augment": self.augment_policy,
                "image_channels": self.image_channels, "loss": self.loss,
                "clip_value": self.clip_value, "conditioning": self.conditioning,
                "acgan_weight": self.acgan_weight,
                **({"mask_consistency": self.mask_consistency,
                    "mask_segmenter": keras.saving.serialize_keras_object(self.mask_segmenter)}
                   if self.mask_segmenter is not None else {})}


def check_cwgan_options(loss: str = "wgan-gp", conditioning: str = "projection", r1_weight: float = 0.0,
                        gp_every: int = 1, clip_value: float = 0.01,
                        acgan_weight: float = 1.0) -> None:
    """A ValueError, saying what to change, for a combination the model does not train."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"conditioning must be one of {', '.join(CONDITIONINGS)}, "
                         f"got {conditioning!r}")
    if loss == "wgan-gp" and r1_weight:
        raise ValueError("R1 (r1_weight) and wgan-gp's gradient penalty are two penalties on "
                         "the critic's gradient (towards norm 0 and norm 1): choose one, e.g. "
                         "--loss hinge --r1-weight 10, or --loss wgan-gp without --r1-weight")
    if gp_every != 1 and loss != "wgan-gp":
        raise ValueError(f"gp_every (lazy regularization) schedules wgan-gp's gradient penalty; "
                         f"loss {loss!r} has none")
    if loss == "wgan-clip" and clip_value <= 0:
        raise ValueError(f"clip_value must be positive, got {clip_value}")
    if acgan_weight < 0:
        raise ValueError(f"acgan_weight must be >= 0, got {acgan_weight}")
    if acgan_weight != 1.0 and conditioning != "acgan":
        raise ValueError("acgan_weight weighs the AC-GAN classifier's loss: it needs "
                         "conditioning='acgan'")


def make_cwgan_gp(image_shape=(64, 64, 2), num_classes: int = 2, latent_dim: int = 128,
                  width: int = 64, critic_norm: str = "layer", gp_weight: float = 10.0,
                  n_critic: int | None = None, drift_weight: float = 0.0, augment: str = "",
                  gp_every: int = 1, loss: str = "wgan-gp", clip_value: float = 0.01,
                  conditioning: str = "projection", acgan_weight: float = 1.0,
                  minibatch_std: int = 0, spectral_norm: bool = False, ema_decay: float = 0.0,
                  r1_weight: float = 0.0, mask_consistency: float = 0.0,
                  mask_segmenter: keras.Model | None = None,
                  seed: int | None = None) -> ConditionalWGANGP:
    """A ConditionalWGANGP with the default generator and critic for ``image_shape``.

    ``image_shape`` is (H, W, C): C = 2 for the joint (image, mask) tensor. The defaults are
    the WGAN-GP of the module docstring; ``loss``, ``conditioning``, ``minibatch_std``,
    ``spectral_norm``, ``ema_decay`` and ``r1_weight`` switch on the alternatives.
    """
    size, _, channels = check_image_shape(tuple(image_shape))
    check_cwgan_options(loss, conditioning, r1_weight, gp_every, clip_value, acgan_weight)
    generator = build_conditional_generator(size, channels, latent_dim, num_classes, width)
    critic = build_conditional_critic(size, channels, num_classes, width, critic_norm,
                                      conditioning=conditioning, minibatch_std=minibatch_std,
                                      spectral_norm=spectral_norm)
    return ConditionalWGANGP(generator, critic, latent_dim=latent_dim, num_classes=num_classes,
                             gp_weight=gp_weight, n_critic=n_critic, drift_weight=drift_weight,
                             augment=augment, image_channels=1, gp_every=gp_every, loss=loss,
                             clip_value=clip_value, conditioning=conditioning,
                             acgan_weight=acgan_weight, ema_decay=ema_decay,
                             r1_weight=r1_weight, mask_consistency=mask_consistency,
                             mask_segmenter=mask_segmenter, seed=seed)
