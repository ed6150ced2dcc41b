"""
Title: Train on synthetic, test on real (TSTR): is the synthetic dataset worth anything?
Description: U-Nets trained on real, synthetic and real + synthetic slices, each to
convergence and over several seeds, scored on real test subjects.

## The question

Image-quality scores (FID, SSIM) say whether generated slices *look* real. What a synthetic
*labelled* dataset is for is training a model, so the decisive test is to train the task
model on it and test that model on real data it never saw (Esteban et al., 2017, called
this "train on synthetic, test on real"). Three arms:

* **real**: a fraction of the real training subjects;
* **synthetic**: the synthetic dataset's train split only (no real slice at all);
* **real + synthetic**: the same real subjects plus the synthetic training slices, every
  batch half real, half synthetic (``synthetic_share``, default 0.5). Pooling the two and
  shuffling them together (``synthetic_share=None``, ``--synthetic-share proportional``)
  fills the batches in proportion to the sources' sizes instead: 9,000 synthetic slices
  next to a few hundred real ones make nearly all-synthetic batches, and the U-Net learns
  the synthetic distribution rather than the real one.

The real arms are repeated at several fractions of the real training *subjects* (default
10%, 25%, 100%): synthetic data matters most when real data is scarce. All arms are scored by
``evaluate_segmentation`` on the real *test* subjects, which no arm ever trains on.

## Train each U-Net to convergence, not for a fixed budget

A fixed number of steps lets the budget, not the data, set the figure: at 400 steps a
U-Net on 8 real subjects and one on all 28 score nearly alike, because neither has finished
learning. So every U-Net trains until it stops improving (``converge=True``, the default):
every ``eval_every`` steps the pooled Dice on the real *val* subjects is measured, the best
weights so far are kept in memory, and after ``patience`` evaluations without a new best (or
at ``max_steps``) the best weights are restored and scored
(``mrigan_tf.training.segmentation.fit_unet_to_convergence``). Every arm stops on the same
real val subjects: choosing when to stop is part of the recipe and is the same for every
arm; the val subjects are neither trained on nor tested on. ``converge=False`` (``--fixed-steps
N``) keeps the old equal-budget experiment.

## Spread: seeds and test subjects

One U-Net is one draw: its initial weights, batch order and flips move the Dice by a few
hundredths. Every arm is therefore trained once per seed (default 0, 1, 2; the seed sets
initial weights, batch order and flips), and the table gives the mean and the standard
deviation over seeds (``ddof=1``). A second, separate source of doubt is the handful of
test subjects: the 95% interval in brackets is a percentile bootstrap that resamples *test
subjects* (with their slices, the unit that is independent) and averages over the seeds, the
same resamples for every arm. Tumor-slice Dice, subject (3-D) Dice and the healthy-slice
false-positive rate stand side by side in one table: a Dice alone cannot see a U-Net that
draws tumors on healthy slices.

## Fair comparison

* Subsets are drawn **by subject**, never by slice (slices of one subject are near copies of
  each other), stratified by subject class (a subject is "tumor" if any slice has a tumor),
  with at least one subject per class, from one seeded permutation per class
  (``subset_seed``, the same for every U-Net seed): the 10% subset is inside the 25% subset,
  which is inside the full set, so the arms differ in how much data they get and in nothing
  else.
* **The same stopping rule** (or, with fixed steps, the same number of optimization steps)
  and the same batch size for every arm.
* **The same initial weights** for every arm at a given seed.

## A caveat the report repeats, and the strict mode

The synthetic set is fixed: its generator was trained on whatever real data it was trained on
(usually every real training subject). At a 10% fraction, the real + synthetic arm therefore
sees, through the generator, information from subjects the real arm does not have. The strict
low-data experiment trains one generator per fraction, on exactly that fraction's subjects
(``select_subjects(real, fraction, subset_seed)``, listed in ``tstr.json`` under
``subsets``), and passes ``synthetic`` as a mapping ``{fraction: synthetic set}``
(``--synthetic 0.1=DIR --synthetic 0.25=DIR --synthetic 1=DIR``): each fraction's synthetic
and real + synthetic arms then use that fraction's set.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

from mrigan_tf.atomic import atomic_directory
from mrigan_tf.data.contract import PreparedDataset, load_dataset
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.evaluation.segmentation import evaluate_segmentation
from mrigan_tf.progress import progress_bar
from mrigan_tf.training.segmentation import (SegmentationConfig, build_segmenter,
                                             check_convergence_settings, fit_unet,
                                             fit_unet_to_convergence, synthetic_rows_per_batch)

DEFAULT_FRACTIONS = (0.1, 0.25, 1.0)
#: Share of synthetic slices in each batch of the real + synthetic arm (None: pooled).
DEFAULT_SYNTHETIC_SHARE = 0.5
ARMS = ("real", "synthetic", "real+synthetic")
RESULTS_FILE = "tstr.json"
REPORT_FILE = "report.md"
PLOT_FILE = "tstr.png"
#: Defaults sized for a CPU: 7 arms x 3 seeds (21 U-Nets) on the 64 px phantom in about 30
#: minutes on 2 cores. Width 8, batch 16 runs about 0.2-0.25 s a step on 2 quiet cores, so
#: 21 U-Nets capped at 400 steps are about 30 minutes; early stopping ends some sooner.
#: 400 steps do not converge a U-Net on the phantom (its val Dice still rises at 1,500: see
#: ``benchmarks/unet_convergence.py``); on a GPU raise max_steps to 3000 and width to 16.
#: Adam at 3e-3 with the batch Dice loss: the per-image Dice loss and 1e-3 learn the
#: phantom's tumors several times more slowly (the U-Net module's docstring has the curves).
DEFAULT_SEEDS = (0, 1, 2)
DEFAULT_MAX_STEPS = 400
DEFAULT_EVAL_EVERY = 50
DEFAULT_PATIENCE = 4
#: Scores before this step neither count nor use up patience: the U-Net first learns to
#: predict nothing (val Dice near 0 for 100-200 steps).
DEFAULT_MIN_STEPS = 200
DEFAULT_LEARNING_RATE = 3e-3
DEFAULT_BATCH_SIZE = 16
DEFAULT_WIDTH = 8
N_BOOTSTRAP = 2000
CONFIDENCE = 0.95
#: The three scores the table sets side by side (each with sd over seeds and a bootstrap CI).
HEADLINE = ("slice_dice_mean", "subject_dice_mean", "healthy_false_positive_rate")
#: The scores kept per seed (JSON keys of each row: the mean over seeds, and ``KEY_sd``).
SCORES = ("slice_dice_mean", "slice_iou_mean", "subject_dice_mean", "healthy_false_positive_rate",
          "pooled_dice")


# ## Choosing the real subjects

def subject_classes(dataset: PreparedDataset, split: str = "train") -> dict[str, int]:
    """Subject -> class of the subject: the highest slice label (any tumor slice: tumor)."""
    subset = dataset.select(split)
    classes: dict[str, int] = {}
    for subject, label in zip(subset.subjects.tolist(), subset.labels.tolist()):
        classes[subject] = max(classes.get(subject, 0), int(label))
    return classes


def select_subjects(dataset: PreparedDataset, fraction: float, seed: int = 0,
                    split: str = "train") -> list[str]:
    """A seeded, class-stratified ``fraction`` of the subjects of ``split`` (sorted).

    Per subject class: ``max(1, round(fraction * n))`` subjects, taken from the front of a
    permutation that depends only on (seed, class), so smaller fractions are subsets of
    larger ones.
    """
    if not 0.0 < fraction <= 1.0:
        raise MriganError(f"fractions of real subjects must be in (0, 1], got {fraction}")
    classes = subject_classes(dataset, split)
    if not classes:
        raise DataError(None, f"the real dataset's {split} split holds no subjects")
    chosen: list[str] = []
    for k in sorted(set(classes.values())):
        members = sorted(s for s, c in classes.items() if c == k)
        order = np.random.default_rng([seed, k]).permutation(len(members))
        n = max(1, math.floor(fraction * len(members) + 0.5))
        chosen += [members[i] for i in order[:n]]
    return sorted(chosen)


def subjects_subset(dataset: PreparedDataset, subjects: Sequence[str],
                    split: str = "train") -> PreparedDataset:
    """The slices of ``subjects`` in ``split``."""
    subset = dataset.select(split)
    keep = np.isin(subset.subjects, np.asarray(list(subjects), dtype=str))
    return PreparedDataset(subset.images[keep], subset.masks[keep], subset.labels[keep],
                           subset.subjects[keep], subset.split[keep], dict(subset.meta))


def combine(*parts: PreparedDataset) -> PreparedDataset:
    """One training set from several (real and synthetic slices together)."""
    return PreparedDataset(*(np.concatenate([getattr(p, f) for p in parts])
                             for f in ("images", "masks", "labels", "subjects", "split")),
                           meta=dict(parts[0].meta))


# ## The experiment

#: Synthetic data: one set, or one set per fraction of the real subjects (strict mode).
SyntheticSource = Union[str, os.PathLike, PreparedDataset,
                        Mapping[float, Union[str, os.PathLike, PreparedDataset]]]


def _load(data: str | os.PathLike | PreparedDataset) -> tuple[PreparedDataset, str]:
    if isinstance(data, PreparedDataset):
        return data, "(in memory)"
    return load_dataset(data), str(data)


def _parse_fractions(fractions: Sequence[float]) -> list[float]:
    values = sorted({float(f) for f in fractions})
    if not values:
        raise MriganError("--fractions needs at least one fraction in (0, 1]")
    for f in values:
        if not 0.0 < f <= 1.0:
            raise MriganError(f"--fractions must lie in (0, 1], got {f}")
    return values


def _parse_seeds(seeds: Sequence[int]) -> list[int]:
    values = [int(s) for s in seeds]
    if not values:
        raise MriganError("--seeds needs at least one seed (3 or more to see the spread)")
    if len(set(values)) != len(values):
        raise MriganError(f"--seeds repeats a seed: {values}; the same seed trains the same U-Net")
    return values


def _check_synthetic(synth_ds: PreparedDataset, where: str, real_ds: PreparedDataset,
                     test: PreparedDataset) -> PreparedDataset:
    """The synthetic set's train split, after refusing sets TSTR cannot use fairly."""
    if synth_ds.image_size != real_ds.image_size:
        raise DataError(where, f"synthetic slices are {synth_ds.image_size} px, the real "
                        f"ones {real_ds.image_size} px; generate at the real data's size")
    synth_train = synth_ds.select("train")
    if len(synth_train) == 0:
        raise DataError(where, "the synthetic dataset's train split holds no slices")
    leaked = set(synth_train.subjects.tolist()) & set(test.subjects.tolist())
    if leaked:
        raise DataError(where, f"its train split contains real test subjects "
                        f"{sorted(leaked)[:5]}: they would be trained on and tested on")
    return synth_train


