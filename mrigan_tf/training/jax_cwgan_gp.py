"""
Title: The conditional WGAN-GP training step in JAX
Description: the game of ``ConditionalWGANGP.train_step``, written with Keras 3's stateless API.

## Why a second training step

Keras 3 runs the same layers on TensorFlow, JAX and PyTorch. The generator, the critic and
DiffAugment use only ``keras.layers`` / ``keras.ops`` / ``keras.random``, so they build under
``KERAS_BACKEND=jax`` unchanged. What does *not* carry over is the training step: the
lesson's ``train_step`` records ``tf.GradientTape`` s, and JAX has no tape. JAX
differentiates *functions*, so the step is written as one pure function of an explicit
state

    state = (generator weights, critic weights, both optimizers' slots, augmentation seed, key)
    step(state, real, labels) -> (new state, logs)

and ``jax.jit`` compiles the whole of it (``n_critic`` critic updates and one generator
update) into one XLA program. Keras 3 provides the pieces:

* ``model.stateless_call(trainable, non_trainable, inputs)`` runs a model on weights passed
  in, and returns its outputs with the new non-trainable state (batch-norm statistics);
* ``optimizer.stateless_apply(slots, grads, weights)`` returns the updated weights and slots;
* ``jax.value_and_grad`` gives the loss and its gradient w.r.t. the critic's weights, and a
  ``jax.grad`` *inside* the loss gives the gradient penalty's gradient w.r.t. the critic's
  input (a gradient of a gradient: JAX composes them, as nested tapes do in TensorFlow).

## The same losses and defaults as the TensorFlow model

    x_hat = alpha * x + (1 - alpha) * G(z, y),     alpha ~ U[0, 1] per sample
    L_D   = E[D(G(z, y), y)] - E[D(x, y)] + lambda * E[(sqrt(||grad_x_hat D||^2 + eps) - 1)^2]
            (+ drift * E[D(x, y)^2])
    L_G   = -E[D(G(z, y), y)]

The trainer takes a ``ConditionalWGANGP`` (``make_cwgan_gp(...)``) and reads lambda,
``n_critic``, lazy regularization (``gp_every``), the drift weight, the DiffAugment policy
and the default optimizers (Adam(1e-4, beta_1=0, beta_2=0.9)) from it, so the two steps
cannot drift apart in their settings. It logs the model's ``METRIC_NAMES`` (d_loss, g_loss, gp, wasserstein: those of
the last critic update and of the generator update). The weights are the model's own
Keras variables, so ``save_weights`` writes ``.weights.h5`` files that load into the
TensorFlow model, and the reverse (``tests/test_jax_backend.py`` checks both, and that one
step from the same weights, batch and noise gives the same losses on both backends).

The randomness of generator step ``i`` (its latent vectors, interpolation weights and the
DiffAugment seed) comes from ``fold_in(key(seed), i)``, with ``i`` the generator optimizer's
iteration count, which the saved weights hold (Keras does not save seed-generator states).
So a step is a function of what a checkpoint holds: a run resumed from the weights and
optimizer slots of step ``i`` draws what the uninterrupted run drew
(``mrigan_tf.training.jax_runner`` relies on it).

Float32 only: the float16 loss scaling of ``mrigan_tf.training.mixed_precision`` is written
for the TensorFlow step.

Usage (``KERAS_BACKEND=jax`` must be set before Keras is first imported)::

    model = make_cwgan_gp((64, 64, 2), seed=0)
    trainer = JaxCWGANGPTrainer(model, seed=0)
    history = trainer.fit(batches, steps=1000)      # batches: iterable of (images, labels)
    trainer.save_weights("runs/jax")                # generator/critic .weights.h5
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import keras

from mrigan_tf.errors import DataError, MriganError

if keras.backend.backend() != "jax":
    raise MriganError(
        f"mrigan_tf.training.jax_cwgan_gp needs the JAX backend, but Keras runs on "
        f"{keras.backend.backend()!r}. Set KERAS_BACKEND=jax before the first `import keras` "
        "(in a notebook: os.environ['KERAS_BACKEND'] = 'jax' in the first cell).")

import jax  # noqa: E402  (after the backend check, so the error above is the one you see)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from mrigan_tf.models.cwgan_gp import GP_EPSILON, ConditionalWGANGP  # noqa: E402
from mrigan_tf.training.runner import GENERATOR_WEIGHTS_FILE as GENERATOR_WEIGHTS  # noqa: E402

CRITIC_WEIGHTS = "critic.weights.h5"


def _values(variables) -> list[jax.Array]:
    # Copies: the compiled step donates its input state, and a donated buffer must not be
    # the one a Keras variable still holds.
    return [jnp.array(v.value, copy=True) for v in variables]


def _assign(variables, values) -> None:
    # Copies again: the next step donates (frees) the state's buffers, and a Keras variable
    # still holding one would then fail on its next use ("Array has been deleted").
    for variable, value in zip(variables, values, strict=True):
        variable.assign(jnp.array(value, copy=True))


class JaxCWGANGPTrainer:
    """Train a ``ConditionalWGANGP`` with a jit-compiled JAX step.

    Args:
        model: the GAN (``make_cwgan_gp(...)``), built under the JAX backend; its settings
            (gp_weight, n_critic, drift_weight, augment, latent_dim) define the step.
        d_optimizer, g_optimizer: the critic's and the generator's optimizers; ``None``:
            ``ConditionalWGANGP.default_optimizers()``.
        seed: seeds the latent vectors and interpolation weights drawn in the step
            (``None``: the model's seed, or 0).
    """

    METRIC_NAMES = ConditionalWGANGP.METRIC_NAMES

    def __init__(self, model: ConditionalWGANGP, d_optimizer: keras.optimizers.Optimizer | None = None,
                 g_optimizer: keras.optimizers.Optimizer | None = None, seed: int | None = None):
        from mrigan_tf.training.mixed_precision import computes_in_float16

        if not isinstance(model, ConditionalWGANGP):
            raise TypeError(f"JaxCWGANGPTrainer trains a ConditionalWGANGP, got {type(model).__name__}")
        if computes_in_float16(model.generator, model.critic):
            raise MriganError("the JAX step trains in float32; build the model without the "
                              "mixed_float16 policy (mixed precision is a TensorFlow-step feature)")
        self.model = model
        default_d, default_g = model.default_optimizers()
        self.d_optimizer = default_d if d_optimizer is None else d_optimizer
        self.g_optimizer = default_g if g_optimizer is None else g_optimizer
        if self.d_optimizer is self.g_optimizer:
            raise ValueError("the critic and the generator need two optimizer instances")
        self.d_optimizer.build(model.critic.trainable_variables)
        self.g_optimizer.build(model.generator.trainable_variables)
        seed = (model.seed if model.seed is not None else 0) if seed is None else seed
        # Where the generator's step counter sits in the optimizer state: it numbers the noise.
        self._g_iterations_index = next(i for i, v in enumerate(self.g_optimizer.variables)
                                        if v is self.g_optimizer.iterations)
        self.state = self._read_state(jax.random.key(int(seed)))
        # Donating the state lets XLA update the weights in place instead of keeping two
        # copies of every weight and optimizer slot alive during the step.
        self._step_random = jax.jit(self._train_step_random, donate_argnums=0)
        self._step_given = jax.jit(self._train_step, donate_argnums=0)

    # ## The state: every array the step reads and writes

    def _read_state(self, key: jax.Array) -> dict[str, Any]:
        m = self.model
        return {
            "g_trainable": _values(m.generator.trainable_variables),
            "g_non_trainable": _values(m.generator.non_trainable_variables),
            "d_trainable": _values(m.critic.trainable_variables),
            "d_non_trainable": _values(m.critic.non_trainable_variables),
            "g_optimizer": _values(self.g_optimizer.variables),
            "d_optimizer": _values(self.d_optimizer.variables),
            "augment": _values(m.augmenter.non_trainable_variables),
            "key": key,
        }

    def sync_to_model(self) -> ConditionalWGANGP:
        """Write the trained state into the model's (and optimizers') Keras variables."""
        m, s = self.model, self.state
        _assign(m.generator.trainable_variables, s["g_trainable"])
        _assign(m.generator.non_trainable_variables, s["g_non_trainable"])
        _assign(m.critic.trainable_variables, s["d_trainable"])
        _assign(m.critic.non_trainable_variables, s["d_non_trainable"])
        _assign(self.g_optimizer.variables, s["g_optimizer"])
        _assign(self.d_optimizer.variables, s["d_optimizer"])
        _assign(m.augmenter.non_trainable_variables, s["augment"])
        return m

    @property
    def steps_done(self) -> int:
        """Generator steps taken so far (the generator optimizer's iteration count)."""
        return int(self.state["g_optimizer"][self._g_iterations_index])

    def reload_from_model(self) -> None:
        """Take the weights (and the optimizers' slots) from the model's and the optimizers'
        Keras variables again, e.g. after ``model.load_weights`` of a checkpoint."""
        self.state = self._read_state(self.state["key"])

    # ## The pieces of one step, as pure functions of the state

    def _augment(self, augment_state, x):
        if not self.model.augment_policy:
            return x, augment_state
        return self.model.augmenter.stateless_call([], augment_state, x)

    def _generate(self, g_trainable, g_non_trainable, latent, labels):
        return self.model.generator.stateless_call(g_trainable, g_non_trainable, [latent, labels],
                                                   training=True)

    def _critic(self, d_trainable, d_non_trainable, x, labels):
        scores, _ = self.model.critic.stateless_call(d_trainable, d_non_trainable, [x, labels],
                                                     training=True)
        return scores.astype("float32")

    def gradient_penalty(self, d_trainable, d_non_trainable, real, fake, labels, alpha):
        """E[(||grad D(x_hat, y)||_2 - 1)^2], the gradient taken by ``jax.grad`` w.r.t. x_hat.

        The sum of the scores has, w.r.t. each sample's x_hat, exactly that sample's score
        gradient (the critic treats samples independently), so one ``jax.grad`` of the sum
        gives every per-sample gradient at once.
        """
        x_hat = alpha * real.astype("float32") + (1.0 - alpha) * fake.astype("float32")
        grads = jax.grad(lambda x: jnp.sum(self._critic(d_trainable, d_non_trainable, x, labels)))(x_hat)
        norm = jnp.sqrt(jnp.sum(jnp.square(grads), axis=(1, 2, 3)) + GP_EPSILON)
        return jnp.mean(jnp.square(norm - 1.0))

    def _critic_loss(self, d_trainable, d_non_trainable, real_aug, fake_aug, labels, alpha,
                     penalize):
        # One critic call on the stacked batch, like ConditionalWGANGP.critic_scores.
        scores = self._critic(d_trainable, d_non_trainable,
                              jnp.concatenate([real_aug, fake_aug], axis=0),
                              jnp.concatenate([labels, labels], axis=0))
        d_real, d_fake = jnp.split(scores, 2, axis=0)
        wasserstein = jnp.mean(d_real) - jnp.mean(d_fake)
        d_loss = -wasserstein
        if self.model.drift_weight:
            d_loss = d_loss + self.model.drift_weight * jnp.mean(jnp.square(d_real))
        loss, gp = d_loss, None
        if penalize:   # a Python bool: lazy regularization is fixed when the step is traced
            gp = self.gradient_penalty(d_trainable, d_non_trainable, real_aug, fake_aug, labels, alpha)
            loss = loss + self.model.gp_every * self.model.gp_weight * gp
        return loss, (d_loss, gp, wasserstein)

    def _critic_step(self, state, real, labels, latent, alpha, penalize=True):
        fake, g_non_trainable = self._generate(state["g_trainable"], state["g_non_trainable"],
                                               latent, labels)
        # The fake batch is a constant for the critic.
        fake = jax.lax.stop_gradient(fake)
        real_aug, augment_state = self._augment(state["augment"], real)
        fake_aug, augment_state = self._augment(augment_state, fake)
        (_, (d_loss, gp, wasserstein)), grads = jax.value_and_grad(self._critic_loss, has_aux=True)(
            state["d_trainable"], state["d_non_trainable"], real_aug, fake_aug, labels, alpha,
            penalize)
        d_trainable, d_optimizer = self.d_optimizer.stateless_apply(
            state["d_optimizer"], grads, state["d_trainable"])
        state = {**state, "d_trainable": d_trainable, "d_optimizer": d_optimizer,
                 "g_non_trainable": g_non_trainable, "augment": augment_state}
        return state, (d_loss, gp, wasserstein)

    def _generator_loss(self, g_trainable, g_non_trainable, d_trainable, d_non_trainable,
                        augment_state, latent, labels):
        fake, g_non_trainable = self._generate(g_trainable, g_non_trainable, latent, labels)
        fake_aug, augment_state = self._augment(augment_state, fake)
        g_loss = -jnp.mean(self._critic(d_trainable, d_non_trainable, fake_aug, labels))
        return g_loss, (g_non_trainable, augment_state)

    def _generator_step(self, state, labels, latent):
        (g_loss, (g_non_trainable, augment_state)), grads = jax.value_and_grad(
            self._generator_loss, has_aux=True)(
                state["g_trainable"], state["g_non_trainable"], state["d_trainable"],
                state["d_non_trainable"], state["augment"], latent, labels)
        g_trainable, g_optimizer = self.g_optimizer.stateless_apply(
            state["g_optimizer"], grads, state["g_trainable"])
        state = {**state, "g_trainable": g_trainable, "g_optimizer": g_optimizer,
                 "g_non_trainable": g_non_trainable, "augment": augment_state}
        return state, g_loss

    def _train_step(self, state, real, labels, latents, alphas):
        """n_critic critic updates, then one generator update; ``latents`` holds
        ``n_critic + 1`` latent batches (the last for the generator), ``alphas`` ``n_critic``
        interpolation-weight batches of shape (B, 1, 1, 1)."""
        real = real.astype("float32")
        labels = labels.astype("int32")
        # Unrolled, like the TensorFlow step (n_critic is small and static): XLA schedules
        # the whole sequence as one program.
        for i in range(self.model.n_critic):
            state, (d_loss, step_gp, wasserstein) = self._critic_step(
                state, real, labels, latents[i], alphas[i], penalize=i % self.model.gp_every == 0)
            gp = step_gp if step_gp is not None else gp
        # The generator is asked for the classes of the real batch (the data's balance).
        state, g_loss = self._generator_step(state, labels, latents[self.model.n_critic])
        # d_loss with the latest penalty, as ConditionalWGANGP.train_step logs it.
        return state, {"d_loss": d_loss + self.model.gp_weight * gp, "g_loss": g_loss, "gp": gp,
                       "wasserstein": wasserstein}

    def _train_step_random(self, state, real, labels):
        # The step's own key, from the seed's key and the step number: not a key carried from
        # step to step, so the weights and optimizer slots alone say what step i draws.
        step = state["g_optimizer"][self._g_iterations_index]
        latent_key, alpha_key, augment_key = jax.random.split(
            jax.random.fold_in(state["key"], step), 3)
        batch, n_critic = real.shape[0], self.model.n_critic
        latents = jax.random.normal(latent_key, (n_critic + 1, batch, self.model.latent_dim))
        alphas = jax.random.uniform(alpha_key, (n_critic, batch, 1, 1, 1), minval=0.0, maxval=1.0)
        # DiffAugment's seed-generator state (unsigned ints), reseeded for this step.
        augment = [jax.random.bits(key, value.shape, value.dtype) for key, value in
                   zip(jax.random.split(augment_key, len(state["augment"])), state["augment"])]
        return self._train_step({**state, "augment": augment}, real, labels, latents, alphas)

    # ## Training

    def train_step(self, real, labels, latents=None, alphas=None) -> dict[str, jax.Array]:
        """One generator step (with its ``n_critic`` critic steps) on one batch.

        ``real``: (B, H, W, C) joint image+mask tensors in [-1, 1]; ``labels``: (B,) ints.
        ``latents`` (n_critic + 1, B, latent_dim) and ``alphas`` (n_critic, B, 1, 1, 1): the
        noise to use instead of drawing it (tests compare backends with them); give both or
        neither. Returns the step's losses as JAX scalars (still on the device: converting
        them waits for the step, which a training loop should do only now and then).
        """
        if (latents is None) != (alphas is None):
            raise ValueError("give both latents and alphas, or neither")
        if latents is None:
            self.state, logs = self._step_random(self.state, real, labels)
        else:
            self.state, logs = self._step_given(self.state, real, labels, latents, alphas)
        return logs

    def fit(self, batches: Iterable, steps: int, progress: bool = True) -> dict[str, list[float]]:
        """Train for ``steps`` generator steps on ``batches`` of (images, labels).

        ``batches`` is any iterable of NumPy/JAX arrays, e.g. a ``tf.data`` pipeline's
        ``as_numpy_iterator()``; it is cycled when it runs out. Returns the per-step losses.
        """
        from mrigan_tf.progress import progress_bar

        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        history: dict[str, list] = {name: [] for name in self.METRIC_NAMES}
        iterator = iter(batches)
        with progress_bar(total=steps, desc="cwgan-gp (jax)", unit="step", disable=not progress) as bar:
            for _ in range(steps):
                try:
                    real, labels = next(iterator)
                except StopIteration:
                    iterator = iter(batches)
                    try:
                        real, labels = next(iterator)
                    except StopIteration:
                        raise ValueError("batches is empty (or an exhausted iterator)") from None
                logs = self.train_step(np.asarray(real), np.asarray(labels))
                for name in self.METRIC_NAMES:
                    history[name].append(logs[name])
                bar.update(1)
        # Converted once at the end: a float() per step would wait for the device each time.
        return {name: [float(v) for v in values] for name, values in history.items()}

    # ## Weights: the model's own .weights.h5 files, readable by either backend

    def save_weights(self, directory: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write ``generator.weights.h5`` and ``critic.weights.h5`` into ``directory``
        (both, or neither if something fails). They load into a TensorFlow-backend model."""
        from mrigan_tf.atomic import atomic_directory

        self.sync_to_model()
        directory = Path(directory)
        with atomic_directory(directory, overwrite=overwrite) as tmp:
            self.model.generator.save_weights(tmp / GENERATOR_WEIGHTS)
            self.model.critic.save_weights(tmp / CRITIC_WEIGHTS)
        return directory

    def load_weights(self, directory: str | os.PathLike) -> None:
        """Load weights written by ``save_weights`` (on either backend) and train from them."""
        directory = Path(directory)
        for name in (GENERATOR_WEIGHTS, CRITIC_WEIGHTS):
            if not (directory / name).is_file():
                raise DataError(directory / name, "missing: expected the generator and critic "
                                "weights written by save_weights (or by the TensorFlow model's "
                                "generator/critic .save_weights)")
        try:
            self.model.generator.load_weights(directory / GENERATOR_WEIGHTS)
            self.model.critic.load_weights(directory / CRITIC_WEIGHTS)
        except ValueError as exc:
            raise DataError(directory, f"weights do not fit this model ({exc})") from None
        self.reload_from_model()
