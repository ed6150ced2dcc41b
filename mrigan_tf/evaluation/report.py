"""
Title: Evaluating a synthetic dataset against the real one
Description: Fidelity (FID/KID with the real-vs-real floor), Inception Score, diversity
(MS-SSIM, LPIPS), mask statistics and a memorization audit, per class and overall, written as
``report.json``, ``report.md`` and ``evaluation.png`` (``mrigan-tf evaluate``).

## What is compared with what

* The **real train split** is the reference: it is what the generator saw.
* The **real test split** (held-out subjects; the val split if there is no test split) plays a
  perfect generator: a fresh sample from the real distribution. Its FID/KID to the train split
  is the *floor* a synthetic set can hope to reach at that sample size, and its
  nearest-neighbour similarity to the train split is the yardstick of the memorization audit.
* The **synthetic set** (all its splits) is the candidate.

Each set is subsampled to at most ``max_images`` slices (seeded). FID is biased upwards at
small N, so besides FID(synthetic, train) the report gives FID at *matched N*: the synthetic
set subsampled to the size of the held-out set, directly comparable with the floor. KID is
unbiased and needs no such care.

## Feature space

``extractor="domain"`` (default, offline): the penultimate layer of a small healthy/tumor CNN
trained here on the real train split (``metrics/domain_classifier.py``). ``"inception"``:
InceptionV3 pool features with ImageNet weights from the local Keras cache; when they are not
cached the evaluation says so (a warning and a caveat in the report) and falls back to the
domain extractor. The Inception Score always uses the domain classifier: ImageNet classes mean
nothing on brain slices.

## Output

``out_dir`` is created atomically (``mrigan_tf.atomic``): it holds all three files or, after a
failure, is left as it was.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mrigan_tf import __version__
from mrigan_tf.atomic import atomic_directory
from mrigan_tf.data.contract import META_FILE, PreparedDataset, load_dataset
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.metrics.c2st import (CHANNELS as C2ST_CHANNELS, c2st_settings,
                                   classifier_two_sample_test, real_vs_real_floor)
from mrigan_tf.metrics.domain_classifier import train_domain_classifier
from mrigan_tf.metrics.features import domain_extractor, inception_extractor
from mrigan_tf.metrics.frechet import frechet_distance_from_features
from mrigan_tf.metrics.inception_score import inception_score
from mrigan_tf.metrics.keras_weights import WeightsUnavailable
from mrigan_tf.metrics.kid import kernel_inception_distance
from mrigan_tf.metrics.lpips import NAME as LPIPS_NAME, load_lpips
from mrigan_tf.metrics.memorization import memorization_audit
from mrigan_tf.metrics.overlap import dice_per_image
from mrigan_tf.metrics.prdc import NEAREST_K, precision_recall_density_coverage
from mrigan_tf.metrics.privacy import privacy_audit
from mrigan_tf.metrics.ssim import ms_ssim_power_factors, pairwise_ms_ssim
from mrigan_tf.progress import progress_bar

EXTRACTORS = ("domain", "inception")
REPORT_JSON, REPORT_MD, FIGURE = "report.json", "report.md", "evaluation.png"
#: The synthetic slices the classifier two-sample test is surest about.
C2ST_FIGURE = "c2st_surest.png"
#: Below this balanced accuracy (mean per-class recall) on the held-out real slices, the
#: domain features are called weak. Plain accuracy would not do: answering the majority
#: class everywhere already scores ~0.72 on the phantom.
WEAK_CLASSIFIER_ACCURACY = 0.75


def _subsample(ds: PreparedDataset, max_images: int, rng: np.random.Generator) -> PreparedDataset:
    if len(ds) <= max_images:
        return ds
    keep = np.sort(rng.choice(len(ds), max_images, replace=False))
    return PreparedDataset(ds.images[keep], ds.masks[keep], ds.labels[keep], ds.subjects[keep],
                           ds.split[keep], dict(ds.meta))


def _load_pair(real_dir, synthetic_dir) -> tuple[PreparedDataset, PreparedDataset]:
    real, synthetic = load_dataset(real_dir), load_dataset(synthetic_dir)
    where = Path(synthetic_dir) / META_FILE
    if synthetic.class_names != real.class_names:
        raise DataError(where, f"class names {synthetic.class_names} differ from the real "
                        f"dataset's {real.class_names}; evaluate against the dataset the "
                        "generator was trained on")
    if synthetic.image_size != real.image_size:
        raise DataError(where, f"image size {synthetic.image_size} differs from the real "
                        f"dataset's {real.image_size}")
    train = real.select("train")
    if len(np.unique(train.labels)) < 2:
        raise DataError(real_dir, "the real train split needs slices of at least two classes "
                        "(the domain classifier learns to tell them apart)")
    if not np.any(real.split == "test") and not np.any(real.split == "val"):
        raise DataError(real_dir, "the real dataset has no test or val split: held-out real "
                        "slices are needed for the real-vs-real floor and the memorization audit")
    return real, synthetic


def _pair_metrics(f_a: np.ndarray, f_b: np.ndarray, seed: int, kid_subsets: int) -> dict:
    """FID and KID of feature set ``a`` against reference ``b`` (None when too few)."""

    if len(f_a) < 2 or len(f_b) < 2:
        return {"fid": None, "kid_mean": None, "kid_std": None, "n": int(len(f_a)),
                "n_reference": int(len(f_b)), "note": "fewer than 2 slices"}
    kid_mean, kid_std = kernel_inception_distance(f_a, f_b, subsets=kid_subsets, seed=seed)
    return {"fid": frechet_distance_from_features(f_a, f_b), "kid_mean": kid_mean,
            "kid_std": kid_std, "n": int(len(f_a)), "n_reference": int(len(f_b))}


def _fidelity(f_syn, f_held, f_train, syn, held, train, class_names, seed, kid_subsets) -> dict:
    rng = np.random.default_rng(seed + 1)

    def block(fs, fh, ft):
        out = {"synthetic_vs_train": _pair_metrics(fs, ft, seed, kid_subsets),
               "floor_heldout_vs_train": _pair_metrics(fh, ft, seed, kid_subsets)}
        if len(fs) > len(fh) >= 2:
            pick = rng.choice(len(fs), len(fh), replace=False)
            out["synthetic_vs_train_matched_n"] = _pair_metrics(fs[pick], ft, seed, kid_subsets)
        else:
            out["synthetic_vs_train_matched_n"] = out["synthetic_vs_train"]
        return out

    result = {"overall": block(f_syn, f_held, f_train), "per_class": {}}
    for k, name in enumerate(class_names):
        result["per_class"][name] = block(f_syn[syn.labels == k], f_held[held.labels == k],
                                          f_train[train.labels == k])
    return result


def _classification(classifier, syn, held, class_names) -> dict:

    out = {}
    for tag, ds in (("synthetic", syn), ("heldout_real", held)):
        probs = classifier.probabilities(ds.images)
        predicted = probs.argmax(axis=1)
        agreement = {name: (float(np.mean(predicted[ds.labels == k] == k))
                            if np.any(ds.labels == k) else None)
                     for k, name in enumerate(class_names)}
        # The usual 10 splits, but never chunks so small that each holds a single class.
        score, spread = inception_score(probs, splits=max(1, min(10, len(probs) // 100)))
        out[tag] = {"inception_score": score, "inception_score_std": spread,
                    "label_agreement": agreement, "n": int(len(ds))}
    return out


def _diversity(syn, train, class_names, seed, pairs, lpips_weights, lpips_pairs) -> dict:

    out: dict[str, Any] = {
        "ms_ssim": {"power_factors": list(ms_ssim_power_factors(train.image_size)),
                    "meaning": "mean MS-SSIM of random pairs within a class; higher = less "
                               "diverse (mode collapse pushes it above the real value)",
                    "per_class": {}}}
    for k, name in enumerate(class_names):
        out["ms_ssim"]["per_class"][name] = {
            "real_train": pairwise_ms_ssim(train.images[train.labels == k], pairs, seed),
            "synthetic": pairwise_ms_ssim(syn.images[syn.labels == k], pairs, seed)}
    metric, reason = load_lpips(lpips_weights)
    if metric is None:
        out["lpips"] = {"name": LPIPS_NAME, "available": False, "reason": reason}
    else:
        out["lpips"] = {"name": LPIPS_NAME, "available": True, "weights": metric.weights,
                        "meaning": "mean LPIPS of random pairs within a class; higher = more "
                                   "diverse", "per_class": {}}
        for k, name in enumerate(class_names):
            out["lpips"]["per_class"][name] = {
                "real_train": metric.pairwise_diversity(train.images[train.labels == k],
                                                        lpips_pairs, seed),
                "synthetic": metric.pairwise_diversity(syn.images[syn.labels == k],
                                                       lpips_pairs, seed)}
    return out


def mask_areas(masks: np.ndarray) -> np.ndarray:
    """Each mask's area as a fraction of its slice, shape (N,), float64."""
    return masks.reshape(len(masks), -1).mean(axis=1).astype(np.float64)


