"""
Title: Watching a GAN train
Description: fixed-noise sample grids and loss curves, written every epoch.

A GAN's losses do not say how good its samples are: the two players' losses measure each
other, and a vanilla GAN whose losses look calm may be producing one image over and over.
So we *look*, the way Radford et al. did: the generator's output for one fixed batch of
latent vectors ``z_1 ... z_n``, saved after every epoch. With the noise fixed, changes between
grids are changes of ``G`` alone: slow sharpening is learning, all cells turning into the same
image is mode collapse, images that jump around from epoch to epoch are oscillation.

``SampleGridCallback`` draws that grid (the mask channel of a joint image+mask model as a red
overlay), ``LossHistoryPlot`` and ``plot_history`` draw the logged scalars. For TensorBoard,
add the standard ``keras.callbacks.TensorBoard(log_dir)``: every model logs scalars only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import keras
import numpy as np

from mrigan_tf.atomic import atomic_file
# pyplot via visualization, which picks a headless backend first when there is no display.
from mrigan_tf.visualization import plot_slice_grid, plt


def joint_to_image_and_mask(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Split generated (N, H, W, C) samples into images to show and (for C >= 2) binary masks.

    A joint sample is ``concat([image channels, 2*mask-1], -1)``, so its mask is the last
    channel thresholded at 0, and the first channel is the image shown. One-channel samples
    have no mask (``None``).
    """
    images = samples[..., :1]
    if samples.shape[-1] < 2:
        return images, None
    return images, (samples[..., -1:] > 0).astype(np.uint8)


def show_inline(figure) -> None:
    """Display a figure in a notebook's output; does nothing outside IPython."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return
    if get_ipython() is not None:
        display(figure)


class SampleGridCallback(keras.callbacks.Callback):
    """Save the generator's samples for one fixed latent batch as a PNG after each epoch.

    Args:
        directory: where ``{prefix}_epoch{NNNN}.png`` files go (created if missing).
        n: number of samples in the grid.
        seed: seed of the fixed latent batch (``BaseGAN.sample``'s seed).
        ncols: grid columns.
        every: write every ``every`` epochs (and after the last one).
        show: also display each grid inline (in a notebook).
        initial: also write the grid of the untrained generator, as epoch 0 (skipped when
            the generator has already taken steps, e.g. on a resumed run).
        prefix: file name prefix.

    ``paths`` lists the files written, in order.
    """

    def __init__(self, directory: str | os.PathLike, n: int = 16, seed: int = 0,
                 ncols: int = 8, every: int = 1, show: bool = False, initial: bool = False,
                 prefix: str = "samples"):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.directory = Path(directory)
        self.n = n
        self.seed = seed
        self.ncols = ncols
        self.every = every
        self.show = show
        self.initial = initial
        self.prefix = prefix
        self.paths: list[Path] = []

    def on_train_begin(self, logs=None):
        g_optimizer = getattr(self.model, "g_optimizer", None)
        # convert_to_numpy: under a tf.distribute strategy the counter is a MirroredVariable.
        untrained = (g_optimizer is None
                     or int(keras.ops.convert_to_numpy(g_optimizer.iterations)) == 0)
        if self.initial and untrained:
            self.write_grid(0)

    def on_epoch_end(self, epoch, logs=None):
        epoch_number = epoch + 1
        last = epoch_number == self.params.get("epochs") if self.params else False
        if epoch_number % self.every == 0 or last:
            self.write_grid(epoch_number)

    def write_grid(self, epoch_number: int) -> Path:
        """Draw and save the grid after ``epoch_number`` epochs; returns the PNG's path."""
        # The same seed on every call: the grids differ only because the generator did.
        samples = self.model.sample(self.n, seed=self.seed)
        images, masks = joint_to_image_and_mask(samples)
        path = self.directory / f"{self.prefix}_epoch{epoch_number:04d}.png"
        with atomic_file(path) as tmp:
            figure = plot_slice_grid(images, masks, ncols=min(self.ncols, self.n), path=tmp,
                                     suptitle=f"{self.model.name}: epoch {epoch_number}")
        if self.show:
            show_inline(figure)
        # Closed every time: a figure per epoch left open leaks memory over a long run.
        plt.close(figure)
        self.paths.append(path)
        return path


# ## Loss curves

#: Logged names plotted on the loss panel; any other scalar goes to the second panel.
LOSS_NAMES = ("d_loss", "g_loss")


def plot_history(history: Mapping[str, Sequence[float]] | keras.callbacks.History,
                 path: str | os.PathLike | None = None, title: str | None = None):
    """Loss curves (``d_loss``, ``g_loss``) and the other logged scalars, per epoch.

    ``history`` is ``fit()``'s ``History`` or its ``.history`` dict (name -> one value per
    epoch). Scalars other than the losses (``d_real``/``d_fake``, ``em_distance``) get a
    second panel, since their scales differ. Returns the figure; saves it if ``path`` is given.
    """
    values = getattr(history, "history", history)
    series = {name: np.asarray(v, dtype=float) for name, v in values.items() if len(v)}
    if not series:
        raise ValueError("the history holds no values yet; train for an epoch first")
    losses = {k: v for k, v in series.items() if k in LOSS_NAMES}
    others = {k: v for k, v in series.items() if k not in LOSS_NAMES}
    panels = [p for p in ((losses, "loss"), (others, "value")) if p[0]]
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.6), squeeze=False)
    for ax, (curves, ylabel) in zip(axes[0], panels):
        for name, curve in curves.items():
            ax.plot(np.arange(1, len(curve) + 1), curve, marker="o" if len(curve) < 30 else None,
                    markersize=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    if path is not None:
        with atomic_file(path) as tmp:
            figure.savefig(tmp, dpi=110)
    return figure


class LossHistoryPlot(keras.callbacks.Callback):
    """Rewrite a loss-curve PNG (``plot_history``) at the end of every epoch.

    Args:
        path: the PNG to (re)write.
        show: also display the final curves inline (in a notebook) when training ends.
        title: figure title.

    ``history`` holds every logged scalar per epoch. Pass the ``history`` of an earlier run
    to continue its curves after a resume.
    """

    def __init__(self, path: str | os.PathLike, show: bool = False, title: str | None = None,
                 history: Mapping[str, Sequence[float]] | None = None):
        super().__init__()
        self.path = Path(path)
        self.show = show
        self.title = title
        self.history: dict[str, list[float]] = {k: list(v) for k, v in (history or {}).items()}

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        plt.close(plot_history(self.history, self.path, self.title))

    def on_train_end(self, logs=None):
        if self.show and self.history:
            figure = plot_history(self.history, title=self.title)
            show_inline(figure)
            plt.close(figure)
