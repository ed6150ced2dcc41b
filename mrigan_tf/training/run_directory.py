"""The run directory: what ``mrigan-tf train --out RUN`` writes, and how it is read back.

Every runner (the TensorFlow GANs' ``runner.train_gan``, the JAX runner, the U-Net's
``segmentation.train_unet``) writes its run directory through this module, and everything
that reads one (``mrigan-tf generate``, the reference model, TSTR) reads it through it too:

    config.json            the run's configuration under "train", what the data was, the
                           steps per epoch and epochs, and what trained it (package, Keras
                           and backend versions; "backend": "jax" for a JAX run)
    backup/                the resumable state: ``latest.weights.h5`` (weights, optimizers'
                           slots and counters) and, on TensorFlow, Keras' BackupAndRestore
                           metadata (the epoch counter)
    samples/               a fixed-noise sample grid per epoch (PNG, GANs only)
    history.csv            the logged values, one row per epoch
    loss_curves.png        the same, drawn
    training_summary.json  wall time, epochs, optimizer steps
    model.keras            the trained model, written when training completes
    generator.weights.h5   instead of all the above but config.json: a published generator
                           (the shipped reference model), enough to generate

Every file a runner writes here appears whole or not at all (``mrigan_tf.atomic``): a run
killed at any moment leaves the previous version of each file, never half of one.

This module knows the layout, not the models: ``load_run_model`` takes a ``rebuild``
callable that makes a fresh model for the saved configuration, so that it needs neither
``runner.TrainConfig``/``build_model`` (which import it) nor the U-Net's builder.
``runner.load_run`` and ``segmentation.load_unet_run`` pass theirs.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras

from mrigan_tf import __version__
from mrigan_tf.atomic import atomic_file
from mrigan_tf.errors import DataError, MriganError

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
BACKUP_DIR = "backup"
#: The backup's weights file (the name Keras' BackupAndRestore writes; the JAX runner too).
BACKUP_WEIGHTS_FILE = "latest.weights.h5"
HISTORY_FILE = "history.csv"
SUMMARY_FILE = "training_summary.json"
SAMPLES_DIR = "samples"
LOSS_CURVES_FILE = "loss_curves.png"
#: A generator published without its critic (``load_run_model``).
GENERATOR_WEIGHTS_FILE = "generator.weights.h5"


def backup_path(run_dir: Path) -> Path:
    """The backup's weights file of a run directory (it may not exist yet)."""
    return run_dir / BACKUP_DIR / BACKUP_WEIGHTS_FILE


# ## Starting or resuming a run

def check_run_dir(run_dir: Path, config: Any, resume: bool) -> None:
    """Refuse to start over an existing run, or to resume a missing or different one.

    ``config`` is the run's dataclass (``TrainConfig``, or the U-Net's ``SegmentationConfig``);
    its ``RESUMABLE_CHANGES`` name the settings a resumed run may change.
    """
    if resume:
        if not (run_dir / CONFIG_FILE).is_file():
            raise DataError(run_dir, "nothing to resume: no config.json here (start the run "
                            "without --resume)")
        check_resume(run_dir, config)
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise DataError(run_dir, "run directory already exists; pass --resume to continue it "
                        "or choose another --out")


def check_resume(run_dir: Path, config: Any) -> None:
    """Refuse to resume a run on another backend, or with settings other than the resumable ones."""
    saved_run = json.loads((run_dir / CONFIG_FILE).read_text())
    saved = saved_run["train"]
    # A backup holds one backend's training state (the JAX runner's step counter and noise
    # streams are not Keras' BackupAndRestore's): resume on the backend that trained it.
    trained_on = saved_run.get("backend", "tensorflow")
    if trained_on != keras.backend.backend():
        raise MriganError(f"{run_dir / CONFIG_FILE}: this run was trained on {trained_on}; "
                          f"resume it with KERAS_BACKEND={trained_on}")
    current = dataclasses.asdict(config)
    # A setting missing from an older config.json had its default then.
    defaults = {f.name: f.default for f in dataclasses.fields(config)
                if f.default is not dataclasses.MISSING}
    differs = [k for k in current if k not in config.RESUMABLE_CHANGES
               and saved.get(k, defaults.get(k)) != current[k]]
    if differs:
        raise MriganError(f"{run_dir / CONFIG_FILE}: cannot resume with different settings "
                          f"({', '.join(f'{k}: {saved.get(k)!r} -> {current[k]!r}' for k in differs)})")


