"""Write a synthetic dataset: the product of the whole pipeline.

A trained conditional generator turns (noise, class) into an (image, mask) pair. This module
draws N such pairs, in batches, and writes them in the *same* dataset contract as real data
(``dataset.npz`` + ``meta.json``), so anything that trains on a real dataset (the U-Net,
the metrics) trains on a synthetic one unchanged. Optional exports: PNG pairs per class,
one NIfTI stack per class, and a ``manifest.csv`` listing every pair.

* Labels: ``n`` per class (``per_class=True``), or ``n`` in total split by ``proportions``
  (equal by default) with the largest-remainder rule, so the counts add up exactly. An
  *unconditional* generator trained on image + mask (``--joint``: gan, dcgan, wgan) has no
  class input: it draws the class mix it learnt, and on a two-class dataset each slice's
  label is read from its mask (class 0 = empty mask, the contract's convention).
* Masks: the generator's mask channel is ``2*mask-1`` in [-1, 1]; thresholded at 0.
* Layout-conditioned generators (SPADE) render a layout into an image instead: each slice's
  mask is the mask (tumor) classes of its layout, exactly, and the layout is written too.
  The layouts are, for now, **real layouts of the training split**, drawn with replacement
  per class (``meta.json``'s ``generation.layouts`` says so): the images are new, the
  anatomy and tumor outlines are the training subjects'. ``layouts_from="real"`` (the
  default) flips each at random and warps it elastically (``data.layout_deformation``),
  ``"copied"`` renders them as they are. A layout generator, so that nothing of a real
  subject is copied, is issue 17's item 3.
* Splits: every synthetic slice is its own "subject"; a ``val_fraction`` of them (default
  10%) forms a validation split for early stopping; there is no synthetic test split: tests
  are always on held-out *real* subjects.
* Deterministic: the same run, seed and settings give a byte-identical ``dataset.npz``.
* Atomic: everything is written into a temporary directory renamed into place at the end,
  so an interrupted generation leaves no partial output.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mrigan_tf import __version__
from mrigan_tf.atomic import atomic_directory
from mrigan_tf.data.contract import (PreparedDataset, load_dataset, validate_dataset,
                                     write_dataset_files)
from mrigan_tf.data.layout import layout_meta
from mrigan_tf.data.layout_deformation import DISPLACEMENT_FRACTION, deform_layouts
from mrigan_tf.errors import MriganError
from mrigan_tf.models.base import latent_noise
from mrigan_tf.progress import progress_bar
from mrigan_tf.training.runner import load_run

FORMATS = ("npz", "png", "nifti")
#: Where a layout-conditioned generator's layouts come from (``--layouts``).
LAYOUT_SOURCES = {
    "real": "the training split's layouts, each flipped left-right at random and elastically "
            f"warped (up to {DISPLACEMENT_FRACTION:.0%} of the width)",
    "copied": "the training split's layouts exactly as they are",
}


def class_counts(n: int, num_classes: int, proportions: Sequence[float] | None = None,
                 per_class: bool = False) -> np.ndarray:
    """How many samples of each class: exact totals by the largest-remainder rule."""
    if n < 1:
        raise MriganError(f"--n must be at least 1, got {n}")
    if per_class:
        if proportions is not None:
            raise MriganError("give either --per-class or --proportions, not both")
        return np.full(num_classes, n, dtype=np.int64)
    p = np.ones(num_classes) if proportions is None else np.asarray(proportions, dtype=float)
    if p.shape != (num_classes,) or np.any(p < 0) or p.sum() <= 0:
        raise MriganError(f"--proportions needs {num_classes} non-negative numbers "
                          f"(one per class), got {list(np.atleast_1d(proportions))}")
    quota = p / p.sum() * n
    counts = np.floor(quota).astype(np.int64)
    remainder = n - counts.sum()
    counts[np.argsort(-(quota - counts), kind="stable")[:remainder]] += 1
    return counts


def generate_pairs(model, labels: np.ndarray, seed: int = 0, batch_size: int = 500,
                   progress: bool = True,
                   layouts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (float32 in [-1, 1], (N, H, W, C)) and binary masks (uint8, (N, H, W, 1)).

    The joint sample is ``concat([image channels, 2*mask-1], -1)``: the mask is the last channel.
    A layout-conditioned model renders ``layouts`` (one per label) and the masks are theirs.
    """
    latent = latent_noise(len(labels), model.latent_dim, seed)
    images, masks = [], []
    conditional = getattr(model, "CONDITIONAL", False)
    bar = progress_bar(total=len(labels), desc="generating", unit="pair", disable=not progress)
    for start in range(0, len(labels), batch_size):
        chunk, rows = latent[start:start + batch_size], slice(start, start + batch_size)
        if layouts is not None:
            images.append(np.clip(model.sample(layouts=layouts[rows], labels=labels[rows],
                                               latent=chunk, batch_size=batch_size),
                                  -1.0, 1.0).astype(np.float32))
            masks.append(model.masks_of(layouts[rows]))
            bar.update(len(chunk))
            continue
        joint = (model.sample(latent=chunk, labels=labels[rows], batch_size=batch_size)
                 if conditional else model.sample(latent=chunk, batch_size=batch_size))
        images.append(np.clip(joint[..., :-1], -1.0, 1.0).astype(np.float32))
        masks.append((joint[..., -1:] > 0.0).astype(np.uint8))
        bar.update(len(joint))
    bar.close()
    return np.concatenate(images), np.concatenate(masks)


