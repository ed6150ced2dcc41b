"""
Title: U-Net for tumor segmentation, its Dice + BCE loss and its Dice / IoU metrics
Description: the downstream task a synthetic dataset is made for (Ronneberger et al., 2015).

## Why this model

A synthetic dataset is only worth what it does for the task it was made for: here, drawing
the tumor on a slice. The U-Net is the standard segmenter of medical images. An encoder
halves the resolution ``depth`` times while doubling the channels (what is there), a decoder
doubles it back (where it is), and *skip connections* hand each decoder level the encoder's
features at the same resolution, so the fine outline lost by pooling comes back:

    level i (i = 0 .. depth-1):  2 x [conv 3x3 -> norm -> ReLU], width * 2**i channels
                                 -> skip_i, then max-pool 2x2
    bottleneck:                  2 x [conv 3x3 -> norm -> ReLU], width * 2**depth channels
    level i (i = depth-1 .. 0):  up-convolution 2x2 (stride 2), concat skip_i,
                                 2 x [conv 3x3 -> norm -> ReLU], width * 2**i channels
    head:                        conv 1x1 -> sigmoid: the probability of "tumor" per pixel

Two departures from the paper, both usual today: "same" padding (the output has the input's
size, no cropping of the skips), and normalization after each convolution. The image size
must be divisible by ``2**depth`` (every power of two >= ``2**depth`` is), so every pooling
halves exactly and every skip meets a decoder map of its own size.

## The output is a probability (sigmoid), not a logit

``predict()`` then gives what a reader wants to look at and threshold (at 0.5), and the
metrics below consume it directly. The price is numerical: a cross-entropy on probabilities
must clip them (Keras clips to [1e-7, 1 - 1e-7]), so the loss of a confidently wrong pixel
saturates at ``-log(1e-7) ~ 16`` instead of growing without bound. For segmentation in float32
that is harmless, and the output layer is kept in float32 under mixed precision.

## The loss: soft Dice + binary cross-entropy

A tumor covers a few percent of a slice, so plain BCE is dominated by the background and a
network can score well by predicting "no tumor" everywhere. The *soft* Dice loss measures
the overlap directly, with the probabilities ``p`` in place of the binary prediction:

    L_dice(y, p) = 1 - (2 * sum(y * p) + s) / (sum(y) + sum(p) + s)
    L(y, p)      = L_dice(y, p) + mean(BCE(y, p))

with the sums either per image (``dice_bce_loss``, then averaged over the batch) or over
the whole batch at once (``batch_dice_bce_loss``, "batch Dice" in nnU-Net's terms). The
smoothing term ``s = 1`` keeps the ratio defined on an empty mask, and gives the empty case
its gradient: with ``y = 0`` the per-image loss is ``1 - 1 / (sum(p) + 1)``, zero only if
the network predicts nothing, so false positives on healthy slices are penalized. BCE adds
a per-pixel signal that is useful early, when the soft Dice gradients are small and noisy.

**The U-Net trains with batch Dice** (``compile_unet(dice="batch")``, the default). Per
image, a healthy slice costs nearly the full Dice loss of 1 until the network's
probabilities there sum to well below 1 over 4,096 pixels, and half of the phantom's
slices are healthy: the cheapest way down is to predict nothing anywhere, and the network
learns that first. Measured on the 64 px demo phantom (all 28 train subjects, width 8,
batch 16, Adam 3e-3, one seed; ``benchmarks/unet_convergence.py``): pooled val Dice 0.03 / 0.12 /
0.02 / 0.14 after 100 / 200 / 400 / 500 steps per image, against 0.03 / 0.27 / 0.74 / 0.73
with batch Dice. Pooled over the batch, a healthy slice's false positives still count in
``sum(p)`` but no slice's loss is pinned at 1 by a few stray probabilities. Under a
``tf.distribute`` strategy each replica pools its own share of the batch.

## The metrics: Dice and IoU over the epoch

``DiceCoefficient`` and ``IoU`` threshold the prediction at 0.5 and accumulate the counts
of the whole epoch: intersection ``|Y ^ P|`` and the sizes ``|Y|``, ``|P|``. The result is the
*global* (pooled, "micro") score over every pixel seen this epoch,

    Dice = 2 |Y ^ P| / (|Y| + |P|)          IoU = |Y ^ P| / (|Y| + |P| - |Y ^ P|)

not the mean of per-image scores: big tumors weigh more, and healthy slices only count
through their false positives. It is cheap and stable for monitoring training; the numbers
to report (mean per slice, per subject in 3-D) come from
``mrigan_tf.evaluation.segmentation.evaluate_segmentation``. Empty-mask convention: when
nothing was seen, neither in the truth nor in the prediction (``|Y| + |P| = 0``), both
scores are 1: predicting "no tumor" where there is none is perfect agreement.

(``keras.metrics.IoU`` / ``BinaryIoU`` are different: they average the IoU of *both*
classes, background included, which on small tumors is close to 1 whatever the network does.)

Everything here uses ``keras.layers`` / ``keras.ops`` only, so it runs on every Keras backend.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import layers, ops

NORMS = ("batch", "group", None)
DICE_SMOOTH = 1.0
THRESHOLD = 0.5


# ## The U-Net

def _normalization(kind: str | None, filters: int, name: str) -> layers.Layer | None:
    if kind == "batch":
        return layers.BatchNormalization(name=name)
    if kind == "group":
        # Group norm does not depend on the batch: the choice for batches of a few slices.
        return layers.GroupNormalization(groups=math.gcd(filters, 8), name=name)
    return None


def _conv_block(x, filters: int, norm: str | None, name: str):
    """2 x [conv 3x3 -> norm -> ReLU]: the unit of every level."""
    for k in (1, 2):
        # A bias before a normalization is cancelled by its mean subtraction.
        x = layers.Conv2D(filters, 3, padding="same", use_bias=norm is None,
                          kernel_initializer="he_normal", name=f"{name}_conv{k}")(x)
        normalize = _normalization(norm, filters, f"{name}_norm{k}")
        if normalize is not None:
            x = normalize(x)
        x = layers.ReLU(name=f"{name}_relu{k}")(x)
    return x


def build_unet(image_size: int = 64, channels: int = 1, depth: int = 4, width: int = 32,
               dropout: float = 0.0, norm: str | None = "batch", name: str = "unet",
               seed: int | None = None) -> keras.Model:
    """A U-Net: (B, H, W, channels) image -> (B, H, W, 1) tumor probability.

    Args:
        image_size: H = W; must be divisible by ``2**depth`` (any power of two >= 2**depth).
        channels: input channels (1 for a grey MRI slice).
        depth: number of poolings (the paper: 4).
        width: channels of the first level; level i has ``width * 2**i`` (the paper: 64).
        dropout: dropout rate at the bottleneck (the paper uses dropout there); 0 for none.
        norm: ``"batch"``, ``"group"`` (independent of the batch size) or ``None``.
        name: the model's name.
        seed: seed of the dropout noise (initial weights follow ``keras.utils.set_random_seed``).
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if image_size < 2 ** depth or image_size % 2 ** depth:
        raise ValueError(f"image_size {image_size} must be divisible by 2**depth = {2 ** depth} "
                         f"(use a power of two >= {2 ** depth}, or a smaller depth)")

    image = keras.Input((image_size, image_size, channels), name="image")
    x = image
    skips = []
    for i in range(depth):
        x = _conv_block(x, width * 2 ** i, norm, f"down{i}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{i}_pool")(x)
    x = _conv_block(x, width * 2 ** depth, norm, "bottleneck")
    if dropout > 0:
        x = layers.Dropout(dropout, seed=seed, name="bottleneck_dropout")(x)
    for i in reversed(range(depth)):
        # A 2x2 kernel with stride 2 covers each output pixel exactly once: no checkerboard.
        x = layers.Conv2DTranspose(width * 2 ** i, 2, strides=2, name=f"up{i}_upconv")(x)
        x = layers.Concatenate(name=f"up{i}_skip")([x, skips[i]])
        x = _conv_block(x, width * 2 ** i, norm, f"up{i}")
    mask = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="tumor_probability")(x)
    return keras.Model(image, mask, name=name)


