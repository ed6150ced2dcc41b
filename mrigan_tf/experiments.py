"""The notebooks' experiments: the loops a lesson runs, written once, so cells only call them.

A notebook teaches one idea and shows the package's code for it; the bookkeeping around an
experiment (reusing a phantom that is already on disk, reusing another notebook's trained
model instead of training it again, collecting fixed-noise samples after every epoch,
sweeping a clip value, fitting FID against 1/N) lives here, where it is tested and where two
notebooks that need it share it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np

from mrigan_tf.data import load_dataset
from mrigan_tf.data.contract import PreparedDataset
from mrigan_tf.data.phantom import PhantomConfig, write_phantom
from mrigan_tf.evaluation.compare import LightJudge
from mrigan_tf.lazy_tensorflow import tf
from mrigan_tf.metrics.frechet import frechet_distance_from_features
from mrigan_tf.metrics.kid import kernel_inception_distance
from mrigan_tf.metrics.c2st import real_vs_real_floor
from mrigan_tf.metrics.ssim import pairwise_ms_ssim
from mrigan_tf.models.choices import WASSERSTEIN_LOSSES
from mrigan_tf.models.cwgan_gp import LOSSES
from mrigan_tf.models.losses import (gradient_penalty, interpolate, minimax_generator_loss,
                                     wasserstein_critic_loss)
from mrigan_tf.reference import is_available, matches_dataset, reference_dir
from mrigan_tf.training.run_directory import (CONFIG_FILE, SUMMARY_FILE, history_columns,
                                              read_history)
from mrigan_tf.synth import build_synthetic_dataset
from mrigan_tf.training.runner import TrainConfig, load_run, train_gan

#: The phantom the reference model was trained on lives here; others get a name of their own.
DEFAULT_DATA_DIR = "data/phantom"


# ## Data

def phantom_dir(subjects: int, size: int, seed: int, root: str | os.PathLike = "data") -> Path:
    """Where a notebook keeps the phantom of these settings: ``data/phantom`` for the default
    one (40 subjects, 64 px, seed 0), a name saying the settings for any other, so that
    notebooks at different settings never overwrite each other's data."""
    default = PhantomConfig()
    if (subjects, size, seed) == (default.subjects, default.size, default.seed):
        return Path(root) / "phantom"
    return Path(root) / f"phantom_{subjects}subjects_{size}px_seed{seed}"


def _same_phantom(directory: Path, config: PhantomConfig) -> bool:
    meta_path = directory / "meta.json"
    if not (directory / "dataset.npz").is_file() or not meta_path.is_file():
        return False
    meta = json.loads(meta_path.read_text())
    # A phantom written before datasets held layouts is written again (same images, and
    # the layouts that SPADE trains on).
    return ("layout_classes" in meta
            and meta.get("phantom") == json.loads(json.dumps(dataclasses.asdict(config))))


def notebook_dataset(dataset: str, subjects: int, size: int, seed: int,
                     root: str | os.PathLike = "data") -> tuple[str, PreparedDataset]:
    """``(data_dir, dataset)`` for a notebook's ``DATASET`` parameter.

    ``"phantom"`` simulates the phantom of ``subjects``, ``size`` and ``seed`` into
    ``phantom_dir(...)``, or reuses it when that directory already holds exactly that phantom
    (notebook 01 writes it; the others then start in seconds). Anything else is the path of a
    prepared dataset directory, loaded as it is.
    """
    if dataset != "phantom":
        return str(dataset), load_dataset(dataset)
    config = PhantomConfig(subjects=subjects, size=size, seed=seed)
    directory = phantom_dir(subjects, size, seed, root)
    if _same_phantom(directory, config):
        print(f"reusing the phantom in {directory} ({subjects} subjects, {size} px, seed {seed})")
    else:
        write_phantom(directory, config, overwrite=True)
    return str(directory), load_dataset(directory)


# ## Trained models: reuse, never retrain

