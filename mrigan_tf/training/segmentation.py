"""
Title: Training a U-Net segmenter on a prepared dataset, and scoring it per slice and per subject
Description: the downstream task, on real or synthetic data alike (the same dataset contract).

``mrigan-tf train --model unet`` and the notebooks call ``train_unet``. It trains
``mrigan_tf.models.unet`` with ``fit()`` on the *train* split of a dataset directory, watches
the *val* split, and writes a run directory laid out like a GAN run
(``mrigan_tf.training.run_directory``):

    config.json            what was trained, on what, with which settings
    backup/                Keras BackupAndRestore state (weights, optimizer, epoch counter)
    history.csv            loss, Dice, IoU (and their val_ versions), one row per epoch
    loss_curves.png        the same, drawn
    model.keras            the trained model (written when training completes)
    training_summary.json  time, epochs, optimizer steps, last logged values
    evaluation.json        ``evaluate_segmentation`` on the test split, when there is one

``fit_unet`` trains for a fixed number of steps. ``fit_unet_to_convergence`` (what TSTR uses)
trains until the val split's Dice stops improving instead: it scores the val split every
``eval_every`` steps, keeps the best weights in memory, stops after ``patience`` scores
without a new best or at ``max_steps``, and restores the best weights; it returns a
``ConvergenceReport`` (steps run, best step, best val Dice, the val Dice curve).

## Augmentation

A brain is roughly symmetric about its mid-sagittal plane, so a left-right flip of an axial
slice is another plausible slice, and the flipped mask is its right answer. Flips are drawn
per slice from a stateless generator keyed by (seed, batch number): the same seed gives the
same flips, whatever tf.data's parallelism does. Up-down flips are not used: an axial slice
upside down is not anatomy.

## Which numbers to report

The ``DiceCoefficient`` logged during training pools every pixel of the epoch (cheap, stable,
good to watch). ``evaluate_segmentation`` gives the numbers papers report:

* **per slice**, on the slices whose true mask is not empty: mean Dice and IoU. Each slice
  counts once, however small its tumor (the small ones are the hard ones);
* **false positives on healthy slices** (true mask empty): the share of them on which the
  model draws any tumor at all. A Dice over tumor slices alone cannot see these mistakes;
* **per subject (3-D)**: the counts of all of a subject's slices pooled, ``2|Y ^ P| / (|Y| + |P|)``
  over the subject's volume, averaged over the subjects that have a tumor. This is how
  BraTS scores a segmentation.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mrigan_tf.data.contract import PreparedDataset, load_dataset
from mrigan_tf.data.pipeline import make_dataset
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.models.unet import DICE_LOSSES, build_unet, compile_unet
from mrigan_tf.training.callbacks import LossHistoryPlot
from mrigan_tf.training.distribute import make_strategy
from mrigan_tf.training.run_directory import (BACKUP_DIR, CONFIG_FILE, HISTORY_FILE,
                                              LOSS_CURVES_FILE, check_run_dir, history_columns,
                                              load_run_model, plan_epochs, read_history,
                                              read_run_config, save_run_model, write_run_config,
                                              write_summary)

MODEL_NAME = "unet"
#: Keras' own fit() scales the compiled loss for the replicas of a MirroredStrategy.
UNET_STRATEGIES = ("default", "mirrored")
MAX_DEPTH = 4
MIN_BOTTLENECK = 4   # pixels: a coarser bottleneck sees nothing but a handful of numbers


# ## The configuration

@dataclasses.dataclass
class SegmentationConfig:
    """Everything that defines a U-Net training run; saved in ``config.json`` under "train".

    ``model_options`` go to ``build_unet`` (``depth``, ``width``, ``norm``, ``dropout``);
    ``depth`` defaults to the deepest U-Net (at most 4 poolings) whose bottleneck keeps at
    least 4 x 4 pixels: 4 at 64 px, 2 at 16 px.
    """

    data: str
    model: str = MODEL_NAME
    epochs: int | None = None
    steps: int | None = None
    steps_per_epoch: int | None = None     # default: one pass over the training split
    batch_size: int = 32
    seed: int = 0
    learning_rate: float = 1e-3
    jit_compile: bool | None = None        # None: XLA when a GPU is visible
    augment: bool = True                   # random left-right flips of image and mask together
    model_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    strategy: str = "default"              # default | mirrored (tf.distribute, several GPUs)
    dice: str = "batch"                    # the loss's soft Dice: over the batch, or per image

    #: Settings a resumed run may change.
    RESUMABLE_CHANGES = ("epochs", "steps", "strategy")

    def __post_init__(self) -> None:
        if self.model != MODEL_NAME:
            raise MriganError(f"SegmentationConfig trains {MODEL_NAME!r}, got model {self.model!r}")
        if (self.epochs is None) == (self.steps is None):
            raise MriganError("give exactly one of --epochs N or --steps N")
        for name in ("epochs", "steps", "steps_per_epoch", "batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise MriganError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if not self.learning_rate > 0:
            raise MriganError(f"--lr must be positive, got {self.learning_rate}")
        if self.dice not in DICE_LOSSES:
            raise MriganError(f"the U-Net's Dice loss is {' or '.join(DICE_LOSSES)}, "
                              f"got {self.dice!r}")
        if self.strategy not in UNET_STRATEGIES:
            raise MriganError(f"the U-Net trains with --strategy {' or '.join(UNET_STRATEGIES)}, "
                              f"got {self.strategy!r} (multi-worker U-Net training is not "
                              "supported yet)")


def default_depth(image_size: int) -> int:
    """The deepest U-Net (<= 4 poolings) whose bottleneck is still >= 4 px and exact."""
    depth = 1
    while (depth < MAX_DEPTH and image_size % 2 ** (depth + 1) == 0
           and image_size // 2 ** (depth + 1) >= MIN_BOTTLENECK):
        depth += 1
    return depth


def resolve_jit_compile(jit_compile: bool | None) -> bool:
    """``None`` -> XLA when a GPU is visible (XLA's CPU convolutions are slower)."""
    if jit_compile is None:
        return bool(tf.config.list_physical_devices("GPU"))
    return bool(jit_compile)


def build_segmenter(config: SegmentationConfig, image_size: int) -> keras.Model:
    """A fresh, compiled U-Net for ``config``; the same seed gives the same initial weights."""
    options = dict(config.model_options)
    options.setdefault("depth", default_depth(image_size))
    options.setdefault("seed", config.seed)
    keras.utils.set_random_seed(config.seed)
    try:
        model = build_unet(image_size, **options)
    except (TypeError, ValueError) as exc:
        raise MriganError(f"bad option for model 'unet': {exc}") from None
    return compile_unet(model, learning_rate=config.learning_rate,
                        jit_compile=resolve_jit_compile(config.jit_compile), dice=config.dice)


# ## The input pipeline

def flip_pairs(images: tf.Tensor, masks: tf.Tensor, seed: int, batch_number: tf.Tensor):
    """Flip half of the (image, mask) pairs of a batch left-right, the same way for both."""
    n = tf.shape(images)[0]
    key = tf.stack([tf.cast(seed, tf.int64), tf.cast(batch_number, tf.int64)])
    flip = tf.random.stateless_uniform([n, 1, 1, 1], seed=key) < 0.5
    return (tf.where(flip, tf.reverse(images, axis=[2]), images),
            tf.where(flip, tf.reverse(masks, axis=[2]), masks))


def with_flips(stream: tf.data.Dataset, seed: int) -> tf.data.Dataset:
    """``stream`` of (image, mask) batches with ``flip_pairs`` applied, keyed by batch number."""
    return tf.data.Dataset.zip((stream, tf.data.Dataset.counter())).map(
        lambda pair, step: flip_pairs(pair[0], pair[1], seed, step),
        num_parallel_calls=tf.data.AUTOTUNE)


def segmentation_batches(data: PreparedDataset, batch_size: int, seed: int = 0,
                         training: bool = True, augment: bool = False) -> tf.data.Dataset:
    """(image, mask) batches of every slice of ``data``.

    ``training``: shuffled, repeated forever, every batch full (``fit`` counts steps); an
    input smaller than a batch is fine, since the repetition comes before the batching.
    Otherwise: one ordered pass, the last batch possibly smaller.
    """
    # repeat-then-batch never yields a short batch, so make_dataset's "fewer slices than
    # the batch size" guard (meant for one pass) does not apply to training streams.
    ds = make_dataset(data, split=None, batch_size=batch_size, output="segmentation",
                      shuffle=training, seed=seed, repeat=training, drop_remainder=False,
                      cache=False)
    if training and augment:
        ds = with_flips(ds, seed)
    return ds.prefetch(tf.data.AUTOTUNE)


def synthetic_rows_per_batch(batch_size: int, synthetic_share: float) -> int:
    """How many of ``batch_size`` slices come from the synthetic set; at least one of each.

    A share that rounds to a batch of one source only is refused: it would silently train
    on real or synthetic slices alone.
    """
    if not 0.0 < synthetic_share < 1.0:
        raise MriganError(f"the synthetic share of a batch must lie strictly between 0 and 1, "
                          f"got {synthetic_share}")
    n_synthetic = int(math.floor(synthetic_share * batch_size + 0.5))
    if not 0 < n_synthetic < batch_size:
        raise MriganError(f"a synthetic share of {synthetic_share:g} of a batch of {batch_size} "
                          f"rounds to {n_synthetic} synthetic slices: every batch must hold "
                          "both sources; use a larger batch or another share")
    return n_synthetic


def mixed_segmentation_batches(real: PreparedDataset, synthetic: PreparedDataset,
                               synthetic_share: float, batch_size: int, seed: int = 0,
                               augment: bool = False) -> tf.data.Dataset:
    """Training batches holding a fixed share of synthetic slices, the rest real.

    Pooling a few hundred real slices with 10,000 synthetic ones fills the batches in
    proportion to the sources' sizes, so the real slices all but vanish; a fixed share
    per batch (as GAN-augmentation studies mix them) keeps both in view whatever their
    sizes. Each source is shuffled and repeated on its own, so every batch holds exactly
    ``synthetic_rows_per_batch(batch_size, synthetic_share)`` synthetic slices.
    """
    n_synthetic = synthetic_rows_per_batch(batch_size, synthetic_share)
    # Flips come after the two parts are joined, keyed by the mixed batch's number.
    ds = tf.data.Dataset.zip((
        segmentation_batches(real, batch_size - n_synthetic, seed=seed, training=True),
        segmentation_batches(synthetic, n_synthetic, seed=seed + 1, training=True)))
    ds = ds.map(lambda r, s: (tf.concat([r[0], s[0]], axis=0), tf.concat([r[1], s[1]], axis=0)),
                num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        ds = with_flips(ds, seed)
    return ds.prefetch(tf.data.AUTOTUNE)


def fit_unet(model: keras.Model, train: PreparedDataset, epochs: int, steps_per_epoch: int,
             batch_size: int = 32, seed: int = 0, augment: bool = False,
             val: PreparedDataset | None = None, callbacks: list | None = None,
             verbose: int | str = "auto", synthetic: PreparedDataset | None = None,
             synthetic_share: float | None = None) -> keras.callbacks.History:
    """``model.fit`` on every slice of ``train`` for exactly ``epochs * steps_per_epoch`` steps.

    ``synthetic`` with ``synthetic_share``: every batch holds that share of synthetic slices,
    the rest from ``train`` (``mixed_segmentation_batches``). To pool two sets in proportion
    to their sizes instead, pass them combined as ``train``.
    ``val`` (optional) is scored after each epoch; it never influences the weights.
    """
    if (synthetic is None) != (synthetic_share is None):
        raise MriganError("give both a synthetic dataset and its share of each batch, or neither")
    if synthetic is None:
        stream = segmentation_batches(train, batch_size, seed=seed, training=True,
                                      augment=augment)
    else:
        stream = mixed_segmentation_batches(train, synthetic, synthetic_share, batch_size,
                                            seed=seed, augment=augment)
    validation = (segmentation_batches(val, batch_size, training=False)
                  if val is not None and len(val) else None)
    # shuffle=False: the stream is already shuffled (fit's own flag only applies to arrays).
    return model.fit(stream, epochs=epochs, steps_per_epoch=steps_per_epoch,
                     validation_data=validation, callbacks=callbacks or [], verbose=verbose,
                     shuffle=False)


# ## Training to convergence: early stopping on the val split

@dataclasses.dataclass
class ConvergenceReport:
    """What ``fit_unet_to_convergence`` did: steps run, where the kept weights come from."""

    steps: int                     # optimizer steps actually run (<= max_steps)
    best_step: int                 # the step whose weights the model now holds
    best_val_dice: float           # the val Dice logged at that step
    stopped_early: bool            # True: patience ran out before max_steps
    val_dice: list[float]          # the val Dice logged every ``eval_every`` steps

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_convergence_settings(max_steps: int, eval_every: int, patience: int,
                               min_steps: int = 0) -> None:
    """Refuse settings that cannot run: a cap below one evaluation, patience below 1,
    a minimum that leaves no evaluation to choose from."""
    for name, value in (("max_steps", max_steps), ("eval_every", eval_every),
                        ("patience", patience)):
        if int(value) != value or value < 1:
            raise MriganError(f"--{name.replace('_', '-')} must be a whole number of at least "
                              f"1, got {value}")
    if eval_every > max_steps:
        raise MriganError(f"--eval-every {eval_every} is larger than --max-steps {max_steps}: "
                          "the val split would never be scored")
    if int(min_steps) != min_steps or min_steps < 0:
        raise MriganError(f"--min-steps must be a whole number >= 0, got {min_steps}")
    if min_steps >= (max_steps // eval_every) * eval_every:
        raise MriganError(f"--min-steps {min_steps} leaves no val score before --max-steps "
                          f"{max_steps} (scored every {eval_every} steps) to keep")


def fit_unet_to_convergence(model: keras.Model, train: PreparedDataset, val: PreparedDataset,
                            max_steps: int, eval_every: int, patience: int,
                            min_steps: int = 0,
                            batch_size: int = 32, seed: int = 0, augment: bool = False,
                            verbose: int | str = 0, synthetic: PreparedDataset | None = None,
                            synthetic_share: float | None = None,
                            callbacks: list | None = None) -> ConvergenceReport:
    """Train until the val Dice stops improving; leave the best weights in ``model``.

    Every ``eval_every`` steps the val split is scored (the pooled ``val_dice`` the U-Net
    compiles); after ``patience`` evaluations without a new best, or at ``max_steps``
    (rounded down to whole evaluations), training stops and the weights of the best
    evaluation are restored (Keras ``EarlyStopping`` keeps them in memory). Scores before
    ``min_steps`` neither count as a best nor use up patience: a U-Net first learns to
    predict nothing (val Dice near 0 for a few hundred steps), and patience counted from
    there stops it before it has started. A fixed budget
    lets the budget decide the figure: a U-Net given little data converges in a few hundred
    steps, one given much data needs thousands; stopping on the val split gives each what it
    needs, and no arm ever looks at the test split. ``callbacks`` run before the stopping
    rule; ``synthetic`` / ``synthetic_share`` mix batches as in ``fit_unet``.
    """
    check_convergence_settings(max_steps, eval_every, patience, min_steps)
    if val is None or len(val) == 0:
        raise DataError(None, "training to convergence needs a val split to watch; the real "
                        "dataset has none (or pass fixed steps instead)")
    # Evaluation k (0-based) ends at step (k + 1) * eval_every; the first that may count is
    # the first at or after min_steps.
    first = max(0, -(-int(min_steps) // eval_every) - 1)
    stopper = keras.callbacks.EarlyStopping(monitor="val_dice", mode="max", patience=patience,
                                            restore_best_weights=True, start_from_epoch=first)
    history = fit_unet(model, train, epochs=max_steps // eval_every, steps_per_epoch=eval_every,
                       batch_size=batch_size, seed=seed, augment=augment, val=val,
                       callbacks=[*(callbacks or []), stopper], verbose=verbose,
                       synthetic=synthetic,
                       synthetic_share=synthetic_share)
    curve = [float(v) for v in history.history["val_dice"]]
    # EarlyStopping keeps the first of equal bests too, from `first` on.
    best = first + int(np.argmax(curve[first:]))
    return ConvergenceReport(steps=len(curve) * eval_every, best_step=(best + 1) * eval_every,
                             best_val_dice=curve[best], stopped_early=stopper.stopped_epoch > 0,
                             val_dice=curve)


# ## Training into a run directory

def train_unet(config: SegmentationConfig, run_dir: str | os.PathLike, resume: bool = False,
               callbacks: list[keras.callbacks.Callback] | None = None,
               verbose: int | str = "auto"):
    """Train a U-Net on ``config.data``; returns ``(model, history_dict)``.

    The train split trains and the val split (if any) is scored each epoch; the test split
    is never touched here (``mrigan_tf.evaluation.segmentation.train_and_score_unet`` scores
    it once, at the end, into ``evaluation.json``).
    ``resume`` continues the run in ``run_dir`` from its last finished epoch; without it,
    ``run_dir`` must not exist yet (or be empty).
    """
    run_dir = Path(run_dir)
    check_run_dir(run_dir, config, resume)

    dataset = load_dataset(config.data)
    train, val = dataset.select("train"), dataset.select("val")
    # The training stream repeats before it batches: a split smaller than a batch is fine.
    steps_per_epoch, epochs = plan_epochs(config, len(train), repeats_before_batching=True)
    strategy = make_strategy(config.strategy)
    if config.batch_size % strategy.num_replicas_in_sync:
        raise MriganError(f"the batch size {config.batch_size} does not split evenly among "
                          f"{strategy.num_replicas_in_sync} replicas")
    with strategy.scope():
        model = build_segmenter(config, dataset.image_size)

    run_dir.mkdir(parents=True, exist_ok=True)
    write_run_config(run_dir, config, model.input_shape[1:], dataset, steps_per_epoch, epochs,
                     backend={"tensorflow_version": tf.__version__},
                     details={"depth": len([l for l in model.layers if l.name.endswith("_pool")]),
                              "train_slices": len(train), "val_slices": len(val)})

    all_callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / BACKUP_DIR), save_freq="epoch",
                                         delete_checkpoint=False),
        keras.callbacks.CSVLogger(str(run_dir / HISTORY_FILE), append=True),
        LossHistoryPlot(run_dir / LOSS_CURVES_FILE, title="U-Net",
                        history=history_columns(read_history(run_dir)) if resume else None),
        *(callbacks or []),
    ]
    t0 = time.perf_counter()
    history = fit_unet(model, train, epochs, steps_per_epoch, batch_size=config.batch_size,
                       seed=config.seed, augment=config.augment, val=val,
                       callbacks=all_callbacks, verbose=verbose)
    elapsed = time.perf_counter() - t0
    save_run_model(run_dir, model)
    write_summary(run_dir, {"seconds": round(elapsed, 1), "epochs": epochs,
                            "optimizer_steps": int(model.optimizer.iterations.numpy()),
                            "last": {k: float(v[-1]) for k, v in history.history.items() if v}})
    return model, history.history


def load_unet_run(run_dir: str | os.PathLike):
    """The U-Net of a run directory and its saved configuration: ``(model, saved, path)``.

    Prefers ``model.keras``; a run stopped before finishing falls back to its last backup.
    """
    run_dir = Path(run_dir)
    saved = read_run_config(run_dir, "mrigan-tf train --model unet --out DIR ...")
    if saved.get("train", {}).get("model") != MODEL_NAME:
        raise DataError(run_dir / CONFIG_FILE, f"this run trained "
                        f"{saved.get('train', {}).get('model')!r}, not a U-Net")
    model, path = load_run_model(run_dir, lambda: build_segmenter(
        SegmentationConfig(**saved["train"]), int(saved["image_shape"][0])))
    return model, saved, path
