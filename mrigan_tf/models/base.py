"""
Title: What every GAN has in common
Description: two players, two optimizers, loss trackers, fixed-noise samples, a config.

A generative adversarial network (Goodfellow et al., 2014) is a game between two networks.
The generator ``G`` maps latent noise ``z ~ N(0, I)`` to an image; the discriminator ``D``
(a *critic* in the Wasserstein GAN) scores images as real or generated. Each player has its
own loss and its own optimizer, and training alternates their updates:

    max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]          (the discriminator)
    min_G  E_z[log(1 - D(G(z)))]                           (the generator)

The families differ only in the losses and in the players' architectures, so everything
else lives here, once:

* ``compile(d_optimizer, g_optimizer, jit_compile=...)`` takes one optimizer per player and
  *builds* both, so that ``BackupAndRestore`` and ``.weights.h5`` / ``.keras`` checkpoints find
  their slot variables and restore them instead of silently starting Adam from scratch;
* ``keras.metrics.Mean`` trackers, one per logged quantity, exposed through ``metrics`` so
  that ``fit()`` resets them each epoch and the logs (and TensorBoard) get scalars;
* a ``keras.random.SeedGenerator`` for the noise drawn inside ``train_step``: it is a model
  variable, so the noise stream works under ``tf.function`` and XLA and is checkpointed;
* ``sample(n, seed)``: images from a fixed, NumPy-drawn latent batch (the same noise on every
  backend), which is how sample grids stay comparable from epoch to epoch;
* ``get_config`` / ``from_config`` with the players serialized by
  ``keras.saving.serialize_keras_object``, so a ``.keras`` file round trips;
* ``call(latent)`` runs the generator, so ``model(z)`` and ``model.predict(z)`` work.

Subclasses set ``METRIC_NAMES`` and write ``train_step`` with ``tf.GradientTape``.

TensorFlow is imported the first time a TensorFlow step (or helper) uses ``tf``, not when
this module is: the players and ``sample`` are plain Keras, so the Keras-JAX path
(``KERAS_BACKEND=jax``, ``mrigan_tf.training.jax_cwgan_gp``) builds and samples these models
on a machine without TensorFlow.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from mrigan_tf.lazy_tensorflow import tf


#: Batch norm with global-batch statistics under ``tf.distribute`` (what makes two replicas
#: compute what one device does). Keras supports it on the TensorFlow backend only; the
#: weights are the same either way, so files load in both backends.
SYNCHRONIZED_BATCH_NORM = keras.backend.backend() == "tensorflow"


def latent_noise(n: int, latent_dim: int, seed: int = 0) -> np.ndarray:
    """A fixed batch of standard-normal latent vectors, shape (n, latent_dim), float32.

    Drawn with NumPy rather than ``keras.random`` so that the same seed gives the same noise
    on every backend and every Keras version: a grid saved today compares with one saved
    after a month of training.
    """
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, latent_dim)).astype(np.float32)


def check_image_shape(image_shape: tuple[int, ...], min_size: int = 4) -> tuple[int, int, int]:
    """(H, W, C) of a square image whose side is a power of two, or a ValueError saying why."""
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (height, width, channels), got {image_shape!r}")
    height, width, channels = (int(s) for s in image_shape)
    if height != width:
        raise ValueError(f"the GANs here generate square images; got {height}x{width}")
    if height < min_size or height & (height - 1):
        raise ValueError(f"image size must be a power of two >= {min_size} (16, 32, 64, 128, "
                         f"256), got {height}")
    if channels < 1:
        raise ValueError(f"image_shape needs at least one channel, got {image_shape!r}")
    return height, width, channels


def real_images(data: Any) -> tf.Tensor:
    """The images of a batch: ``fit`` hands over ``(images, labels)``; labels are ignored."""
    if isinstance(data, (tuple, list)):
        return data[0]
    return data


def num_replicas() -> int:
    """How many replicas share the global batch (1 outside ``tf.distribute``)."""
    return int(tf.distribute.get_strategy().num_replicas_in_sync)


def replica_rows(values: tf.Tensor, local_batch: int | tf.Tensor) -> tf.Tensor:
    """This replica's ``local_batch`` rows of a tensor drawn for the global batch.

    Under ``tf.distribute`` every replica runs the same ``train_step`` with the same,
    mirrored seed state, so noise drawn for the local batch would be *the same noise on
    every replica*. Drawing it for the global batch (``local_batch * num_replicas``
    rows) and keeping the rows of this replica's slice gives each replica its own noise,
    and exactly the noise one device would draw for the whole batch: one step on several
    replicas then equals one step on one device. Outside a strategy it returns ``values``.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return values
    start = tf.cast(context.replica_id_in_sync_group, tf.int32) * tf.cast(local_batch, tf.int32)
    return values[start:start + local_batch]


