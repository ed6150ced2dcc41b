"""Differentiable augmentation (DiffAugment, Zhao et al., NeurIPS 2020).

With a few hundred training slices the critic memorizes the real set and its feedback to
the generator turns to noise. Augmenting only the real images would teach the generator to
produce augmented images. DiffAugment applies the *same family* of random transformations
to real and fake batches right before the critic, and every transformation is
differentiable, so the generator's gradient flows through it:

    L_D = E[D(T(G(z)))] - E[D(T(x))] + ...,      L_G = -E[D(T(G(z)))].

Our images carry their mask as extra channels (the joint tensor ``[image, 2*mask-1]``).
Geometric transformations (translation, cutout) move image and mask together, so the pair
stays aligned; intensity transformations (brightness, contrast) touch the image channels
only: a mask has no brightness.

Only ``keras.ops`` and ``keras.random`` are used, so the layer runs on every Keras backend
and inside XLA-compiled train steps.
"""

from __future__ import annotations

import keras
from keras import ops

POLICIES = ("translation", "cutout", "brightness", "contrast")
BACKGROUND = -1.0   # what "empty" is in [-1, 1] images and in the 2*mask-1 channel


def _shift_matrices(shift, size: int):
    """(B, size, size) matrices that move rows by ``shift`` pixels; 0 rows where nothing lands."""
    target = ops.arange(size, dtype="int32")[None, :] - shift[:, None]          # (B, size)
    valid = ops.cast((target >= 0) & (target < size), "float32")
    one_hot = ops.one_hot(ops.clip(target, 0, size - 1), size, dtype="float32")  # (B, out, in)
    return one_hot * valid[:, :, None], valid


def translate(x, seed, ratio: float = 0.125):
    """Shift each image by up to ``ratio`` of its size in each direction, filling background.

    Written as two batched matrix products (rows, then columns) rather than a gather, so it
    is differentiable and compiles well under XLA on every backend.
    """
    batch, height, width = ops.shape(x)[0], x.shape[1], x.shape[2]
    max_dy, max_dx = int(height * ratio + 0.5), int(width * ratio + 0.5)
    dy = keras.random.randint((batch,), -max_dy, max_dy + 1, seed=seed, dtype="int32")
    dx = keras.random.randint((batch,), -max_dx, max_dx + 1, seed=seed, dtype="int32")
    rows, valid_rows = _shift_matrices(dy, height)
    cols, valid_cols = _shift_matrices(dx, width)
    moved = ops.einsum("bih,bhwc->biwc", rows, x)
    moved = ops.einsum("bjw,biwc->bijc", cols, moved)
    inside = valid_rows[:, :, None, None] * valid_cols[:, None, :, None]
    return moved + BACKGROUND * (1.0 - inside)


def cutout(x, seed, ratio: float = 0.5):
    """Erase one random square (side ``ratio`` of the image) per sample to background."""
    batch, height, width = ops.shape(x)[0], x.shape[1], x.shape[2]
    half_h, half_w = int(height * ratio + 0.5) // 2, int(width * ratio + 0.5) // 2
    cy = keras.random.randint((batch,), 0, height, seed=seed, dtype="int32")
    cx = keras.random.randint((batch,), 0, width, seed=seed, dtype="int32")
    rows = ops.arange(height, dtype="int32")[None, :, None]
    cols = ops.arange(width, dtype="int32")[None, None, :]
    inside = ((ops.abs(rows - cy[:, None, None]) < half_h)
              & (ops.abs(cols - cx[:, None, None]) < half_w))
    erased = ops.cast(inside, x.dtype)[..., None]
    return x * (1.0 - erased) + BACKGROUND * erased


def brightness(image, seed, strength: float = 0.5):
    """Add one random offset in [-strength/2, strength/2) per sample."""
    offset = keras.random.uniform((ops.shape(image)[0], 1, 1, 1), -0.5, 0.5, seed=seed)
    return image + strength * ops.cast(offset, image.dtype)


def contrast(image, seed, low: float = 0.5, high: float = 1.5):
    """Scale each sample's deviation from its mean by a random factor in [low, high)."""
    factor = keras.random.uniform((ops.shape(image)[0], 1, 1, 1), low, high, seed=seed)
    mean = ops.mean(image, axis=(1, 2, 3), keepdims=True)
    return (image - mean) * ops.cast(factor, image.dtype) + mean


@keras.saving.register_keras_serializable(package="mrigan_tf")
class DiffAugment(keras.layers.Layer):
    """Apply a DiffAugment policy to a batch of joint (image + mask) tensors.

    Args:
        policy: comma-separated subset of ``translation, cutout, brightness, contrast``,
            applied in that order; empty for none.
        image_channels: how many leading channels are intensities (the rest are masks).
        seed: seed of the layer's random stream (reproducible runs).
    """

    def __init__(self, policy: str = "translation,cutout,brightness,contrast",
                 image_channels: int = 1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        names = [p.strip() for p in policy.split(",") if p.strip()]
        unknown = sorted(set(names) - set(POLICIES))
        if unknown:
            raise ValueError(f"unknown DiffAugment policies {unknown}; choose from {POLICIES}")
        self.policy = ",".join(p for p in POLICIES if p in names)
        self.image_channels = image_channels
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x):
        names = self.policy.split(",") if self.policy else []
        if "translation" in names:
            x = translate(x, self.seed_generator)
        if "cutout" in names:
            x = cutout(x, self.seed_generator)
        if "brightness" in names or "contrast" in names:
            image, masks = x[..., :self.image_channels], x[..., self.image_channels:]
            if "brightness" in names:
                image = brightness(image, self.seed_generator)
            if "contrast" in names:
                image = contrast(image, self.seed_generator)
            x = ops.concatenate([image, masks], axis=-1) if x.shape[-1] > self.image_channels else image
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "policy": self.policy,
                "image_channels": self.image_channels, "seed": self.seed}
