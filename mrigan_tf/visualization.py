"""Pictures of slices with their masks: the same figure for real and generated data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    # Fixed margins rather than tight_layout, which draws the whole figure once more to
    # measure it: a third of the grid's cost (1.1 of 3 CPU-s for 32 slices), paid at every
    # epoch by the training sample grids. Room for the suptitle (0.4 in) and the titles.
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, wspace=0.08,
                        top=1 - (0.45 if suptitle else 0.25 if titles else 0.05) / height,
                        hspace=0.25 if titles else 0.05)
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


def plot_split_counts(counts: dict[str, dict[str, int]]):
    """Slices per split, stacked by class: ``PreparedDataset.counts()`` as a bar chart."""
    splits = list(counts)
    classes = list(dict.fromkeys(c for split in counts.values() for c in split))
    fig, ax = plt.subplots(figsize=(6, 3))
    bottom = np.zeros(len(splits))
    for name in classes:
        values = np.array([counts[s].get(name, 0) for s in splits], float)
        ax.bar(splits, values, bottom=bottom, label=name)
        bottom += values
    ax.set_ylabel("slices")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_joint_batch(joint: np.ndarray, labels: np.ndarray, class_names: list[str], n: int = 6):
    """The first ``n`` joint GAN inputs of a batch: the image channel(s) above the mask
    channel (``2 * mask - 1``, the last channel), titled by class."""
    joint, labels = np.asarray(joint), np.asarray(labels)
    n = min(n, len(joint))
    fig, axes = plt.subplots(2, n, figsize=(10 / 6 * n, 3.6), squeeze=False)
    for j in range(n):
        axes[0, j].imshow(joint[j, :, :, 0], cmap="gray", vmin=-1, vmax=1)
        axes[1, j].imshow(joint[j, :, :, -1], cmap="gray", vmin=-1, vmax=1)
        axes[0, j].set_title(class_names[int(labels[j])], fontsize=8)
        axes[0, j].axis("off")
        axes[1, j].axis("off")
    fig.suptitle("channel 0: image, last channel: 2*mask-1")
    return fig


# ## Watching and comparing generators (notebooks 02-05, 07)

def show_sample_grids(run_dir: str | os.PathLike, count: int = 4, width: int = 640) -> list[str]:
    """Display, in a notebook, about ``count`` of the fixed-noise grids a run wrote to
    ``samples/`` (evenly spaced, always the last): the same noise, epoch after epoch.
    Returns the file names shown."""
    from IPython.display import Image, display   # notebooks only

    grids = sorted((Path(run_dir) / "samples").glob("*.png"))
    chosen = sorted(set(grids[::max(1, len(grids) // max(1, count - 1))] + grids[-1:]))
    for path in chosen:
        display(Image(filename=str(path), width=width))
    return [p.name for p in chosen]


def plot_generator_rows(models: dict, latent: np.ndarray, real: np.ndarray | None = None,
                        labels: np.ndarray | None = None, suptitle: str | None = None):
    """One row per generator for the same latent vectors (after an optional row of ``real``
    slices): what each model makes of the same inputs. ``models`` maps a name to anything
    with ``sample(latent=..., labels=...)``; ``labels`` is for conditional ones."""
    rows = [] if real is None else [np.asarray(real)[:len(latent)]]
    names = [] if real is None else ["real"]
    for name, model in models.items():
        kwargs = {} if labels is None else {"labels": labels}
        rows.append(np.asarray(model.sample(latent=latent, **kwargs))[..., :1])
        names.append(name)
    n = len(latent)
    titles = [name if i == 0 else "" for name in names for i in range(n)]
    return plot_slice_grid(np.concatenate(rows), titles=titles, ncols=n,
                           suptitle=suptitle or f"the same {n} latent vectors, one row per model")


def plot_class_rows(model, latent: np.ndarray, class_names: list[str],
                    suptitle: str | None = None):
    """A conditional generator's samples: one row per class, the same ``latent`` vectors in
    every row (image with its generated mask, the joint output's last channel > 0)."""
    n = len(latent)
    samples = np.concatenate([np.asarray(model.sample(latent=latent, labels=np.full(n, k)))
                              for k in range(len(class_names))])
    titles = [name for name in class_names for _ in range(n)]
    return plot_slice_grid(samples[..., :1], samples[..., -1:] > 0, titles, ncols=n,
                           suptitle=suptitle or f"one row per class, the same {n} latent vectors")


def plot_critic_surfaces(surfaces: dict[str, tuple[np.ndarray, float]], xs: np.ndarray,
                         real: np.ndarray, fake: np.ndarray, points: int = 300):
    """2-D critics side by side: each ``(values on the xs x xs grid, median slope)`` of
    ``experiments.critic_surface`` as filled contours, with ``points`` real and fake points
    (``(n, 1, 1, 2)`` arrays, as ``experiments.ring_and_blob`` makes them) on top."""
    fig, axes = plt.subplots(1, len(surfaces), figsize=(5 * len(surfaces), 4.6), squeeze=False)
    real, fake = np.asarray(real).reshape(len(real), 2), np.asarray(fake).reshape(len(fake), 2)
    for ax, (method, (values, slope)) in zip(axes[0], surfaces.items()):
        ax.contourf(xs, xs, values, levels=20, cmap="viridis")
        ax.scatter(real[:points, 0], real[:points, 1], s=2, c="orange", label="real")
        ax.scatter(fake[:points, 0], fake[:points, 1], s=2, c="white", label="fake")
        ax.set_title(f"{method}: median |grad f| = {slope:.2g}")
        ax.set_aspect("equal")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_history_comparison(histories: dict[str, dict[str, list[float]]],
                            panels: list[tuple[str, tuple[str, ...]]]):
    """Training curves of several runs side by side: one panel per ``(title, keys)``, one
    colour per run, the keys of a panel drawn solid, dashed, dotted. A key ``"a - b"`` draws
    the difference of two logged values."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    styles = ("-", "--", ":")
    for ax, (title, keys) in zip(axes[0], panels):
        for i, (name, history) in enumerate(histories.items()):
            color = f"C{i}"
            for style, key in zip(styles, keys):
                if " - " in key:
                    a, b = key.split(" - ")
                    values = np.asarray(history[a]) - np.asarray(history[b])
                else:
                    values = np.asarray(history[key])
                label = name if len(keys) == 1 else f"{name}: {key}"
                ax.plot(np.arange(1, len(values) + 1), values, style, color=color, label=label)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_diversity_and_drift(curves: dict[str, dict[str, np.ndarray]],
                             real_ms_ssim: float | None = None):
    """Two panels over training, one colour per run: the samples' pairwise MS-SSIM (beside
    the real slices' own, dotted) and their drift from one epoch to the next. ``curves`` maps
    a run's name to ``experiments.snapshot_diversity`` of its fixed-noise frames."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for i, (name, c) in enumerate(curves.items()):
        axes[0].plot(c["epochs"], c["ms_ssim"], color=f"C{i}", label=name)
        axes[1].plot(c["drift_epochs"], c["drift"], color=f"C{i}", label=name)
    if real_ms_ssim is not None:
        axes[0].axhline(real_ms_ssim, color="k", lw=0.8, ls=":", label="real training slices")
    axes[0].set_title("pairwise MS-SSIM of samples (higher = less diverse)")
    axes[1].set_title("drift: mean |G_t(z) - G_t-1(z)| per epoch")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_nearest_real(fake: np.ndarray, reference: np.ndarray, correlations: np.ndarray,
                      nearest: np.ndarray, suptitle: str | None = None):
    """Generated slices (top row) above their nearest real slices (``nearest`` indexes
    ``reference``; ``correlations`` their Pearson r, e.g. from
    ``metrics.nearest_neighbour.nearest_neighbour_correlation``)."""
    fake = np.asarray(fake)
    pairs = np.concatenate([fake, np.asarray(reference)[np.asarray(nearest)]])
    titles = ["generated"] * len(fake) + [f"nearest real, r={r:.2f}" for r in correlations]
    return plot_slice_grid(pairs, titles=titles, ncols=len(fake), suptitle=suptitle)


QUALITY_COLUMNS = (("ms_ssim", "MS-SSIM", "8.3f"), ("nn_corr", "NN corr", "8.2f"),
                   ("coverage", "coverage", "9.2f"), ("pixel_w1", "pixel W1", "9.3f"))


def format_quality_table(table: dict[str, dict[str, float]],
                         extra: dict[str, dict[str, Any]] | None = None) -> str:
    """``sample_quality_table``'s rows as aligned text: MS-SSIM, NN corr, coverage, pixel W1,
    then any ``extra`` columns (row name -> column -> value; rows without them stay blank)."""
    extra = extra or {}
    extra_columns = list(dict.fromkeys(c for row in extra.values() for c in row))
    width = max([len(name) for name in table] + [12]) + 2
    widths = [max(len(title), int(fmt.split(".")[0])) for _, title, fmt in QUALITY_COLUMNS]
    lines = [" " * width + " ".join(f"{title:>{w}s}" for (_, title, _), w in
                                    zip(QUALITY_COLUMNS, widths))
             + "".join(f" {c:>11s}" for c in extra_columns)]
    for name, row in table.items():
        line = f"{name:{width}s}" + " ".join(f"{row[key]:{fmt}}" for key, _, fmt in QUALITY_COLUMNS)
        for column in extra_columns:
            value = extra.get(name, {}).get(column)
            line += (" " + " " * 11 if value is None else
                     f" {value:11,d}" if isinstance(value, (int, np.integer)) else f" {value:11.1f}")
        lines.append(line)
    return "\n".join(lines)


def format_rows(rows: dict[str, dict[str, Any]], columns: list[tuple[str, str, str]],
                name_title: str = "") -> str:
    """Rows of numbers as aligned text: one line per ``rows`` entry (its name first), one
    column per ``(key, title, format)`` (e.g. ``("fid", "FID", ".3f")``); a missing or None
    value prints as ``-``. A format may end in ``%`` (``".1%"``)."""
    name_width = max([len(name) for name in rows] + [len(name_title)]) + 2
    cells = {name: [("-" if row.get(key) is None else format(row[key], fmt))
                    for key, _, fmt in columns] for name, row in rows.items()}
    widths = [max([len(title)] + [len(c[i]) for c in cells.values()])
              for i, (_, title, _) in enumerate(columns)]
    lines = [f"{name_title:{name_width}s}" + "  ".join(f"{title:>{w}s}" for (_, title, _), w
                                                       in zip(columns, widths))]
    lines += [f"{name:{name_width}s}" + "  ".join(f"{c:>{w}s}" for c, w in zip(row, widths))
              for name, row in cells.items()]
    return "\n".join(line.rstrip() for line in lines)


def format_counts(counts: dict[str, dict[str, int]]) -> str:
    """``PreparedDataset.counts()`` (split -> class -> slices) as aligned text, with a total
    column and, over two or more splits, an ``all`` row."""
    classes = list(dict.fromkeys(c for per_class in counts.values() for c in per_class))
    rows = {split: {**per_class, "total": sum(per_class.values())}
            for split, per_class in counts.items()}
    if len(rows) > 1:
        rows["all"] = {c: sum(row.get(c, 0) for row in rows.values()) for c in [*classes, "total"]}
    columns = [(c, c, ",d") for c in [*classes, "total"]]
    return format_rows(rows, columns, name_title="slices")


def plot_histograms(samples: dict[str, np.ndarray], xlabel: str, bins: int = 40,
                    upper: float | None = None, density: bool = True,
                    yardstick: tuple[str, np.ndarray] | None = None,
                    percentile: float | None = None, figsize: tuple[float, float] = (7, 3)):
    """Overlaid histograms of ``samples`` (name -> values) on common bins from the smallest
    value to ``upper`` (default: the largest). ``yardstick`` (name, values) is drawn as a black
    outline, and its ``percentile`` as a dotted line: what the others are judged against."""
    everything = list(samples.values()) + ([yardstick[1]] if yardstick else [])
    values = np.concatenate([np.ravel(v) for v in everything] + [np.zeros(0)])
    low = float(values.min()) if values.size else 0.0
    high = upper if upper is not None else float(values.max()) if values.size else 1.0
    edges = np.linspace(low, max(high, low + 1e-6), bins)
    fig, ax = plt.subplots(figsize=figsize)
    if yardstick is not None:
        ax.hist(yardstick[1], bins=edges, density=density, histtype="step", lw=2, color="k",
                label=yardstick[0])
        if percentile is not None:
            ax.axvline(np.percentile(yardstick[1], percentile), color="k", ls=":", lw=1,
                       label=f"its {percentile:g}th percentile")
    alpha = 0.45 if yardstick is not None or len(samples) > 2 else 0.6
    for name, v in samples.items():
        ax.hist(v, bins=edges, density=density and np.size(v) > 0, alpha=alpha, label=name)
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ## Notebook 06: segmentation

def plot_segmentation_predictions(images: np.ndarray, masks: np.ndarray, predicted: np.ndarray,
                                  titles: list[str] | np.ndarray | None = None, n: int = 8):
    """The ``n`` slices with the largest true masks: truth outlined (top row) above the
    prediction (bottom row)."""
    # int64: the sum of uint8 masks is unsigned, and negating it would put empty masks first.
    areas = np.asarray(masks).reshape(len(masks), -1).sum(axis=1, dtype=np.int64)
    order = np.argsort(-areas, kind="stable")
    show = order[:min(n, len(order))]
    fig, axes = plt.subplots(2, max(1, len(show)), figsize=(1.8 * max(1, len(show)), 4),
                             squeeze=False)
    for column, i in enumerate(show):
        axes[0, column].imshow(overlay_mask(images[i], masks[i]))
        axes[1, column].imshow(overlay_mask(images[i], predicted[i]))
        if titles is not None:
            axes[0, column].set_title(str(titles[i]), fontsize=7)
    for ax in axes.ravel():
        ax.axis("off")
    half = np.asarray(images).shape[1] / 2
    axes[0, 0].text(-2, half, "truth", rotation=90, va="center", ha="right")
    axes[1, 0].text(-2, half, "prediction", rotation=90, va="center", ha="right")
    return fig


# ## Notebook 07: the evaluation's pictures

def plot_fid_sample_size(sizes: list[int], curves: dict[str, dict[str, Any]]):
    """Three panels: FID against N (log axis), FID against 1/N with its straight-line fit
    extrapolated to N = infinity, and KID against N, one colour per pool (error bars: the
    spread over draws)."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    inverse = 1.0 / np.asarray(sizes)
    for i, (name, c) in enumerate(curves.items()):
        color = f"C{i}"
        axes[0].errorbar(sizes, c["fid"].mean(1), c["fid"].std(1), marker="o", capsize=3,
                         color=color, label=name)
        axes[1].plot(inverse, c["fid"].mean(1), "o", color=color, label=name)
        axes[1].plot([0, inverse.max()], np.polyval(c["fit"], [0, inverse.max()]), "--",
                     color=color, label=f"fit: FID_inf = {c['fid_inf']:.2f}")
        axes[2].errorbar(sizes, c["kid"].mean(1), c["kid"].std(1), marker="o", capsize=3,
                         color=color, label=name)
    axes[0].set(xscale="log", xlabel="N (slices in the candidate set)", ylabel="FID",
                title="FID against the train split")
    for ax in (axes[0], axes[2]):
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
    axes[1].set(xlabel="1 / N", ylabel="FID", title="the same against 1/N, extrapolated to N = inf")
    axes[2].axhline(0, color="k", lw=0.8)
    axes[2].set(xscale="log", xlabel="N", ylabel="KID", title="KID: unbiased, but noisier at small N")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_closest_pairs(candidates: list[tuple[str, np.ndarray, np.ndarray, list[dict]]],
                       train_images: np.ndarray, train_masks: np.ndarray,
                       train_subjects: np.ndarray, per_row: int = 8, suptitle: str | None = None):
    """For each ``(name, images, masks, closest_pairs)`` (the pairs of a memorization audit,
    closest first), a row of candidate slices above a row of their nearest training slices,
    ``per_row`` wide (blank cells pad short rows)."""
    rows, masks, titles = [], [], []
    blank_image = np.full_like(train_images[0], -1)
    blank_mask = np.zeros_like(train_masks[0])
    for name, images, image_masks, pairs in candidates:
        pairs = pairs[:per_row]
        pad = per_row - len(pairs)
        rows += ([images[p["synthetic_index"]] for p in pairs] + [blank_image] * pad
                 + [train_images[p["train_index"]] for p in pairs] + [blank_image] * pad)
        masks += ([image_masks[p["synthetic_index"]] for p in pairs] + [blank_mask] * pad
                  + [train_masks[p["train_index"]] for p in pairs] + [blank_mask] * pad)
        titles += ([f"{name.split(',')[0]}\nSSIM {p['ssim']:.2f}" for p in pairs] + [""] * pad
                   + [f"nearest train\n{train_subjects[p['train_index']]}" for p in pairs]
                   + [""] * pad)
    return plot_slice_grid(np.stack(rows), np.stack(masks), titles, ncols=per_row,
                           suptitle=suptitle)


def plot_loss_gradients(outputs: np.ndarray, gradients: dict[str, np.ndarray],
                        confident: float | None = None,
                        title: str = "the generator's gradient w.r.t. the critic's output on a fake"):
    """One line per loss: ``dL_G / dl`` against the critic's output ``l`` on a fake (e.g.
    ``experiments.generator_loss_gradients``). ``confident``: shade ``l < confident``, where
    the critic is sure the sample is fake. Returns the figure."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, values in gradients.items():
        ax.plot(outputs, values, label=name, lw=2 if "saturating" in name else 1.5,
                ls="--" if "saturating" in name else "-")
    if confident is not None:
        ax.axvspan(float(np.min(outputs)), confident, color="0.92", zorder=0)
        ax.text(float(np.min(outputs)), ax.get_ylim()[1], " critic sure: fake", va="top",
                fontsize=8, color="0.4")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("critic's output on a fake, l (logit or score)")
    ax.set_ylabel("dL_G / dl")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_growth_schedule(steps: np.ndarray, levels: np.ndarray, alphas: np.ndarray,
                         title: str = "ProGAN's growth schedule"):
    """The resolution (4 * 2**level px) and the fade-in alpha against the generator step, one
    panel each (e.g. from ``ProGAN.growth_at`` over a range of steps). Returns the figure."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4), sharex=True)
    top.step(steps, 4 * 2 ** np.asarray(levels), where="post")
    top.set_ylabel("resolution (px)")
    top.set_yscale("log", base=2)
    bottom.plot(steps, alphas)
    bottom.set_ylabel("fade-in alpha")
    bottom.set_xlabel("generator step")
    top.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
