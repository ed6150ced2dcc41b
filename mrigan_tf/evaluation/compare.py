"""
Title: Comparing generators on one budget
Description: ``mrigan-tf compare CONFIG --out DIR``: train every generator a TOML file lists on
the same data for the same budget, generate, evaluate each with the full evaluation, and set
them side by side in one table, one picture of samples and one plot of quality against time.

## The config file

A TOML file (read with the standard library's ``tomllib``)::

    data = "runs/demo/phantom"    # the real dataset (relative to the current directory)

    [budget]                      # the same for every model: minutes OR steps
    minutes = 20                  # wall-clock training time per model
    max_steps = 100000            # under a time budget, a cap on the generator steps
    checkpoints = 4               # snapshots at 1/4, 2/4, 3/4 and 4/4 of the budget
    snapshot_pairs = 500          # pairs generated at each snapshot (the light evaluation)

    [training]                    # shared TrainConfig fields
    batch_size = 32
    seed = 0
    steps_per_epoch = 50
    jit_compile = false

    [generate]                    # the synthetic set scored by the full evaluation
    n = 2000
    proportions = "real"          # "real" (the real train split's class mix), "equal", or a list

    [evaluation]                  # passed to evaluate_synthetic (max_images, classifier_steps...)
    max_images = 2000

    [tstr]                        # passed to run_tstr; leave out, or enabled = false, to skip
    fractions = [1.0]
    seeds = [0]

    [[model]]                     # one per generator
    name = "cwgan-gp-hinge"       # its folder under runs/, synthetic/, evaluation/...
    model = "cwgan-gp"            # the family, as `mrigan-tf train --model` takes it
    model_options = { width = 16, loss = "hinge" }
    # and any of d_learning_rate, g_learning_rate, precision, steps_per_execution;
    # a layout-conditioned model (spade) also layouts = "real" (the train split's layouts,
    # flipped and warped; the default) or "copied" (``mrigan_tf.synth.LAYOUT_SOURCES``)

Every entry is checked before anything trains: an unknown key, family, option or budget, or a
duplicate name, is a one-line error naming the file and the entry. Every model trains on
image + mask (``joint``): the unconditional families (gan, dcgan, wgan) read each slice's class
from its mask (``mrigan_tf.synth``), so all of them make labelled synthetic datasets.

## What it writes, and how it resumes

    DIR/runs/NAME/         the run directory (``mrigan-tf train``'s), kept
    DIR/snapshots/NAME/    K-of-N/ (snapshot_pairs pairs generated at K/N of the budget, K < N),
                           K-of-N.json (their light scores), clock.json (training seconds)
    DIR/synthetic/NAME/    generate.n pairs from the final model
    DIR/evaluation/NAME/   the full evaluation (``mrigan-tf evaluate``'s report)
    DIR/tstr/NAME/         TSTR (``mrigan-tf tstr``'s report), when [tstr] asks for it
    DIR/settings.json      each model's settings, so a changed entry is not silently mixed in
    DIR/report.md/.csv/.json, samples.png, quality_vs_time.png

Each stage is skipped when its complete output exists (every output appears whole or not at
all), and a run that was cut short resumes from its last backup, its training clock with it:
a killed ``compare`` started again with the same command continues where it stopped.
``--overwrite`` redoes the selected models from scratch; ``--only NAME`` runs just those.

## The budget, and quality against training time

Under a time budget, ``clock.json`` counts each model's training seconds across
resumptions: the time its epochs spend in train steps, not the backup, sample grid, loss plot
and snapshot written after each epoch (bookkeeping that would cost a fast-stepping model a
larger share of its budget). Training stops after the first epoch that ends past the budget:
all models get the same time, so a slow-per-step model pays for it. The wall-clock of a
model's training is a little longer than its budget. With
``steps`` instead, every model takes the same number of generator steps.

The snapshots give the quality-against-time curve its points. At the end of the first epoch
past K/N of the budget (K = 1 ... N-1), the generator (its EMA weights, when it keeps them)
draws ``snapshot_pairs`` pairs, written as a small dataset. After training, each snapshot gets
a *light* evaluation: the C2ST on the image channel (the same fixed classifier as the full
evaluation) and the matched-N FID on the domain features divided by the real-vs-real FID
floor computed in the same process with the same features (so the ratio never mixes two
feature extractors; the domain classifier is trained as the full evaluation trains it, on the
same subsamples). The last point, K = N, is the final model: its figures are the full
evaluation's, the table's, not a second, smaller measurement. A C2ST costs about a minute on
two CPU cores whatever N is (``mrigan_tf.metrics.c2st``), so ``checkpoints = N`` adds N - 1
of them per model.
"""

from __future__ import annotations

