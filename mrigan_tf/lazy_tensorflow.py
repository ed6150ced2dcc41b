"""``tf``: TensorFlow, imported when first used, so that the JAX path runs without it.

The GANs' train steps, ``tf.distribute`` and the TensorFlow runner read like ordinary
TensorFlow code (``tf.GradientTape``, ``tf.data.Options``), while the models, the JAX
trainer and the JAX runner import on a machine that has no TensorFlow at all (a GPU box
with JAX only); reaching TensorFlow there says what to use instead.
"""

from __future__ import annotations

import importlib


class _TensorFlowOnFirstUse:
    """``tf``: the ``tensorflow`` module, imported when one of its attributes is first read.

    The train steps below read like ordinary TensorFlow (``tf.GradientTape``, ``tf.shape``),
    and the models still import on a JAX-only machine, where a TensorFlow step says what to
    use instead rather than failing with a bare ``No module named 'tensorflow'``.
    """

    def __getattr__(self, name: str):
        try:
            module = importlib.import_module("tensorflow")
        except ImportError as exc:
            raise ModuleNotFoundError(
                f"tf.{name} needs TensorFlow, which is not installed: the models' train_step is "
                "the TensorFlow lesson. Install tensorflow, or train the cwgan-gp on JAX "
                "(KERAS_BACKEND=jax: mrigan_tf.training.jax_trainer.JaxGANTrainer, "
                "or `mrigan-tf train --model cwgan-gp`)", name="tensorflow") from exc
        return getattr(module, name)

    def __repr__(self) -> str:
        return "<tensorflow, imported on first use>"


tf = _TensorFlowOnFirstUse()