def finished_run_matches(run_dir: str | os.PathLike, config: TrainConfig) -> tuple[bool, str]:
    """``(True, "")`` if ``run_dir`` is a finished run of exactly ``config`` (the same family,
    data, steps, batch, seed and model options: the same model, trained the same way), else
    ``(False, why)``. The XLA switch, the step grouping and the distribution strategy do not
    count: they change how fast a run goes, not what it computes."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file() or not (run_dir / SUMMARY_FILE).is_file():
        return False, f"{run_dir} holds no finished run"
    saved = json.loads((run_dir / CONFIG_FILE).read_text())["train"]
    wanted = dataclasses.asdict(config)
    ignored = {"jit_compile", "steps_per_execution", "strategy"}
    for key in sorted(set(wanted) - ignored):
        if json.loads(json.dumps(wanted[key])) != saved.get(key):
            return False, f"{run_dir} was trained with {key} = {saved.get(key)!r}, not {wanted[key]!r}"
    return True, ""


def train_or_load(config: TrainConfig, run_dir: str | os.PathLike,
                  reuse: Sequence[str | os.PathLike] = (), fresh: bool = True,
                  **train_options: Any) -> tuple[keras.Model, dict[str, list[float]], Path]:
    """The model of ``config``: loaded from the first run directory in ``reuse`` (or
    ``run_dir`` itself) that finished exactly this configuration, else trained into
    ``run_dir`` (emptied first when ``fresh``). Returns ``(model, history, run directory)``
    and says which it did. ``train_options`` go to ``train_gan`` (``verbose``, ``callbacks``).
    """
    for candidate in list(reuse) + ([] if fresh else [run_dir]):
        ok, why = finished_run_matches(candidate, config)
        if ok:
            model, _, _ = load_run(candidate)
            history = _history(Path(candidate))
            print(f"loaded the finished run {candidate} (same model and settings): not retrained")
            return model, history, Path(candidate)
        print(f"not reusing {candidate}: {why}")
    if fresh and Path(run_dir).exists():
        shutil.rmtree(run_dir)
    print(f"training {config.model} for {config.steps} steps into {run_dir}")
    model, history = train_gan(config, run_dir, **train_options)
    return model, history, Path(run_dir)


def _history(run_dir: Path) -> dict[str, list[float]]:
    return history_columns(read_history(run_dir))


def training_summary(run_dir: str | os.PathLike) -> dict[str, Any]:
    """A finished run's ``training_summary.json`` (steps, critic steps, seconds)."""
    return json.loads((Path(run_dir) / SUMMARY_FILE).read_text())


# ## The reference generator

def generator_for(dataset: PreparedDataset, train_own: bool, config: TrainConfig,
                  run_dir: str | os.PathLike, **train_options: Any) -> tuple[str, bool]:
    """The run directory of the generator a notebook should use on ``dataset``, and whether
    it is the shipped reference model.

    The reference model (``mrigan_tf/reference/phantom64``) is used unless ``train_own``, but
    only on the phantom it was trained on (``matches_dataset``: same phantom, same training
    subjects, so that its test subjects are unseen). Otherwise ``config`` is trained into
    ``run_dir``, and the reason is printed.
    """
    ok, why = matches_dataset(dataset) if is_available() else (False, "it is not installed")
    if ok and not train_own:
        print(f"using the shipped reference model ({reference_dir()}), trained on this phantom's "
              "train subjects: nothing to train")
        return str(reference_dir()), True
    reason = ("TRAIN_OWN_GENERATOR = True" if train_own
              else f"the reference model cannot be used here: {why}")
    print(f"training a generator here ({reason})")
    train_or_load(config, run_dir, **train_options)
    return str(run_dir), False


# ## Collecting samples while training

class FixedNoiseSnapshots(keras.callbacks.Callback):
    """After every epoch, the generator's samples for one fixed batch of noise.

    ``frames`` (a list, one ``(N, H, W, C)`` array per epoch) shows what the generator does to
    the same inputs over training: its diversity per epoch, and how far it moves (drift).
    """

    def __init__(self, latent: np.ndarray):
        super().__init__()
        self.latent = latent
        self.frames: list[np.ndarray] = []

    def on_epoch_end(self, epoch, logs=None):
        self.frames.append(self.model.sample(latent=self.latent))


def snapshot_diversity(frames: Sequence[np.ndarray], max_pairs: int = 300,
                       seed: int = 0) -> dict[str, np.ndarray]:
    """Per epoch of ``FixedNoiseSnapshots.frames``: the samples' mean pairwise MS-SSIM
    (``ms_ssim``, epochs 1..E; higher = less diverse, a collapsing generator climbs) and their
    drift, mean $|G_t(z) - G_{t-1}(z)|$ over the fixed noise (``drift``, epochs 2..E; a
    generator that keeps jumping between modes never settles). ``epochs`` and
    ``drift_epochs`` number them from 1."""
    frames = np.asarray(frames)
    similarity = [pairwise_ms_ssim(f, max_pairs=max_pairs, seed=seed)["mean"] for f in frames]
    drift = (np.abs(np.diff(frames, axis=0)).mean(axis=tuple(range(1, frames.ndim)))
             if len(frames) > 1 else np.zeros(0))
    return {"epochs": np.arange(1, len(frames) + 1), "ms_ssim": np.asarray(similarity, float),
            "drift_epochs": np.arange(2, len(frames) + 1), "drift": drift}