def build_synthetic_dataset(model, class_names: Sequence[str], n: int, seed: int = 0,
                            proportions: Sequence[float] | None = None, per_class: bool = False,
                            val_fraction: float = 0.1, batch_size: int = 500,
                            progress: bool = True, meta: dict[str, Any] | None = None,
                            layout_source: PreparedDataset | None = None,
                            layouts_from: str = "real") -> PreparedDataset:
    """Generate a synthetic ``PreparedDataset`` with an image + mask generator: a conditional
    one (cwgan-gp), or an unconditional one trained jointly on image + mask, whose labels are
    read from its masks (two classes only), or a layout-conditioned one (SPADE) rendering the
    layouts of ``layout_source`` (see the module docstring), deformed or copied as
    ``layouts_from`` says (``LAYOUT_SOURCES``)."""
    if not 0.0 <= val_fraction < 1.0:
        raise MriganError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if layouts_from not in LAYOUT_SOURCES:
        raise MriganError(f"--layouts must be one of {', '.join(LAYOUT_SOURCES)}, "
                          f"got {layouts_from!r}")
    rng = np.random.default_rng(seed)
    layouts = None
    if getattr(model, "LAYOUT_CONDITIONAL", False):
        if layout_source is None or layout_source.layout is None:
            raise MriganError(f"{type(model).__name__} renders layouts: it needs a dataset "
                              "with layouts to draw them from")
        counts = class_counts(n, model.num_classes, proportions, per_class)
        labels = rng.permutation(np.repeat(np.arange(model.num_classes), counts)).astype(np.int32)
        layouts = np.zeros((len(labels), *layout_source.layout.shape[1:]), np.uint8)
        for k, name in enumerate(class_names):
            rows, pool = np.flatnonzero(labels == k), np.flatnonzero(layout_source.labels == k)
            if rows.size and not pool.size:
                raise MriganError(f"no {name!r} layout to draw from in the training split")
            layouts[rows] = layout_source.layout[rng.choice(pool, rows.size, replace=True)]
        kept_unwarped = 0
        if layouts_from == "real":
            layouts, kept_unwarped = deform_layouts(layouts, layout_source.layout_mask_classes,
                                                    seed=seed)
    elif getattr(model, "CONDITIONAL", False):
        if len(class_names) != model.num_classes:
            raise MriganError(f"the model has {model.num_classes} classes, the run lists "
                              f"{len(class_names)}: {list(class_names)}")
        counts = class_counts(n, model.num_classes, proportions, per_class)
        labels = rng.permutation(np.repeat(np.arange(model.num_classes), counts)).astype(np.int32)
    else:
        if len(class_names) != 2:
            raise MriganError(f"{type(model).__name__} is unconditional: its slices' classes are "
                              f"read from their masks, which needs two classes (empty mask, "
                              f"lesion), not {len(class_names)}; use a cwgan-gp run")
        if proportions is not None or per_class:
            raise MriganError(f"{type(model).__name__} is unconditional: it draws the class "
                              "mix it learnt; --proportions and --per-class need a cwgan-gp run")
        class_counts(n, 2)   # refuses n < 1
        counts = None
        labels = np.zeros(n, np.int32)   # placeholders: set from the masks below
    images, masks = generate_pairs(model, labels, seed=seed, batch_size=batch_size,
                                   progress=progress, layouts=layouts)
    total = len(labels)
    if counts is None:
        labels = (masks.reshape(total, -1).max(axis=1) > 0).astype(np.int32)
        counts = np.bincount(labels, minlength=2)
    split = np.full(total, "train", dtype="<U5")
    split[rng.permutation(total)[:int(round(val_fraction * total))]] = "val"
    area = masks.reshape(total, -1).sum(axis=1)
    # Class 0 is the lesion-free class (the contract's convention): its masks should be
    # empty, and every other class's should not.
    consistency = {}
    for k, name in enumerate(class_names):
        in_class = labels == k
        if k == 0:
            consistency[f"{name}_with_nonempty_mask"] = int(np.sum(in_class & (area > 0)))
        else:
            consistency[f"{name}_with_empty_mask"] = int(np.sum(in_class & (area == 0)))
    full_meta = {
        "class_names": list(class_names),
        "image_size": int(images.shape[1]),
        "source": "synthetic",
        "seed": int(seed),
        "package_version": __version__,
        "generation": {"n": int(n), "per_class": bool(per_class),
                       "proportions": None if proportions is None else [float(p) for p in proportions],
                       "requested_counts": {name: int(c) for name, c in zip(class_names, counts)},
                       "labels_from_masks": not (getattr(model, "CONDITIONAL", False)
                                                 or layouts is not None),
                       "val_fraction": float(val_fraction), "mask_threshold": 0.0,
                       "batch_size": int(batch_size)},
        # A generator can disagree with its own class (a blob on a "healthy" slice); we keep
        # its output as it is and count the disagreements, so the metrics can judge them.
        "label_mask_disagreements": consistency,
        **(meta or {}),
    }
    if layouts is not None:
        full_meta.update(layout_meta(layout_source.layout_classes,
                                     layout_source.layout_mask_classes))
        full_meta["not_patient_data"] = (
            "Images generated by a GAN, but rendered from layouts of the training subjects "
            + ("(their label maps and masks, flipped and warped by a few pixels)."
               if layouts_from == "real" else "(their label maps and masks are copied)."))
        full_meta["generation"]["layouts"] = (
            f"{layouts_from}: {LAYOUT_SOURCES[layouts_from]}, drawn with replacement per class "
            "(the anatomy and tumor outlines are the training subjects'; a layout generator "
            "is later work)")
        full_meta["generation"]["layouts_kept_unwarped"] = int(kept_unwarped)
    full_meta.setdefault("modality", "synthetic")
    if images.shape[-1] > 1 and not full_meta.get("channels"):
        full_meta["channels"] = [f"channel{c}" for c in range(images.shape[-1])]
    width = max(6, len(str(total)))
    subjects = np.asarray([f"synthetic-{i:0{width}d}" for i in range(total)])
    return PreparedDataset(images=images, masks=masks, labels=labels, subjects=subjects,
                           split=split, meta=full_meta, layout=layouts)