import csv
import dataclasses
import inspect
import io
import json
import math
import os
import re
import shutil
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mrigan_tf.atomic import atomic_directory, atomic_file
from mrigan_tf.data.contract import (PreparedDataset, load_dataset, validate_dataset,
                                     write_dataset_files)
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.evaluation.report import REPORT_JSON, evaluate_synthetic
from mrigan_tf.evaluation.tstr import RESULTS_FILE as TSTR_JSON, run_tstr
from mrigan_tf.metrics.c2st import classifier_two_sample_test
from mrigan_tf.metrics.domain_classifier import train_domain_classifier
from mrigan_tf.metrics.features import domain_extractor
from mrigan_tf.metrics.frechet import frechet_distance_from_features
from mrigan_tf.synth import LAYOUT_SOURCES, build_synthetic_dataset, write_synthetic_dataset
from mrigan_tf.training.run_directory import CONFIG_FILE, SUMMARY_FILE
from mrigan_tf.training.runner import TrainConfig, train_gan
from mrigan_tf.visualization import overlay_mask, plt

# The names of DESIGN.md's contract for an --out directory: report.md and report.json.
TABLE_MD, TABLE_CSV, TABLE_JSON = "report.md", "report.csv", "report.json"
SAMPLES_FIGURE, TIME_FIGURE = "samples.png", "quality_vs_time.png"
SETTINGS_FILE = "settings.json"
CLOCK_FILE = "clock.json"
STAGES = ("runs", "snapshots", "synthetic", "evaluation", "tstr")

#: What each part of the config file may hold (budget and training are checked here;
#: evaluation and tstr against the signatures of the functions they are passed to).
BUDGET_KEYS = ("minutes", "steps", "max_steps", "checkpoints", "snapshot_pairs")
TRAINING_KEYS = ("batch_size", "seed", "steps_per_epoch", "jit_compile", "samples",
                 "steps_per_execution")
GENERATE_KEYS = ("n", "seed", "proportions", "batch_size", "val_fraction")
MODEL_KEYS = ("name", "model", "model_options", "d_learning_rate", "g_learning_rate",
              "precision", "steps_per_execution", "joint", "layouts")
TOP_KEYS = ("data", "budget", "training", "generate", "evaluation", "tstr", "model")
#: Arguments compare itself gives (never from the file).
_OWN_ARGUMENTS = {"real_dir", "synthetic_dir", "out_dir", "real", "synthetic", "overwrite",
                  "progress"}
DEFAULT_MAX_STEPS = 100_000
DEFAULT_CHECKPOINTS = 4
DEFAULT_SNAPSHOT_PAIRS = 500
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# ## The config file

@dataclasses.dataclass
class CompareConfig:
    """A validated comparison: the shared settings and one ``TrainConfig`` per model."""

    path: Path
    data: str
    minutes: float | None
    steps: int | None
    max_steps: int
    checkpoints: int
    snapshot_pairs: int
    generate: dict[str, Any]
    evaluation: dict[str, Any]
    tstr: dict[str, Any] | None
    models: dict[str, TrainConfig]
    #: Layout-conditioned models (SPADE): where their layouts come from (``synth.LAYOUT_SOURCES``).
    layouts: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def budget_seconds(self) -> float | None:
        return None if self.minutes is None else 60.0 * self.minutes

    def settings(self, name: str) -> dict[str, Any]:
        """Everything that shapes model ``name``'s outputs (saved to ``settings.json``)."""
        return {"train": dataclasses.asdict(self.models[name]), "minutes": self.minutes,
                "steps": self.steps, "checkpoints": self.checkpoints,
                "snapshot_pairs": self.snapshot_pairs, "generate": self.generate,
                "evaluation": self.evaluation, "tstr": self.tstr,
                **({"layouts": self.layouts[name]} if name in self.layouts else {})}


def _refuse_unknown(where: str, table: dict, allowed: Sequence[str]) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise MriganError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(unknown)}; allowed: {', '.join(allowed)}")


def _table(path: Path, raw: dict, key: str) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise MriganError(f"{path}: [{key}] must be a table, got {value!r}")
    return dict(value)


def _parameters(function) -> list[str]:
    return [p for p in inspect.signature(function).parameters if p not in _OWN_ARGUMENTS]


EVALUATION_KEYS = _parameters(evaluate_synthetic)
TSTR_KEYS = ["enabled", *_parameters(run_tstr)]