# ## Notebook 04: weight clipping, measured

def critic_gradient_norms(critic: keras.Model, real: np.ndarray, fake: np.ndarray,
                          seed: int = 0) -> np.ndarray:
    """$\\|\\nabla_{\\hat x} f(\\hat x)\\|$ on interpolates $\\hat x = \\alpha x + (1 - \\alpha)
    \\tilde x$, $\\alpha \\sim U[0, 1]$ per sample: the slope the critic actually has between
    the real and the generated slices (the optimal critic's is 1)."""
    real = tf.constant(real)
    fake = tf.constant(fake)
    alpha = tf.random.uniform((len(real), 1, 1, 1), seed=seed)
    x_hat = alpha * real + (1 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        scores = critic(x_hat, training=False)
    return tf.norm(tf.reshape(tape.gradient(scores, x_hat), (len(x_hat), -1)), axis=1).numpy()


def kernel_weights(critic: keras.Model) -> np.ndarray:
    """Every kernel weight of ``critic``, flattened (the biases left out)."""
    return np.concatenate([w.numpy().ravel() for w in critic.trainable_variables
                           if "kernel" in w.path])


def clipping_sweep(config: TrainConfig, clip_values: Sequence[float], run_dir_prefix: str,
                   real_batch: np.ndarray, seed: int = 0,
                   **train_options: Any) -> dict[float, dict[str, Any]]:
    """Train ``config`` (a WGAN) once per clip value ``c``, into ``{prefix}_clip{c}``, and
    measure each critic: its gradient norms on interpolates, the share of its kernel weights
    at the bound $\\pm c$, and its last ``em_distance``."""
    results = {}
    for c in clip_values:
        run = dataclasses.replace(config, model_options={**config.model_options, "clip_value": c})
        print(f"--- clip value {c:g}")
        model, history, _ = train_or_load(run, f"{run_dir_prefix}_clip{c:g}", **train_options)
        fake_batch = model.sample(len(real_batch), seed=seed + 1)
        weights = kernel_weights(model.critic)
        results[c] = {"norms": critic_gradient_norms(model.critic, real_batch, fake_batch, seed),
                      "at_bound": float(np.mean(np.abs(weights) >= 0.99 * c)),
                      "em_distance": history["em_distance"][-1]}
    return results


def ring_and_blob(n: int = 2048, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gulrajani et al.'s 2-D toy: real points on 8 small clusters on a circle of radius 2,
    fake points in one blob in the middle; as ``(n, 1, 1, 2)`` "images" of two channels."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(8) / 8
    centers = 2 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    real = centers[rng.integers(0, 8, n)] + 0.05 * rng.standard_normal((n, 2))
    fake = 0.5 * rng.standard_normal((n, 2))
    return (real.reshape(-1, 1, 1, 2).astype("float32"),
            fake.reshape(-1, 1, 1, 2).astype("float32"))


def train_toy_critic(method: str, real: np.ndarray, fake: np.ndarray, steps: int,
                     clip_value: float = 0.01, gp_weight: float = 10.0, batch_size: int = 256,
                     seed: int = 0, log_every: int = 0) -> keras.Model:
    """A small critic (three ReLU layers of 128) trained to separate ``real`` from ``fake``
    with the Wasserstein loss, under ``method``: ``"weight clipping"`` (RMSprop 5e-4, every
    weight clipped to $\\pm$ ``clip_value`` after each step) or ``"gradient penalty"`` (Adam,
    ``gp_weight`` times the penalty on interpolates). One step is a ``tf.function`` (traced
    once; eagerly, a step of this tiny network costs several times more in Python than in
    arithmetic); ``log_every`` prints the loss every that many steps."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    point = keras.Input(real.shape[1:])
    h = keras.layers.Flatten()(point)
    for _ in range(3):
        h = keras.layers.Dense(128, activation="relu")(h)
    critic = keras.Model(point, keras.layers.Dense(1)(h))
    optimizer = (keras.optimizers.RMSprop(5e-4) if method == "weight clipping"
                 else keras.optimizers.Adam(1e-3, beta_1=0.5, beta_2=0.9))
    optimizer.build(critic.trainable_variables)

    @tf.function
    def train_step(real_batch, fake_batch):
        with tf.GradientTape() as tape:
            loss = wasserstein_critic_loss(critic(real_batch), critic(fake_batch))
            if method == "gradient penalty":
                x_hat = interpolate(real_batch, fake_batch,
                                    tf.random.uniform((batch_size, 1, 1, 1)))
                # The inner tape gives grad_x f(x_hat); the outer one records it, so the
                # penalty's gradient w.r.t. the weights flows through it.
                with tf.GradientTape() as inner_tape:
                    inner_tape.watch(x_hat)
                    scores = critic(x_hat)
                loss += gp_weight * gradient_penalty(inner_tape.gradient(scores, x_hat))
        grads = tape.gradient(loss, critic.trainable_variables)
        optimizer.apply_gradients(zip(grads, critic.trainable_variables))
        if method == "weight clipping":
            for w in critic.trainable_variables:
                w.assign(tf.clip_by_value(w, -clip_value, clip_value))
        return loss

    for step in range(steps):
        loss = train_step(tf.constant(real[rng.integers(0, len(real), batch_size)]),
                          tf.constant(fake[rng.integers(0, len(fake), batch_size)]))
        if log_every and (step + 1) % log_every == 0:
            print(f"{method}: step {step + 1}/{steps}, critic loss {float(loss):.4f}")
    return critic


def critic_surface(critic: keras.Model, xs: np.ndarray) -> tuple[np.ndarray, float]:
    """The critic's values on the grid ``xs`` x ``xs`` (2-D points), and the median norm of
    its gradient there."""
    grid = tf.constant(np.stack(np.meshgrid(xs, xs), axis=-1).reshape(-1, 1, 1, 2)
                       .astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(grid)
        values = critic(grid)
    slope = np.median(tf.norm(tf.reshape(tape.gradient(values, grid), (len(grid), -1)),
                              axis=1).numpy())
    return values.numpy().reshape(len(xs), len(xs)), float(slope)


# ## Notebook 07: how FID lies, measured

def fid_sample_size_curves(pools: dict[str, np.ndarray], reference: np.ndarray,
                           sizes: Sequence[int], repeats: int, kid_subsets: int,
                           seed: int = 0) -> tuple[list[int], dict[str, dict[str, Any]]]:
    """FID and KID of random draws of N features from each pool against ``reference``,
    ``repeats`` draws per N, and the straight-line fit FID_N = FID_inf + k / N.

    Returns the sizes that every pool can supply and, per pool, ``fid`` and ``kid`` arrays of
    shape (sizes, repeats), the fit's coefficients ``fit`` (slope, intercept) and ``fid_inf``.
    """
    sizes = [n for n in sizes if 2 <= n <= min(len(f) for f in pools.values())]
    draws = np.random.default_rng(seed + 1)
    curves = {}
    for name, feats in pools.items():
        fid_n, kid_n = np.zeros((len(sizes), repeats)), np.zeros((len(sizes), repeats))
        for i, n in enumerate(sizes):
            for r in range(repeats):
                pick = draws.choice(len(feats), n, replace=False)
                fid_n[i, r] = frechet_distance_from_features(feats[pick], reference)
                kid_n[i, r] = kernel_inception_distance(feats[pick], reference,
                                                        subsets=kid_subsets, seed=seed + r)[0]
        # FID_N = FID_inf + k / N: a straight line in 1/N; its intercept is FID_inf.
        fit = (np.array([0.0, np.nan]) if len(sizes) < 2
               else np.polyfit(1.0 / np.asarray(sizes), fid_n.mean(axis=1), 1))
        curves[name] = {"fid": fid_n, "kid": kid_n, "fit": fit, "fid_inf": fit[1]}
    return sizes, curves


def class_mix_fids(features: np.ndarray, labels: np.ndarray, reference: np.ndarray,
                   class_names: Sequence[str], repeats: int,
                   rng: np.random.Generator) -> tuple[int, dict[str, list[float]]]:
    """FID against ``reference`` of real sets that differ only in their class proportions:
    the natural mix, equal proportions, and the first class only, all of the same size N
    (so that the sample-size bias is the same), ``repeats`` random draws each.
    Returns ``(N, {mix: [FID per draw]})``."""
    per_class = [np.flatnonzero(labels == k) for k in range(len(class_names))]
    n_each = min(len(p) for p in per_class)
    n_mix = n_each * len(per_class)
    fids: dict[str, list[float]] = {}
    for _ in range(repeats if n_each >= 2 else 0):
        picks = {"natural proportions": rng.choice(len(features), n_mix, replace=False),
                 "equal proportions": np.concatenate([rng.choice(p, n_each, replace=False)
                                                      for p in per_class])}
        if len(per_class[0]) >= n_mix:
            picks[f"{class_names[0]} slices only"] = rng.choice(per_class[0], n_mix,
                                                                replace=False)
        for name, pick in picks.items():
            fids.setdefault(name, []).append(
                frechet_distance_from_features(features[pick], reference))
    return n_mix, fids


#: The ways ``resize_round_trips`` sends a slice down and back up.
RESIZE_METHODS = {"nearest": {"method": "nearest"},
                  "bilinear": {"method": "bilinear"},
                  "bilinear, anti-aliased": {"method": "bilinear", "antialias": True}}


def resize_round_trips(images: np.ndarray, factor: int = 2,
                       methods: dict[str, dict[str, Any]] | None = None) -> dict[str, np.ndarray]:
    """``images`` (N, H, W, C) in [-1, 1] shrunk ``factor`` times by each of ``methods``
    (name -> ``tf.image.resize`` options; default ``RESIZE_METHODS``) and brought back to
    their size bilinearly: the same slices, only their resampling changed."""
    images = np.asarray(images, np.float32)
    height, width = images.shape[1:3]
    out = {}
    for name, options in (methods or RESIZE_METHODS).items():
        down = tf.image.resize(images, (height // factor, width // factor), **options)
        out[name] = np.clip(tf.image.resize(down, (height, width), method="bilinear").numpy(),
                            -1, 1).astype(np.float32)
    return out


def fid_by_extractor(extractors: dict[str, Any], reference: np.ndarray, candidate: np.ndarray,
                     heldout: np.ndarray) -> dict[str, dict[str, float]]:
    """FID of ``candidate`` slices and of ``heldout`` real ones (the floor) against the
    ``reference`` slices, in each extractor's features (name -> a callable with ``dim``).
    Returns name -> ``dim``, ``fid``, ``floor`` and ``ratio`` (fid / floor)."""
    results = {}
    for name, extract in extractors.items():
        features = extract(reference)
        fid = frechet_distance_from_features(extract(candidate), features)
        floor = frechet_distance_from_features(extract(heldout), features)
        results[name] = {"dim": int(extract.dim), "fid": float(fid), "floor": float(floor),
                         "ratio": float(fid / max(floor, 1e-12))}
    return results


# ## The loss functions (notebook 10)

def generator_losses() -> dict[str, Any]:
    """The generator losses to compare, by name: the saturating minimax one, then each
    ``--loss`` of the cWGAN-GP (``mrigan_tf.models.cwgan_gp.LOSSES``; wgan-gp and wgan-clip
    share the Wasserstein generator loss), all functions of the critic's outputs on fakes."""
    return {"minimax (saturating)": minimax_generator_loss, "ns": LOSSES["ns"][1],
            "lsgan": LOSSES["lsgan"][1], "hinge": LOSSES["hinge"][1],
            "wasserstein": LOSSES["wgan-gp"][1]}


def generator_loss_gradients(losses: dict[str, Any], outputs: np.ndarray) -> dict[str, np.ndarray]:
    """``dL_G / dl`` for each critic output ``l`` in ``outputs``, per loss (name -> function
    of a batch of outputs, e.g. ``generator_losses()``), by automatic differentiation.

    The losses are batch means, so the gradient w.r.t. one sample's output is ``1/N`` of its
    own term's derivative; multiplied by ``N`` here, each value is the derivative for that
    output alone. Negative: the generator is pushed to raise the critic's output.
    """
    values = tf.constant(np.asarray(outputs, np.float32).reshape(-1, 1))
    gradients = {}
    for name, loss in losses.items():
        with tf.GradientTape() as tape:
            tape.watch(values)
            total = loss(values)
        gradients[name] = tape.gradient(total, values).numpy()[:, 0] * len(outputs)
    return gradients


def loss_model_options(loss: str, options: dict[str, Any], n_critic: int) -> dict[str, Any]:
    """``options`` with ``loss``, and ``n_critic`` critic updates per generator update for the
    Wasserstein losses (the others keep their default, one: their discriminator is not asked
    to approximate a distance, so it need not be trained closer to its optimum)."""
    options = {**options, "loss": loss}
    if loss in WASSERSTEIN_LOSSES:
        options["n_critic"] = n_critic
    else:
        options.pop("n_critic", None)
    return options


def train_each_loss(config: TrainConfig, losses: Sequence[str], run_dir: str | os.PathLike,
                    n_critic: int, **train_options: Any
                    ) -> tuple[dict[str, Path], dict[str, dict[str, list[float]]]]:
    """``config`` trained once per loss, into ``run_dir/<loss>``, each with
    ``loss_model_options``; a finished run of exactly that configuration is loaded instead.
    Returns ``(runs, histories)``: loss -> run directory, loss -> its logged columns."""
    runs, histories = {}, {}
    for loss in losses:
        options = loss_model_options(loss, config.model_options, n_critic)
        one = dataclasses.replace(config, model_options=options)
        target = Path(run_dir) / loss
        print(f"--- {loss}: {options}")
        _, histories[loss], runs[loss] = train_or_load(one, target, reuse=[target],
                                                       **train_options)
    return runs, histories


#: The comparison table's columns: (key, title, format) for ``visualization.format_rows``.
LOSS_TABLE_COLUMNS = [("c2st", "C2ST", ".3f"), ("c2st_ci_low", "low", ".3f"),
                      ("c2st_ci_high", "high", ".3f"), ("fid_over_floor", "FID/floor", ".2f"),
                      ("empty_tumor_masks", "tumor w/o mask", ".1%"),
                      ("seconds", "train s", ".0f"), ("critic_steps", "D steps", "d")]


def loss_comparison(runs: dict[str, str | os.PathLike], real: PreparedDataset, n: int,
                    seed: int = 0, classifier_steps: int = 1000, max_images: int = 2000,
                    models: dict[str, keras.Model] | None = None) -> dict[str, dict[str, Any]]:
    """One row per trained run (name -> run directory), judged like ``mrigan-tf compare``
    judges its snapshots (``evaluation.compare.LightJudge``): the classifier two-sample
    test's accuracy on the image channel with its interval (1/2: indistinguishable), and
    the FID of as many synthetic slices as there are held-out real ones, in the domain
    classifier's features, over the real-vs-real FID (1: as close as new real subjects).
    Each run generates ``n`` balanced pairs. Also: the share of tumor pairs without a mask,
    training seconds and critic steps. The first row, ``real (floor)``, is real train vs
    real held-out subjects: the best a generator can score. ``models``: the runs' models
    already loaded (name -> model), to skip loading them again.
    """
    judge = LightJudge(real, {"seed": seed, "classifier_steps": classifier_steps,
                              "max_images": max_images})
    floor = real_vs_real_floor(real, seed=seed, channels="image")
    rows: dict[str, dict[str, Any]] = {"real (floor)": {
        "c2st": floor.accuracy, "c2st_ci_low": floor.ci_low, "c2st_ci_high": floor.ci_high,
        "fid_over_floor": 1.0}}
    for name, run in runs.items():
        model = (models or {}).get(name) or load_run(run)[0]
        synthetic = build_synthetic_dataset(model, real.class_names, n, seed=seed,
                                            progress=False, meta={"snapshot": {"model": name}})
        score = judge.score(synthetic)
        tumor = synthetic.labels != 0
        area = synthetic.masks.reshape(len(synthetic), -1).sum(axis=1)
        summary = training_summary(run)
        rows[name] = {"c2st": score["c2st_image"], "c2st_ci_low": score["c2st_image_ci_low"],
                      "c2st_ci_high": score["c2st_image_ci_high"],
                      "fid_over_floor": score["fid_over_floor"],
                      "empty_tumor_masks": float(np.mean(area[tumor] == 0)) if tumor.any() else None,
                      "seconds": summary["seconds"], "critic_steps": summary["critic_steps"]}
    return rows


# ## ProGAN: what the players see while growing (notebook 09)

def growth_views(model, states: Sequence[tuple[int, float]], real: np.ndarray | None = None,
                 latent: np.ndarray | None = None, labels: np.ndarray | None = None) -> np.ndarray:
    """For each ``(level, alpha)`` of ``states``, shape (len(states), N, H, W, C): the real
    batch ``real`` as a ``ProGAN``'s critic sees it then (``fade_reals``), or, without
    ``real``, the model's samples of ``latent`` and ``labels``. The model's own growth state
    is put back afterwards."""
    saved = model.growth
    views = []
    try:
        for level, alpha in states:
            model.set_growth(level, alpha)
            views.append(keras.ops.convert_to_numpy(model.fade_reals(real)) if real is not None
                         else model.sample(latent=latent, labels=labels))
    finally:
        model.set_growth(*saved)
    return np.stack(views)
