"""
Title: A quick sample-quality table for generated slices
Description: Four cheap numbers per set of slices, measured against a reference set (the
training slices): pairwise MS-SSIM, median nearest-neighbour correlation, coverage and the
pixel-intensity Wasserstein-1 distance. The comparison table of notebooks 02-04.

## The columns

For a set X of generated (or real) slices and the reference set R:

* ``ms_ssim``: mean MS-SSIM over random pairs of *different* slices of X
  (``ssim.pairwise_ms_ssim``). Higher = the slices are more alike; a collapsed generator sits
  far above the real data's value. Per-pixel noise pushes it *down*: noisy samples look
  diverse.
* ``nn_corr``: the median over x in X of max_{r in R} corr(x, r)
  (``nearest_neighbour.nearest_neighbour_correlation``): does a sample look like *some*
  reference slice? High means realistic, or copied: the memorization audit of
  ``memorization.py`` tells the two apart.
* ``coverage``: |{argmax_r corr(x, r) : x in X}| / |X|, the number of distinct reference slices
  that are some sample's nearest neighbour, per sample. A set that repeats one image gets
  1 / |X|; the reference set compared with itself gets 1.
* ``pixel_w1``: the Wasserstein-1 (earth mover's) distance between the pixel intensities of
  X and of R, computed exactly in 1-D (``scipy.stats.wasserstein_distance``). 0 = the same
  intensity distribution (tissue contrast, background); blind to where the pixels are.

None of these is a full measure of quality (FID and KID are, in a chosen feature space: see
``frechet.py``, ``kid.py`` and notebook 07), but together they separate blur, noise, collapse
and copying, in seconds and without any trained network.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.stats import wasserstein_distance

from mrigan_tf.metrics.nearest_neighbour import nearest_neighbour_correlation
from mrigan_tf.metrics.ssim import pairwise_ms_ssim

COLUMNS = ("ms_ssim", "nn_corr", "coverage", "pixel_w1")


def sample_quality_table(samples: Mapping[str, np.ndarray], reference: np.ndarray,
                         max_pairs: int = 1000, seed: int = 0) -> dict[str, dict]:
    """One row per named set of (N, H, W, 1) slices in [-1, 1], measured against ``reference``.

    Returns ``{name: {"n", "ms_ssim", "nn_corr", "coverage", "pixel_w1"}}`` in the order of
    ``samples`` (see the module docstring for the definitions). ``ms_ssim`` is ``None`` for a
    set of fewer than 2 slices; ``max_pairs`` and ``seed`` choose its random pairs.
    """
    reference = np.asarray(reference, dtype=np.float32)
    if reference.ndim != 4 or len(reference) == 0:
        raise ValueError(f"reference must be a non-empty (N, H, W, C) array of slices, "
                         f"got shape {reference.shape}")
    # Flattened once: the 1-D W1 of every row is against the same pixels.
    reference_pixels = reference.ravel()
    table = {}
    for name, images in samples.items():
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[1:] != reference.shape[1:] or len(images) == 0:
            raise ValueError(f"{name}: expected a non-empty batch of slices shaped like the "
                             f"reference (N, {', '.join(map(str, reference.shape[1:]))}), "
                             f"got {images.shape}")
        correlation, nearest = nearest_neighbour_correlation(images, reference)
        table[name] = {
            "n": int(len(images)),
            "ms_ssim": pairwise_ms_ssim(images, max_pairs=max_pairs, seed=seed)["mean"],
            "nn_corr": float(np.median(correlation)),
            "coverage": len(np.unique(nearest)) / len(images),
            "pixel_w1": float(wasserstein_distance(reference_pixels, images.ravel())),
        }
    return table
