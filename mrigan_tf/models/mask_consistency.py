"""Title: Mask consistency: a frozen U-Net checks that a generated mask outlines its tumor
Description: the generator loss term of ``--mask-consistency LAMBDA`` (joint GAN + U-Net).

A joint generator draws an image and its mask together, and nothing in the adversarial loss
says that the two must agree: the critic judges the pair's realism, and a pair whose mask is
a little off (or a healthy slice with a lesion-like texture and an empty mask) is nearly as
real to it. U-Nets trained on such pairs then learn that the mask need not follow the image,
and draw tumors on real healthy slices. This term adds what a radiologist would check: a
segmentation network ``S``, trained on the real train split and frozen, segments the
generated image, and the generated mask ``m`` (its channel mapped from [-1, 1] to [0, 1]) is
scored against that segmentation ``s = S(x)``:

    L_mc = BCE(s, m) + (1 - Dice(s, m)),
    BCE(s, m)  = -mean_p [ s log m + (1 - s) log(1 - m) ],
    Dice(s, m) = mean_i (2 sum_p s m + 1) / (sum_p s + sum_p m + 1)    (per image, smoothed),

added to the generator's loss as ``LAMBDA * L_mc``. The gradient reaches the generator
through both ``m`` (the mask is pulled onto what is visible) and ``x`` through the frozen
``S`` (a lesion-like texture where the mask is empty is pushed away), so the generator is
penalised for a mask that does not outline its tumor either way. The smoothing 1 makes an
empty mask on an image with nothing to segment a perfect Dice.

**Why frozen, trained on real slices** (issue 17 left the choice open): a U-Net trained
alongside on the generated pairs would learn the generator's own convention, including its
mistakes, and agree with it; one trained on real slices encodes how real tumors look and
where real masks go, and being frozen it is not a third player whose moving target would
destabilise the game. The price: it can be fooled by textures it never saw, which the critic
has to keep unrealistic, and it is only as good as its own Dice on real slices.
"""

from __future__ import annotations

import keras
from keras import ops

#: Added to the Dice's numerator and denominator: an empty mask on an empty image scores 1.
DICE_SMOOTHING = 1.0


def check_mask_consistency_options(weight, segmenter) -> None:
    """A ValueError unless ``weight`` is a number >= 0 given together with a ``segmenter``
    (the model, or the U-Net run that holds it), or 0 without one."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
        raise ValueError(f"mask_consistency must be a number >= 0, got {weight!r}")
    if bool(weight) != (segmenter is not None and segmenter != ""):
        raise ValueError("mask_consistency (the weight) and mask_segmenter (the frozen U-Net "
                         "that segments the generated images: a `mrigan-tf train --model unet` "
                         "run on this dataset) go together")


def check_segmenter(segmenter: keras.Model, image_shape: tuple[int, int, int],
                    image_channels: int) -> None:
    """A ValueError unless ``segmenter`` maps the generator's image channels to one
    probability map of the same size."""
    expected_in = (*image_shape[:2], image_channels)
    got_in = tuple(segmenter.input_shape[1:])
    got_out = tuple(segmenter.output_shape[1:])
    if got_in != expected_in or got_out != (*image_shape[:2], 1):
        raise ValueError(f"the mask-consistency segmenter must map {expected_in} images to "
                         f"{(*image_shape[:2], 1)} probabilities (a U-Net of this dataset); "
                         f"it maps {got_in} to {got_out}")


def mask_consistency_loss(fake, segmenter: keras.Model, image_channels: int = 1):
    """``L_mc`` of the module docstring for a batch of joint generated pairs ``fake``
    (B, H, W, image_channels + 1) in [-1, 1]: the first ``image_channels`` channels are the
    image, the last the mask. Returns a float32 scalar."""
    fake = ops.cast(fake, "float32")
    image, mask = fake[..., :image_channels], fake[..., image_channels:image_channels + 1]
    m = ops.clip((mask + 1.0) / 2.0, 1e-6, 1.0 - 1e-6)
    s = ops.cast(segmenter(image, training=False), "float32")
    bce = -ops.mean(s * ops.log(m) + (1.0 - s) * ops.log(1.0 - m))
    overlap = ops.sum(s * m, axis=(1, 2, 3))
    total = ops.sum(s, axis=(1, 2, 3)) + ops.sum(m, axis=(1, 2, 3))
    dice = ops.mean((2.0 * overlap + DICE_SMOOTHING) / (total + DICE_SMOOTHING))
    return bce + (1.0 - dice)