def _synthetic_sets(synthetic: SyntheticSource, fractions: list[float]
                    ) -> tuple[dict[float | None, Any], bool]:
    """``{None: set}`` for one synthetic set, ``{fraction: set}`` in strict mode."""
    if not isinstance(synthetic, Mapping):
        return {None: synthetic}, False
    sets = {float(f): s for f, s in synthetic.items()}
    if sorted(sets) != fractions:
        raise MriganError(f"strict mode needs one synthetic set per fraction {fractions}, "
                          f"got sets for {sorted(sets)}")
    return sets, True


def subject_scores(model, test: PreparedDataset, subjects: Sequence[str]) -> np.ndarray:
    """Per test subject, the sums the bootstrap resamples, shape (len(subjects), 5):
    sum of tumor-slice Dice, tumor slices, healthy slices with a false positive, healthy
    slices, and the subject's 3-D Dice (NaN for a subject without tumor)."""
    table = np.zeros((len(subjects), 5))
    for i, sid in enumerate(subjects):
        s = evaluate_segmentation(model, subjects_subset(test, [sid], split="test"), split=None)
        table[i] = ((s["slice_dice_mean"] or 0.0) * s["tumor_slices"], s["tumor_slices"],
                    (s["healthy_false_positive_rate"] or 0.0) * s["healthy_slices"],
                    s["healthy_slices"],
                    s["subject_dice_mean"] if s["subject_dice_mean"] is not None else np.nan)
    return table


