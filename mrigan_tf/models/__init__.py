"""Models: one file per GAN family, on a shared two-player base.

The walk of notebooks 02-04, one step per file:

* ``gan.VanillaGAN``: fully connected players, the non-saturating loss, label smoothing and
  feature matching;
* ``dcgan.DCGAN``: the same game played by convolutional players (Radford et al.);
* ``wgan.WGAN``: a critic estimating the Earth-Mover distance, kept Lipschitz by clipping;
* ``cwgan_gp.ConditionalWGANGP``: the project's central model, image and mask generated
  together, conditioned on the class, kept Lipschitz by a gradient penalty.

(``cwgan_gp.ConditionalWGANGP``, the conditional image+mask model the walk leads to, shares
the same base in ``base.BaseGAN``.)

``make_gan("dcgan", image_shape)`` builds any of them by the name the command line uses, and
``default_optimizers("wgan")`` gives the optimizers its paper trains with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras

from mrigan_tf.models.base import BaseGAN, latent_noise
from mrigan_tf.models.cwgan_gp import ConditionalWGANGP, make_cwgan_gp
from mrigan_tf.models.dcgan import (DCGAN, build_dcgan_discriminator, build_dcgan_generator,
                                    make_dcgan)
from mrigan_tf.models.gan import (VanillaGAN, build_mlp_discriminator, build_mlp_generator,
                                  make_vanilla_gan)
from mrigan_tf.models.wgan import WGAN, build_wgan_critic, make_wgan

#: Family name (as on the command line) -> (factory, model class).
FAMILIES: dict[str, tuple[Callable[..., BaseGAN], type[BaseGAN]]] = {
    "gan": (make_vanilla_gan, VanillaGAN),
    "dcgan": (make_dcgan, DCGAN),
    "wgan": (make_wgan, WGAN),
    "cwgan-gp": (make_cwgan_gp, ConditionalWGANGP),
}


def _family(name: str) -> tuple[Callable[..., BaseGAN], type[BaseGAN]]:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(FAMILIES)}") from None


def make_gan(family: str, image_shape: Sequence[int], **options) -> BaseGAN:
    """A new, uncompiled model of ``family`` for images of ``image_shape`` (H, W, C).

    ``options`` go to the family's factory (``make_vanilla_gan``, ``make_dcgan``,
    ``make_wgan``): ``latent_dim``, ``seed``, widths and the family's own switches.
    """
    factory, _ = _family(family)
    return factory(image_shape, **options)


def default_optimizers(family: str) -> tuple[keras.optimizers.Optimizer,
                                             keras.optimizers.Optimizer]:
    """Fresh ``(d_optimizer, g_optimizer)`` with the settings of the family's paper."""
    _, model_class = _family(family)
    return model_class.default_optimizers()


__all__ = [
    "FAMILIES", "BaseGAN", "ConditionalWGANGP", "DCGAN", "VanillaGAN", "WGAN",
    "build_dcgan_discriminator", "build_dcgan_generator", "build_mlp_discriminator",
    "build_mlp_generator", "build_wgan_critic", "default_optimizers", "latent_noise",
    "make_cwgan_gp", "make_dcgan", "make_gan", "make_vanilla_gan", "make_wgan",
]
