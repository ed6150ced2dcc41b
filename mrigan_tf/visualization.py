"""Pictures of slices with their masks: the same figure for real and generated data."""

from __future__ import annotations

import os

import matplotlib

if os.environ.get("MPLBACKEND") is None and not os.environ.get("DISPLAY"):
    # Headless (CLI, CI): render to files. Jupyter sets its own inline backend.
    import sys
    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from mrigan_tf.data.contract import PreparedDataset

MASK_COLOR = (1.0, 0.15, 0.1)


def overlay_mask(image: np.ndarray, mask: np.ndarray, alpha: float = 0.35) -> np.ndarray:
    """RGB picture of a [-1, 1] grey slice with its 0/1 mask tinted red."""
    grey = (np.clip(np.squeeze(image), -1, 1) + 1.0) / 2.0
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    m = np.squeeze(mask).astype(bool)[..., None]
    return np.where(m, (1 - alpha) * rgb + alpha * np.asarray(MASK_COLOR), rgb)


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


def plot_dataset_classes(dataset: PreparedDataset, per_class: int = 8, seed: int = 0,
                         path: str | os.PathLike | None = None, title: str | None = None):
    """One row per class of randomly chosen slices with mask overlays."""
    rng = np.random.default_rng(seed)
    images, masks, titles = [], [], []
    for k, name in enumerate(dataset.class_names):
        idx = np.flatnonzero(dataset.labels == k)
        pick = np.sort(rng.choice(idx, size=min(per_class, idx.size), replace=False)) if idx.size else []
        for j in range(per_class):
            if j < len(pick):
                images.append(dataset.images[pick[j]])
                masks.append(dataset.masks[pick[j]])
                titles.append(f"{name} | {dataset.subjects[pick[j]]}")
            else:
                images.append(np.full(dataset.images.shape[1:], -1.0, np.float32))
                masks.append(np.zeros(dataset.masks.shape[1:], np.uint8))
                titles.append(f"{name} | (none)")
    return plot_slice_grid(np.stack(images), np.stack(masks), titles, ncols=per_class,
                           path=path, suptitle=title)