def mask_statistics(ds: PreparedDataset) -> dict:
    """Per class: count, fraction of empty masks, and the tumor-area distribution (as a
    fraction of the slice) over the non-empty masks."""
    area = mask_areas(ds.masks)
    out = {}
    for k, name in enumerate(ds.class_names):
        a = area[ds.labels == k]
        nonempty = a[a > 0]
        stats: dict[str, Any] = {"n": int(len(a)),
                                 "fraction_empty": float(np.mean(a == 0)) if len(a) else None}
        if len(nonempty):
            stats.update({"area_mean": float(nonempty.mean()),
                          "area_median": float(np.median(nonempty)),
                          "area_p5": float(np.percentile(nonempty, 5)),
                          "area_p95": float(np.percentile(nonempty, 95))})
        out[name] = stats
    return out


def _mask_comparison(syn, train) -> dict:
    from scipy.stats import ks_2samp

    real_stats, syn_stats = mask_statistics(train), mask_statistics(syn)
    real_area = train.masks.reshape(len(train), -1).mean(axis=1)
    syn_area = syn.masks.reshape(len(syn), -1).mean(axis=1)
    ks = {}
    for k, name in enumerate(train.class_names):
        r = real_area[(train.labels == k) & (real_area > 0)]
        s = syn_area[(syn.labels == k) & (syn_area > 0)]
        ks[name] = float(ks_2samp(r, s).statistic) if len(r) and len(s) else None
    return {"real_train": real_stats, "synthetic": syn_stats,
            "area_ks_statistic": ks,
            "meaning": "area = tumor pixels / slice pixels over non-empty masks; the KS "
                       "statistic (0 = same distribution, 1 = disjoint) compares real and "
                       "synthetic non-empty areas per class"}


