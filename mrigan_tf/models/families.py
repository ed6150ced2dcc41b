"""The GAN families by the names the command line uses: ``make_gan("dcgan", shape)``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras

from mrigan_tf.models.base import BaseGAN
from mrigan_tf.models.cwgan_gp import ConditionalWGANGP, make_cwgan_gp
from mrigan_tf.models.dcgan import DCGAN, make_dcgan
from mrigan_tf.models.gan import VanillaGAN, make_vanilla_gan
from mrigan_tf.models.progan import ProGAN, make_progan
from mrigan_tf.models.spade import SPADEGAN, make_spade
from mrigan_tf.models.wgan import WGAN, make_wgan

#: Family name (as on the command line) -> (factory, model class).
FAMILIES: dict[str, tuple[Callable[..., BaseGAN], type[BaseGAN]]] = {
    "gan": (make_vanilla_gan, VanillaGAN),
    "dcgan": (make_dcgan, DCGAN),
    "wgan": (make_wgan, WGAN),
    "cwgan-gp": (make_cwgan_gp, ConditionalWGANGP),
    "progan": (make_progan, ProGAN),
    "spade": (make_spade, SPADEGAN),
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


