"""
Title: Training any GAN on JAX, into the same run directory
Description: ``mrigan-tf train --model MODEL`` under ``KERAS_BACKEND=jax``, no TensorFlow needed.

## Why a second runner

``mrigan_tf.training.runner`` trains with ``fit()``, ``tf.data`` and ``tf.GradientTape``:
TensorFlow all the way. A GPU machine (or a Colab session) with JAX and Keras but no
TensorFlow can still train every GAN family with the jit-compiled JAX step
(``mrigan_tf.training.jax_trainer.JaxGANTrainer``, which calls the family's own loss
methods). This module runs that step around a loop of epochs and writes the run directory
the rest of the project reads:

    config.json        the TrainConfig fields under "train", plus "backend": "jax"
    backup/latest.weights.h5   the GAN's weights with both optimizers' slots and counters,
                       rewritten atomically after every epoch
    samples/           a fixed-noise sample grid per epoch (PNG)
    history.csv        the epoch means of the family's logged losses (METRIC_NAMES)
    loss_curves.png    the same, drawn
    model.keras        the trained, compiled model (written when training completes)
    training_summary.json

A ``.keras`` file does not depend on the backend that wrote it, so ``mrigan-tf generate --run
DIR`` and ``runner.load_run`` read a JAX run on TensorFlow as they read their own. The
file names and the writers are ``mrigan_tf.training.run_directory``'s, as for every runner.

## Resuming

The backup is the whole state of the run: the weights, both optimizers' slots and iteration
counts, and the augmentation seed. Everything else follows from it:

* the epoch to continue from is ``generator steps / steps_per_epoch``;
* the batches of epoch ``e`` are a permutation of the training split drawn from
  ``(seed, e)``, not from a stream that ran since the start;
* the trainer draws step ``i``'s noise from ``fold_in(key(seed), i)``.

So ``--resume`` after an interruption ends exactly where an uninterrupted run ends (to
round-off), and the backup is a single file renamed into place: a kill at any moment leaves
the previous epoch's backup or the new one, never half of each. History rows of epochs the
backup does not hold (written just before a kill) are dropped on resume and trained again.

## What runs only on TensorFlow

tf.distribute strategies, mixed precision and ``--steps-per-execution`` are features of
the TensorFlow path; asked for here, they stop the command with a
one-line error naming the option. The JAX step is always compiled (``jax.jit``).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import keras
import numpy as np

from mrigan_tf.data.contract import PreparedDataset, image_channels, load_dataset
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.progress import progress_bar
from mrigan_tf.training.callbacks import LossHistoryPlot, SampleGridCallback
from mrigan_tf.training.run_directory import (LOSS_CURVES_FILE, SAMPLES_DIR, backup_path,
                                              check_run_dir, plan_epochs, read_history,
                                              save_backup, save_run_model, write_history,
                                              write_run_config, write_summary)
from mrigan_tf.data.layout import condition_map
from mrigan_tf.training.runner import (TrainConfig, add_layout_options, build_model,
                                       set_layout_bank)

BACKEND = "jax"


def check_supported(config: TrainConfig) -> None:
    """A one-line ``MriganError`` naming the first option the JAX path cannot honour."""
    on_tensorflow = "train with the TensorFlow backend (unset KERAS_BACKEND) for it"
    if config.strategy != "default":
        raise MriganError(f"--strategy {config.strategy}: tf.distribute is TensorFlow's; the "
                          f"JAX runner trains on one device; {on_tensorflow}")
    if config.precision != "float32":
        raise MriganError(f"--mixed-precision ({config.precision}): the JAX step trains in "
                          f"float32; {on_tensorflow}")
    if config.steps_per_execution != 1:
        raise MriganError(f"--steps-per-execution {config.steps_per_execution}: the JAX runner "
                          f"runs one compiled step per call; {on_tensorflow}")
    if config.jit_compile is False:
        raise MriganError("--no-jit: the JAX step is always compiled with jax.jit; leave "
                          "--no-jit out under KERAS_BACKEND=jax")
    if config.conditional and config.joint is False:
        raise MriganError(f"joint=False: the {config.model} trains on image+mask pairs")


# ## The run directory

def _write_config(run_dir: Path, config: TrainConfig, image_shape, dataset: PreparedDataset,
                  steps_per_epoch: int, epochs: int) -> None:
    import jax

    device = jax.devices()[0]
    write_run_config(run_dir, config, image_shape, dataset, steps_per_epoch, epochs,
                     distribution={"strategy": "default", "replicas": 1,
                                   "device": f"{device.platform}: {device.device_kind}"},
                     backend={"backend": BACKEND, "jax_version": jax.__version__})


# ## The data: NumPy batches, a fresh permutation per epoch

def epoch_batches(n: int, batch_size: int, steps: int, seed: int, epoch: int) -> np.ndarray:
    """Row indices of epoch ``epoch``'s batches, shape (steps, batch_size).

    A permutation of the ``n`` training slices drawn from ``(seed, epoch)`` (more permutations
    are appended when an epoch is longer than one pass), so a resumed run sees the batches the
    uninterrupted run saw. Every batch is full: one compiled step shape.
    """
    rng = np.random.default_rng([seed, epoch])
    passes = math.ceil(steps * batch_size / n)
    order = np.concatenate([rng.permutation(n) for _ in range(passes)])
    return order[:steps * batch_size].reshape(steps, batch_size)


# ## Training

def build_trainer(config: TrainConfig, image_shape: tuple[int, int, int], num_classes: int):
    """A fresh model of ``config.model``, built and compiled as the TensorFlow runner builds it
    (so that checkpoints and ``model.keras`` carry both optimizers), and the
    ``JaxGANTrainer`` that trains it."""
    from mrigan_tf.training.jax_trainer import JaxGANTrainer   # needs the JAX backend

    model = build_model(config, image_shape, num_classes)
    return JaxGANTrainer(model, model.d_optimizer, model.g_optimizer, seed=config.seed)


def train_gan_jax(config: TrainConfig, run_dir: str | os.PathLike, resume: bool = False,
                  progress: bool = True):
    """Train the GAN of ``config`` with the JAX step; returns ``(model, history)``.

    ``history`` holds this call's epoch means (name -> list), like ``fit()``'s. ``resume``
    continues the run in ``run_dir`` from its last finished epoch; without it, ``run_dir``
    must not exist yet (or be empty). Needs ``KERAS_BACKEND=jax``.
    """
    if keras.backend.backend() != BACKEND:
        raise MriganError(f"the JAX runner needs KERAS_BACKEND=jax; Keras runs on "
                          f"{keras.backend.backend()!r}")
    check_supported(config)
    run_dir = Path(run_dir)
    dataset = load_dataset(config.data)
    if config.layout_conditional:   # its layout classes are part of the run's config
        add_layout_options(config, dataset)
    check_run_dir(run_dir, config, resume)

    train_split = dataset.select("train")
    steps_per_epoch, epochs = plan_epochs(config, len(train_split))
    # The joint tensor: the image channels (one per modality) and 2*mask-1; or the images.
    images = (train_split.joint() if config.uses_joint else train_split.images).astype(np.float32)
    labels = train_split.labels.astype(np.int32)
    if config.layout_conditional:   # SPADE: the layout and the class, one int per pixel
        labels = condition_map(train_split.layout, labels, len(train_split.layout_classes))
    image_shape = (dataset.image_size, dataset.image_size,
                   image_channels(dataset.meta) + (1 if config.uses_joint else 0))

    keras.utils.set_random_seed(config.seed)   # the initial weights
    trainer = build_trainer(config, image_shape, dataset.num_classes)
    model = trainer.model
    set_layout_bank(model, train_split, config.samples)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_config(run_dir, config, image_shape, dataset, steps_per_epoch, epochs)

    backup = backup_path(run_dir)
    if resume and backup.is_file():
        try:
            model.load_weights(backup)
        except ValueError as exc:
            raise DataError(backup, f"the backup does not fit this model ({exc})") from None
        trainer.reload_from_model()
    done_epochs, partial = divmod(trainer.steps_done, steps_per_epoch)
    if partial:
        raise DataError(backup, f"holds {trainer.steps_done} steps, not a whole number of "
                        f"epochs of {steps_per_epoch} steps; was the dataset changed?")
    history_rows = read_history(run_dir, epochs_kept=done_epochs)

    grid = SampleGridCallback(run_dir / SAMPLES_DIR, n=config.samples, seed=config.seed)
    grid.set_model(model)
    grid.set_params({"epochs": epochs})
    curves = LossHistoryPlot(run_dir / LOSS_CURVES_FILE, history={
        name: [float(row[name]) for row in history_rows] for name in trainer.METRIC_NAMES})

    history: dict[str, list[float]] = {name: [] for name in trainer.METRIC_NAMES}
    t0 = time.perf_counter()
    with progress_bar(total=(epochs - done_epochs) * steps_per_epoch, desc=f"{config.model} (jax)",
                      unit="step", disable=not progress) as bar:
        for epoch in range(done_epochs, epochs):
            step_logs = []
            for rows in epoch_batches(len(labels), config.batch_size, steps_per_epoch,
                                      config.seed, epoch):
                step_logs.append(trainer.train_step(images[rows], labels[rows]))
                bar.update(1)
            # One wait for the device per epoch, not one per step.
            logs = {name: float(np.mean([np.asarray(s[name]) for s in step_logs]))
                    for name in trainer.METRIC_NAMES}
            bar.set_postfix({k: round(v, 3) for k, v in logs.items()}, refresh=False)
            for name, value in logs.items():
                history[name].append(value)
            trainer.sync_to_model()
            # The history row, grid and curves first, the backup last: a kill in between
            # leaves a row the backup does not hold, which a resume drops and trains again.
            history_rows.append({"epoch": epoch, **logs})
            write_history(run_dir, history_rows)
            grid.on_epoch_end(epoch)
            curves.on_epoch_end(epoch, logs)
            save_backup(run_dir, model)
    elapsed = time.perf_counter() - t0

    trainer.sync_to_model()
    save_run_model(run_dir, model)
    critic_steps = int(keras.ops.convert_to_numpy(model.d_optimizer.iterations))
    write_summary(run_dir, {"seconds": round(elapsed, 1), "epochs": epochs, "backend": BACKEND,
                            "generator_steps": trainer.steps_done, "critic_steps": critic_steps})
    return model, history