def _c2st_result(result) -> dict:
    return {"accuracy": result.accuracy, "ci_low": result.ci_low, "ci_high": result.ci_high,
            "p_value": result.p_value, "heldout": result.heldout,
            "real_accuracy": result.real_accuracy,
            "synthetic_accuracy": result.synthetic_accuracy,
            # Slices of one subject are not independent: the interval that resamples subjects.
            "subject_ci_low": result.subject_ci_low, "subject_ci_high": result.subject_ci_high,
            "heldout_subjects": result.heldout_subjects}


def _c2st(real: PreparedDataset, synthetic: PreparedDataset, seed: int) -> tuple[dict, dict]:
    """The classifier two-sample test on the image and on image + mask, each beside its
    real-vs-real floor (train subjects vs held-out subjects), with the fixed classifier of
    ``mrigan_tf.metrics.c2st``. Returns the report block and, per channel set, the indices of
    the synthetic slices the classifier is surest are synthetic (for the figure)."""
    train = real.select("train")
    block: dict[str, Any] = {"settings": c2st_settings(),
                             "meaning": "held-out accuracy of a small CNN trained to tell "
                                        "synthetic from real training-subject slices; 0.5 = "
                                        "indistinguishable (95% Clopper-Pearson interval)"}
    surest = {}
    for channels in C2ST_CHANNELS:
        tag = channels.replace("+", "_and_")
        result = classifier_two_sample_test(train, synthetic, seed=seed, channels=channels)
        block[tag] = _c2st_result(result)
        surest[tag] = np.asarray(result.surest_synthetic)
        block["floor_" + tag] = _c2st_result(real_vs_real_floor(real, seed=seed,
                                                                channels=channels))
    return block, surest


def _precision_recall(f_syn, f_held, f_train, seed: int = 0) -> dict:
    """Precision/recall/density/coverage (k = NEAREST_K) of the synthetic and, as the floor,
    the held-out real features against the train features: the same features as FID.

    Recall and coverage grow with the size of the set being judged (more points, more of the
    real manifold within reach), so the floor (a few hundred held-out slices) is only
    comparable with the synthetic set at the *same* N: ``synthetic_vs_train_matched_n`` is a
    seeded subsample of the synthetic features of the held-out set's size, the figure the
    verdict sets beside the floor.
    """

    def against_train(features):
        try:
            return precision_recall_density_coverage(f_train, features, NEAREST_K).as_dict()
        except ValueError as exc:   # too few slices for k neighbours
            return {"note": str(exc)}

    matched = f_syn
    if len(f_syn) > len(f_held) >= 2:
        matched = f_syn[np.random.default_rng(seed + 2).choice(len(f_syn), len(f_held),
                                                                replace=False)]
    return {"synthetic_vs_train": against_train(f_syn),
            "synthetic_vs_train_matched_n": {**against_train(matched), "n": int(len(matched))},
            "floor_heldout_vs_train": against_train(f_held), "nearest_k": NEAREST_K,
            "meaning": "precision: share of synthetic slices inside the real manifold "
                       "(fidelity); recall: share of real slices inside the synthetic "
                       "manifold (diversity); density and coverage: their outlier-robust "
                       "versions (Naeem et al. 2020); each beside its real-vs-real value"}


def _privacy(syn, train, held, seed) -> dict:
    """Closest-record distances and the membership-inference attack on the slices' pixels,
    with the bootstrap resampling whole subjects (``mrigan_tf.metrics.privacy``)."""
    flat = [ds.images.reshape(len(ds), -1) for ds in (syn, train, held)]
    return privacy_audit(*flat, seed=seed, train_subjects=train.subjects,
                         heldout_subjects=held.subjects)


