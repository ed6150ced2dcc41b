"""Train any GAN of the package on a dataset directory, into a resumable run directory.

``mrigan-tf train`` and the notebooks call ``train_gan``. A run directory
(``mrigan_tf.training.run_directory`` owns its layout) holds

    config.json        what was trained, on what, with which settings (enough to rebuild it)
    backup/            Keras BackupAndRestore state: weights, both optimizers, epoch counter
    samples/           a fixed-noise sample grid per epoch (PNG)
    history.csv        the logged losses, one row per epoch (appended on resume)
    loss_curves.png    the same, drawn
    model.keras        the trained model (written when training completes)

Training is counted in *epochs* of ``steps_per_epoch`` generator steps; ``--steps N`` sets
the number of epochs so that at least N steps run. A backup is written at the end of every
epoch, so a run killed mid-way (Ctrl-C, a Colab disconnect) resumes with ``--resume`` from
its last finished epoch, with both optimizers' iteration counts and the epoch counter
restored: it ends exactly where an uninterrupted run would.

``strategy`` trains on several GPUs (``mirrored``) or machines (``multiworker``, one process
per machine, each with its ``TF_CONFIG``): see ``mrigan_tf.training.distribute``.
``batch_size`` is the *global* batch, split among the replicas, so a run computes the same
steps on any number of GPUs. Under ``multiworker`` only the chief (worker 0) writes the run
directory; every other worker keeps just its own backup, under ``backup/worker-N``, so that
it resumes with the others. ``precision="mixed_float16"`` builds the players under the
Keras mixed-precision policy and wraps both optimizers for loss scaling (GPUs with tensor
cores; see ``mrigan_tf.models.mixed_precision``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mrigan_tf.data.contract import PreparedDataset, image_channels, load_dataset
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.lazy_tensorflow import tf
from mrigan_tf.models.cwgan_gp import check_cwgan_options
from mrigan_tf.models.mask_consistency import check_mask_consistency_options
from mrigan_tf.models.families import FAMILIES
from mrigan_tf.models.mixed_precision import POLICIES, dtype_policy
from mrigan_tf.training.callbacks import LossHistoryPlot, SampleGridCallback
from mrigan_tf.training.distribute import STRATEGIES, describe, is_chief, make_strategy
from mrigan_tf.training.run_directory import (BACKUP_DIR, HISTORY_FILE, LOSS_CURVES_FILE,
                                              MODEL_FILE, SAMPLES_DIR, check_run_dir,
                                              load_run_model,
                                              plan_epochs, read_run_config, save_run_model,
                                              write_run_config, write_summary)


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run; saved as ``config.json``."""

    model: str
    data: str
    epochs: int | None = None
    steps: int | None = None
    steps_per_epoch: int | None = None     # default: one pass over the training split
    batch_size: int = 64
    seed: int = 0
    jit_compile: bool | None = None        # None: XLA when a GPU is visible (slower on CPU)
    d_learning_rate: float | None = None   # None: the family's paper default
    g_learning_rate: float | None = None
    joint: bool | None = None              # train on image+mask; default: only for conditional models
    samples: int = 16
    model_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    strategy: str = "default"              # default | mirrored | multiworker (tf.distribute)
    precision: str = "float32"             # float32 | mixed_float16 | mixed_bfloat16
    steps_per_execution: int = 1           # train steps per compiled call (fewer Python round trips)

    def __post_init__(self) -> None:
        if self.model not in FAMILIES:
            raise MriganError(f"unknown model {self.model!r}; choose one of "
                              f"{', '.join(sorted(FAMILIES))}")
        if (self.epochs is None) == (self.steps is None):
            raise MriganError("give exactly one of --epochs N or --steps N")

        if self.strategy not in STRATEGIES:
            raise MriganError(f"unknown strategy {self.strategy!r}; choose one of "
                              f"{', '.join(STRATEGIES)}")
        if self.precision not in POLICIES:
            raise MriganError(f"unknown precision {self.precision!r}; choose one of "
                              f"{', '.join(POLICIES)}")
        for name in ("epochs", "steps", "steps_per_epoch", "batch_size", "steps_per_execution"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise MriganError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        self.check_model_options()

    #: Options of the cWGAN-GP alone (the other families have one loss and no classes).
    CWGAN_ONLY = ("loss", "conditioning", "acgan_weight")
    #: Options of the joint models (image and mask drawn together): the mask-consistency loss.
    JOINT_ONLY = ("mask_consistency", "mask_segmenter")
    JOINT_MODELS = ("cwgan-gp", "progan")
    #: Options of ProGAN alone: its growth schedule.
    PROGAN_ONLY = ("phase_steps", "fade_steps", "start_size")

    def check_model_options(self) -> None:
        """A one-line error, before any data is read, for an option the model lacks or a
        combination it refuses (R1 with wgan-gp's penalty, lazy GP without a GP, ...)."""
        options = self.model_options
        for families, own in ((("cwgan-gp",), self.CWGAN_ONLY), (("progan",), self.PROGAN_ONLY),
                              (self.JOINT_MODELS, self.JOINT_ONLY)):
            misplaced = [k for k in own if k in options and self.model not in families]
            if misplaced:
                raise MriganError(f"--{misplaced[0].replace('_', '-')} is an option of --model "
                                  f"{' and '.join(families)}, not of {self.model}")
        for name in ("ema_decay", "r1_weight"):
            if name in options and not isinstance(options[name], (int, float)):
                raise MriganError(f"--{name.replace('_', '-')} must be a number, "
                                  f"got {options[name]!r}")
        if not 0 <= options.get("ema_decay", 0) < 1:
            raise MriganError(f"--ema-decay must be in [0, 1) (e.g. 0.999), "
                              f"got {options['ema_decay']}")
        if options.get("r1_weight", 0) < 0:
            raise MriganError(f"--r1-weight must be >= 0, got {options['r1_weight']}")
        try:
            check_mask_consistency_options(options.get("mask_consistency", 0),
                                           options.get("mask_segmenter"))
        except ValueError as exc:
            raise MriganError(f"bad option for model {self.model}: {exc}") from None
        if self.model == "cwgan-gp":
            keys = ("loss", "conditioning", "r1_weight", "gp_every", "clip_value", "acgan_weight")
            try:
                check_cwgan_options(**{k: options[k] for k in keys if k in options})
            except (TypeError, ValueError) as exc:
                raise MriganError(f"bad option for model cwgan-gp: {exc}") from None

    @property
    def conditional(self) -> bool:
        return bool(getattr(FAMILIES[self.model][1], "CONDITIONAL", False))

    @property
    def layout_conditional(self) -> bool:
        """Whether the model renders layouts (SPADE): trained on (image, condition map)."""
        return bool(getattr(FAMILIES[self.model][1], "LAYOUT_CONDITIONAL", False))

    @property
    def uses_joint(self) -> bool:
        return self.conditional if self.joint is None else bool(self.joint)

    # What may differ between a run and its resumption: how long it trains, and on how many
    # devices (the global batch, hence the computation, is the same).
    RESUMABLE_CHANGES = ("epochs", "steps", "strategy", "steps_per_execution")


def build_model(config: TrainConfig, image_shape: tuple[int, int, int], num_classes: int):
    """A fresh, compiled model for ``config``.

    Built under ``config.precision``; call it inside ``strategy.scope()`` to train it under a
    ``tf.distribute`` strategy (its variables and optimizers must be created there).
    """

    factory, model_class = FAMILIES[config.model]
    options = dict(config.model_options)
    options.setdefault("seed", config.seed)
    if options.get("mask_segmenter"):
        options["mask_segmenter"] = load_mask_segmenter(options["mask_segmenter"])
    if config.conditional or config.layout_conditional:
        options.setdefault("num_classes", num_classes)
    with dtype_policy(config.precision):
        try:
            model = factory(image_shape, **options)
        except (TypeError, ValueError) as exc:
            raise MriganError(f"bad option for model {config.model!r}: {exc}") from None
    d_opt, g_opt = model_class.default_optimizers()
    if config.d_learning_rate is not None:
        d_opt.learning_rate = config.d_learning_rate
    if config.g_learning_rate is not None:
        g_opt.learning_rate = config.g_learning_rate
    # Loss scaling follows the players' dtype (on for mixed_float16).
    model.compile(d_opt, g_opt, jit_compile=config.jit_compile,
                  steps_per_execution=config.steps_per_execution)
    return model


def load_mask_segmenter(run_dir: str | os.PathLike) -> keras.Model:
    """The U-Net of a finished ``mrigan-tf train --model unet`` run, for the mask-consistency
    loss (``models.mask_consistency``): loaded from its ``model.keras`` without TensorFlow's
    input pipeline, so the JAX path can use it too. An error naming the directory otherwise."""
    from mrigan_tf.models import unet  # noqa: F401  (registers the U-Net's custom objects)

    run_dir = Path(run_dir)
    saved = read_run_config(run_dir, "mrigan-tf train --model unet --data DATA --out DIR")
    if saved.get("train", {}).get("model") != "unet":
        raise DataError(run_dir, f"--mask-segmenter needs a U-Net run; this one trained "
                        f"{saved.get('train', {}).get('model')!r}")
    if not (run_dir / MODEL_FILE).is_file():
        raise DataError(run_dir, f"the U-Net run has no {MODEL_FILE}: it did not finish")
    return keras.saving.load_model(run_dir / MODEL_FILE, compile=False)


def add_layout_options(config: TrainConfig, dataset: PreparedDataset) -> None:
    """A layout-conditioned model's layout classes and mask classes, read from the
    dataset's meta into ``config.model_options`` (so the run's config rebuilds the model);
    an error naming the dataset when it has no layouts."""
    if not config.layout_conditional:
        return
    if dataset.layout is None:
        raise DataError(config.data, f"--model {config.model} renders layouts, and this dataset "
                        "has none (no `layout` array); make it again with `mrigan-tf phantom` "
                        "or `mrigan-tf prepare` of this version")
    config.model_options.setdefault("num_layout_classes", len(dataset.layout_classes))
    config.model_options.setdefault("mask_classes", dataset.layout_mask_classes)


def set_layout_bank(model, train_split: PreparedDataset, n: int) -> None:
    """Give a layout-conditioned model the layouts its sample grids render: ``n`` real
    layouts spread over the train split (a layout generator is issue 17's item 3)."""
    if getattr(model, "LAYOUT_CONDITIONAL", False):
        pick = np.linspace(0, len(train_split) - 1, n).round().astype(int)
        model.layout_bank = (train_split.layout[pick], train_split.labels[pick])


def train_gan(config: TrainConfig, run_dir: str | os.PathLike, resume: bool = False,
              callbacks: list[keras.callbacks.Callback] | None = None, verbose: int | str = "auto",
              show_samples: bool = False):
    """Train ``config.model`` on ``config.data``; returns ``(model, history_dict)``.

    ``resume`` continues the run in ``run_dir`` from its last finished epoch; without it,
    ``run_dir`` must not exist yet (or be empty).

    Under ``config.strategy == "multiworker"`` every worker calls this with the same
    arguments; only the chief writes the run directory.
    """
    # tf.data, hence TensorFlow: imported here, so that the JAX path (TrainConfig, build_model)
    # runs on a machine without TensorFlow.
    from mrigan_tf.data.pipeline import make_dataset

    # First: a multi-worker strategy must exist before TensorFlow runs anything.
    strategy = make_strategy(config.strategy)
    chief = is_chief(strategy)
    run_dir = Path(run_dir)
    dataset = load_dataset(config.data)
    if config.layout_conditional:   # its layout classes are part of the run's config
        add_layout_options(config, dataset)
    if chief:   # the other workers keep only their backup in it
        check_run_dir(run_dir, config, resume)

    keras.utils.set_random_seed(config.seed)
    output = ("layout" if config.layout_conditional else
              "joint" if config.uses_joint else "image")
    steps_per_epoch, epochs = plan_epochs(config, len(dataset.select("train")))
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise MriganError(f"the batch size {config.batch_size} does not split evenly among "
                          f"{replicas} replicas; use a multiple of {replicas}")
    # Image channels (one per modality) plus, for the joint tensor, the mask channel.
    channels = image_channels(dataset.meta) + (1 if output == "joint" else 0)
    image_shape = (dataset.image_size, dataset.image_size, channels)
    with strategy.scope():
        model = build_model(config, image_shape, dataset.num_classes)
    set_layout_bank(model, dataset.select("train"), config.samples)

    backup_dir = run_dir / BACKUP_DIR
    if not chief:
        # Each worker restores its own copy of the (identical) weights on resume.
        backup_dir = backup_dir / f"worker-{strategy.cluster_resolver.task_id}"
        backup_dir.mkdir(parents=True, exist_ok=True)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_run_config(run_dir, config, image_shape, dataset, steps_per_epoch, epochs,
                         backend={"tensorflow_version": tf.__version__},
                         distribution=describe(strategy))

    data = make_dataset(dataset, "train", batch_size=config.batch_size, output=output,
                        seed=config.seed, repeat=True)
    if replicas > 1:
        # The arrays are in memory, not in files, so shard by element: every worker reads
        # the same shuffled stream and keeps its own share of each global batch.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        data = data.with_options(options)
    all_callbacks = [keras.callbacks.BackupAndRestore(str(backup_dir), save_freq="epoch",
                                                      delete_checkpoint=False)]
    if chief:
        all_callbacks += [
            keras.callbacks.CSVLogger(str(run_dir / HISTORY_FILE), append=True),
            SampleGridCallback(run_dir / SAMPLES_DIR, n=config.samples, seed=config.seed,
                               show=show_samples),
            LossHistoryPlot(run_dir / LOSS_CURVES_FILE),
            *(callbacks or []),
        ]
    t0 = time.perf_counter()
    history = model.fit(data, epochs=epochs, steps_per_epoch=steps_per_epoch,
                        callbacks=all_callbacks, verbose=verbose if chief else 0, shuffle=False)
    elapsed = time.perf_counter() - t0
    if not chief:
        return model, history.history
    save_run_model(run_dir, model)
    write_summary(run_dir, {"seconds": round(elapsed, 1), "epochs": epochs,
                            "generator_steps": int(model.g_optimizer.iterations.numpy()),
                            "critic_steps": int(model.d_optimizer.iterations.numpy())})
    return model, history.history


def load_run(run_dir: str | os.PathLike):
    """The trained model of a run directory, its saved configuration, and the file loaded.

    Prefers ``model.keras``; a run that was stopped before finishing falls back to its last
    backup (the weights of the last finished epoch), a published generator to its generator
    weights (``run_directory.load_run_model``, given this module's ``build_model`` to rebuild
    the GAN from the saved ``TrainConfig``).
    """
    run_dir = Path(run_dir)
    saved = read_run_config(run_dir)
    FAMILIES   # importing the model modules registers their classes for loading
    model, path = load_run_model(run_dir, lambda: build_model(
        TrainConfig(**saved["train"]), tuple(saved["image_shape"]), len(saved["class_names"])))
    return model, saved, path
