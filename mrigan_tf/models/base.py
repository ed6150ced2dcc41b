"""
Title: What every GAN has in common
Description: two players, two optimizers, the training step's shape, loss trackers, samples.

A generative adversarial network (Goodfellow et al., 2014) is a game between two networks.
The generator ``G`` maps latent noise ``z ~ N(0, I)`` to an image; the discriminator ``D``
(a *critic* in the Wasserstein GAN) scores images as real or generated. Each player has its
own loss and its own optimizer, and training alternates their updates:

    max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]          (the discriminator)
    min_G  E_z[log(1 - D(G(z)))]                           (the generator)

The families differ only in their losses and in the players' architectures, so a family
writes just those: ``discriminator_loss(real, fake, labels, alpha)`` and
``generator_loss(real, fake, labels)``, in ``keras.ops`` (``mrigan_tf.models.losses``). The
step that calls them has the same shape for all of them, and lives here, once:

    repeat n_critic times:   z ~ N(0, I);  fake = G(z)          (a constant for D)
                             loss_D = discriminator_loss(real, fake)   -> update D
    z ~ N(0, I);  loss_G = generator_loss(real, G(z))                  -> update G

``train_step`` runs it with ``tf.GradientTape``; ``mrigan_tf.training.jax_trainer`` runs the
*same two loss methods* under ``jax.value_and_grad``. What differs between the backends is the
gradient machinery only, in three hooks here: ``apply_gradients`` (loss scaling, replicas,
dense gradients), ``input_gradients`` (the gradient of the scores w.r.t. the input, for the
gradient penalty and R1) and the noise (``draw_latent``, ``draw_interpolation_weights``).

Also here, once:

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

And the small-data tricks every family can switch on (both backends, written once here):

* **generator weight EMA** (``ema_decay``; Karras et al. 2018, Yazici et al. 2019): a copy of
  the generator, ``ema_generator``, whose weights follow an exponential moving average of the
  trained generator's after every generator update,

      decay_t = min(ema_decay, (1 + t) / (10 + t)),   theta_ema <- decay_t theta_ema + (1 - decay_t) theta

  with ``t`` the number of generator updates so far (the ramp lets a short run's average
  forget the random initialization); batch-norm statistics are copied, not averaged.
  ``sample``, ``call`` (hence ``predict``), the sample grids and ``mrigan-tf generate``
  use it (``sampling_generator``); the training step uses the trained generator. Its
  weights are model variables, so backups and ``model.keras`` hold them and ``--resume``
  restores them;
* **R1** (``r1_weight``, gamma; Mescheder et al. 2018): ``gamma * 1/2 E||grad_x D(x)||^2`` on
  real samples, added to the discriminator's loss by ``regularized_discriminator_loss``
  (which both backends' steps call), logged as ``r1``. It is taken at the real batch as
  given (before a family's DiffAugment), from the gradient of the *summed* scores, so it is
  per-sample only for a discriminator that scores each sample on its own (no batch norm:
  the TensorFlow tape's extra training-mode call also moves batch-norm statistics, the JAX
  step's does not; minibatch stddev adds its cross-sample terms, as in ProGAN);
* after every discriminator update, the spectral-normalized layers of the discriminator
  (``mrigan_tf.models.blocks.SpectralNorm``) advance their power iteration
  (``after_discriminator_update``), after the family's ``constrain_discriminator``.

TensorFlow is imported the first time a TensorFlow step (or helper) uses ``tf``, not when
this module is: the players, the losses and ``sample`` are plain Keras, so the Keras-JAX path
(``KERAS_BACKEND=jax``) builds, trains and samples these models on a machine without
TensorFlow.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from mrigan_tf.lazy_tensorflow import tf
from mrigan_tf.models.blocks import update_spectral_norms
from mrigan_tf.models.losses import r1_penalty
from mrigan_tf.models.mixed_precision import computes_in_float16, current_loss_scale, loss_scaled


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


def unpack_batch(data: Any) -> tuple[Any, Any]:
    """``(images, labels)`` of a batch: ``fit`` hands over ``(images, labels)``; a batch of
    images alone has ``None`` labels (the unconditional families ignore them anyway)."""
    if isinstance(data, (tuple, list)):
        return data[0], (data[1] if len(data) > 1 else None)
    return data, None


def num_replicas() -> int:
    """How many replicas share the global batch (1 outside ``tf.distribute``; always 1 on
    backends other than TensorFlow, which train on one device here)."""
    if keras.backend.backend() != "tensorflow":
        return 1
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
    if keras.backend.backend() != "tensorflow":
        return False
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
    """Two players, their bookkeeping and the training step; subclasses add the losses.

    Args:
        generator: a Keras model from latent vectors (B, latent_dim) to images (B, H, W, C).
        discriminator: a Keras model from images to one unbounded score (logit) per image.
        latent_dim: size of the latent vector.
        seed: seeds the noise drawn in ``train_step`` (``None``: a random seed).
        ema_decay: the generator EMA's decay (e.g. 0.999); 0: no EMA.
        r1_weight: gamma of the R1 penalty on real samples; 0: none.
    """

    #: The scalars ``train_step`` logs, in order; each gets a ``keras.metrics.Mean``.
    METRIC_NAMES: tuple[str, ...] = ("d_loss", "g_loss")

    def __init__(self, generator: keras.Model, discriminator: keras.Model, latent_dim: int,
                 seed: int | None = None, ema_decay: float = 0.0, r1_weight: float = 0.0,
                 **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) (e.g. 0.999; 0 for no EMA), "
                             f"got {ema_decay}")
        if r1_weight < 0:
            raise ValueError(f"r1_weight must be >= 0, got {r1_weight}")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.seed = seed
        self.ema_decay = float(ema_decay)
        self.r1_weight = float(r1_weight)
        self.seed_generator = keras.random.SeedGenerator(seed)
        #: A DiffAugment layer applied before the discriminator (``augment``), or None.
        self.augmenter = None
        #: The generator's weight average (``ema_decay > 0``), or None.
        self.ema_generator = None
        if self.ema_decay:
            self.ema_generator = keras.models.clone_model(generator)
            self.ema_generator.name = f"{generator.name}_ema"
            self.ema_generator.trainable = False
            self.reset_ema()
        self.track_metrics(self.METRIC_NAMES)
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
        ``mrigan_tf.models.mixed_precision``.
        """
        if jit_compile is None:
            jit_compile = self.default_jit_compile()
        self.d_optimizer, self.g_optimizer = self.choose_optimizers(d_optimizer, g_optimizer)
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

    def choose_optimizers(self, d_optimizer=None, g_optimizer=None):
        """``(d_optimizer, g_optimizer)``: the ones given, the family's defaults for ``None``;
        two instances (one optimizer's slots cannot serve both players)."""
        default_d, default_g = self.default_optimizers()
        d_optimizer = default_d if d_optimizer is None else d_optimizer
        g_optimizer = default_g if g_optimizer is None else g_optimizer
        if d_optimizer is g_optimizer:
            raise ValueError("the discriminator and the generator need two optimizer "
                             "instances: one optimizer's slots cannot serve both players")
        return d_optimizer, g_optimizer

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

    def track_metrics(self, names) -> None:
        """One ``keras.metrics.Mean`` per logged name (``r1`` added when R1 is on)."""
        names = tuple(names) + (("r1",) if self.r1_weight and "r1" not in names else ())
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The names this model logs (its family's ``METRIC_NAMES`` and its options')."""
        return tuple(self.trackers)

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

    # ## What a family writes: its losses (keras.ops, both backends)

    #: Discriminator updates per generator update (the WGANs train their critic more).
    n_critic: int = 1

    def discriminator_loss(self, real, fake, labels, alpha) -> tuple[Any, dict[str, Any]]:
        """``(loss, logs)`` of one discriminator update; ``fake`` is a constant batch.

        ``alpha``: interpolation weights, shape (B, 1, 1, 1), on the updates where
        ``penalizes`` is true (the gradient penalty's), else ``None``.
        """
        raise NotImplementedError(f"{type(self).__name__} must define discriminator_loss")

    def generator_loss(self, real, fake, labels) -> tuple[Any, dict[str, Any]]:
        """``(loss, logs)`` of one generator update; ``fake = G(z)`` is differentiable."""
        raise NotImplementedError(f"{type(self).__name__} must define generator_loss")

    def penalizes(self, critic_update: int) -> bool:
        """Whether critic update ``critic_update`` (0 .. n_critic - 1) of a step draws
        interpolation weights for a gradient penalty. None here."""
        return False

    def constrain_discriminator(self) -> None:
        """Called after every discriminator update (the WGAN clips its weights here)."""

    def after_discriminator_update(self) -> None:
        """What follows every discriminator update on both backends: the family's
        ``constrain_discriminator``, then one power iteration of each spectral norm."""
        self.constrain_discriminator()
        update_spectral_norms(self.discriminator)

    def after_generator_update(self, step) -> None:
        """What follows every generator update on both backends, ``step`` the generator
        updates so far (1 after the first): the EMA update here; ProGAN also moves its
        growth schedule (resolution level, fade-in alpha) to the next step's."""
        self.update_ema(step)

    def regularized_discriminator_loss(self, real, fake, labels, alpha):
        """The family's ``discriminator_loss`` plus the R1 penalty on the real batch when
        ``r1_weight`` is set: what both backends' steps minimise for the discriminator."""
        loss, logs = self.discriminator_loss(real, fake, labels, alpha)
        if self.r1_weight:
            logs = {**logs, "r1": r1_penalty(self.input_gradients(real, labels))}
            loss = loss + self.r1_weight * logs["r1"]
        return loss, logs

    # ## The generator's weight average

    @property
    def sampling_generator(self) -> keras.Model:
        """The generator that samples: the EMA generator when there is one."""
        return self.generator if self.ema_generator is None else self.ema_generator

    def reset_ema(self) -> None:
        """Make the EMA generator a copy of the generator (at the start; after loading
        generator weights alone, e.g. a published generator)."""
        if self.ema_generator is not None:
            for average, weight in zip(self.ema_generator.weights, self.generator.weights,
                                       strict=True):
                average.assign(weight.value)

    def ema_decay_at(self, step):
        """``min(ema_decay, (1 + t) / (10 + t))`` at generator update ``t`` (a tensor)."""
        step = ops.cast(step, "float32")
        return ops.minimum(self.ema_decay, (1.0 + step) / (10.0 + step))

    def update_ema(self, step) -> None:
        """One EMA update after generator update ``step`` (1 after the first): trainable
        weights averaged, the rest (batch-norm statistics) copied."""
        if self.ema_generator is None:
            return
        decay = self.ema_decay_at(step)
        for average, weight in zip(self.ema_generator.weights, self.generator.weights,
                                   strict=True):
            if weight.trainable:
                value = ops.cast(weight.value, "float32")
                new = decay * ops.cast(average.value, "float32") + (1.0 - decay) * value
                average.assign(ops.cast(new, average.dtype))
            else:
                average.assign(weight.value)

    def finish_logs(self, logs: dict[str, Any]) -> dict[str, Any]:
        """The step's logs from the last discriminator update's and the generator's."""
        return logs

    # ## The players, as the losses call them

    def generate(self, latent, labels=None, training: bool = True):
        """``G(z)`` (the conditional families also pass the labels)."""
        return self.generator(latent, training=training)

    def discriminate(self, images, labels=None):
        """``D(x)`` in training mode, in float32 (a float16 batch mean overflows)."""
        return ops.cast(self.discriminator(images, training=True), "float32")

    def augment(self, images):
        """DiffAugment ``images`` when the family has an augmenter; else ``images``.

        Under ``tf.distribute``, each replica takes its share of the global batch's random
        transformations (the replicas' seed state is mirrored, so drawing per replica would
        transform every replica's slice alike).
        """
        if self.augmenter is None or not self.augmenter.policy:
            return images
        if num_replicas() == 1:
            return self.augmenter(images)
        return replica_rows(self.augmenter(gather_replicas(images)), tf.shape(images)[0])

    def input_gradients(self, images, labels=None):
        """The gradient of ``D``'s score w.r.t. each sample of ``images``, in float32.

        The critic scores each sample on its own, so the gradient of the *sum* of the
        scores gives every per-sample gradient at once. The gradient penalty and R1 are
        functions of it (``mrigan_tf.models.losses``). Under mixed precision the scores are
        multiplied by the loss scale before differentiating and the gradient divided by it
        after: it runs back through float16 layers like any other gradient.
        """
        if keras.backend.backend() == "jax":
            return _jax_input_gradients(self, images, labels)
        images = tf.cast(images, tf.float32)
        scale = current_loss_scale(self.d_optimizer) if self.d_optimizer is not None else None
        with tf.GradientTape() as tape:
            tape.watch(images)
            scores = self.discriminate(images, labels)
            if scale is not None:
                scores = scores * tf.cast(scale, tf.float32)
        grads = tf.cast(tape.gradient(scores, images), tf.float32)
        return grads if scale is None else grads / tf.cast(scale, tf.float32)

    # ## Noise

    def draw_latent(self, batch_size):
        """Fresh latent noise for a training step, from the model's seed generator.

        ``batch_size`` is this replica's batch; the noise is drawn for the global batch and
        this replica keeps its rows (``replica_rows``), so replicas never share noise.
        """
        latent = keras.random.normal((batch_size * num_replicas(), self.latent_dim),
                                     seed=self.seed_generator)
        return latent if num_replicas() == 1 else replica_rows(latent, batch_size)

    def draw_interpolation_weights(self, batch_size):
        """alpha ~ U[0, 1], one per sample, shape (batch_size, 1, 1, 1) (replica-aware)."""
        alpha = keras.random.uniform((batch_size * num_replicas(), 1, 1, 1), 0.0, 1.0,
                                     seed=self.seed_generator)
        return alpha if num_replicas() == 1 else replica_rows(alpha, batch_size)

    # ## The training step (TensorFlow): the same for every family

    def train_step(self, data):
        real, labels = unpack_batch(data)
        logs = {}
        # The critic updates are unrolled into one graph (n_critic is small): one compiled
        # function per training step. Each reuses the real batch with fresh noise.
        for update in range(self.n_critic):
            logs.update(self.discriminator_step(real, labels, self.penalizes(update)))
        logs.update(self.generator_step(real, labels))
        return self.record(**self.finish_logs(logs))

    def discriminator_step(self, real, labels, penalize: bool = False) -> dict[str, Any]:
        batch_size = ops.shape(real)[0]
        latent = self.draw_latent(batch_size)
        alpha = self.draw_interpolation_weights(batch_size) if penalize else None
        # The fake batch is a constant for the discriminator: no need to record G.
        fake = ops.stop_gradient(self.generate(latent, labels, training=True))
        with tf.GradientTape() as tape:
            loss, logs = self.regularized_discriminator_loss(real, fake, labels, alpha)
        self.apply_gradients(tape, loss, self.d_optimizer, self.discriminator.trainable_variables)
        self.after_discriminator_update()
        return logs

    def generator_step(self, real, labels) -> dict[str, Any]:
        latent = self.draw_latent(ops.shape(real)[0])
        with tf.GradientTape() as tape:
            fake = self.generate(latent, labels, training=True)
            loss, logs = self.generator_loss(real, fake, labels)
        self.apply_gradients(tape, loss, self.g_optimizer, self.generator.trainable_variables)
        self.after_generator_update(self.g_optimizer.iterations)
        return logs

    @staticmethod
    def apply_gradients(tape, loss, optimizer: keras.optimizers.Optimizer, variables) -> None:
        """One optimizer update of ``variables`` down the gradient of ``loss``.

        The bookkeeping the lesson does not teach: under ``tf.distribute`` the loss is
        divided among the replicas (``per_replica``: the optimizer sums their gradients);
        under mixed precision it is multiplied by the optimizer's loss scale (which
        ``apply_gradients`` divides out again); sparse gradients are made dense
        (``dense_gradients``). The tape is entered again so that it records the scaling.
        """
        with tape:
            scaled = optimizer.scale_loss(per_replica(loss))
        grads = dense_gradients(tape.gradient(scaled, variables))
        optimizer.apply_gradients(zip(grads, variables))

    # ## Samples

    def call(self, latent, training: bool = False):
        return (self.generator if training else self.sampling_generator)(latent, training=training)

    def sample(self, n: int = 16, seed: int = 0, latent: np.ndarray | None = None,
               batch_size: int = 256) -> np.ndarray:
        """``n`` generated images (inference mode) for the latent batch of ``seed``.

        The same ``seed`` gives the same latent batch, so it gives the same images as long as
        the weights do not change: the basis of fixed-noise grids and of save/load checks.
        Pass ``latent`` to use your own noise instead. Drawn by ``sampling_generator`` (the
        EMA generator when there is one).
        """
        if latent is None:
            latent = latent_noise(n, self.latent_dim, seed)
        chunks = [keras.ops.convert_to_numpy(self.sampling_generator(latent[i:i + batch_size],
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
            **({"ema_decay": self.ema_decay} if self.ema_decay else {}),
            **({"r1_weight": self.r1_weight} if self.r1_weight else {}),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects=None):
        config = dict(config)
        # The players, and a joint model's frozen mask-consistency U-Net when it has one.
        for player in ("generator", "discriminator", "mask_segmenter"):
            if config.get(player) is not None:
                config[player] = keras.saving.deserialize_keras_object(
                    config[player], custom_objects=custom_objects)
        return cls(**config)


def _jax_input_gradients(model: BaseGAN, images, labels):
    """``input_gradients`` on JAX: ``jax.grad`` of the summed scores w.r.t. the input.

    Inside the JAX trainer the weights are traced values held by a ``keras.StatelessScope``;
    the inner scope here maps the discriminator's variables to those same values, so that
    a state update inside the inner trace (batch-norm statistics) is dropped there instead
    of leaking a tracer into the outer step.
    """
    import jax
    import jax.numpy as jnp

    mapping = [(v, v.value) for v in model.discriminator.variables]

    def summed_scores(x):
        with keras.StatelessScope(state_mapping=mapping):
            return jnp.sum(model.discriminate(x, labels))

    return jax.grad(summed_scores)(ops.cast(images, "float32"))
