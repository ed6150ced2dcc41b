"""
Title: One GAN training step in JAX, for every family
Description: the families' own loss methods, differentiated by ``jax.value_and_grad``.

## Why a second training step

Keras 3 runs the same layers on TensorFlow, JAX and PyTorch. The players, DiffAugment and
the losses (``discriminator_loss`` / ``generator_loss`` of each family, in ``keras.ops``) run
under ``KERAS_BACKEND=jax`` unchanged. What does *not* carry over is ``BaseGAN.train_step``:
it records ``tf.GradientTape`` s, and JAX has no tape. JAX differentiates *functions*, so the
step is one pure function of an explicit state

    state = (both players' weights, both optimizers' slots, augmentation seed, key)
    step(state, real, labels) -> (new state, logs)

and ``jax.jit`` compiles the whole of it (``n_critic`` discriminator updates and one
generator update) into one XLA program. The family's loss methods run inside a
``keras.StatelessScope`` that maps every variable of the model to its value in the state:
a layer reads its weights from there, and whatever it assigns (batch-norm statistics,
DiffAugment's seed, the WGAN's clipped weights) is collected from the scope afterwards
instead of being written to the variable. So the method is written once, in the family's
file, and this module holds the gradient machinery only:

* ``jax.value_and_grad`` of the family's loss w.r.t. one player's trainable weights;
* ``optimizer.stateless_apply(slots, grads, weights)`` for the updated weights and slots;
* ``BaseGAN.input_gradients`` calls ``jax.grad`` for the gradient penalty and R1 (a gradient
  of a gradient: JAX composes them, as nested tapes do in TensorFlow).

The small-data tricks are the model's too: the discriminator minimises
``regularized_discriminator_loss`` (the family's loss plus R1), ``after_discriminator_update``
follows every discriminator update (clipping, spectral norms' power iteration), and
``after_generator_update`` (the EMA update; ProGAN's growth schedule) every generator
update, each run in the stateless scope like the losses.

The trainer reads ``n_critic``, the penalty schedule (``penalizes``), the optimizer defaults
and the logged names (``METRIC_NAMES``) from the model, so the two backends cannot drift
apart in their settings. The weights are the model's own Keras variables, so
``save_weights`` writes ``.weights.h5`` files that load into the TensorFlow model, and the
reverse (``tests/test_jax_backend.py`` checks both, and that one step of every family from
the same weights, batch and noise gives the same losses and weights on both backends).

The randomness of generator step ``i`` (its latent vectors, interpolation weights and the
DiffAugment seed) comes from ``fold_in(key(seed), i)``, with ``i`` the generator optimizer's
iteration count, which the saved weights hold (Keras does not save seed-generator states).
So a step is a function of what a checkpoint holds: a run resumed from the weights and
optimizer slots of step ``i`` draws what the uninterrupted run drew
(``mrigan_tf.training.jax_runner`` relies on it).

Float32 only: float16 loss scaling is a feature of the TensorFlow step.

Usage (``KERAS_BACKEND=jax`` must be set before Keras is first imported)::

    model = make_gan("dcgan", (64, 64, 1), seed=0)
    trainer = JaxGANTrainer(model, seed=0)
    history = trainer.fit(batches, steps=1000)      # batches: iterable of (images, labels)
    trainer.save_weights("runs/jax")                # generator/critic .weights.h5
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import keras

from mrigan_tf.errors import DataError, MriganError

if keras.backend.backend() != "jax":
    raise MriganError(
        f"mrigan_tf.training.jax_trainer needs the JAX backend, but Keras runs on "
        f"{keras.backend.backend()!r}. Set KERAS_BACKEND=jax before the first `import keras` "
        "(in a notebook: os.environ['KERAS_BACKEND'] = 'jax' in the first cell).")

import jax  # noqa: E402  (after the backend check, so the error above is the one you see)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from mrigan_tf.atomic import atomic_directory  # noqa: E402
from mrigan_tf.models.base import BaseGAN  # noqa: E402
from mrigan_tf.models.mixed_precision import computes_in_float16  # noqa: E402
from mrigan_tf.progress import progress_bar  # noqa: E402
from mrigan_tf.training.run_directory import GENERATOR_WEIGHTS_FILE as GENERATOR_WEIGHTS  # noqa: E402

#: The discriminator's (critic's) weights, beside the generator's.
CRITIC_WEIGHTS = "critic.weights.h5"

#: The groups of variables the state holds, each a list of arrays in a fixed order.
TRAINABLE = ("g_trainable", "d_trainable")
STATE_GROUPS = ("g_trainable", "g_non_trainable", "d_trainable", "d_non_trainable", "extra",
                "g_ema")
#: The generator's weight average, when the model keeps one.
EMA_WEIGHTS = "generator_ema.weights.h5"


def _values(variables) -> list[jax.Array]:
    # Copies: the compiled step donates its input state, and a donated buffer must not be
    # the one a Keras variable still holds.
    return [jnp.array(v.value, copy=True) for v in variables]


def _assign(variables, values) -> None:
    # Copies again: the next step donates (frees) the state's buffers, and a Keras variable
    # still holding one would then fail on its next use ("Array has been deleted").
    for variable, value in zip(variables, values, strict=True):
        variable.assign(jnp.array(value, copy=True))


class JaxGANTrainer:
    """Train any ``BaseGAN`` family with a jit-compiled JAX step.

    Args:
        model: the GAN (``make_gan(...)``), built under the JAX backend; its ``n_critic``,
            ``penalizes``, loss methods and settings define the step.
        d_optimizer, g_optimizer: the discriminator's and the generator's optimizers;
            ``None``: the family's ``default_optimizers()``.
        seed: seeds the latent vectors and interpolation weights drawn in the step
            (``None``: the model's seed, or 0).
    """

    def __init__(self, model: BaseGAN, d_optimizer: keras.optimizers.Optimizer | None = None,
                 g_optimizer: keras.optimizers.Optimizer | None = None, seed: int | None = None):
        if not isinstance(model, BaseGAN):
            raise TypeError(f"JaxGANTrainer trains a BaseGAN family, got {type(model).__name__}")
        if computes_in_float16(model.generator, model.discriminator):
            raise MriganError("the JAX step trains in float32; build the model without the "
                              "mixed_float16 policy (mixed precision is a TensorFlow-step feature)")
        self.model = model
        self.METRIC_NAMES = model.metric_names
        self.d_optimizer, self.g_optimizer = model.choose_optimizers(d_optimizer, g_optimizer)
        self.d_optimizer.build(model.discriminator.trainable_variables)
        self.g_optimizer.build(model.generator.trainable_variables)
        # The Keras variables behind each group of the state, in the state's order.
        augmenter = model.augmenter
        self.variables = {
            "g_trainable": model.generator.trainable_variables,
            "g_non_trainable": model.generator.non_trainable_variables,
            "d_trainable": model.discriminator.trainable_variables,
            "d_non_trainable": model.discriminator.non_trainable_variables,
            "extra": augmenter.non_trainable_variables if augmenter is not None else [],
            "g_ema": model.ema_generator.weights if model.ema_generator is not None else [],
            "g_optimizer": self.g_optimizer.variables,
            "d_optimizer": self.d_optimizer.variables,
        }
        seed = (model.seed if model.seed is not None else 0) if seed is None else seed
        # Where the generator's step counter sits in the optimizer state: it numbers the noise.
        self._g_iterations_index = next(i for i, v in enumerate(self.g_optimizer.variables)
                                        if v is self.g_optimizer.iterations)
        self.state = self._read_state(jax.random.key(int(seed)))
        # Donating the state lets XLA update the weights in place instead of keeping two
        # copies of every weight and optimizer slot alive during the step.
        self._step = jax.jit(self._train_step, donate_argnums=0)
        # Training's own noise is drawn by a separate small program, so that one compiled step
        # serves both drawn and given noise (XLA compiles the step once, not twice).
        self._draw = jax.jit(self._draw_noise, static_argnums=2)

    # ## The state: every array the step reads and writes

    def _read_state(self, key: jax.Array) -> dict[str, Any]:
        return {**{name: _values(v) for name, v in self.variables.items()}, "key": key}

    def sync_to_model(self) -> BaseGAN:
        """Write the trained state into the model's (and optimizers') Keras variables."""
        for name, variables in self.variables.items():
            _assign(variables, self.state[name])
        return self.model

    @property
    def steps_done(self) -> int:
        """Generator steps taken so far (the generator optimizer's iteration count)."""
        return int(self.state["g_optimizer"][self._g_iterations_index])

    def reload_from_model(self) -> None:
        """Take the weights (and the optimizers' slots) from the model's and the optimizers'
        Keras variables again, e.g. after ``model.load_weights`` of a checkpoint."""
        self.state = self._read_state(self.state["key"])

    def _run(self, state: dict[str, Any], method: Callable[[], Any]) -> tuple[Any, dict]:
        """``method()`` with every model variable holding its value in ``state``; returns
        its result and the state's groups as the method left them (assignments included)."""
        mapping = [pair for name in STATE_GROUPS
                   for pair in zip(self.variables[name], state[name], strict=True)]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            result = method()
        return result, {name: [scope.get_current_value(v) for v in self.variables[name]]
                        for name in STATE_GROUPS}

    # ## One update of each player: the family's loss, differentiated

    def _update(self, state, player: str, loss_method: Callable[[], tuple[Any, dict]]):
        """One optimizer update of ``player`` (``"d"`` or ``"g"``) down the gradient of the
        loss ``loss_method()`` returns w.r.t. that player's trainable weights."""
        weights, slots = f"{player}_trainable", f"{player}_optimizer"
        optimizer = self.d_optimizer if player == "d" else self.g_optimizer

        def loss(trainable):
            (value, logs), after = self._run({**state, weights: trainable}, loss_method)
            return value, (logs, after)

        (_, (logs, after)), grads = jax.value_and_grad(loss, has_aux=True)(state[weights])
        new_weights, new_slots = optimizer.stateless_apply(state[slots], grads, state[weights])
        # Batch-norm statistics and seeds as the loss left them; the new weights and slots.
        state = {**state, **{k: after[k] for k in STATE_GROUPS if k not in TRAINABLE},
                 weights: new_weights, slots: new_slots}
        return state, logs

    def _discriminator_step(self, state, real, labels, latent, alpha):
        model = self.model
        state, logs = self._update(state, "d", lambda: model.regularized_discriminator_loss(
            # The fake batch is a constant for the discriminator.
            real, jax.lax.stop_gradient(model.generate(latent, labels, training=True)),
            labels, alpha))
        # The family's constraint on the new weights (the WGAN's clipping) and the spectral
        # norms' power iteration, recorded by the scope.
        _, after = self._run(state, model.after_discriminator_update)
        return {**state, "d_trainable": after["d_trainable"],
                "d_non_trainable": after["d_non_trainable"]}, logs

    def _generator_step(self, state, real, labels, latent):
        model = self.model
        state, logs = self._update(state, "g", lambda: model.generator_loss(
            real, model.generate(latent, labels, training=True), labels))
        # The weight average follows the updated generator (update t = the new count), and
        # whatever else the family does after a generator update (ProGAN's growth state).
        step = state["g_optimizer"][self._g_iterations_index]
        _, after = self._run(state, lambda: model.after_generator_update(step))
        state = {**state, **{k: after[k] for k in STATE_GROUPS if k not in TRAINABLE}}
        return state, logs

    def _train_step(self, state, real, labels, latents, alphas):
        """``n_critic`` discriminator updates, then one generator update, as
        ``BaseGAN.train_step`` does; ``latents`` holds ``n_critic + 1`` latent batches (the
        last for the generator), ``alphas`` ``n_critic`` batches of interpolation weights
        (B, 1, 1, 1), used on the updates the family ``penalizes``."""
        real = real.astype("float32")
        labels = labels.astype("int32")
        logs: dict[str, Any] = {}
        # Unrolled (n_critic is small and static): XLA schedules the step as one program.
        for update in range(self.model.n_critic):
            alpha = alphas[update] if self.model.penalizes(update) else None
            state, update_logs = self._discriminator_step(state, real, labels, latents[update],
                                                          alpha)
            logs.update(update_logs)
        state, generator_logs = self._generator_step(state, real, labels,
                                                     latents[self.model.n_critic])
        return state, self.model.finish_logs({**logs, **generator_logs})

    def _draw_noise(self, key, step, batch: int, extra):
        """Step ``step``'s latent batches, interpolation weights and DiffAugment seed state.

        The step's own key, from the seed's key and the step number: not a key carried from
        step to step, so the weights and optimizer slots alone say what step i draws."""
        latent_key, alpha_key, extra_key = jax.random.split(jax.random.fold_in(key, step), 3)
        n_critic = self.model.n_critic
        latents = jax.random.normal(latent_key, (n_critic + 1, batch, self.model.latent_dim))
        alphas = jax.random.uniform(alpha_key, (n_critic, batch, 1, 1, 1), minval=0.0, maxval=1.0)
        # DiffAugment's seed-generator state (unsigned ints), reseeded for this step.
        extra = [jax.random.bits(k, value.shape, value.dtype) for k, value in
                 zip(jax.random.split(extra_key, max(len(extra), 1)), extra)]
        return latents, alphas, extra

    # ## Training

    def train_step(self, real, labels, latents=None, alphas=None) -> dict[str, jax.Array]:
        """One generator step (with its ``n_critic`` discriminator steps) on one batch.

        ``real``: (B, H, W, C) images in [-1, 1] (joint image+mask for the joint models);
        ``labels``: (B,) ints (ignored by the unconditional families).
        ``latents`` (n_critic + 1, B, latent_dim) and ``alphas`` (n_critic, B, 1, 1, 1): the
        noise to use instead of drawing it (tests compare backends with them); give both or
        neither. Returns the step's losses as JAX scalars (still on the device: converting
        them waits for the step, which a training loop should do only now and then).
        """
        if (latents is None) != (alphas is None):
            raise ValueError("give both latents and alphas, or neither")
        if latents is None:
            step = self.state["g_optimizer"][self._g_iterations_index]
            latents, alphas, extra = self._draw(self.state["key"], step, int(real.shape[0]),
                                                self.state["extra"])
            self.state = {**self.state, "extra": extra}
        self.state, logs = self._step(self.state, real, labels, latents, alphas)
        return logs

    def fit(self, batches: Iterable, steps: int, progress: bool = True) -> dict[str, list[float]]:
        """Train for ``steps`` generator steps on ``batches`` of (images, labels).

        ``batches`` is any iterable of NumPy/JAX arrays, e.g. a ``tf.data`` pipeline's
        ``as_numpy_iterator()``; it is cycled when it runs out. Returns the per-step losses.
        """
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        history: dict[str, list] = {name: [] for name in self.METRIC_NAMES}
        iterator = iter(batches)
        with progress_bar(total=steps, desc=f"{self.model.name} (jax)", unit="step",
                          disable=not progress) as bar:
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
        """Write ``generator.weights.h5`` and ``critic.weights.h5`` (the discriminator's)
        into ``directory`` (both, or neither if something fails), and
        ``generator_ema.weights.h5`` when the model keeps a weight average. They load into a
        TensorFlow-backend model."""
        self.sync_to_model()
        directory = Path(directory)
        with atomic_directory(directory, overwrite=overwrite) as tmp:
            self.model.generator.save_weights(tmp / GENERATOR_WEIGHTS)
            self.model.discriminator.save_weights(tmp / CRITIC_WEIGHTS)
            if self.model.ema_generator is not None:
                self.model.ema_generator.save_weights(tmp / EMA_WEIGHTS)
        return directory

    def load_weights(self, directory: str | os.PathLike) -> None:
        """Load weights written by ``save_weights`` (on either backend) and train from them."""
        directory = Path(directory)
        for name in (GENERATOR_WEIGHTS, CRITIC_WEIGHTS):
            if not (directory / name).is_file():
                raise DataError(directory / name, "missing: expected the generator and critic "
                                "weights written by save_weights (or by the TensorFlow model's "
                                "generator/discriminator .save_weights)")
        try:
            self.model.generator.load_weights(directory / GENERATOR_WEIGHTS)
            self.model.discriminator.load_weights(directory / CRITIC_WEIGHTS)
            if self.model.ema_generator is not None:
                if (directory / EMA_WEIGHTS).is_file():
                    self.model.ema_generator.load_weights(directory / EMA_WEIGHTS)
                else:   # weights saved without an average: start it from the generator
                    self.model.reset_ema()
        except ValueError as exc:
            raise DataError(directory, f"weights do not fit this model ({exc})") from None
        self.reload_from_model()