def _statistics(table: np.ndarray) -> dict[str, np.ndarray]:
    """The three headline scores from per-subject sums; ``table`` (..., subjects, 5)."""
    sums = table[..., :4].sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        subject = np.nanmean(table[..., 4], axis=-1) if np.isfinite(table[..., 4]).any() \
            else np.full(table.shape[:-2], np.nan)
        return {"slice_dice_mean": sums[..., 0] / sums[..., 1],
                "subject_dice_mean": subject,
                "healthy_false_positive_rate": sums[..., 2] / sums[..., 3]}


def bootstrap_ci(tables: np.ndarray, n_bootstrap: int = N_BOOTSTRAP, seed: int = 0,
                 confidence: float = CONFIDENCE) -> dict[str, list[float] | None]:
    """Percentile bootstrap interval of the seed-mean scores, resampling test subjects.

    ``tables``: (seeds, subjects, 5) from ``subject_scores``. Each replicate draws the
    subjects with replacement (the same draw for every seed), recomputes each seed's scores
    from the drawn subjects' sums and averages over seeds; a replicate with no tumor (or no
    healthy) slice gives no value for that score. The same ``seed`` gives the same draws,
    so arms compared under one seed share their resamples.
    """
    if n_bootstrap < 1:
        raise MriganError(f"n_bootstrap must be at least 1, got {n_bootstrap}")
    n_subjects = tables.shape[1]
    draws = np.random.default_rng(seed).integers(0, n_subjects, size=(n_bootstrap, n_subjects))
    resampled = tables[:, draws]                        # (seeds, replicates, subjects, 5)
    alpha = (1.0 - confidence) / 2
    out: dict[str, list[float] | None] = {}
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN replicates: no value
        for key, values in _statistics(resampled).items():
            per_replicate = np.nanmean(values, axis=0)  # mean over seeds
            finite = per_replicate[np.isfinite(per_replicate)]
            out[key] = (None if not len(finite) else
                        [float(np.quantile(finite, alpha)), float(np.quantile(finite, 1 - alpha))])
    return out