def gather_replicas(values: tf.Tensor) -> tf.Tensor:
    """The global batch, gathered from every replica's slice (differentiable)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return values
    # Each replica puts its slice at its place in a zero global batch, and a sum across
    # replicas assembles the batch. (ReplicaContext.all_gather would say it directly, but
    # fails inside MultiWorkerMirroredStrategy's train step in TF 2.21.) The sum's gradient
    # is a sum too, so each replica's slice gets back exactly the gradient of its rows.
    replicas = context.num_replicas_in_sync
    replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
    local = tf.shape(values)[0]
    padding = [[replica * local, (replicas - 1 - replica) * local]] + [[0, 0]] * (values.shape.rank - 1)
    gathered = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.pad(values, padding))
    # The padding's size is a tensor, so the static batch size is lost; the layers
    # downstream need the other sizes known.
    return tf.reshape(gathered, [-1, *values.shape[1:]])


def _across_workers() -> bool:
    """Whether training runs under a MultiWorkerMirroredStrategy with several workers."""
    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    in_multi_worker_mode = getattr(strategy.extended, "_in_multi_worker_mode", None)
    return bool(in_multi_worker_mode()) if in_multi_worker_mode else True


def dense_gradients(grads: list) -> list:
    """Gradients with every ``tf.IndexedSlices`` (an embedding's) made a dense tensor.

    Keras' TF Adam squares each *occurrence* of a row of a sparse gradient separately
    instead of summing the occurrences first, so a class embedding looked up k times per
    batch moves about sqrt(k) times too far (measured: 8e-4 instead of 1e-4 at k = 64).
    Dense gradients give textbook Adam, the same as the JAX step.
    """
    return [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]


def per_replica(loss: tf.Tensor) -> tf.Tensor:
    """A loss ready for gradients under ``tf.distribute``.

    Each replica computes the mean over its own slice of the batch, and the optimizer *sums*
    the replicas' gradients, so each replica's loss is divided by the number of replicas to
    get the gradient of the global mean. Under the default strategy this divides by 1.
    Call it inside the ``GradientTape`` block: a division outside it is not recorded, and
    the tape then finds no path from the loss to any weight.
    """
    return loss / tf.distribute.get_strategy().num_replicas_in_sync


class BaseGAN(keras.Model):
    """Two players and their bookkeeping; subclasses add the losses and ``train_step``.

    Args:
        generator: a Keras model from latent vectors (B, latent_dim) to images (B, H, W, C).
        discriminator: a Keras model from images to one unbounded score (logit) per image.
        latent_dim: size of the latent vector.
        seed: seeds the noise drawn in ``train_step`` (``None``: a random seed).
    """

    #: The scalars ``train_step`` logs, in order; each gets a ``keras.metrics.Mean``.
    METRIC_NAMES: tuple[str, ...] = ("d_loss", "g_loss")

    def __init__(self, generator: keras.Model, discriminator: keras.Model, latent_dim: int,
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.METRIC_NAMES}
        self.d_optimizer: keras.optimizers.Optimizer | None = None
        self.g_optimizer: keras.optimizers.Optimizer | None = None
        # Both players are built models, so the GAN is too. Saying so lets BackupAndRestore
        # (which refuses unbuilt models) and weight loading work before the first step.
        self.built = True

    # ## The two optimizers

    @staticmethod
    def default_optimizers() -> tuple[keras.optimizers.Optimizer, keras.optimizers.Optimizer]:
        """(d_optimizer, g_optimizer) the family's paper trains with; subclasses override."""
        return (keras.optimizers.Adam(2e-4, beta_1=0.5),
                keras.optimizers.Adam(2e-4, beta_1=0.5))

    def compile(self, d_optimizer: keras.optimizers.Optimizer | None = None,
                g_optimizer: keras.optimizers.Optimizer | None = None, *,
                jit_compile: bool | None = None, run_eagerly: bool = False,
                steps_per_execution: int = 1, loss_scale: bool | None = None) -> None:
        """Give each player its optimizer (the family's defaults where ``None``).

        ``jit_compile``: XLA-compile the train step. Keras always gets an explicit bool,
        never ``"auto"`` (which switches XLA off on CPU without a word); ``model.jit_compile``
        says what was chosen. ``None`` means on when a GPU is visible, off otherwise: XLA
        fuses the many small ops of a GAN step on a GPU, but its CPU convolutions are slow
        (``benchmarks/gan_step.py`` measured DCGAN 1.4x and WGAN 2x slower per step on CPU).

        ``loss_scale``: wrap *both* optimizers in ``keras.optimizers.LossScaleOptimizer``
        (Keras wraps only ``model.optimizer``, which a GAN does not use). ``None`` wraps them
        when a player computes in float16 (built under ``mixed_float16``); see
        ``mrigan_tf.training.mixed_precision``.
        """
        from mrigan_tf.training.mixed_precision import computes_in_float16, loss_scaled

        if jit_compile is None:
            jit_compile = self.default_jit_compile()
        default_d, default_g = self.default_optimizers()
        self.d_optimizer = default_d if d_optimizer is None else d_optimizer
        self.g_optimizer = default_g if g_optimizer is None else g_optimizer
        if self.d_optimizer is self.g_optimizer:
            raise ValueError("the discriminator and the generator need two optimizer "
                             "instances: one optimizer's slots cannot serve both players")
        if loss_scale is None:
            loss_scale = computes_in_float16(self.generator, self.discriminator)
        if loss_scale:
            self.d_optimizer = loss_scaled(self.d_optimizer)
            self.g_optimizer = loss_scaled(self.g_optimizer)
        # No Keras-level optimizer: each player has its own, and fit() would otherwise build
        # an unused RMSprop over both players' variables.
        super().compile(optimizer=None, jit_compile=bool(jit_compile), run_eagerly=run_eagerly,
                        steps_per_execution=steps_per_execution)
        # Slot variables must exist before a checkpoint is restored, or the restore
        # skips them and training resumes with fresh Adam/RMSprop statistics.
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under a tf.distribute strategy, fit() first pulls a batch and reduces it across
        # replicas to build the model symbolically. With MultiWorkerMirroredStrategy that
        # reduction fails on the PerReplica batch (keras-team/keras#20585), and a GAN has
        # nothing to build: its players are built models, and it compiles no loss or metric.
        if all(layer.built for layer in self._flatten_layers()):
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    @staticmethod
    def default_jit_compile() -> bool:
        """What ``compile(jit_compile=None)`` chooses: XLA when a GPU is visible."""
        if keras.backend.backend() == "jax":
            import jax

            return jax.default_backend() != "cpu"
        return bool(tf.config.list_physical_devices("GPU"))

    def get_compile_config(self) -> dict[str, Any] | None:
        if self.d_optimizer is None:
            return None
        return {
            "d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
            "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer),
            "jit_compile": bool(self.jit_compile),
        }

    def compile_from_config(self, config: dict[str, Any]) -> None:
        self.compile(d_optimizer=keras.saving.deserialize_keras_object(config["d_optimizer"]),
                     g_optimizer=keras.saving.deserialize_keras_object(config["g_optimizer"]),
                     jit_compile=config["jit_compile"])

    # ## Loss trackers

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        # Listed here, fit() resets them at the start of every epoch.
        return list(self.trackers.values())

    def record(self, **values: tf.Tensor) -> dict[str, tf.Tensor]:
        """Update the trackers named in ``values``; return every tracker's running mean."""
        for name, value in values.items():
            self.trackers[name].update_state(value)
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        if _across_workers():
            # Keras averages a multi-worker step's logs with reduce(MEAN, axis=0), which
            # fails on scalars (keras-team/keras#20585); shape (1,) reduces to a scalar.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    # ## Noise and samples

    def draw_latent(self, batch_size: int | tf.Tensor) -> tf.Tensor:
        """Fresh latent noise for a training step, from the model's seed generator.

        ``batch_size`` is this replica's batch; the noise is drawn for the global batch and
        this replica keeps its rows (``replica_rows``), so replicas never share noise.
        """
        latent = keras.random.normal((batch_size * num_replicas(), self.latent_dim),
                                     seed=self.seed_generator)
        return replica_rows(latent, batch_size)

    @staticmethod
    def scale_loss(loss: tf.Tensor, optimizer: keras.optimizers.Optimizer) -> tf.Tensor:
        """``loss`` made ready for ``tape.gradient``: divided among the replicas
        (``per_replica``) and multiplied by ``optimizer``'s loss scale (mixed precision;
        ``optimizer.apply_gradients`` divides it out again). Call it inside the tape."""
        return optimizer.scale_loss(per_replica(loss))

    def call(self, latent, training: bool = False):
        return self.generator(latent, training=training)

    def sample(self, n: int = 16, seed: int = 0, latent: np.ndarray | None = None,
               batch_size: int = 256) -> np.ndarray:
        """``n`` generated images (inference mode) for the latent batch of ``seed``.

        The same ``seed`` gives the same latent batch, so it gives the same images as long as
        the weights do not change: the basis of fixed-noise grids and of save/load checks.
        Pass ``latent`` to use your own noise instead.
        """
        if latent is None:
            latent = latent_noise(n, self.latent_dim, seed)
        chunks = [keras.ops.convert_to_numpy(self.generator(latent[i:i + batch_size],
                                                            training=False))
                  for i in range(0, len(latent), batch_size)]
        return np.concatenate(chunks, axis=0)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the generated images."""
        return tuple(int(s) for s in self.generator.output_shape[1:])

    # ## Serialization

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects=None):
        config = dict(config)
        for player in ("generator", "discriminator"):
            config[player] = keras.saving.deserialize_keras_object(
                config[player], custom_objects=custom_objects)
        return cls(**config)