def _memorization(syn, train, held, top_k) -> dict:

    audit = memorization_audit(syn.images, train.images, held.images, top_k=top_k, n_pairs=8,
                               synthetic_labels=syn.labels, heldout_labels=held.labels)
    for pair in audit["closest_pairs"]:
        j, t = pair["synthetic_index"], pair["train_index"]
        pair["synthetic_label"] = int(syn.labels[j])
        pair["train_label"] = int(train.labels[t])
        pair["train_subject"] = str(train.subjects[t])
        pair["mask_dice"] = float(dice_per_image(syn.masks[j:j + 1], train.masks[t:t + 1])[0])
    return audit


def _feature_extractor(name, classifier, inception_weights, inception_input_size, caveats):

    if name == "inception":
        try:
            extractor = inception_extractor(inception_weights, inception_input_size)
            if inception_weights is None:
                caveats.append("InceptionV3 has RANDOM weights (weights=None): the FID/KID "
                               "values test the plumbing and mean nothing")
            return extractor, None
        except WeightsUnavailable as exc:
            reason = f"{exc}. Falling back to the domain extractor."
            warnings.warn(reason, UserWarning, stacklevel=3)
            caveats.append("The InceptionV3 extractor was asked for but its ImageNet weights "
                           "are not cached: FID/KID use the domain extractor instead")
            return domain_extractor(classifier), reason
    return domain_extractor(classifier), None


