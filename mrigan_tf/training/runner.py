"""Train any GAN of the package on a dataset directory, into a resumable run directory.

``mrigan-tf train`` and the notebooks call ``train_gan``. A run directory holds

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
cores; see ``mrigan_tf.training.mixed_precision``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from mrigan_tf import __version__
from mrigan_tf.atomic import atomic_file
from mrigan_tf.data.contract import image_channels, load_dataset
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.lazy_tensorflow import tf

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
BACKUP_DIR = "backup"
HISTORY_FILE = "history.csv"
#: The backup's weights file (the name Keras' BackupAndRestore writes; the JAX runner too).
BACKUP_WEIGHTS_FILE = "latest.weights.h5"
SUMMARY_FILE = "training_summary.json"
#: A generator published without its critic (``load_run_model``).
GENERATOR_WEIGHTS_FILE = "generator.weights.h5"


def model_families() -> dict[str, tuple[Any, type]]:
    """Model name (as on the command line) -> (factory, class)."""
    from mrigan_tf.models import FAMILIES

    return FAMILIES


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
        if self.model not in model_families():
            raise MriganError(f"unknown model {self.model!r}; choose one of "
                              f"{', '.join(sorted(model_families()))}")
        if (self.epochs is None) == (self.steps is None):
            raise MriganError("give exactly one of --epochs N or --steps N")
        from mrigan_tf.training.distribute import STRATEGIES
        from mrigan_tf.training.mixed_precision import POLICIES

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

    @property
    def conditional(self) -> bool:
        return bool(getattr(model_families()[self.model][1], "CONDITIONAL", False))

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
    from mrigan_tf.training.mixed_precision import dtype_policy

    factory, model_class = model_families()[config.model]
    options = dict(config.model_options)
    options.setdefault("seed", config.seed)
    if config.conditional:
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


def _check_resume(run_dir: Path, config: Any) -> None:
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
    resumable = getattr(config, "RESUMABLE_CHANGES", TrainConfig.RESUMABLE_CHANGES)
    differs = [k for k in current if k not in resumable
               and saved.get(k, defaults.get(k)) != current[k]]
    if differs:
        raise MriganError(f"{run_dir / CONFIG_FILE}: cannot resume with different settings "
                          f"({', '.join(f'{k}: {saved.get(k)!r} -> {current[k]!r}' for k in differs)})")


def check_run_dir(run_dir: Path, config: Any, resume: bool) -> None:
    """Refuse to start over an existing run, or to resume a missing or different one.

    ``config`` is the run's dataclass (``TrainConfig``, or the U-Net's ``SegmentationConfig``).
    """
    if resume:
        if not (run_dir / CONFIG_FILE).is_file():
            raise DataError(run_dir, "nothing to resume: no config.json here (start the run "
                            "without --resume)")
        _check_resume(run_dir, config)
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise DataError(run_dir, "run directory already exists; pass --resume to continue it "
                        "or choose another --out")


def train_gan(config: TrainConfig, run_dir: str | os.PathLike, resume: bool = False,
              callbacks: list[keras.callbacks.Callback] | None = None, verbose: int | str = "auto",
              show_samples: bool = False):
    """Train ``config.model`` on ``config.data``; returns ``(model, history_dict)``.

    ``resume`` continues the run in ``run_dir`` from its last finished epoch; without it,
    ``run_dir`` must not exist yet (or be empty).

    Under ``config.strategy == "multiworker"`` every worker calls this with the same
    arguments; only the chief writes the run directory.
    """
    from mrigan_tf.data.pipeline import make_dataset
    from mrigan_tf.training.callbacks import LossHistoryPlot, SampleGridCallback
    from mrigan_tf.training.distribute import describe, is_chief, make_strategy

    # First: a multi-worker strategy must exist before TensorFlow runs anything.
    strategy = make_strategy(config.strategy)
    chief = is_chief(strategy)
    run_dir = Path(run_dir)
    if chief:   # the other workers keep only their backup in it
        check_run_dir(run_dir, config, resume)

    dataset = load_dataset(config.data)
    keras.utils.set_random_seed(config.seed)
    output = "joint" if config.uses_joint else "image"
    train_split = dataset.select("train")
    if len(train_split) < config.batch_size:
        raise DataError(config.data, f"the train split holds {len(train_split)} slices, fewer "
                        f"than the batch size {config.batch_size}; lower --batch-size")
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise MriganError(f"the batch size {config.batch_size} does not split evenly among "
                          f"{replicas} replicas; use a multiple of {replicas}")
    steps_per_epoch = config.steps_per_epoch or len(train_split) // config.batch_size
    epochs = config.epochs or math.ceil(config.steps / steps_per_epoch)
    # Image channels (one per modality) plus, for the joint tensor, the mask channel.
    channels = image_channels(dataset.meta) + (1 if output == "joint" else 0)
    image_shape = (dataset.image_size, dataset.image_size, channels)
    with strategy.scope():
        model = build_model(config, image_shape, dataset.num_classes)

    backup_dir = run_dir / BACKUP_DIR
    if not chief:
        # Each worker restores its own copy of the (identical) weights on resume.
        backup_dir = backup_dir / f"worker-{strategy.cluster_resolver.task_id}"
        backup_dir.mkdir(parents=True, exist_ok=True)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_run_config(run_dir, config, image_shape, dataset, steps_per_epoch, epochs,
                         describe(strategy), {"tensorflow_version": tf.__version__})

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
            SampleGridCallback(run_dir / "samples", n=config.samples, seed=config.seed,
                               show=show_samples),
            LossHistoryPlot(run_dir / "loss_curves.png"),
            *(callbacks or []),
        ]
    t0 = time.perf_counter()
    history = model.fit(data, epochs=epochs, steps_per_epoch=steps_per_epoch,
                        callbacks=all_callbacks, verbose=verbose if chief else 0, shuffle=False)
    elapsed = time.perf_counter() - t0
    if not chief:
        return model, history.history
    with atomic_file(run_dir / MODEL_FILE) as tmp:
        model.save(tmp)
    summary = {"seconds": round(elapsed, 1), "epochs": epochs,
               "generator_steps": int(model.g_optimizer.iterations.numpy()),
               "critic_steps": int(model.d_optimizer.iterations.numpy())}
    (run_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return model, history.history


def write_run_config(run_dir: Path, config: TrainConfig, image_shape, dataset,
                     steps_per_epoch: int, epochs: int, distribution: dict[str, Any],
                     backend: dict[str, Any]) -> None:
    """Write ``config.json``: the settings, what the data was, and what trained it.

    ``backend`` adds what only one runner knows (its framework's version; ``"backend":
    "jax"`` for the JAX runner, which a TensorFlow ``--resume`` then refuses).
    """
    with atomic_file(run_dir / CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps({
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
            "distribution": distribution,
        }, indent=2) + "\n")


def read_run_config(run_dir: Path, train_command: str = "mrigan-tf train --out DIR ...") -> dict:
    """The saved ``config.json`` of a run directory, or a ``DataError`` saying it is none."""
    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file():
        raise DataError(run_dir, f"not a run directory (no config.json); train one with "
                        f"`{train_command}`")
    return json.loads(config_path.read_text())


def load_run_model(run_dir: Path, rebuild: Callable[[], keras.Model]):
    """``(model, path)``: ``model.keras`` when training finished, else the last backup's
    weights (of the last finished epoch) loaded into ``rebuild()``'s fresh model.

    A directory that ships only ``generator.weights.h5`` (a published generator, such as
    the package's reference model: a few MB instead of the whole GAN with its critic and
    optimizer state) gives ``rebuild()``'s GAN with those generator weights and an
    untrained critic: enough to generate, not to resume training.
    """
    model_path = run_dir / MODEL_FILE
    if model_path.is_file():
        try:
            return keras.models.load_model(model_path), model_path
        except Exception as exc:  # a truncated or foreign file: say which
            raise DataError(model_path, f"cannot load the model ({type(exc).__name__}: {exc})") from None
    backup = run_dir / BACKUP_DIR / BACKUP_WEIGHTS_FILE
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
        return model, generator_only
    raise DataError(run_dir, "holds neither model.keras nor a backup nor generator weights: "
                    "was training started here?")


def load_run(run_dir: str | os.PathLike):
    """The trained model of a run directory, and its saved configuration.

    Prefers ``model.keras``; a run that was stopped before finishing falls back to its last
    backup (the weights of the last finished epoch).
    """
    run_dir = Path(run_dir)
    saved = read_run_config(run_dir)
    model_families()   # importing the model modules registers their classes for loading
    model, path = load_run_model(run_dir, lambda: build_model(
        TrainConfig(**saved["train"]), tuple(saved["image_shape"]), len(saved["class_names"])))
    return model, saved, path
