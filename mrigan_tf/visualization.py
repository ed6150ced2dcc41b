"""Pictures of slices with their masks: the same figure for real and generated data."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import matplotlib

if os.environ.get("MPLBACKEND") is None and not os.environ.get("DISPLAY"):
    # Headless (CLI, CI): render to files. Jupyter sets its own inline backend.
    import sys
    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np


MASK_COLOR = (1.0, 0.15, 0.1)

if TYPE_CHECKING:   # plotting is infrastructure: it reads datasets, it does not import the data stage
    from mrigan_tf.data.contract import PreparedDataset



def overlay_mask(image: np.ndarray, mask: np.ndarray, alpha: float = 0.35) -> np.ndarray:
    """RGB picture of a [-1, 1] grey slice with its 0/1 mask tinted red."""
    grey = (np.clip(np.squeeze(image), -1, 1) + 1.0) / 2.0
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    m = np.squeeze(mask).astype(bool)[..., None]
    return np.where(m, (1 - alpha) * rgb + alpha * np.asarray(MASK_COLOR), rgb)


def plot_three_views(volume: np.ndarray, title: str = "") -> plt.Figure:
    """The axial, coronal and sagittal planes through the centre of a 3-D volume in RAS order
    (i: left-right, j: posterior-anterior, k: inferior-superior), rotated for display."""
    x, y, z = (s // 2 for s in volume.shape[:3])
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    views = [("axial (k)", volume[:, :, z]), ("coronal (j)", volume[:, y, :]),
             ("sagittal (i)", volume[x, :, :])]
    for ax, (name, view) in zip(axes, views):
        ax.imshow(np.rot90(view), cmap="gray")
        ax.set_title(name)
        ax.axis("off")
    fig.suptitle(title)
    return fig


def plot_slice_grid(images: np.ndarray, masks: np.ndarray | None = None,
                    titles: list[str] | None = None, ncols: int = 8,
                    path: str | os.PathLike | None = None, suptitle: str | None = None,
                    contour: bool = True):
    """A grid of slices, each with its mask outlined (and tinted) in red."""
    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.7 * nrows + 0.4),
                             squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i >= n:
            continue
        if masks is None:
            ax.imshow(np.squeeze(images[i]), cmap="gray", vmin=-1, vmax=1)
        else:
            ax.imshow(overlay_mask(images[i], masks[i]))
            if contour and np.squeeze(masks[i]).any():
                ax.contour(np.squeeze(masks[i]), levels=[0.5], colors=[MASK_COLOR],
                           linewidths=0.6)
        if titles:
            ax.set_title(titles[i], fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def _class_row(ds: PreparedDataset, label: int, n: int, rng: np.random.Generator):
    """``n`` random slices of class ``label`` (blank padding when the class has fewer)."""
    idx = np.flatnonzero(ds.labels == label)
    pick = np.sort(rng.choice(idx, size=min(n, idx.size), replace=False)) if idx.size else []
    blank_image = np.full(ds.images.shape[1:], -1.0, np.float32)
    blank_mask = np.zeros(ds.masks.shape[1:], np.uint8)
    images = [ds.images[i] for i in pick] + [blank_image] * (n - len(pick))
    masks = [ds.masks[i] for i in pick] + [blank_mask] * (n - len(pick))
    subjects = [str(ds.subjects[i]) for i in pick] + ["(none)"] * (n - len(pick))
    return images, masks, subjects


def plot_dataset_classes(dataset: PreparedDataset, per_class: int = 8, seed: int = 0,
                         path: str | os.PathLike | None = None, title: str | None = None):
    """One row per class of randomly chosen slices with mask overlays."""
    rng = np.random.default_rng(seed)
    images, masks, titles = [], [], []
    for k, name in enumerate(dataset.class_names):
        row_images, row_masks, subjects = _class_row(dataset, k, per_class, rng)
        images += row_images
        masks += row_masks
        titles += [f"{name} | {s}" for s in subjects]
    return plot_slice_grid(np.stack(images), np.stack(masks), titles, ncols=per_class,
                           path=path, suptitle=title)


def plot_real_vs_synthetic(real: PreparedDataset, synthetic: PreparedDataset, per_class: int = 8,
                           seed: int = 0, path: str | os.PathLike | None = None,
                           title: str | None = None):
    """Per class, a row of real slices above a row of synthetic ones, masks in red."""
    rng = np.random.default_rng(seed)
    images, masks, titles = [], [], []
    for k, name in enumerate(real.class_names):
        for source, ds in (("real", real), ("synthetic", synthetic)):
            row_images, row_masks, _ = _class_row(ds, k, per_class, rng)
            images += row_images
            masks += row_masks
            titles += [f"{source} {name}"] * per_class
    return plot_slice_grid(np.stack(images), np.stack(masks), titles, ncols=per_class,
                           path=path, suptitle=title)
