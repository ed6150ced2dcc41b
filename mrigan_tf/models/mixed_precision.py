"""
Title: Mixed precision for GANs with two optimizers
Description: float16 arithmetic, float32 weights, and a loss scale for every gradient.

## Why and how

Under the ``mixed_float16`` policy every layer keeps its weights in float32 but computes in
float16, which tensor cores run several times faster and which halves activation memory.
float16 holds numbers only down to about 6e-8: small gradients flush to zero. *Loss
scaling* multiplies the loss by a large factor ``S`` before differentiating, so every
intermediate gradient is ``S`` times larger and stays representable, then divides the
gradients by ``S`` before the update. ``keras.optimizers.LossScaleOptimizer`` does the
bookkeeping and adapts ``S``: halves it (and skips the update) when a gradient overflows to
inf/NaN, doubles it after ``dynamic_growth_steps`` clean steps.

Keras wraps only ``model.optimizer`` (the one optimizer of ``compile``). A GAN has two, so
``BaseGAN.compile`` wraps both itself, and every train step:

* multiplies each player's loss by its optimizer's scale (``optimizer.scale_loss``, in
  ``BaseGAN.apply_gradients``) before ``tape.gradient``;
* scales the *inner* gradient of the gradient penalty too (``BaseGAN.input_gradients``):
  it is a gradient of the critic's float16 graph like any other;
* keeps the critic's score, the losses and the penalty in float32 (the players' output
  layers are float32, the steps cast scores to float32): a mean or a squared norm over a
  batch overflows or underflows in float16.

``bfloat16`` (TPUs, recent CPUs and GPUs) has float32's range and needs no loss scaling.
It is fast only where the hardware has bfloat16 instructions: on a CPU, AVX512_BF16 or AMX.
Without them (an AVX2-only CPU) oneDNN emulates it, and the cWGAN-GP step measured 8.7x
*slower* than float32 (README, *Speed on a CPU*); ``dtype_policy`` warns then.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras
# Keras is imported inside the functions: the command line reads POLICIES to build its
# options, and `mrigan-tf --help` should not wait for Keras and TensorFlow to load.

#: Policies ``--mixed-precision`` accepts ("float32" turns it off).
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Build layers under the Keras dtype policy ``name``; the previous one is restored after.

    Layers take the global policy when they are *created*, so the models must be built inside
    the block; the policy is saved with each layer, so a ``.keras`` file reloads as trained.
    """
    if name not in POLICIES:
        raise ValueError(f"unknown precision policy {name!r}; choose one of {POLICIES}")
    if name == "mixed_bfloat16" and not accelerator_visible() and not cpu_has_bf16():
        warnings.warn(BF16_ON_THIS_CPU, stacklevel=3)
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


BF16_ON_THIS_CPU = ("mixed_bfloat16 on a CPU without bfloat16 instructions (no AVX512_BF16 "
                    "or AMX in /proc/cpuinfo): it is emulated, and the cWGAN-GP step ran 8.7x "
                    "slower than float32 on such a CPU; train in float32 here")


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU has bfloat16 instructions oneDNN uses (AVX512_BF16 or AMX), from
    ``cpuinfo`` (default: Linux's ``/proc/cpuinfo``; unreadable: assumed present, no warning)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return True
    flags = set(cpuinfo.split())
    return "avx512_bf16" in flags or "amx_bf16" in flags


def accelerator_visible() -> bool:
    """Whether the Keras backend sees a GPU or TPU (then bfloat16 runs on it, not the CPU)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"))
    return False


def computes_in_float16(*models: keras.Model) -> bool:
    """Whether any layer of ``models`` computes in float16 (and so needs loss scaling)."""
    return any(layer.compute_dtype == "float16"
               for model in models for layer in model._flatten_layers(include_self=True))


def loss_scaled(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """``optimizer`` wrapped in a ``LossScaleOptimizer`` (unchanged if it already is one)."""
    import keras

    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer)


def current_loss_scale(optimizer: keras.optimizers.Optimizer):
    """The dynamic loss scale of a ``LossScaleOptimizer``, ``None`` for any other optimizer."""
    import keras

    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.dynamic_scale
    return None
