"""
Title: Building blocks the critics share: minibatch standard deviation, spectral normalization
Description: two small-data tricks as Keras layers, in ``keras.ops`` (every backend).

## Minibatch standard deviation (Karras et al., 2018, ProGAN section 3)

A generator that collapses onto a few images fools a critic that judges each image alone:
every one of its samples looks real. Give the critic one number about the *batch* and it can
see the collapse: split the batch into groups of ``G`` consecutive samples, take each
feature's standard deviation over the group, average over features and positions, and append
that scalar as one more feature map to every sample of the group:

    s_g = mean_{h,w,c} sqrt(Var_{i in group g}[x_i,h,w,c] + eps)    -> concat to x_i, i in g

Groups are *consecutive* samples, so a critic that scores ``concat([real, fake])`` in one
call (the cWGAN-GP does) never mixes real and fake statistics as long as the batch is a
multiple of ``G``. The critic's score of one sample then depends on its group-mates: the
gradient penalty and R1 (computed from the gradient of the summed scores) include the
cross-sample terms, as in ProGAN, which used minibatch stddev with WGAN-GP.

## Spectral normalization (Miyato et al., 2018)

A layer ``y = W x`` is ``sigma(W)``-Lipschitz, ``sigma`` its largest singular value. Dividing
the kernel by ``sigma`` makes every layer 1-Lipschitz, hence the critic (with 1-Lipschitz
activations): a Lipschitz constraint without a gradient penalty's second backward pass.
``sigma`` is estimated by power iteration with a persistent vector ``u``:

    v = normalize(u W^T);  u = normalize(v W);  sigma = v W u^T;  W_SN = W / sigma

``SpectralNorm`` subclasses ``keras.layers.SpectralNormalization`` (its ``u``, its power
iteration, its config) and changes *when* things happen, so that the TensorFlow step and the
generic JAX trainer compute the same thing:

* the forward pass uses ``W / sigma(W)`` with the gradient flowing through ``sigma``, as in
  the paper and PyTorch, and assigns nothing (Keras' own layer *assigns* the normalized kernel
  to the trainable variable during the forward pass: the tape then differentiates w.r.t. the
  normalized kernel as a free variable, while ``jax.grad`` differentiates through the
  normalization; the two steps would differ);
* ``u`` advances by one power iteration after each critic update
  (``update_spectral_norms``, called by ``BaseGAN`` after every discriminator update), not in
  every forward pass, so the gradient penalty's extra critic call does not advance it twice.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="mrigan_tf")
class MinibatchStdDev(layers.Layer):
    """Append the mean over features of the per-group standard deviation as one channel.

    ``(B, H, W, C) -> (B, H, W, C + 1)`` (or ``(B, F) -> (B, F + 1)`` for flat features).
    ``group_size``: samples per group; a static batch that it does not divide uses the
    greatest common divisor instead (a batch of 6 with ``group_size=4``: groups of 2).
    """

    def __init__(self, group_size: int = 4, epsilon: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        self.group_size = int(group_size)
        self.epsilon = float(epsilon)

    def _group(self, batch) -> int:
        if isinstance(batch, int):
            return math.gcd(self.group_size, batch) if batch else self.group_size
        return self.group_size

    def call(self, x):
        group = self._group(x.shape[0])
        features = tuple(x.shape[1:])
        grouped = ops.reshape(ops.cast(x, "float32"), (-1, group, *features))
        variance = ops.var(grouped, axis=1)                                 # (B/G, ...)
        std = ops.sqrt(variance + self.epsilon)
        stat = ops.mean(ops.reshape(std, (ops.shape(std)[0], -1)), axis=-1)  # (B/G,)
        # One scalar per group, repeated for each member and each position.
        stat = ops.repeat(stat, group, axis=0)
        stat = ops.reshape(stat, (-1,) + (1,) * len(features))
        stat = ops.broadcast_to(stat, (ops.shape(x)[0], *features[:-1], 1))
        return ops.concatenate([x, ops.cast(stat, x.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="mrigan_tf")
class SpectralNorm(layers.SpectralNormalization):
    """``keras.layers.SpectralNormalization`` whose forward pass is a pure function of the
    weights (see the module docstring): ``W / sigma`` differentiably, ``u`` advanced by
    ``advance()`` after each update. Wraps a layer with a ``kernel`` (Dense, Conv2D)."""

    def sigma(self):
        """The power-iteration estimate of the kernel's largest singular value (one
        iteration from the stored ``u``; ``u`` and ``v`` are constants for the gradient)."""
        weights = ops.reshape(self.kernel, (-1, self.kernel_shape[-1]))
        _, vector_v, vector_u = self._power_iteration(weights)
        return ops.squeeze(ops.matmul(ops.matmul(vector_v, weights), ops.transpose(vector_u)))

    def _power_iteration(self, weights):
        vector_u = ops.cast(self.vector_u, weights.dtype)
        vector_v = None
        for _ in range(self.power_iterations):
            vector_v = _normalize(ops.matmul(vector_u, ops.transpose(weights)))
            vector_u = _normalize(ops.matmul(vector_v, weights))
        return weights, ops.stop_gradient(vector_v), ops.stop_gradient(vector_u)

    def call(self, inputs, training=False):
        # The wrapped layer reads its kernel from the scope: W / sigma, a function of the
        # weight (gradients flow through sigma), its other variables as they are.
        normalized = ops.divide(self.kernel.value, ops.cast(self.sigma(), self.kernel.dtype))
        mapping = [(v, normalized if v is self.kernel else v.value) for v in self.layer.variables]
        with keras.StatelessScope(state_mapping=mapping):
            output = self.layer(inputs)
        return ops.cast(output, inputs.dtype)

    def advance(self) -> None:
        """One power iteration of ``u`` for the current kernel (after an update)."""
        weights = ops.reshape(self.kernel.value, (-1, self.kernel_shape[-1]))
        _, _, vector_u = self._power_iteration(weights)
        self.vector_u.assign(ops.cast(vector_u, self.vector_u.dtype))


def _normalize(x, epsilon: float = 1e-12):
    return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x)), epsilon))


def spectral_norm(layer: layers.Layer, enabled: bool = True) -> layers.Layer:
    """``SpectralNorm(layer)`` when ``enabled``, else ``layer`` itself."""
    return SpectralNorm(layer) if enabled else layer


def update_spectral_norms(model: keras.Model) -> None:
    """Advance the power iteration of every ``SpectralNorm`` layer of ``model``."""
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, SpectralNorm):
            layer.advance()


def has_spectral_norm(model: keras.Model) -> bool:
    return any(isinstance(layer, SpectralNorm) for layer in model._flatten_layers(include_self=False))


def projection_critic(image, features, score, num_classes: int, name: str) -> keras.Model:
    """A class-conditional critic's head, the projection discriminator (Miyato & Koyama, 2018):
    ``D(x, y) = score(x) + embed(y) . phi(x)``, with ``phi(x)`` = ``features``.

    ``image`` is the critic's image input and ``score`` its unconditional score; returns the
    model ``[image, label] -> D``, the label an int class input named ``label``.
    """
    label = keras.Input((), dtype="int32", name="label")
    embedded = layers.Embedding(num_classes, features.shape[-1], name="class_projection")(label)
    projection = ops.sum(embedded * features, axis=-1, keepdims=True)
    out = layers.Add(dtype="float32", name="score")([score, projection])
    return keras.Model([image, label], out, name=name)