def evaluate_synthetic(real_dir: str | os.PathLike, synthetic_dir: str | os.PathLike,
                       out_dir: str | os.PathLike, extractor: str = "domain",
                       max_images: int = 2000, seed: int = 0, overwrite: bool = False,
                       progress: bool = True, classifier_steps: int = 1000,
                       kid_subsets: int = 50, diversity_pairs: int = 500,
                       lpips_pairs: int = 200, memorization_top_k: int = 8,
                       inception_weights: str | None = "imagenet",
                       inception_input_size: int = 299,
                       lpips_weights: str | None = "imagenet") -> dict:
    """Evaluate the synthetic dataset against the real one; write report.json, report.md
    and evaluation.png to ``out_dir`` (created atomically); return the report dict.

    ``inception_weights``/``lpips_weights`` other than ``"imagenet"`` exist for tests
    (``None`` = random weights, and the report says so).
    """
    if extractor not in EXTRACTORS:
        raise MriganError(f"unknown extractor {extractor!r}; choose one of {', '.join(EXTRACTORS)}")
    if max_images < 2:
        raise MriganError(f"max_images must be at least 2, got {max_images}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite and (not out_dir.is_dir() or any(out_dir.iterdir())):
        # Fail before minutes of work, not after (atomic_directory checks again at the end).
        raise DataError(out_dir, "output already exists; choose another --out or remove it first")


    timings: dict[str, float] = {}
    caveats: list[str] = []
    bar = progress_bar(total=8, desc="evaluate", unit="stage", disable=not progress)

    def stage(name: str, t0: float) -> float:
        timings[name] = round(time.perf_counter() - t0, 3)
        bar.update(1)
        return time.perf_counter()

    t = time.perf_counter()
    real, synthetic = _load_pair(real_dir, synthetic_dir)
    heldout_split = "test" if np.any(real.split == "test") else "val"
    if heldout_split == "val":
        caveats.append("The real dataset has no test split: the val split stands in as the "
                       "held-out real set")
    rng = np.random.default_rng(seed)
    train = _subsample(real.select("train"), max_images, rng)
    held = _subsample(real.select(heldout_split), max_images, rng)
    syn = _subsample(synthetic, max_images, rng)
    class_names = real.class_names
    t = stage("load", t)

    c2st, surest = _c2st(real, syn, seed)
    t = stage("c2st", t)

    classifier = train_domain_classifier(real, steps=classifier_steps, seed=seed,
                                         heldout=real.select(heldout_split))
    balanced = classifier.test_balanced_accuracy
    if balanced is not None and balanced < WEAK_CLASSIFIER_ACCURACY:
        caveats.append(f"The domain classifier reaches only {balanced:.2f} balanced accuracy "
                       "on held-out real slices: its features (and the Inception Score) are "
                       "weak evidence")
    feature_extractor, fallback = _feature_extractor(extractor, classifier, inception_weights,
                                                     inception_input_size, caveats)
    t = stage("domain_classifier", t)

    f_train, f_held, f_syn = (feature_extractor(ds.images) for ds in (train, held, syn))
    fidelity = _fidelity(f_syn, f_held, f_train, syn, held, train, class_names, seed, kid_subsets)
    precision_recall = _precision_recall(f_syn, f_held, f_train, seed)
    t = stage("fid_kid_prdc", t)
    classification = _classification(classifier, syn, held, class_names)
    t = stage("inception_score", t)
    diversity = _diversity(syn, train, class_names, seed, diversity_pairs, lpips_weights,
                           lpips_pairs)
    t = stage("diversity", t)
    masks = _mask_comparison(syn, real.select("train"))
    memorization = _memorization(syn, train, held, memorization_top_k)
    privacy = _privacy(syn, train, held, seed)
    t = stage("memorization_privacy", t)

    if min(len(syn), len(held)) < 500:
        caveats.append(f"Small samples ({len(syn)} synthetic, {len(held)} held-out real "
                       "slices): FID is biased upwards at small N; compare the matched-N FID "
                       "with the floor, or use KID, which is unbiased")
    if extractor == "domain" or fallback:
        caveats.append("Domain-extractor FID/KID are comparable only between evaluations "
                       "against the same real dataset with the same seed, never with "
                       "published (InceptionV3) values")
    if real.meta.get("source") == "phantom":
        caveats.append("The real dataset is the phantom simulated from the MNI152 template, "
                       "not patient data")
    if len(held) < 20:
        caveats.append(f"Only {len(held)} held-out real slices: the memorization audit's "
                       "percentile thresholds are coarse")
    caveats.append("The memorization audit's SSIM nearest neighbour is searched among the "
                   f"{memorization_top_k} most-correlated training slices (see "
                   "mrigan_tf/metrics/memorization.py)")

    report = {
        "mrigan_tf_version": __version__,
        "real_dir": str(real_dir), "synthetic_dir": str(synthetic_dir), "seed": int(seed),
        "class_names": class_names, "image_size": real.image_size,
        "heldout_split": heldout_split,
        "sample_sizes": {
            tag: {"total": int(len(ds)),
                  **{name: int(np.sum(ds.labels == k)) for k, name in enumerate(class_names)}}
            for tag, ds in (("real_train", train), ("real_heldout", held), ("synthetic", syn))},
        "max_images": int(max_images),
        "extractor": {"requested": extractor, **feature_extractor.describe(),
                      "fallback_reason": fallback},
        "domain_classifier": classifier.describe(),
        "c2st": c2st,
        "fidelity": fidelity,
        "precision_recall": precision_recall,
        "classification": classification,
        "diversity": diversity,
        "masks": masks,
        "memorization": memorization,
        "privacy": privacy,
        "caveats": caveats,
    }
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        _write_figure(tmp / FIGURE, syn, train, memorization, class_names, seed)
        _write_surest_figure(tmp / C2ST_FIGURE, syn, surest)
        t = stage("figure", t)
        report["timings_s"] = timings
        report = _jsonable(report)
        (tmp / REPORT_MD).write_text(render_markdown(report))
        (tmp / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
    bar.close()
    return report


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# ## The figure: closest synthetic/training pairs, then samples per class

def _write_figure(path: Path, syn, train, memorization, class_names, seed, per_class: int = 8):
    import matplotlib.pyplot as plt

    from mrigan_tf.visualization import overlay_mask

    pairs = memorization["closest_pairs"]
    ncols = max(per_class, len(pairs), 1)
    nrows = 2 + 2 * len(class_names)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols, 1.65 * nrows + 0.5),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for c, pair in enumerate(pairs):
        j, t = pair["synthetic_index"], pair["train_index"]
        axes[0, c].imshow(overlay_mask(syn.images[j], syn.masks[j]))
        axes[0, c].set_title(f"synthetic\nSSIM {pair['ssim']:.2f}", fontsize=7)
        axes[1, c].imshow(overlay_mask(train.images[t], train.masks[t]))
        axes[1, c].set_title(f"nearest train\n{train.subjects[t]}", fontsize=7)
    rng = np.random.default_rng(seed)
    for k, name in enumerate(class_names):
        for r, (tag, ds) in enumerate((("real", train), ("synthetic", syn))):
            idx = np.flatnonzero(ds.labels == k)
            pick = np.sort(rng.choice(idx, min(per_class, idx.size), replace=False)) if idx.size else []
            for c, i in enumerate(pick):
                ax = axes[2 + 2 * k + r, c]
                ax.imshow(overlay_mask(ds.images[i], ds.masks[i]))
                ax.set_title(f"{tag} {name}", fontsize=7)
    fig.suptitle("Top: the synthetic slices closest to a training slice (memorization audit). "
                 "Below: real vs synthetic per class", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _write_surest_figure(path: Path, syn, surest: dict[str, np.ndarray]):
    """One row per channel set: the held-out synthetic slices the two-sample classifier is
    surest are synthetic (what gives the generator away)."""
    import matplotlib.pyplot as plt

    from mrigan_tf.visualization import overlay_mask

    ncols = max([len(indices) for indices in surest.values()] + [1])
    fig, axes = plt.subplots(len(surest), ncols, figsize=(1.5 * ncols, 1.7 * len(surest) + 0.4),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for r, (tag, indices) in enumerate(surest.items()):
        for c, i in enumerate(indices):
            axes[r, c].imshow(overlay_mask(syn.images[i], syn.masks[i]))
            axes[r, c].set_title(f"{tag.replace('_and_', '+')}", fontsize=7)
    fig.suptitle("The synthetic slices the two-sample classifier is surest are synthetic",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ## The Markdown report

def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


def _kid(m: dict) -> str:
    if m.get("kid_mean") is None:
        return "n/a"
    return f"{_fmt(m['kid_mean'])} ± {_fmt(m['kid_std'], 2)}"


def _interval(m: dict | None, key: str = "accuracy") -> str:
    if not m or m.get(key) is None:
        return "n/a"
    return f"{_fmt(m[key])} [{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]"


def _c2st_lines(c2st: dict) -> list[str]:
    settings = c2st["settings"]
    lines = ["## Classifier two-sample test", "",
             c2st["meaning"] + f". The classifier is fixed (filters {settings['filters']}, "
             f"{settings['steps']} steps of batch {settings['batch_size']}, see "
             "mrigan_tf/metrics/c2st.py); the floor is the same test on the real train subjects "
             f"against the held-out ones. Its surest picks: `{C2ST_FIGURE}`.", "",
             "| input | accuracy (95% CI) | p | floor (95% CI) |", "|---|---|---|---|"]
    for tag in ("image", "image_and_mask"):
        m = c2st[tag]
        lines.append(f"| {tag.replace('_and_', ' + ')} | {_interval(m)} | {_fmt(m['p_value'])} "
                     f"| {_interval(c2st['floor_' + tag])} |")
    return lines + [""]


def verdict_rows(report: dict) -> list[str]:
    """The verdict table: one row per headline figure, its real-vs-real floor beside it, and
    one line saying how to read it. The demo's report opens with it too."""
    rows = ["| figure | synthetic | real vs real (floor) | how to read it |", "|---|---|---|---|"]
    c2st = report.get("c2st")
    if c2st:
        for tag, label in (("image", "image"), ("image_and_mask", "image + mask")):
            rows.append(f"| C2ST accuracy, {label} (95% CI) | {_interval(c2st.get(tag))} | "
                        f"{_interval(c2st.get('floor_' + tag))} | a small CNN's held-out accuracy "
                        "at telling synthetic from real slices: 0.5 = indistinguishable, 1 = "
                        "told apart at a glance |")
    overall = report["fidelity"]["overall"]
    matched, floor = overall["synthetic_vs_train_matched_n"], overall["floor_heldout_vs_train"]
    rows.append(f"| FID, matched N ({report['extractor']['name']}) | {_fmt(matched['fid'])} | "
                f"{_fmt(floor['fid'])} | distance between feature distributions; lower is "
                "better, the floor is the best reachable at this N |")
    rows.append(f"| KID x 1000 | {_kid(overall['synthetic_vs_train'])} | {_kid(floor)} | "
                "unbiased at small N; lower is better |")
    pr = report.get("precision_recall")
    if pr:
        # Old reports have no matched-N block.
        syn = pr.get("synthetic_vs_train_matched_n", pr["synthetic_vs_train"])
        ref = pr["floor_heldout_vs_train"]
        pair = lambda m, a, b: f"{_fmt(m.get(a))} / {_fmt(m.get(b))}"  # noqa: E731
        rows.append(f"| precision / recall (k={pr['nearest_k']}, matched N) | "
                    f"{pair(syn, 'precision', 'recall')}"
                    f" | {pair(ref, 'precision', 'recall')} | fidelity / diversity: share of "
                    "synthetic slices on the real manifold / of real slices on the synthetic one |")
        rows.append(f"| density / coverage | {pair(syn, 'density', 'coverage')} | "
                    f"{pair(ref, 'density', 'coverage')} | their outlier-robust versions; "
                    "coverage below the floor = missing modes |")
    privacy = report.get("privacy")
    if privacy:
        mia = privacy["membership_inference"]
        rows.append(f"| membership-inference AUC (95% CI) | {_fmt(mia['auc'])} "
                    f"[{_fmt(mia['ci_low'])}, {_fmt(mia['ci_high'])}] | 0.5 | can an attacker "
                    "tell training slices by their nearest synthetic slice? 0.5 = no; "
                    f"{'**flagged**' if privacy['flagged'] else 'not flagged'} |")
    agreement = report["classification"]
    for k, name in enumerate(report["class_names"]):
        rows.append(f"| label agreement, {name} | "
                    f"{_fmt(agreement['synthetic']['label_agreement'][name])} | "
                    f"{_fmt(agreement['heldout_real']['label_agreement'][name])} | share of "
                    f"'{name}' slices the domain classifier also calls '{name}' |")
    return rows


def render_markdown(report: dict) -> str:
    """The human-readable report (the same numbers as report.json)."""
    ex, clf, fid = report["extractor"], report["domain_classifier"], report["fidelity"]
    sizes = report["sample_sizes"]
    names = report["class_names"]
    lines = [
        "# Evaluation of a synthetic dataset",
        "",
        f"- real: `{report['real_dir']}` (reference: its train split; held-out: its "
        f"{report['heldout_split']} split)",
        f"- synthetic: `{report['synthetic_dir']}`",
        f"- image size {report['image_size']} px, seed {report['seed']}, at most "
        f"{report['max_images']} slices per set, mrigan-tf {report['mrigan_tf_version']}",
        "",
        "## Verdict",
        "",
        *verdict_rows(report),
        "",
        *_c2st_lines(report["c2st"]),
        "## Feature extractor",
        "",
        f"- **{ex['name']}**, {ex['dim']}-d features",
        f"- weights: {ex['weights']}",
    ]
    if ex.get("fallback_reason"):
        lines.append(f"- **requested `{ex['requested']}`, unavailable**: {ex['fallback_reason']}")
    lines += [f"- domain classifier (Inception Score, label agreement): trained on the "
              f"{clf['trained_on']}, {clf['train_slices']} slices, {clf['steps']} steps; "
              f"held-out accuracy {_fmt(clf['test_accuracy'])} (balanced "
              f"{_fmt(clf.get('test_balanced_accuracy'))})", ""]
    lines += ["## Sample sizes", "", "| set | total | " + " | ".join(names) + " |",
              "|---|---|" + "---|" * len(names)]
    for tag, counts in sizes.items():
        lines.append(f"| {tag} | {counts['total']} | "
                     + " | ".join(str(counts[n]) for n in names) + " |")
    lines += ["", "## Fidelity: FID and KID against the real train split", "",
              "Lower is better. The floor is a held-out real set against the same train split: "
              "what a perfect generator would score at that sample size.", "",
              "| class | FID synthetic | FID synthetic (matched N) | FID floor (real vs real) "
              "| KID synthetic | KID floor |", "|---|---|---|---|---|---|"]
    for name, block in [("all", fid["overall"])] + list(fid["per_class"].items()):
        s, m, f = (block["synthetic_vs_train"], block["synthetic_vs_train_matched_n"],
                   block["floor_heldout_vs_train"])
        lines.append(f"| {name} | {_fmt(s['fid'])} (N={s['n']}) | {_fmt(m['fid'])} (N={m['n']}) "
                     f"| {_fmt(f['fid'])} (N={f['n']}) | {_kid(s)} | {_kid(f)} |")
    cls = report["classification"]
    pr = report["precision_recall"]
    lines += ["", f"## Precision, recall, density, coverage (k = {pr['nearest_k']})", "",
              pr["meaning"] + ".", "", "| set | precision | recall | density | coverage |",
              "|---|---|---|---|---|"]
    for tag in ("synthetic_vs_train", "synthetic_vs_train_matched_n", "floor_heldout_vs_train"):
        if tag not in pr:
            continue
        m = pr[tag]
        lines.append(f"| {tag} | {_fmt(m.get('precision'))} | {_fmt(m.get('recall'))} | "
                     f"{_fmt(m.get('density'))} | {_fmt(m.get('coverage'))} |")
    lines += ["", "## Inception Score (domain classifier) and label agreement", "",
              f"Range [1, {len(names)}]: high when slices are classified confidently and the "
              "classes are balanced. Label agreement: share of slices of a class that the "
              "classifier assigns to that class.", "",
              "| set | IS | " + " | ".join(f"agreement {n}" for n in names) + " |",
              "|---|---|" + "---|" * len(names)]
    for tag, c in cls.items():
        lines.append(f"| {tag} | {_fmt(c['inception_score'])} ± {_fmt(c['inception_score_std'], 2)}"
                     f" | " + " | ".join(_fmt(c["label_agreement"][n]) for n in names) + " |")
    div = report["diversity"]
    lines += ["", "## Diversity", "",
              f"Mean pairwise MS-SSIM within a class (higher = less diverse; scale weights "
              f"{[round(p, 4) for p in div['ms_ssim']['power_factors']]}, see "
              "mrigan_tf/metrics/ssim.py).", "",
              "| class | MS-SSIM real train | MS-SSIM synthetic |", "|---|---|---|"]
    for name, d in div["ms_ssim"]["per_class"].items():
        lines.append(f"| {name} | {_fmt(d['real_train']['mean'])} ({d['real_train']['pairs']} "
                     f"pairs) | {_fmt(d['synthetic']['mean'])} ({d['synthetic']['pairs']} pairs) |")
    lp = div["lpips"]
    if lp["available"]:
        lines += ["", f"{lp['name']} pairwise (higher = more diverse), weights: {lp['weights']}",
                  "", "| class | real train | synthetic |", "|---|---|---|"]
        for name, d in lp["per_class"].items():
            lines.append(f"| {name} | {_fmt(d['real_train']['mean'])} | "
                         f"{_fmt(d['synthetic']['mean'])} |")
    else:
        lines += ["", f"{lp['name']}: unavailable. {lp['reason']}"]
    masks = report["masks"]
    lines += ["", "## Tumor masks", "", masks["meaning"] + ".", "",
              "| class | set | n | empty masks | area mean | area median | area p5-p95 | KS |",
              "|---|---|---|---|---|---|---|---|"]
    for name in names:
        for tag in ("real_train", "synthetic"):
            s = masks[tag][name]
            spread = (f"{_fmt(s['area_p5'])}-{_fmt(s['area_p95'])}" if "area_p5" in s else "n/a")
            ks = _fmt(masks["area_ks_statistic"][name]) if tag == "synthetic" else ""
            lines.append(f"| {name} | {tag} | {s['n']} | {_fmt(s['fraction_empty'])} | "
                         f"{_fmt(s.get('area_mean'))} | {_fmt(s.get('area_median'))} | "
                         f"{spread} | {ks} |")
    mem = report["memorization"]
    verdict = ("**memorization suspected**" if mem["suspected"]
               else "no sign of memorization")
    lines += ["", "## Memorization audit", "",
              f"{verdict} ({mem['rule']}). {mem['n_synthetic']} synthetic and "
              f"{mem['n_heldout']} held-out real slices against {mem['n_train']} training "
              "slices. A fraction well above its expected value means synthetic slices sit "
              "closer to training slices than new real slices do.", "",
              "| similarity | nn median synthetic | nn median held-out | above held-out max "
              "| above held-out p99 | above held-out p95 (expected 0.05) |",
              "|---|---|---|---|---|---|"]
    for sim in ("ssim", "correlation"):
        m = mem[sim]
        e = m["exceedance"]
        lines.append(f"| {sim} | {_fmt(m['synthetic_nn']['median'])} | "
                     f"{_fmt(m['heldout_nn']['median'])} | "
                     f"{_fmt(e['p0']['fraction_synthetic_above'])} | "
                     f"{_fmt(e['p1']['fraction_synthetic_above'])} | "
                     f"{_fmt(e['p5']['fraction_synthetic_above'])} |")
    lines += ["", f"The closest pairs are pictured in `{FIGURE}` (top rows).", ""]
    privacy = report["privacy"]
    dcr, mia = privacy["closest_record"], privacy["membership_inference"]
    lines += ["## Privacy", "",
              f"{'**flagged**' if privacy['flagged'] else 'not flagged'} ({privacy['rule']}). "
              "Distances are Euclidean on the slices' pixels, to the closest training slice "
              "(DCR) and its ratio to the second closest (NNDR).", "",
              "| figure | synthetic | held-out real |", "|---|---|---|"]
    for key, label in (("dcr", "DCR"), ("nndr", "NNDR")):
        lines.append(f"| {label} {dcr['percentile']:g}th percentile | "
                     f"{_fmt(dcr[f'synthetic_{key}_percentile'])} | "
                     f"{_fmt(dcr[f'heldout_{key}_percentile'])} |")
        lines.append(f"| {label} median | {_fmt(dcr[f'synthetic_{key}_median'])} | "
                     f"{_fmt(dcr[f'heldout_{key}_median'])} |")
    lines += ["", f"Share of synthetic slices closer than the held-out {dcr['percentile']:g}th "
              f"percentile (expected {_fmt(dcr['expected_share_if_not_copied'])} if nothing is "
              f"copied): DCR {_fmt(dcr['synthetic_share_below_heldout_dcr_percentile'])}, NNDR "
              f"{_fmt(dcr['synthetic_share_below_heldout_nndr_percentile'])}.", "",
              f"Membership inference (GAN-Leaks style: a training slice scores higher the closer "
              f"its nearest synthetic slice): AUC {_fmt(mia['auc'])}, {100 * mia['confidence']:g}% "
              f"bootstrap CI [{_fmt(mia['ci_low'])}, {_fmt(mia['ci_high'])}] over "
              f"{mia['resampled_by']}; {mia['n_members']} members, {mia['n_nonmembers']} "
              "non-members.", "", "## Caveats", ""] + [f"- {c}" for c in report["caveats"]]
    lines += ["", "Timings (s): " + ", ".join(f"{k} {v}" for k, v in report["timings_s"].items()),
              ""]
    return "\n".join(lines)
