"""
Title: The reference model: what the conditional WGAN-GP does when it is trained long enough
Description: a generator trained on the phantom, shipped with the package, with its evidence.

## Why ship a trained generator

A ten-minute CPU run shows the *mechanics* of GAN training, not what the method can do: its
images are blurry and its masks are blobs. The reference model is the same conditional
WGAN-GP trained for many more steps, with the project's own ``mrigan-tf train``, on the
phantom that ``mrigan-tf demo`` builds (40 subjects, 64 px, seed 0), on that phantom's
*train* subjects only. Its directory holds what a reader needs to trust it:

    config.json            the run's configuration (TrainConfig) plus a ``reference`` block:
                           the exact commands, the phantom it was trained on, its training
                           subjects, the steps and the wall time
    generator.weights.h5   the generator's weights (the critic is not shipped: generating
                           needs only the generator)
    history.csv            the training log, one row per epoch; loss_curves.png draws it
    samples.png            real vs synthetic pairs (image + mask outline), both classes
    evaluation/            ``mrigan-tf evaluate`` of 10,000 generated pairs against the
                           phantom: FID/KID with the real-vs-real floor, diversity, the
                           memorization audit (report.md, report.json, evaluation.png)
    tstr/                  ``mrigan-tf tstr``: U-Nets trained on real, synthetic and mixed
                           data, scored on the held-out real subjects
    README.md              all of the above in words, with the commands that reproduce it

Its directory is a run directory like any other, so ``mrigan-tf generate --run`` takes it
(``mrigan_tf.training.runner.load_run`` loads a generator shipped without its critic,
``mrigan_tf.training.run_directory`` names its files).

## When a reference model may be used

Only on the dataset it was trained on, and only scored on subjects it never saw:
``matches_dataset`` checks that a dataset is that phantom (source, size, seed, number of
subjects) *and* that its train split holds exactly the reference's training subjects, so
that the test subjects of the evaluation were never in its training data.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import keras

from mrigan_tf.atomic import atomic_directory
from mrigan_tf.errors import DataError
from mrigan_tf.synth import build_synthetic_dataset
from mrigan_tf.training.run_directory import (CONFIG_FILE, GENERATOR_WEIGHTS_FILE, HISTORY_FILE,
                                              LOSS_CURVES_FILE)
from mrigan_tf.training.runner import load_run
from mrigan_tf.visualization import plot_real_vs_synthetic

#: The shipped reference models: name -> what it is.
REFERENCES = {
    "phantom64": "conditional WGAN-GP trained on the demo phantom (40 subjects, 64 px, seed 0)",
}
DEFAULT_REFERENCE = "phantom64"
#: Files ``publish_reference`` copies from a finished run directory.
RUN_FILES = (HISTORY_FILE, LOSS_CURVES_FILE)
SAMPLES_FILE = "samples.png"


def reference_dir(name: str = DEFAULT_REFERENCE) -> Path:
    """The directory of a shipped reference model (a run directory ``generate`` accepts)."""
    if name not in REFERENCES:
        raise DataError(name, f"no such reference model; available: {', '.join(REFERENCES)}")
    return Path(__file__).resolve().parent / name


def reference_config(name: str = DEFAULT_REFERENCE) -> dict[str, Any]:
    """The reference model's ``config.json`` (the run's settings and the ``reference`` block)."""
    path = reference_dir(name) / CONFIG_FILE
    if not path.is_file():
        raise DataError(path, "missing: the reference model is not in this installation")
    return json.loads(path.read_text())


def is_available(name: str = DEFAULT_REFERENCE) -> bool:
    """Whether the reference model's configuration and generator weights are installed."""
    directory = reference_dir(name)
    return (directory / CONFIG_FILE).is_file() and (directory / GENERATOR_WEIGHTS_FILE).is_file()


def dataset_fingerprint(dataset) -> dict[str, Any]:
    """What identifies a phantom for the reference: source, size, seed, subjects per split."""
    meta = dataset.meta
    return {
        "source": meta.get("source"),
        "image_size": dataset.image_size,
        "seed": meta.get("seed"),
        "subjects": len(set(dataset.subjects.tolist())),
        "train_subjects": sorted(set(dataset.subjects[dataset.split == "train"].tolist())),
    }


def matches_dataset(dataset, name: str = DEFAULT_REFERENCE) -> tuple[bool, str]:
    """``(True, "")`` if the reference model was trained on ``dataset``'s train split, else
    ``(False, why)``: only then may it be evaluated on that dataset's test subjects."""
    if not is_available(name):
        return False, f"the reference model {name!r} is not installed"
    trained_on = reference_config(name)["reference"]["dataset"]
    here = dataset_fingerprint(dataset)
    for key in ("source", "image_size", "seed", "subjects"):
        if here[key] != trained_on[key]:
            return False, (f"it was trained on another dataset ({key} {trained_on[key]!r}, "
                           f"here {here[key]!r})")
    if here["train_subjects"] != trained_on["train_subjects"]:
        return False, ("this dataset's train split holds other subjects than the ones it was "
                       "trained on, so its test subjects may have been in its training data")
    return True, ""


def publish_reference(run_dir: str | Path, dataset, out_dir: str | Path,
                      commands: list[str], notes: dict[str, Any] | None = None,
                      overwrite: bool = False) -> Path:
    """Write a reference-model directory from a finished GAN run directory.

    Copies the generator's weights (not the critic's nor the optimizers'), the training log
    and the run's configuration, to which it adds the ``reference`` block: ``commands``
    (how it was made, in order), the fingerprint of ``dataset`` (the dataset it was trained
    on) and ``notes`` (wall time, machine, ...). Evaluation and TSTR outputs are added to the
    directory afterwards by their own commands.
    """
    run_dir = Path(run_dir)
    model, saved, checkpoint = load_run(run_dir)
    if not getattr(model, "CONDITIONAL", False):
        raise DataError(run_dir, "a reference model must be a conditional GAN (cwgan-gp): "
                        "it generates labelled image/mask pairs")
    saved = dict(saved)
    saved["reference"] = {
        "commands": list(commands),
        "dataset": dataset_fingerprint(dataset),
        "generator_steps": int(keras.ops.convert_to_numpy(model.g_optimizer.iterations)),
        "trained_checkpoint": checkpoint.name,
        **(notes or {}),
    }
    with atomic_directory(Path(out_dir), overwrite=overwrite) as tmp:
        # The generator that samples: the weight average when the run kept one.
        model.sampling_generator.save_weights(tmp / GENERATOR_WEIGHTS_FILE)
        (tmp / CONFIG_FILE).write_text(json.dumps(saved, indent=2) + "\n")
        for name in RUN_FILES:
            if (run_dir / name).is_file():
                shutil.copyfile(run_dir / name, tmp / name)
        plot_reference_samples(model, dataset, tmp / SAMPLES_FILE)
    return Path(out_dir)


def plot_reference_samples(model, dataset, path: Path, per_class: int = 8, seed: int = 0) -> None:
    """Real training pairs above generated ones, per class, masks outlined (``samples.png``)."""
    synthetic = build_synthetic_dataset(model, dataset.class_names, 8 * per_class * dataset.num_classes,
                                        seed=seed, progress=False)
    plot_real_vs_synthetic(dataset.select("train"), synthetic, per_class=per_class, seed=seed,
                           path=path, title="real (rows 1, 3) vs reference model (rows 2, 4)")
