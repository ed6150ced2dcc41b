"""Models: one file per GAN family, on a shared two-player base.

The walk of notebooks 02-04, one step per file:

* ``gan.VanillaGAN``: fully connected players, the non-saturating loss, label smoothing and
  feature matching;
* ``dcgan.DCGAN``: the same game played by convolutional players (Radford et al.);
* ``wgan.WGAN``: a critic estimating the Earth-Mover distance, kept Lipschitz by clipping;
* ``cwgan_gp.ConditionalWGANGP``: the project's central model, image and mask generated
  together, conditioned on the class, kept Lipschitz by a gradient penalty;
* ``progan.ProGAN``: the same conditional image+mask model, grown from 4x4 to full size
  with fade-in, equalized learning rate and pixel norm (Karras et al., 2018).

(``cwgan_gp.ConditionalWGANGP``, the conditional image+mask model the walk leads to, shares
the same base in ``base.BaseGAN``.)

``make_gan("dcgan", image_shape)`` builds any of them by the name the command line uses, and
``default_optimizers("wgan")`` gives the optimizers its paper trains with (``families``).
The losses and penalties every family's step calls are in ``losses``; DiffAugment and the
mixed-precision helpers beside them.

The names below are imported on first use (PEP 562), so that ``mrigan_tf.models.
mixed_precision`` (read by ``mrigan-tf --help``) does not pull in Keras and every family.
"""
from __future__ import annotations

import importlib

#: Public name -> the module of this package that defines it.
_EXPORTS = {
    "FAMILIES": "families", "make_gan": "families", "default_optimizers": "families",
    "BaseGAN": "base", "latent_noise": "base",
    "ConditionalWGANGP": "cwgan_gp", "make_cwgan_gp": "cwgan_gp",
    "DCGAN": "dcgan", "build_dcgan_discriminator": "dcgan", "build_dcgan_generator": "dcgan",
    "make_dcgan": "dcgan",
    "VanillaGAN": "gan", "build_mlp_discriminator": "gan", "build_mlp_generator": "gan",
    "make_vanilla_gan": "gan",
    "WGAN": "wgan", "build_wgan_critic": "wgan", "make_wgan": "wgan",
    "ProGAN": "progan", "make_progan": "progan",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mrigan_tf.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mrigan_tf.models.{_EXPORTS[name]}"), name)