def _png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", optimize=False, compress_level=1)
    return buf.getvalue()


def _write_exports(ds: PreparedDataset, directory: Path, formats: Sequence[str],
                   progress: bool) -> None:
    rows = []
    if "png" in formats:
        bar = progress_bar(total=len(ds), desc="writing PNG", unit="pair", disable=not progress)
        for name in ds.class_names:
            (directory / "png" / name).mkdir(parents=True, exist_ok=True)
        grey = np.round((ds.images[..., 0] + 1.0) * 127.5).astype(np.uint8)
        for i, subject in enumerate(ds.subjects):
            folder = directory / "png" / ds.class_names[ds.labels[i]]
            (folder / f"{subject}_image.png").write_bytes(_png_bytes(grey[i]))
            (folder / f"{subject}_mask.png").write_bytes(_png_bytes(ds.masks[i, ..., 0] * 255))
            bar.update(1)
        bar.close()
    if "nifti" in formats:
        import nibabel as nib

        (directory / "nifti").mkdir(exist_ok=True)
        for k, name in enumerate(ds.class_names):
            idx = np.flatnonzero(ds.labels == k)
            if not idx.size:
                continue
            # One stack per class: slices along the third axis, 1 mm voxels (nominal).
            stack = np.moveaxis(ds.images[idx, ..., 0], 0, -1)
            mask = np.moveaxis(ds.masks[idx, ..., 0], 0, -1)
            nib.save(nib.Nifti1Image(stack.astype(np.float32), np.eye(4)),
                     directory / "nifti" / f"{name}_images.nii.gz")
            nib.save(nib.Nifti1Image(mask.astype(np.uint8), np.eye(4)),
                     directory / "nifti" / f"{name}_masks.nii.gz")
    area = ds.masks.reshape(len(ds), -1).sum(axis=1)
    for i, subject in enumerate(ds.subjects):
        name = ds.class_names[ds.labels[i]]
        row = {"id": subject, "class": name, "label": int(ds.labels[i]), "split": ds.split[i],
               "mask_pixels": int(area[i]), "index_in_npz": i}
        if "png" in formats:
            row["image_png"] = f"png/{name}/{subject}_image.png"
            row["mask_png"] = f"png/{name}/{subject}_mask.png"
        rows.append(row)
    with open(directory / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_synthetic_dataset(run_dir: str | os.PathLike, out_dir: str | os.PathLike,
                            n: int = 10_000, seed: int = 0,
                            proportions: Sequence[float] | None = None, per_class: bool = False,
                            formats: Sequence[str] = ("npz",), val_fraction: float = 0.1,
                            batch_size: int = 500, progress: bool = True,
                            overwrite: bool = False, layouts_from: str = "real") -> PreparedDataset:
    """Generate from the model of ``run_dir`` and write the dataset to ``out_dir`` atomically.

    ``layouts_from``: for a layout-conditioned run, ``LAYOUT_SOURCES``'s key."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or "npz" not in formats:
        raise MriganError(f"--format takes a comma-separated subset of {', '.join(FORMATS)} "
                          f"and always includes npz; got {','.join(formats)}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise MriganError(f"{out_dir}: output already exists; choose another --out or pass --overwrite")
    model, saved, checkpoint = load_run(run_dir)
    layout_source = None
    if getattr(model, "LAYOUT_CONDITIONAL", False):
        layout_source = load_dataset(saved["train"]["data"]).select("train")
    elif not getattr(model, "CONDITIONAL", False) and not saved["train"].get("joint"):
        raise MriganError(f"{run_dir}: this {saved['train']['model']} run generates images "
                          "without masks; train it with --joint (image + mask) to make a "
                          "labelled synthetic dataset")
    ds = build_synthetic_dataset(
        model, saved["class_names"], n, seed=seed, proportions=proportions, per_class=per_class,
        val_fraction=val_fraction, batch_size=batch_size, progress=progress,
        meta={"model": saved["train"]["model"], "run": str(Path(run_dir)),
              "checkpoint": str(checkpoint), "trained_on": saved["train"]["data"],
              "trained_on_source": saved.get("data_source"),
              "modality": saved.get("data_modality", "synthetic"),
              "channels": saved.get("data_channels"),
              "formats": list(formats),
              "not_patient_data": "Generated by a GAN; contains no patient data."},
        layout_source=layout_source, layouts_from=layouts_from)
    validate_dataset(ds, out_dir)
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        write_dataset_files(ds, tmp)
        _write_exports(ds, tmp, formats, progress)
    return ds
