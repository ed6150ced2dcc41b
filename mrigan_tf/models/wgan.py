"""
Title: Wasserstein GAN with weight clipping
Description: a critic that estimates the Earth-Mover distance, kept Lipschitz by clipping.

When real and generated images lie on thin, barely overlapping sets (they do, early in
training), the Jensen-Shannon divergence behind the vanilla GAN is constant, a perfect
discriminator exists and its gradient to the generator vanishes. Arjovsky, Chintala and
Bottou (2017), "Wasserstein GAN", replace it with the Earth-Mover (Wasserstein-1) distance,
which keeps shrinking smoothly as the two distributions approach. By the
Kantorovich-Rubinstein duality,

    W(P_r, P_g) = sup_{||f||_L <= 1}  E_{x~P_r}[f(x)] - E_{z}[f(G(z))]

so a *critic* ``f`` (no sigmoid: a score, not a probability) is trained to maximise that
difference, and the generator to minimise it:

    L_critic = E_z[f(G(z))] - E_x[f(x)]        L_G = -E_z[f(G(z))]

The supremum is over 1-Lipschitz functions. The paper's crude way to stay Lipschitz (up to a
constant) is to **clip every critic weight to [-c, c]** (c = 0.01) after each update. Since
the critic's estimate is only meaningful near the optimum, it is trained ``n_critic = 5``
times per generator step, with **RMSprop(5e-5)** (momentum-based optimizers were unstable).

Clipping is the weak point, and notebook 04 shows it: with c too small gradients vanish, too
large and they explode, and a clipped critic drifts towards very simple functions (most
weights pinned at +-c). The gradient penalty of WGAN-GP replaces it in the next model.

The critic is the DCGAN discriminator, whose logit is already linear (the paper used the
DCGAN architectures too); the generator is the DCGAN generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

# ``tf`` is TensorFlow, imported when a train step first runs (see models/base.py).
from mrigan_tf.models.base import BaseGAN
from mrigan_tf.models.dcgan import build_dcgan_discriminator, build_dcgan_generator
from mrigan_tf.models.losses import wasserstein_critic_loss, wasserstein_generator_loss

# ## Create the critic


def build_wgan_critic(image_shape: Sequence[int], width: int = 64, batch_norm: bool = True,
                      minibatch_std: int = 0, spectral_norm: bool = False) -> keras.Model:
    """The DCGAN discriminator with its linear output read as a critic score.

    Batch norm in the critic is what the WGAN paper used; WGAN-GP must drop it, because
    its penalty is per sample.
    """
    return build_dcgan_discriminator(image_shape, width, batch_norm=batch_norm,
                                     minibatch_std=minibatch_std, spectral_norm=spectral_norm,
                                     name="wgan_critic")


# ## Override train_step


@keras.saving.register_keras_serializable(package="mrigan_tf")
class WGAN(BaseGAN):
    """Wasserstein GAN with weight clipping (Arjovsky et al., 2017, Algorithm 1).

    Args:
        generator, latent_dim, seed: see ``BaseGAN``.
        discriminator: the critic: images -> one unbounded score each.
        clip_value: ``c``; every trainable critic weight is clipped to ``[-c, c]`` after each
            critic update (batch-norm scales and offsets included, as in the paper's code).
        n_critic: critic updates per generator update.

    Each training step (``BaseGAN.train_step``) makes ``n_critic`` critic updates and one
    generator update from one real batch: the real batch is reused for every critic update
    while the noise is drawn fresh each time (the usual Keras practice; the paper draws a new
    real batch too). One epoch of ``fit`` is therefore ``len(dataset)`` generator steps, and
    the critic sees each real batch ``n_critic`` times. After every critic update,
    ``constrain_discriminator`` clips the weights.

    Logs ``d_loss`` (the critic loss of the step's last critic update), ``g_loss`` and
    ``em_distance``: the critic's estimate of the Earth-Mover distance, ``-d_loss``, the
    curve that (unlike a vanilla GAN's losses) tracks sample quality.
    """

    METRIC_NAMES = ("d_loss", "g_loss", "em_distance")

    def __init__(self, generator: keras.Model, discriminator: keras.Model, latent_dim: int,
                 clip_value: float = 0.01, n_critic: int = 5, seed: int | None = None,
                 **kwargs):
        super().__init__(generator, discriminator, latent_dim, seed=seed, **kwargs)
        if clip_value <= 0:
            raise ValueError(f"clip_value must be positive, got {clip_value}")
        if n_critic < 1:
            raise ValueError(f"n_critic must be at least 1, got {n_critic}")
        self.clip_value = float(clip_value)
        self.n_critic = int(n_critic)

    @property
    def critic(self) -> keras.Model:
        """The discriminator, under the name the WGAN paper gives it."""
        return self.discriminator

    @staticmethod
    def default_optimizers() -> tuple[keras.optimizers.Optimizer, keras.optimizers.Optimizer]:
        return keras.optimizers.RMSprop(5e-5), keras.optimizers.RMSprop(5e-5)

    def clip_critic_weights(self) -> None:
        """Clip every trainable critic weight to ``[-c, c]``."""
        for weight in self.critic.trainable_variables:
            weight.assign(ops.clip(weight, -self.clip_value, self.clip_value))

    def discriminator_loss(self, real, fake, labels, alpha):
        loss = wasserstein_critic_loss(self.discriminate(real), self.discriminate(fake))
        return loss, {"d_loss": loss, "em_distance": -loss}

    def generator_loss(self, real, fake, labels):
        loss = wasserstein_generator_loss(self.discriminate(fake))
        return loss, {"g_loss": loss}

    def constrain_discriminator(self) -> None:
        self.clip_critic_weights()

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "clip_value": self.clip_value,
                "n_critic": self.n_critic}


def make_wgan(image_shape: Sequence[int], latent_dim: int = 100, width: int = 64,
              clip_value: float = 0.01, n_critic: int = 5, batch_norm: bool = True,
              minibatch_std: int = 0, spectral_norm: bool = False, ema_decay: float = 0.0,
              r1_weight: float = 0.0, seed: int | None = None) -> WGAN:
    """A ``WGAN`` with the DCGAN generator and critic for images of ``image_shape``.

    ``minibatch_std=G`` adds a minibatch standard-deviation feature (groups of ``G``) before
    the last layer, ``spectral_norm`` spectrally normalizes every dense and convolution
    layer (``mrigan_tf.models.blocks``); ``ema_decay`` and ``r1_weight``: see ``BaseGAN``.
    """
    return WGAN(build_dcgan_generator(image_shape, latent_dim, width),
                build_wgan_critic(image_shape, width, batch_norm=batch_norm,
                                  minibatch_std=minibatch_std, spectral_norm=spectral_norm),
                latent_dim=latent_dim, clip_value=clip_value, n_critic=n_critic,
                ema_decay=ema_decay, r1_weight=r1_weight, seed=seed, name="wgan")