def _mean_sd(values: list[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof=1; 0 for one seed) over seeds."""
    present = [v for v in values if v is not None]
    if not present:
        return None, None
    sd = float(np.std(present, ddof=1)) if len(present) > 1 else 0.0
    return float(np.mean(present)), sd


def _row(arm: str, fraction: float, real: PreparedDataset | None,
         synthetic: PreparedDataset | None, synthetic_path: str | None,
         runs: list[dict[str, Any]], ci: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "arm": arm, "fraction": fraction,
        "real_subjects": 0 if real is None else len(set(real.subjects.tolist())),
        "real_slices": 0 if real is None else len(real),
        "synthetic_slices": 0 if synthetic is None else len(synthetic),
        "synthetic_path": synthetic_path,
        "steps": [r["steps"] for r in runs], "best_step": [r["best_step"] for r in runs]}
    for key in SCORES:
        row[key], row[f"{key}_sd"] = _mean_sd([r["scores"][key] for r in runs])
    for key in HEADLINE:
        row[f"{key}_ci"] = ci[key]
    row["per_seed"] = [{k: v for k, v in r.items() if k != "table"} for r in runs]
    return row


def run_tstr(real: str | os.PathLike | PreparedDataset, synthetic: SyntheticSource,
             out_dir: str | os.PathLike, fractions: Sequence[float] = DEFAULT_FRACTIONS,
             seeds: Sequence[int] | None = None, converge: bool | None = None,
             max_steps: int = DEFAULT_MAX_STEPS, eval_every: int = DEFAULT_EVAL_EVERY,
             patience: int = DEFAULT_PATIENCE, min_steps: int = DEFAULT_MIN_STEPS,
             steps: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE, subset_seed: int = 0,
             seed: int | None = None,
             learning_rate: float = DEFAULT_LEARNING_RATE, augment: bool = True, jit_compile: bool | None = None,
             model_options: dict[str, Any] | None = None,
             synthetic_share: float | None = DEFAULT_SYNTHETIC_SHARE,
             n_bootstrap: int = N_BOOTSTRAP, arms: Sequence[str] = ARMS,
             overwrite: bool = False,
             progress: bool = True, verbose: int = 0) -> dict[str, Any]:
    """Run the TSTR experiment; write ``tstr.json``, ``report.md`` and ``tstr.png`` to ``out_dir``.

    ``real`` needs train and test splits (and a val split with ``converge``); ``synthetic``
    (one dataset, or in strict mode a mapping fraction -> dataset) trains on its train split.
    Every arm is trained once per seed in ``seeds``: with ``converge`` until the real val Dice
    has not improved for ``patience`` evaluations, one every ``eval_every`` steps, at most
    ``max_steps`` steps, keeping the best weights (scores before ``min_steps`` do not count);
    without it for exactly ``steps`` steps.
    ``converge`` defaults to True unless ``steps`` is given (the fixed-budget callers of
    old); ``seeds`` defaults to ``DEFAULT_SEEDS``. ``subset_seed`` picks the real subjects
    of each fraction and seeds the bootstrap; the old single ``seed`` means
    ``seeds=(seed,), subset_seed=seed``.
    ``model_options`` go to ``build_unet`` (default ``{"width": DEFAULT_WIDTH}``).
    ``synthetic_share`` is the share of synthetic slices in each real + synthetic batch
    (``None``: the two sets pooled). Returns the results dict (what ``tstr.json`` holds).
    ``arms`` limits the experiment to some of ``ARMS`` (all by default). The output
    directory appears complete or not at all.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise DataError(out_dir, "output already exists; choose another --out or pass --overwrite")
    fractions = _parse_fractions(fractions)
    if seed is not None:
        if seeds is not None:
            raise MriganError("give seeds=(...) or the single seed=..., not both")
        seeds, subset_seed = (seed,), seed
    seeds = _parse_seeds(DEFAULT_SEEDS if seeds is None else seeds)
    if converge is None:
        converge = steps is None
    if converge:
        if steps is not None:
            raise MriganError("steps is the fixed budget; training to convergence takes "
                              "max_steps, eval_every and patience instead")
        check_convergence_settings(max_steps, eval_every, patience, min_steps)
    elif steps is None or steps < 1:
        raise MriganError(f"--fixed-steps must be at least 1, got {steps}")
    if n_bootstrap < 1:
        raise MriganError(f"n_bootstrap must be at least 1, got {n_bootstrap}")
    unknown = sorted(set(arms) - set(ARMS))
    if unknown or not arms:
        raise MriganError(f"arms must be some of {', '.join(ARMS)}, got {list(arms)}")
    if synthetic_share is not None:
        synthetic_rows_per_batch(batch_size, synthetic_share)   # refuse a bad share up front
    sources, strict = _synthetic_sets(synthetic, fractions)
    real_ds, real_where = _load(real)
    test = real_ds.select("test")
    if len(test) == 0:
        raise DataError(real_where, "the real dataset has no test split: TSTR scores every arm "
                        "on held-out real test subjects")
    val = real_ds.select("val")
    if converge and len(val) == 0:
        raise DataError(real_where, "the real dataset has no val split to stop on; add one "
                        "or train for a fixed budget (--fixed-steps N)")
    synth_sets: dict[float | None, tuple[PreparedDataset, str, dict[str, Any]]] = {}
    for key, source in sources.items():
        ds, where = _load(source)
        synth_sets[key] = (_check_synthetic(ds, where, real_ds, test), where, ds.meta)
    options = {"width": DEFAULT_WIDTH, **(model_options or {})}
    test_subjects = sorted(set(test.subjects.tolist()))

    def train_and_score(seed: int, train: PreparedDataset,
                        mixed_in: PreparedDataset | None = None) -> dict[str, Any]:
        # At one seed every arm starts from the same initial weights (build_segmenter seeds them).
        config = SegmentationConfig(data=real_where, steps=steps or max_steps,
                                    batch_size=batch_size,
                                    seed=seed, learning_rate=learning_rate,
                                    jit_compile=jit_compile, augment=augment,
                                    model_options=dict(options))
        model = build_segmenter(config, real_ds.image_size)
        mix = {} if mixed_in is None else {"synthetic": mixed_in,
                                           "synthetic_share": synthetic_share}
        t0 = time.perf_counter()
        if converge:
            report = fit_unet_to_convergence(model, train, val, max_steps=max_steps,
                                             eval_every=eval_every, patience=patience,
                                             min_steps=min_steps, batch_size=batch_size, seed=seed, augment=augment,
                                             verbose=verbose, **mix)
            run = {"steps": report.steps, "best_step": report.best_step,
                   "best_val_dice": report.best_val_dice, "stopped_early": report.stopped_early,
                   "val_dice": report.val_dice}
        else:
            fit_unet(model, train, epochs=1, steps_per_epoch=steps, batch_size=batch_size,
                     seed=seed, augment=augment, verbose=verbose, **mix)
            done = int(model.optimizer.iterations.numpy())
            run = {"steps": done, "best_step": done}
        scores = evaluate_segmentation(model, test, split=None)
        return {"seed": seed, **run, "seconds": round(time.perf_counter() - t0, 1),
                "scores": {k: scores[k] for k in SCORES},
                "table": subject_scores(model, test, test_subjects)}

    subsets = {f: select_subjects(real_ds, f, subset_seed) for f in fractions}
    plan: list[tuple[str, float, PreparedDataset | None, float | None]] = []
    if not strict:
        plan.append(("synthetic", 0.0, None, None))
    for f in fractions:
        real_part = subjects_subset(real_ds, subsets[f])
        plan.append(("real", f, real_part, None))
        if strict:
            plan.append(("synthetic", f, None, f))
        plan.append(("real+synthetic", f, real_part, f if strict else None))
    plan = [step for step in plan if step[0] in arms]

    rows: list[dict[str, Any]] = []
    bar = progress_bar(total=len(plan) * len(seeds), desc="TSTR U-Nets", unit="U-Net",
                       disable=not progress)
    for arm, f, real_part, key in plan:
        synth_train, synth_where, _ = synth_sets[key] if arm != "real" else (None, None, None)
        runs = []
        for seed in seeds:
            if arm == "synthetic":
                runs.append(train_and_score(seed, synth_train))
            elif arm == "real":
                runs.append(train_and_score(seed, real_part))
            elif synthetic_share is None:
                runs.append(train_and_score(seed, combine(real_part, synth_train)))
            else:
                runs.append(train_and_score(seed, real_part, mixed_in=synth_train))
            bar.update(1)
        ci = bootstrap_ci(np.stack([r["table"] for r in runs]), n_bootstrap, seed=subset_seed)
        rows.append(_row(arm, f, real_part, None if arm == "real" else synth_train,
                         None if arm == "real" else synth_where, runs, ci))
    bar.close()

    first_synth, first_where, first_meta = next(iter(synth_sets.values()))
    results = {
        "settings": {"fractions": fractions, "seeds": seeds, "converge": converge,
                     "max_steps": max_steps if converge else None,
                     "eval_every": eval_every if converge else None,
                     "patience": patience if converge else None,
                     "min_steps": min_steps if converge else None,
                     "steps": None if converge else steps, "batch_size": batch_size,
                     "subset_seed": subset_seed, "learning_rate": learning_rate,
                     "augment": augment, "synthetic_share": synthetic_share,
                     "strict": strict, "n_bootstrap": n_bootstrap, "arms": list(arms),
                     "model_options": options},
        "real": {"path": real_where, "source": real_ds.meta.get("source"),
                 "train_subjects": len(subject_classes(real_ds)),
                 "val_subjects": len(set(val.subjects.tolist())),
                 "test_subjects": test_subjects, "test_slices": len(test)},
        "synthetic": {"path": first_where if not strict else
                      {str(f): synth_sets[f][1] for f in fractions},
                      "source": first_meta.get("source"),
                      "train_slices": len(first_synth) if not strict else
                      {str(f): len(synth_sets[f][0]) for f in fractions},
                      "model": first_meta.get("model"),
                      "generator_trained_on": first_meta.get("trained_on") if not strict else
                      {str(f): synth_sets[f][2].get("trained_on") for f in fractions}},
        "subsets": {str(f): s for f, s in subsets.items()},
        "rows": rows,
        "summary": summarize(rows),
    }
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        (tmp / RESULTS_FILE).write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
        (tmp / REPORT_FILE).write_text(markdown_report(results))
        plot_tstr(results, tmp / PLOT_FILE, close=True)
    return results


# ## Reading the results

def _score(rows, arm, fraction, key="slice_dice_mean"):
    for r in rows:
        if r["arm"] == arm and (fraction is None or r["fraction"] == fraction):
            return r[key]
    return None


def summarize(rows: list[dict[str, Any]], key: str = "slice_dice_mean") -> dict[str, Any]:
    """Synthetic-only Dice relative to the full real arm; the gain of adding synthetic slices
    (seed means; in strict mode the synthetic arm of the largest fraction)."""
    fractions = sorted({r["fraction"] for r in rows if r["arm"] == "real"})
    full = _score(rows, "real", max(fractions), key) if fractions else None
    synth = _score(rows, "synthetic", None, key)
    if any(r["arm"] == "synthetic" and r["fraction"] > 0 for r in rows) and fractions:
        synth = _score(rows, "synthetic", max(fractions), key)
    gains = {}
    for f in fractions:
        a, b = _score(rows, "real", f, key), _score(rows, "real+synthetic", f, key)
        gains[str(f)] = None if a is None or b is None else b - a
    return {"metric": key,
            "synthetic_over_full_real": None if not full or synth is None else synth / full,
            "gain_from_synthetic": gains}


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _cell(row: dict[str, Any], key: str) -> str:
    """``mean ± sd [CI low, high]``."""
    mean, sd, ci = row[key], row[f"{key}_sd"], row.get(f"{key}_ci")
    if mean is None:
        return "n/a"
    text = f"{mean:.3f} ± {sd:.3f}"
    return text + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def _mix_sentence(settings: dict[str, Any]) -> str:
    share = settings.get("synthetic_share")
    if share is None:
        return ("The real + synthetic arm pools both sets, so each fills the batches in "
                "proportion to its size.")
    n = synthetic_rows_per_batch(settings["batch_size"], share)
    return (f"Every batch of the real + synthetic arm holds {n} synthetic and "
            f"{settings['batch_size'] - n} real slices.")


def _training_sentence(s: dict[str, Any], real: dict[str, Any]) -> str:
    seeds = ", ".join(str(x) for x in s["seeds"])
    width = s["model_options"].get("width")
    if s["converge"]:
        how = (f"trained to convergence: the pooled Dice on the {real['val_subjects']} real val "
               f"subject(s) measured every {s['eval_every']} steps, the best weights kept, "
               f"stopped after {s['patience']} evaluations without improvement (counted from "
               f"step {s.get('min_steps') or 0}) or at {s['max_steps']} steps")
    else:
        how = f"trained for exactly {s['steps']} steps each (fixed budget)"
    return (f"U-Nets (base width {width}, batches of {s['batch_size']}) {how}; "
            f"each arm once per seed ({seeds}; at one seed every arm starts from the same "
            "weights).")


def markdown_report(results: dict[str, Any]) -> str:
    """The one table (mean ± sd over seeds [bootstrap 95% CI over test subjects]), the reading
    and the caveats, as Markdown."""
    s, real, synth = results["settings"], results["real"], results["synthetic"]
    n_test = len(real["test_subjects"])
    source = (f"{synth['train_slices']} synthetic slices from `{synth['path']}`"
              if not s["strict"] else "one synthetic set per fraction (strict mode): " +
              ", ".join(f"{f} -> `{p}`" for f, p in synth["path"].items()))
    lines = [
        "# Train on synthetic, test on real (TSTR)", "",
        f"{_training_sentence(s, real)} Scored on the {n_test} real test subject(s) "
        f"({real['test_slices']} slices) of `{real['path']}`; {source}. {_mix_sentence(s)}", "",
        f"Each score: mean ± sd over {len(s['seeds'])} seed(s) [95% bootstrap interval over "
        f"the {n_test} test subjects, {s['n_bootstrap']} resamples].", "",
        "| arm | real fraction | real subjects | real slices | synthetic slices | "
        "tumor-slice Dice | subject Dice (3-D) | healthy-slice FP rate | steps (best) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        fraction = "-" if r["fraction"] == 0 else f"{r['fraction']:g}"
        steps = f"{np.mean(r['steps']):.0f} ({np.mean(r['best_step']):.0f})"
        lines.append(f"| {r['arm']} | {fraction} | {r['real_subjects']} | {r['real_slices']} | "
                     f"{r['synthetic_slices']} | {_cell(r, 'slice_dice_mean')} | "
                     f"{_cell(r, 'subject_dice_mean')} | "
                     f"{_cell(r, 'healthy_false_positive_rate')} | {steps} |")
    summary = results["summary"]
    ratio = summary["synthetic_over_full_real"]
    lines += ["", "## Reading", ""]
    lines.append("- Synthetic only reaches " + ("n/a" if ratio is None else f"{100 * ratio:.0f}%")
                 + " of the tumor-slice Dice of the U-Net trained on all real training subjects.")
    for f, gain in summary["gain_from_synthetic"].items():
        lines.append(f"- Adding the synthetic slices to a fraction {float(f):g} of the real "
                     f"subjects changes tumor-slice Dice by "
                     f"{'n/a' if gain is None else f'{gain:+.3f}'}.")
    trained_on = synth["generator_trained_on"]
    lines += [
        "", "## Context and caveats", "",
        "- For scale only: published BraTS experiments with GAN-generated image/mask pairs "
        "report synthetic-only segmenters at roughly 80-90% of the Dice of real-trained ones, "
        "and gains of about +0.04 Dice from adding synthetic slices to real ones. Those are "
        "different data, models and budgets; this table is not a reproduction of them.",
        ("- Strict mode: each fraction's synthetic arms use the set generated for that "
         "fraction's subjects (listed under `subsets` in tstr.json)." if s["strict"] else
         "- The synthetic set is fixed: its generator was trained on "
         f"`{trained_on or 'unknown data'}`, usually every real training subject. At fractions "
         "below 1 the real + synthetic arm thus sees, through the generator, subjects the real "
         "arm does not. The strict low-data experiment trains one generator per fraction "
         "(pass `--synthetic FRACTION=DIR` once per fraction)."),
        f"- The sd is the spread over seeds (training noise); the bracket is the doubt from "
        f"having only {n_test} test subject(s). Two arms whose intervals overlap widely are "
        "not shown apart by this experiment.",
        "- Every arm stops on the same real val subjects (never trained on, never tested on), "
        "the synthetic-only arm included: when to stop is part of the recipe, the same for all."
        if s["converge"] else
        "- Fixed budget: every arm gets the same number of steps, whether or not it has "
        "converged; the budget can set the figure more than the data does.",
        "- Healthy-slice FP rate: the share of slices without tumor on which the U-Net draws "
        "any tumor pixel; a Dice over tumor slices cannot see these errors.", "",
    ]
    return "\n".join(lines)


def plot_tstr(results: dict[str, Any], path: str | os.PathLike | None = None,
              close: bool = False):
    """The table's three scores against the fraction of real subjects, per arm, with the
    sd over seeds as error bars. Returns the figure (``None`` with ``close=True``, which
    frees it after saving)."""
    from mrigan_tf import visualization  # noqa: F401  (first: picks a headless backend if needed)

    import matplotlib.pyplot as plt

    rows = results["rows"]
    fractions = results["settings"]["fractions"]
    figure, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    panels = (("slice_dice_mean", "Dice per tumor slice"),
              ("subject_dice_mean", "Dice per subject (3-D)"),
              ("healthy_false_positive_rate", "False positives on healthy slices"))
    for ax, (key, title) in zip(axes, panels):
        arms = [("real", "o-"), ("real+synthetic", "s-")]
        if results["settings"].get("strict"):
            arms.append(("synthetic", "^--"))
        for arm, style in arms:
            points = [r for r in rows if r["arm"] == arm]
            x = [r["fraction"] for r in points]
            y = [np.nan if r[key] is None else r[key] for r in points]
            err = [0.0 if r[f"{key}_sd"] is None else r[f"{key}_sd"] for r in points]
            ax.errorbar(x, y, yerr=err, fmt=style, capsize=3, label=arm)
        synth = [r for r in rows if r["arm"] == "synthetic" and r["fraction"] == 0]
        if synth and synth[0][key] is not None:
            mean, sd = synth[0][key], synth[0][f"{key}_sd"] or 0.0
            ax.axhline(mean, color="tab:red", linestyle="--", label="synthetic only")
            ax.axhspan(mean - sd, mean + sd, color="tab:red", alpha=0.1)
        ax.set_xscale("log")
        ax.set_xticks(fractions)
        ax.set_xticklabels([f"{f:g}" for f in fractions])
        ax.minorticks_off()
        ax.set_xlabel("fraction of real training subjects")
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("on the real test subjects")
    axes[0].legend(fontsize=8)
    figure.suptitle(f"Train on synthetic, test on real (mean ± sd over "
                    f"{len(results['settings']['seeds'])} seeds)")
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=110)
    if close:
        plt.close(figure)
        return None
    return figure