# ## The loss

@keras.saving.register_keras_serializable(package="mrigan_tf")
def soft_dice_loss(y_true, y_pred, smooth: float = DICE_SMOOTH):
    """Per image: ``1 - (2 sum(y p) + s) / (sum(y) + sum(p) + s)``, shape (B,)."""
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    axes = tuple(range(1, len(y_pred.shape)))
    intersection = ops.sum(y_true * y_pred, axis=axes)
    sizes = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return 1.0 - (2.0 * intersection + smooth) / (sizes + smooth)


@keras.saving.register_keras_serializable(package="mrigan_tf")
def dice_bce_loss(y_true, y_pred, smooth: float = DICE_SMOOTH):
    """Soft Dice + pixel-mean binary cross-entropy, per image, shape (B,).

    ``y_pred`` are probabilities (the U-Net's sigmoid output); ``y_true`` the 0/1 mask.
    Keras averages the per-image values over the batch.
    """
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    # binary_crossentropy averages over the last (channel) axis: (B, H, W) -> mean over H, W.
    bce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred),
                   axis=tuple(range(1, len(y_pred.shape) - 1)))
    return soft_dice_loss(y_true, y_pred, smooth) + bce


@keras.saving.register_keras_serializable(package="mrigan_tf")
def batch_dice_bce_loss(y_true, y_pred, smooth: float = DICE_SMOOTH):
    """Soft Dice over the whole batch's pixels + per-image pixel-mean BCE, shape (B,).

    The batch's Dice loss (one number: ``1 - (2 sum(y p) + s) / (sum(y) + sum(p) + s)``
    with the sums over every pixel of every image) is added to each image's BCE, so Keras'
    mean over the batch gives ``batch Dice + mean BCE``.
    """
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    dice = 1.0 - (2.0 * ops.sum(y_true * y_pred) + smooth) / (
        ops.sum(y_true) + ops.sum(y_pred) + smooth)
    bce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred),
                   axis=tuple(range(1, len(y_pred.shape) - 1)))
    return bce + dice