def plan_epochs(config: Any, train_slices: int, repeats_before_batching: bool = False
                ) -> tuple[int, int]:
    """``(steps_per_epoch, epochs)`` of a run on a train split of ``train_slices`` slices.

    An epoch is ``config.steps_per_epoch`` steps, by default one pass over the train split
    (at least one step); ``config.steps`` asks for as many epochs as reach that many steps.
    A GAN's epoch draws whole batches from one pass, so its train split must hold a batch;
    a stream that repeats before batching (the U-Net's) needs only one slice.
    """
    if not repeats_before_batching and train_slices < config.batch_size:
        raise DataError(config.data, f"the train split holds {train_slices} slices, fewer "
                        f"than the batch size {config.batch_size}; lower --batch-size")
    if train_slices == 0:
        raise DataError(config.data, "the train split holds no slices to train on "
                        "(synthetic sets: regenerate with --val-fraction < 1)")
    steps_per_epoch = config.steps_per_epoch or max(1, train_slices // config.batch_size)
    epochs = config.epochs or math.ceil(config.steps / steps_per_epoch)
    return steps_per_epoch, epochs


# ## config.json

def write_run_config(run_dir: Path, config: Any, image_shape: Sequence[int], dataset,
                     steps_per_epoch: int, epochs: int, backend: dict[str, Any],
                     distribution: dict[str, Any] | None = None,
                     details: dict[str, Any] | None = None) -> None:
    """Write ``config.json``: the settings, what the data was, and what trained it.

    ``backend`` adds what only one runner knows (its framework's version; ``"backend":
    "jax"`` for the JAX runner, which a TensorFlow ``--resume`` then refuses);
    ``distribution`` the ``tf.distribute`` setup; ``details`` anything else the runner
    records (the U-Net's depth and split sizes).
    """
    fields = {
        "train": dataclasses.asdict(config),
        "image_shape": list(image_shape),
        "class_names": dataset.class_names,
        "steps_per_epoch": steps_per_epoch,
        "epochs": epochs,
        "data_source": dataset.meta.get("source"),
        "data_modality": dataset.meta.get("modality"),
        "data_channels": dataset.meta.get("channels"),
        "package_version": __version__,
        "keras_version": keras.__version__,
        **backend,
    }
    if distribution is not None:
        fields["distribution"] = distribution
    fields.update(details or {})
    _write_json(run_dir / CONFIG_FILE, fields)


def read_run_config(run_dir: Path, train_command: str = "mrigan-tf train --out DIR ...") -> dict:
    """The saved ``config.json`` of a run directory, or a ``DataError`` saying it is none."""
    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file():
        raise DataError(run_dir, f"not a run directory (no config.json); train one with "
                        f"`{train_command}`")
    return json.loads(config_path.read_text())


# ## history.csv and training_summary.json

def read_history(run_dir: Path, epochs_kept: int | None = None) -> list[dict[str, str]]:
    """The rows of ``history.csv`` (none if there is no file), as text.

    ``epochs_kept``: only the rows of the first ``epochs_kept`` epochs, those a backup
    holds; rows written just before a kill, for an epoch the backup missed, are dropped.
    """
    path = run_dir / HISTORY_FILE
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [row for row in csv.DictReader(f)
                if epochs_kept is None or int(row["epoch"]) < epochs_kept]


def history_columns(rows: list[dict[str, str]]) -> dict[str, list[float]]:
    """Logged name -> its values, one per epoch (the ``fit()`` History's layout), so the
    curves of a resumed run continue the interrupted run's. Keras' CSVLogger writes ``NA``
    where an epoch did not log a name (and adds ``val_`` columns to every run): they are
    skipped, and a column with no value at all is left out."""
    columns = {k: [float(r[k]) for r in rows if r.get(k) not in (None, "", "NA")]
               for k in (rows[0] if rows else {}) if k != "epoch"}
    return {k: values for k, values in columns.items() if values}


def write_history(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite ``history.csv`` with ``rows`` (for a runner without Keras' CSVLogger)."""
    # The columns of Keras' CSVLogger: epoch, then the logged names in sorted order.
    names = ["epoch"] + sorted(k for k in rows[0] if k != "epoch")
    with atomic_file(run_dir / HISTORY_FILE) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    """Write ``training_summary.json`` (time, epochs, optimizer steps, ...)."""
    _write_json(run_dir / SUMMARY_FILE, summary)


def _write_json(path: Path, value: dict[str, Any]) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2) + "\n")


# ## Weights and the model

def save_backup(run_dir: Path, model: keras.Model) -> Path:
    """``model.save_weights`` to ``backup/latest.weights.h5``, renamed into place when
    complete (for a runner without Keras' BackupAndRestore)."""
    target = backup_path(run_dir)
    with atomic_file(target) as tmp:
        model.save_weights(tmp)
    return target


def save_run_model(run_dir: Path, model: keras.Model) -> Path:
    """``model.save`` to ``model.keras``, renamed into place when complete."""
    target = run_dir / MODEL_FILE
    with atomic_file(target) as tmp:
        model.save(tmp)
    return target


def load_run_model(run_dir: Path, rebuild: Callable[[], keras.Model]):
    """``(model, path)``: ``model.keras`` when training finished, else the last backup's
    weights (of the last finished epoch) loaded into ``rebuild()``'s fresh model.

    A directory that ships only ``generator.weights.h5`` (a published generator, such as
    the package's reference model: a few MB instead of the whole GAN with its critic and
    optimizer state) gives ``rebuild()``'s GAN with those generator weights and an
    untrained critic: enough to generate, not to resume training. A GAN that keeps a
    generator weight average (``ema_decay``) publishes the average
    (``sampling_generator``), and loads it into both its generator and its average.
    """
    model_path = run_dir / MODEL_FILE
    if model_path.is_file():
        try:
            return keras.models.load_model(model_path), model_path
        except Exception as exc:  # a truncated or foreign file: say which
            raise DataError(model_path, f"cannot load the model ({type(exc).__name__}: {exc})") from None
    backup = backup_path(run_dir)
    generator_only = run_dir / GENERATOR_WEIGHTS_FILE
    if backup.is_file():
        model = rebuild()
        model.load_weights(backup)
        return model, backup
    if generator_only.is_file():
        model = rebuild()
        try:
            model.generator.load_weights(generator_only)
        except Exception as exc:  # truncated, or written by another architecture
            raise DataError(generator_only, f"cannot load the generator weights "
                            f"({type(exc).__name__}: {exc})") from None
        # A published generator is the one that samples (the weight average, when the run
        # kept one): a model built with an EMA samples with these weights too.
        reset_ema = getattr(model, "reset_ema", None)
        if reset_ema is not None:
            reset_ema()
        return model, generator_only
    raise DataError(run_dir, "holds neither model.keras nor a backup nor generator weights: "
                    "was training started here?")