def load_compare_config(path: str | os.PathLike) -> CompareConfig:
    """Read and check a comparison config; every error names the file and the entry."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(path, "no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read the config ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise DataError(path, f"not valid TOML: {exc}") from None
    _refuse_unknown(str(path), raw, TOP_KEYS)
    if not isinstance(raw.get("data"), str):
        raise MriganError(f"{path}: data = \"DIR\" (the real dataset) is required")

    budget = _table(path, raw, "budget")
    _refuse_unknown(f"{path} [budget]", budget, BUDGET_KEYS)
    minutes, steps = budget.get("minutes"), budget.get("steps")
    if (minutes is None) == (steps is None):
        raise MriganError(f"{path} [budget]: give exactly one of minutes = M (wall-clock "
                          "training time per model) or steps = N (generator steps per model)")
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, (int, float))
                                or not minutes > 0 or not math.isfinite(minutes)):
        raise MriganError(f"{path} [budget]: minutes must be a positive number, got {minutes!r}")
    for key in ("steps", "max_steps", "checkpoints", "snapshot_pairs"):
        value = budget.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < (2 if key == "snapshot_pairs" else 1)):
            raise MriganError(f"{path} [budget]: {key} must be a whole number of at least "
                              f"{2 if key == 'snapshot_pairs' else 1}, got {value!r}")
    if steps is not None and "max_steps" in budget:
        raise MriganError(f"{path} [budget]: max_steps caps a time budget; with steps = N "
                          "every model takes exactly N steps")

    training = _table(path, raw, "training")
    _refuse_unknown(f"{path} [training]", training, TRAINING_KEYS)
    generate = _table(path, raw, "generate")
    _refuse_unknown(f"{path} [generate]", generate, GENERATE_KEYS)
    generate.setdefault("n", 2000)
    generate.setdefault("proportions", "real")
    proportions = generate["proportions"]
    if not (proportions in ("real", "equal") or isinstance(proportions, list)):
        raise MriganError(f"{path} [generate]: proportions must be \"real\", \"equal\" or a "
                          f"list of numbers, got {proportions!r}")
    evaluation = _table(path, raw, "evaluation")
    _refuse_unknown(f"{path} [evaluation]", evaluation, EVALUATION_KEYS)
    tstr = _table(path, raw, "tstr") if "tstr" in raw else None
    if tstr is not None:
        enabled = tstr.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise MriganError(f"{path} [tstr]: enabled must be true or false, got {enabled!r}")
        _refuse_unknown(f"{path} [tstr]", tstr, TSTR_KEYS)
        tstr = tstr if enabled else None

    entries = raw.get("model")
    if not isinstance(entries, list) or not entries:
        raise MriganError(f"{path}: no [[model]] entries: list the generators to compare")
    models: dict[str, TrainConfig] = {}
    layouts: dict[str, str] = {}
    for i, entry in enumerate(entries, 1):
        name = entry.get("name")
        where = f"{path} [[model]] #{i}" + (f" ({name!r})" if isinstance(name, str) else "")
        _refuse_unknown(where, entry, MODEL_KEYS)
        if not isinstance(name, str) or not _NAME.match(name):
            raise MriganError(f"{where}: name must be a folder name (letters, digits, '-', '_', "
                              f"'.'), got {name!r}")
        if name in models:
            raise MriganError(f"{where}: the name {name!r} is used twice; names must be unique")
        if "model" not in entry:
            raise MriganError(f"{where}: model = \"FAMILY\" is required")
        if entry.get("joint", True) is not True:
            raise MriganError(f"{where}: compare trains every model on image + mask; "
                              "remove joint = false")
        fields = {**training, **{k: v for k, v in entry.items()
                                 if k not in ("name", "joint", "layouts")}}
        if not isinstance(fields.get("model_options", {}), dict):
            raise MriganError(f"{where}: model_options must be a table, e.g. "
                              "model_options = { width = 16 }")
        try:
            models[name] = TrainConfig(data=raw["data"], joint=True,
                                       steps=steps or budget.get("max_steps", DEFAULT_MAX_STEPS),
                                       **fields)
        except MriganError as exc:
            raise MriganError(f"{where}: {exc}") from None
        except TypeError as exc:
            raise MriganError(f"{where}: {exc}") from None
        if models[name].layout_conditional:
            layouts[name] = entry.get("layouts", "real")
            if layouts[name] not in LAYOUT_SOURCES:
                raise MriganError(f"{where}: layouts must be one of {', '.join(LAYOUT_SOURCES)}, "
                                  f"got {layouts[name]!r}")
        elif "layouts" in entry:
            raise MriganError(f"{where}: layouts is for a layout-conditioned model (spade), "
                              f"not {models[name].model}")
    return CompareConfig(path=path, data=raw["data"], minutes=minutes, steps=steps,
                         max_steps=budget.get("max_steps", DEFAULT_MAX_STEPS),
                         checkpoints=budget.get("checkpoints", DEFAULT_CHECKPOINTS),
                         snapshot_pairs=budget.get("snapshot_pairs", DEFAULT_SNAPSHOT_PAIRS),
                         generate=generate, evaluation=evaluation, tstr=tstr, models=models,
                         layouts=layouts)


# ## Training on the budget, with snapshots along the way

def _write_json(path: Path, value: Any) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2, allow_nan=False) + "\n")


def _proportions(setting, real: PreparedDataset) -> list[float] | None:
    if setting == "equal":
        return None
    if setting == "real":
        train = real.select("train")
        return np.bincount(train.labels, minlength=real.num_classes).tolist()
    return list(setting)


def snapshot_name(k: int, n: int) -> str:
    return f"{k}-of-{n}"


class BudgetSnapshots(keras.callbacks.Callback):
    """Count training seconds across resumptions (``clock.json``), stop when a time budget is
    spent, and write a small synthetic dataset at each of ``checkpoints`` fractions of the
    budget (seconds, or generator steps with ``steps``)."""

    def __init__(self, directory: Path, real: PreparedDataset, checkpoints: int, pairs: int,
                 seconds: float | None = None, steps: int | None = None, seed: int = 0,
                 proportions: list[float] | None = None, layouts_from: str = "real"):
        super().__init__()
        self.layouts_from = layouts_from
        self.directory, self.real = Path(directory), real
        self.checkpoints, self.pairs, self.seed = checkpoints, pairs, seed
        self.budget_seconds, self.budget_steps = seconds, steps
        self.proportions = proportions
        self.clock = {"seconds": 0.0}
        self._epoch_start = self._last_step = None

    def on_train_begin(self, logs=None):
        path = self.directory / CLOCK_FILE
        if path.is_file():
            self.clock = json.loads(path.read_text())

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._last_step = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._last_step = time.perf_counter()

    def _generator_steps(self) -> int:
        return int(self.model.g_optimizer.iterations.numpy())

    def _progress(self) -> float:
        if self.budget_seconds is not None:
            return self.clock["seconds"] / self.budget_seconds
        return self._generator_steps() / self.budget_steps

    def on_epoch_end(self, epoch, logs=None):
        # The epoch's steps, not the backup, sample grid and plot written after them.
        self.clock["seconds"] += self._last_step - self._epoch_start
        _write_json(self.directory / CLOCK_FILE, self.clock)
        progress = self._progress()
        for k in range(1, self.checkpoints):
            if progress >= k / self.checkpoints - 1e-9:
                self._snapshot(k)
        if self.budget_seconds is not None and progress >= 1.0:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        # A time budget cut short by max_steps: the missing points are the final model.
        for k in range(1, self.checkpoints):
            self._snapshot(k)

    def _snapshot(self, k: int) -> None:
        target = self.directory / snapshot_name(k, self.checkpoints)
        if target.exists():
            return
        conditional = getattr(self.model, "CONDITIONAL", False)
        renders_layouts = getattr(self.model, "LAYOUT_CONDITIONAL", False)
        ds = build_synthetic_dataset(
            self.model, self.real.class_names, self.pairs, seed=self.seed,
            proportions=self.proportions if conditional or renders_layouts else None,
            progress=False, layout_source=self.real.select("train") if renders_layouts else None,
            layouts_from=self.layouts_from,
            meta={"modality": self.real.meta.get("modality", "synthetic"),
                  "channels": self.real.meta.get("channels"),
                  "snapshot": {"fraction": k / self.checkpoints,
                               "training_seconds": round(self.clock["seconds"], 2),
                               "generator_steps": self._generator_steps()}})
        validate_dataset(ds, target)
        with atomic_directory(target) as tmp:
            write_dataset_files(ds, tmp)


def train_model(config: CompareConfig, name: str, out: Path, real: PreparedDataset,
                progress: bool = True) -> None:
    """Train model ``name`` into ``out/runs/NAME`` on the budget, resuming a partial run."""
    run_dir = out / "runs" / name
    snapshots = out / "snapshots" / name
    snapshots.mkdir(parents=True, exist_ok=True)
    # A copy: training fills in options read from the data (a layout model's classes), and
    # the entry must stay what settings.json recorded.
    train = dataclasses.replace(config.models[name],
                                model_options=dict(config.models[name].model_options))
    callback = BudgetSnapshots(snapshots, real, config.checkpoints, config.snapshot_pairs,
                               seconds=config.budget_seconds, steps=config.steps,
                               seed=config.generate.get("seed", 0),
                               proportions=_proportions(config.generate["proportions"], real),
                               layouts_from=config.layouts.get(name, "real"))
    train_gan(train, run_dir, resume=(run_dir / CONFIG_FILE).is_file(), callbacks=[callback],
              verbose="auto" if progress else 0)


# ## The light evaluation of the snapshots

class LightJudge:
    """C2ST on the image channel and matched-N FID over its real-vs-real floor, for the
    snapshots. The domain classifier (the FID's features) is trained once per process, when
    the first snapshot is scored; the C2ST's floor is the full evaluation's."""

    def __init__(self, real: PreparedDataset, evaluation: dict[str, Any]):
        self.real = real
        self.seed = int(evaluation.get("seed", 0))
        self.max_images = int(evaluation.get("max_images", 2000))
        self.classifier_steps = int(evaluation.get("classifier_steps", 1000))
        self._features = None

    def _subsample(self, ds: PreparedDataset, rng) -> PreparedDataset:
        if len(ds) <= self.max_images:
            return ds
        keep = np.sort(rng.choice(len(ds), self.max_images, replace=False))
        return PreparedDataset(ds.images[keep], ds.masks[keep], ds.labels[keep],
                               ds.subjects[keep], ds.split[keep], dict(ds.meta))

    def _reference(self):
        if self._features is None:
            split = "test" if np.any(self.real.split == "test") else "val"
            held = self.real.select(split)
            classifier = train_domain_classifier(self.real, steps=self.classifier_steps,
                                                 seed=self.seed, heldout=held)
            extract = domain_extractor(classifier)
            rng = np.random.default_rng(self.seed)
            f_train = extract(self._subsample(self.real.select("train"), rng).images)
            f_held = extract(self._subsample(held, rng).images)
            self._features = (extract, f_train, f_held,
                              frechet_distance_from_features(f_held, f_train))
        return self._features

    def score(self, snapshot: PreparedDataset) -> dict:
        c2st = classifier_two_sample_test(self.real.select("train"), snapshot, seed=self.seed,
                                          channels="image")
        extract, f_train, f_held, fid_floor = self._reference()
        f_syn = extract(snapshot.images)
        if len(f_syn) > len(f_held):
            pick = np.random.default_rng(self.seed + 1).choice(len(f_syn), len(f_held),
                                                              replace=False)
            f_syn = f_syn[pick]
        fid = frechet_distance_from_features(f_syn, f_train)
        return {**snapshot.meta["snapshot"], "n": len(snapshot),
                "c2st_image": c2st.accuracy, "c2st_image_ci_low": c2st.ci_low,
                "c2st_image_ci_high": c2st.ci_high,
                "fid_matched_n": fid, "fid_floor": fid_floor,
                "fid_over_floor": fid / fid_floor if fid_floor > 0 else None,
                "n_matched": int(len(f_syn))}


def score_snapshots(config: CompareConfig, name: str, out: Path, judge: LightJudge) -> list[dict]:
    """Score every snapshot of ``name`` that has no score yet; return all its scores."""
    folder = out / "snapshots" / name
    scores = []
    for k in range(1, config.checkpoints):
        snap = folder / snapshot_name(k, config.checkpoints)
        path = snap.with_suffix(".json")
        if not path.is_file():
            if not snap.is_dir():
                raise DataError(snap, "snapshot missing: its run finished without it (was the "
                                "run trained outside compare?); rerun with --overwrite --only "
                                f"{name}")
            _write_json(path, judge.score(load_dataset(snap)))
        scores.append(json.loads(path.read_text()))
    return scores


# ## The whole comparison

def _done(out: Path, stage: str, name: str) -> bool:
    marker = {"runs": SUMMARY_FILE, "synthetic": "dataset.npz", "evaluation": REPORT_JSON,
              "tstr": TSTR_JSON}[stage]
    return (out / stage / name / marker).is_file()


def _check_settings(config: CompareConfig, names: Sequence[str], out: Path,
                    overwrite: bool) -> None:
    """Refuse to mix outputs of changed settings into the table; remember the settings."""
    path = out / SETTINGS_FILE
    saved = json.loads(path.read_text()) if path.is_file() else {}
    for name in names:
        current = json.loads(json.dumps(config.settings(name)))
        has_output = any((out / stage / name).exists() for stage in STAGES)
        if overwrite:
            for stage in STAGES:
                shutil.rmtree(out / stage / name, ignore_errors=True)
        elif has_output and saved.get(name) not in (None, current):
            changed = sorted(k for k in current if saved[name].get(k) != current[k])
            raise MriganError(f"{config.path}: the settings of model {name!r} changed since "
                              f"its outputs in {out} were made ({', '.join(changed)}); pass "
                              f"--overwrite to redo it, or choose another --out")
        saved[name] = current
    out.mkdir(parents=True, exist_ok=True)
    _write_json(path, saved)


def run_comparison(config: CompareConfig | str | os.PathLike, out: str | os.PathLike,
                   only: Sequence[str] | None = None, overwrite: bool = False,
                   progress: bool = True) -> dict:
    """Train, generate, evaluate (and TSTR) every model of ``config`` (or those in ``only``),
    skipping each stage whose complete output exists; then write the table and pictures over
    all models that have an evaluation. Returns the table (``report.json``)."""
    if not isinstance(config, CompareConfig):
        config = load_compare_config(config)
    out = Path(out)
    names = list(config.models)
    if only:
        unknown = [n for n in only if n not in config.models]
        if unknown:
            raise MriganError(f"--only {', '.join(unknown)}: not in {config.path} (its models: "
                              f"{', '.join(names)})")
        names = [n for n in names if n in only]
    real = load_dataset(config.data)
    _check_settings(config, names, out, overwrite)
    judge = LightJudge(real, config.evaluation)
    proportions = _proportions(config.generate["proportions"], real)
    for name in names:
        if not _done(out, "runs", name):
            train_model(config, name, out, real, progress)
        if not _done(out, "synthetic", name):
            conditional = (config.models[name].conditional
                           or config.models[name].layout_conditional)
            write_synthetic_dataset(
                out / "runs" / name, out / "synthetic" / name,
                **{k: v for k, v in config.generate.items() if k != "proportions"},
                proportions=proportions if conditional else None, progress=progress,
                overwrite=True, layouts_from=config.layouts.get(name, "real"))
        if not _done(out, "evaluation", name):
            evaluate_synthetic(config.data, out / "synthetic" / name, out / "evaluation" / name,
                               progress=progress, overwrite=True, **config.evaluation)
        score_snapshots(config, name, out, judge)
        if config.tstr is not None and not _done(out, "tstr", name):
            run_tstr(config.data, out / "synthetic" / name, out / "tstr" / name,
                     progress=progress, overwrite=True, **config.tstr)
    return write_comparison(config, out, real)


# ## The table

def _get(tree: Any, *keys, default=None):
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return default
        tree = tree[key]
    return tree


def _tstr_row(rows: list[dict], arm: str) -> dict | None:
    fractions = [r["fraction"] for r in rows if r["arm"] == arm]
    if not fractions:
        return None
    return next(r for r in rows if r["arm"] == arm and r["fraction"] == max(fractions))


def model_row(name: str, config: CompareConfig, out: Path) -> dict[str, Any]:
    """One model's row: every figure read from its outputs (report.json, tstr.json, the
    run's summary, the snapshots), the real-vs-real value beside each."""
    report = json.loads((out / "evaluation" / name / REPORT_JSON).read_text())
    summary = json.loads((out / "runs" / name / SUMMARY_FILE).read_text())
    clock = out / "snapshots" / name / CLOCK_FILE
    train = config.models[name]
    row: dict[str, Any] = {
        "model": name, "family": train.model,
        "options": ", ".join(f"{k}={v}" for k, v in sorted(train.model_options.items())),
        "training_seconds": (round(json.loads(clock.read_text())["seconds"], 2)
                             if clock.is_file() else summary.get("seconds")),
        "generator_steps": summary.get("generator_steps")}
    c2st = report.get("c2st", {})
    for tag in ("image", "image_and_mask"):
        for key, field in (("", "accuracy"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high")):
            row[f"c2st_{tag}{key}"] = _get(c2st, tag, field)
        row[f"c2st_{tag}_floor"] = _get(c2st, "floor_" + tag, "accuracy")
    overall = report["fidelity"]["overall"]
    row["fid_matched_n"] = overall["synthetic_vs_train_matched_n"]["fid"]
    row["fid_floor"] = overall["floor_heldout_vs_train"]["fid"]
    row["fid_over_floor"] = (row["fid_matched_n"] / row["fid_floor"]
                             if row["fid_matched_n"] is not None and row["fid_floor"] else None)
    row["kid"] = overall["synthetic_vs_train"]["kid_mean"]
    row["kid_floor"] = overall["floor_heldout_vs_train"]["kid_mean"]
    pr = report.get("precision_recall", {})
    for key in ("precision", "recall", "density", "coverage"):
        row[key] = _get(pr, "synthetic_vs_train_matched_n", key)
        row[f"{key}_floor"] = _get(pr, "floor_heldout_vs_train", key)
    for cls in report["class_names"]:
        ms = report["diversity"]["ms_ssim"]["per_class"][cls]
        row[f"ms_ssim_{cls}"] = _get(ms, "synthetic", "mean")
        row[f"ms_ssim_{cls}_real"] = _get(ms, "real_train", "mean")
        agreement = report["classification"]
        row[f"label_agreement_{cls}"] = agreement["synthetic"]["label_agreement"][cls]
        row[f"label_agreement_{cls}_real"] = agreement["heldout_real"]["label_agreement"][cls]
        row[f"mask_area_ks_{cls}"] = report["masks"]["area_ks_statistic"][cls]
    mia = _get(report, "privacy", "membership_inference", default={})
    row["membership_auc"] = mia.get("auc")
    row["membership_auc_ci_low"] = mia.get("ci_low")
    row["membership_auc_ci_high"] = mia.get("ci_high")
    tstr_path = out / "tstr" / name / TSTR_JSON
    if tstr_path.is_file():
        rows = json.loads(tstr_path.read_text())["rows"]
        for arm, tag in (("synthetic", "synthetic"), ("real+synthetic", "real_synthetic"),
                         ("real", "real")):
            r = _tstr_row(rows, arm)
            row[f"tstr_{tag}_dice"] = None if r is None else r["slice_dice_mean"]
            row[f"tstr_{tag}_dice_sd"] = None if r is None else r["slice_dice_mean_sd"]
            row[f"tstr_{tag}_healthy_fp"] = (None if r is None
                                             else r["healthy_false_positive_rate"])
    return row


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def render_markdown(table: dict) -> str:
    rows = table["rows"]
    budget = (f"{table['budget']['minutes']:g} min of training" if table["budget"]["minutes"]
              else f"{table['budget']['steps']} generator steps")
    lines = [f"# Generators compared on one budget: {budget} each",
             "",
             f"Real data: `{table['data']}`; config `{table['config']}`. Each figure with its "
             "real-vs-real value (the floor: what a new real subject scores) beside it.",
             ""]

    def block(title: str, header: list[str], cells) -> None:
        lines.extend([f"## {title}", "", "| model | " + " | ".join(header) + " |",
                      "|---|" + "---|" * len(header)])
        for r in rows:
            lines.append(f"| {r['model']} | " + " | ".join(cells(r)) + " |")
        lines.append("")

    ci = lambda r, k: f"{_fmt(r[k])} [{_fmt(r[k + '_ci_low'])}, {_fmt(r[k + '_ci_high'])}]"  # noqa: E731
    block("Training", ["family", "options", "seconds", "generator steps"],
          lambda r: [r["family"], r["options"] or "-", _fmt(r["training_seconds"]),
                     _fmt(r["generator_steps"])])
    block("Realism (C2ST: 0.5 = indistinguishable; FID/KID: lower is better)",
          ["C2ST image (95% CI)", "floor", "C2ST image + mask (95% CI)", "floor",
           "FID matched N", "FID floor", "FID / floor", "KID", "KID floor"],
          lambda r: [ci(r, "c2st_image"), _fmt(r["c2st_image_floor"]),
                     ci(r, "c2st_image_and_mask"), _fmt(r["c2st_image_and_mask_floor"]),
                     _fmt(r["fid_matched_n"]), _fmt(r["fid_floor"]), _fmt(r["fid_over_floor"]),
                     _fmt(r["kid"]), _fmt(r["kid_floor"])])
    block("Fidelity and diversity (matched N; real vs real in brackets)",
          ["precision", "recall", "density", "coverage"]
          + [f"MS-SSIM {c}" for c in table["class_names"]],
          lambda r: [f"{_fmt(r[k])} ({_fmt(r[k + '_floor'])})"
                     for k in ("precision", "recall", "density", "coverage")]
          + [f"{_fmt(r[f'ms_ssim_{c}'])} ({_fmt(r[f'ms_ssim_{c}_real'])})"
             for c in table["class_names"]])
    block("Masks, labels and privacy",
          [f"label agreement {c}" for c in table["class_names"]]
          + [f"mask area KS {c}" for c in table["class_names"]] + ["membership AUC (95% CI)"],
          lambda r: [f"{_fmt(r[f'label_agreement_{c}'])} ({_fmt(r[f'label_agreement_{c}_real'])})"
                     for c in table["class_names"]]
          + [_fmt(r[f"mask_area_ks_{c}"]) for c in table["class_names"]]
          + [ci(r, "membership_auc")])
    if any("tstr_synthetic_dice" in r for r in rows):
        block("TSTR: U-Nets tested on real test subjects (tumor-slice Dice, mean ± sd over seeds)",
              ["synthetic only", "real + synthetic", "real only", "healthy FP synthetic",
               "healthy FP real + synthetic"],
              lambda r: [f"{_fmt(r.get(f'tstr_{t}_dice'))} ± {_fmt(r.get(f'tstr_{t}_dice_sd'))}"
                         for t in ("synthetic", "real_synthetic", "real")]
              + [_fmt(r.get("tstr_synthetic_healthy_fp")),
                 _fmt(r.get("tstr_real_synthetic_healthy_fp"))])
    if table["missing"]:
        lines += [f"Not yet evaluated: {', '.join(table['missing'])}.", ""]
    lines += [f"Samples: `{SAMPLES_FIGURE}`; C2ST and FID / floor against training time: "
              f"`{TIME_FIGURE}` (light evaluation of {table['checkpoints']} snapshots per model).",
              ""]
    return "\n".join(lines)


def write_comparison(config: CompareConfig, out: Path, real: PreparedDataset) -> dict:
    """The table (Markdown, CSV, JSON) and the two pictures, over the evaluated models
    (those whose outputs were made with the config's current settings)."""
    path = out / SETTINGS_FILE
    saved = json.loads(path.read_text()) if path.is_file() else {}
    done = [n for n in config.models if _done(out, "evaluation", n) and _done(out, "runs", n)
            and saved.get(n) == json.loads(json.dumps(config.settings(n)))]
    rows = [model_row(n, config, out) for n in done]
    curves = {}
    for name, row in zip(done, rows):
        points = [out / "snapshots" / name / f"{snapshot_name(k, config.checkpoints)}.json"
                  for k in range(1, config.checkpoints)]
        curves[name] = [json.loads(p.read_text()) for p in points if p.is_file()] + [{
            "fraction": 1.0, "training_seconds": row["training_seconds"],
            "generator_steps": row["generator_steps"], "source": "full evaluation",
            **{k: row[k] for k in ("c2st_image", "c2st_image_ci_low", "c2st_image_ci_high",
                                   "fid_matched_n", "fid_floor", "fid_over_floor")}}]
    table = {"config": str(config.path), "data": config.data,
             "budget": {"minutes": config.minutes, "steps": config.steps},
             "checkpoints": config.checkpoints, "class_names": real.class_names,
             "rows": rows, "quality_vs_time": curves,
             "missing": [n for n in config.models if n not in done]}
    _write_json(out / TABLE_JSON, table)
    with atomic_file(out / TABLE_MD) as tmp:
        tmp.write_text(render_markdown(table))
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_file(out / TABLE_CSV) as tmp:
        tmp.write_text(buffer.getvalue())
    if done:
        plot_sample_rows(real, {n: load_dataset(out / "synthetic" / n) for n in done},
                         out / SAMPLES_FIGURE)
        plot_quality_vs_time(curves, out / TIME_FIGURE, c2st_floor=rows[0]["c2st_image_floor"])
    return table


# ## The pictures

def plot_sample_rows(real: PreparedDataset, synthetic: dict[str, PreparedDataset],
                     path: Path, per_row: int = 8, seed: int = 0) -> None:
    """One row per set, real (train split) first: ``per_row`` slices, half of each class
    where a set has them, the mask drawn over the image in red."""

    def pick(ds: PreparedDataset) -> list[int]:
        rng = np.random.default_rng(seed)
        chosen: list[int] = []
        for k in range(ds.num_classes):
            idx = np.flatnonzero(ds.labels == k)
            chosen += rng.permutation(idx)[:per_row // ds.num_classes].tolist()
        rest = [i for i in rng.permutation(len(ds)) if i not in chosen]
        return (chosen + rest)[:per_row]

    sets = {"real": real.select("train"), **synthetic}
    fig, axes = plt.subplots(len(sets), per_row, figsize=(1.3 * per_row, 1.4 * len(sets)),
                             squeeze=False)
    for r, (name, ds) in enumerate(sets.items()):
        chosen = pick(ds)
        for c in range(per_row):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(chosen):
                i = chosen[c]
                ax.imshow(overlay_mask(ds.images[i, ..., 0], ds.masks[i, ..., 0]))
            if c == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def plot_quality_vs_time(curves: dict[str, list[dict]], path: Path,
                         c2st_floor: float | None = None) -> None:
    """C2ST accuracy (image) and FID / floor against training minutes, a line per model."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, points in curves.items():
        t = [p["training_seconds"] / 60 for p in points]
        left.plot(t, [p["c2st_image"] for p in points], marker="o", label=name)
        right.plot(t, [p["fid_over_floor"] for p in points], marker="o", label=name)
    left.axhline(0.5, color="grey", linestyle=":", label="chance")
    if c2st_floor is not None:
        left.axhline(c2st_floor, color="black", linestyle="--", label="real vs real")
    right.axhline(1.0, color="black", linestyle="--", label="floor")
    left.set(xlabel="training time (min)", ylabel="C2ST accuracy, image",
             title="Told apart from real (lower is better)")
    right.set(xlabel="training time (min)", ylabel="FID / real-vs-real FID",
              title="FID over its floor (lower is better)")
    right.set_yscale("log")
    left.legend(fontsize=8)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