#: ``compile_unet(dice=...)``: where the soft Dice's sums run.
DICE_LOSSES = {"batch": batch_dice_bce_loss, "image": dice_bce_loss}


# ## The metrics

class _OverlapMetric(keras.metrics.Metric):
    """Accumulates |Y ^ P|, |Y| and |P| of thresholded masks over an epoch (global counts)."""

    def __init__(self, threshold: float = THRESHOLD, name: str | None = None,
                 dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        self.threshold = float(threshold)
        # float32 counts are exact up to 2**24 pixels per update; accumulating in float32 over
        # an epoch rounds in the 7th digit, far below anything we report.
        self.intersection = self.add_variable((), initializer="zeros", name="intersection")
        self.true_size = self.add_variable((), initializer="zeros", name="true_size")
        self.pred_size = self.add_variable((), initializer="zeros", name="pred_size")

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(f"{type(self).__name__} does not take sample weights")
        y_true = ops.cast(ops.greater(ops.cast(y_true, "float32"), self.threshold), "float32")
        y_pred = ops.cast(ops.greater(ops.cast(y_pred, "float32"), self.threshold), "float32")
        self.intersection.assign_add(ops.sum(y_true * y_pred))
        self.true_size.assign_add(ops.sum(y_true))
        self.pred_size.assign_add(ops.sum(y_pred))

    def reset_state(self):
        for variable in (self.intersection, self.true_size, self.pred_size):
            variable.assign(ops.zeros(variable.shape, variable.dtype))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold": self.threshold}

    @staticmethod
    def _ratio(numerator, denominator):
        # Nothing in the truth and nothing predicted: perfect agreement (score 1).
        safe = ops.where(denominator > 0, denominator, 1.0)
        return ops.where(denominator > 0, numerator / safe, 1.0)


@keras.saving.register_keras_serializable(package="mrigan_tf")
class DiceCoefficient(_OverlapMetric):
    """Global Dice ``2 |Y ^ P| / (|Y| + |P|)`` of masks thresholded at 0.5, over the epoch.

    Pooled over every pixel of every image since the last reset (not a mean per image);
    1 when both the truth and the prediction are empty.
    """

    def __init__(self, threshold: float = THRESHOLD, name: str = "dice", dtype: Any = None):
        super().__init__(threshold=threshold, name=name, dtype=dtype)

    def result(self):
        return self._ratio(2.0 * self.intersection, self.true_size + self.pred_size)


@keras.saving.register_keras_serializable(package="mrigan_tf")
class IoU(_OverlapMetric):
    """Global IoU (Jaccard) ``|Y ^ P| / |Y v P|`` of the tumor class, thresholded at 0.5.

    Pooled over the epoch like ``DiceCoefficient``; 1 when both masks are empty. Unlike
    ``keras.metrics.IoU``, the background class is not averaged in.
    """

    def __init__(self, threshold: float = THRESHOLD, name: str = "iou", dtype: Any = None):
        super().__init__(threshold=threshold, name=name, dtype=dtype)

    def result(self):
        union = self.true_size + self.pred_size - self.intersection
        return self._ratio(self.intersection, union)


def compile_unet(model: keras.Model, learning_rate: float = 1e-3,
                 jit_compile: bool = False, dice: str = "batch") -> keras.Model:
    """Compile ``model`` with Adam, the Dice + BCE loss and the Dice / IoU metrics.

    ``dice``: ``"batch"`` (``batch_dice_bce_loss``, the default) or ``"image"``
    (``dice_bce_loss``, the per-image mean).

    ``jit_compile`` is passed explicitly (Keras' ``"auto"`` silently turns XLA off on CPU).
    The optimizer is built at once, so that a checkpoint restored before the first step
    (``BackupAndRestore``) finds its slot variables.
    """
    if dice not in DICE_LOSSES:
        raise ValueError(f"dice must be one of {sorted(DICE_LOSSES)}, got {dice!r}")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=DICE_LOSSES[dice],
                  metrics=[DiceCoefficient(), IoU()], jit_compile=bool(jit_compile))
    model.optimizer.build(model.trainable_variables)
    return model
