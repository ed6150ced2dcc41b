"""Title: Deforming layouts: a random flip and a smooth elastic warp of each label map
Description: what ``mrigan-tf generate --layouts real`` does to the training subjects' layouts
before a layout-conditioned generator (SPADE) renders them.

Rendering a training subject's own layout copies its anatomy and its tumor outline exactly.
Each drawn layout is therefore flipped left-right with probability 1/2 (the brain is roughly
symmetric; tumors occur on either side) and warped by a smooth random displacement field,
the elastic deformation of Simard et al. 2003 ("Best practices for convolutional neural
networks applied to visual document analysis"):

    u(p) = d * G_sigma * n_x(p) / max|G_sigma * n_x|,   the same for v with n_y,
    layout'(p) = layout(p + (u(p), v(p)))               (nearest neighbour: labels stay labels)

with ``n_x``, ``n_y`` white noise in [-1, 1], ``G_sigma`` a Gaussian of ``sigma`` pixels
(``sigma_fraction`` of the width: a smooth, anatomical warp, not a jitter) and ``d`` the
largest displacement in pixels (``displacement_fraction`` of the width). What this buys in
privacy is limited: every outline is still a training subject's, moved by a few pixels, so a
layout can still be traced to its subject by shape; only a layout generator (issue 17)
draws outlines that belong to nobody.

A tumor layout whose tumor the warp pushes out of the slice is kept unwarped (flipped only),
so a slice's class and its mask never disagree; how many that happened to is returned.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy import ndimage

#: Largest displacement, as a fraction of the slice width (64 px: about 3 px).
DISPLACEMENT_FRACTION = 0.05
#: Smoothness of the displacement field, as a fraction of the slice width (64 px: 8 px).
SIGMA_FRACTION = 0.125


#: Layouts warped per vectorized call (memory: about 10 float64 arrays of CHUNK x H x W).
CHUNK = 1000


def elastic_field(shape: tuple[int, ...], rng: np.random.Generator, displacement: float,
                  sigma: float) -> np.ndarray:
    """Smooth random displacement fields, shape (2, *shape): for ``shape`` (H, W) one field,
    for (N, H, W) one per slice (smoothed within each slice only), each component of each
    field peaking at ``displacement`` pixels."""
    smoothing = (0,) * (len(shape) - 2) + (sigma, sigma)
    # Truncated at 2 sigma (not scipy's 4): as smooth to the eye, and half the cost.
    field = np.stack([ndimage.gaussian_filter(rng.uniform(-1.0, 1.0, shape), smoothing,
                                              mode="reflect", truncate=2.0) for _ in range(2)])
    peak = np.abs(field).max(axis=(-2, -1), keepdims=True)
    return field / np.maximum(peak, 1e-12) * displacement


def warp_label_maps(label_maps: np.ndarray, field: np.ndarray) -> np.ndarray:
    """``label_maps`` (N, H, W) each sampled at ``p + field[:, i](p)``, nearest neighbour,
    edges repeated; ``field`` (2, N, H, W)."""
    n, height, width = label_maps.shape
    grid = np.indices((n, height, width), dtype=np.float64)
    grid[1:] += field
    return ndimage.map_coordinates(label_maps, grid, order=0, mode="nearest").astype(label_maps.dtype)


def deform_layouts(layouts: np.ndarray, mask_classes: Iterable[int], seed: int = 0,
                   flip: bool = True, displacement_fraction: float = DISPLACEMENT_FRACTION,
                   sigma_fraction: float = SIGMA_FRACTION) -> tuple[np.ndarray, int]:
    """Each layout of ``layouts`` (N, H, W, 1) flipped left-right with probability 1/2
    (``flip``) and elastically warped (see the module docstring); deterministic for ``seed``.

    Returns ``(deformed, kept_unwarped)``: the new layouts (same shape and dtype) and how many
    tumor layouts were left unwarped because the warp would have removed their tumor.
    """
    layouts = np.asarray(layouts)
    if layouts.ndim != 4 or layouts.shape[-1] != 1:
        raise ValueError(f"layouts must be (N, H, W, 1) label maps, got shape {layouts.shape}")
    if displacement_fraction < 0 or sigma_fraction <= 0:
        raise ValueError(f"need displacement_fraction >= 0 and sigma_fraction > 0, got "
                         f"{displacement_fraction} and {sigma_fraction}")
    mask_classes = np.asarray(list(mask_classes), dtype=np.int64)
    rng = np.random.default_rng([seed, 17])
    maps = layouts[..., 0].copy()
    if flip:
        flipped = rng.random(len(maps)) < 0.5
        maps[flipped] = maps[flipped, :, ::-1]
    width = maps.shape[2]
    displacement, sigma = displacement_fraction * width, sigma_fraction * width
    deformed = np.empty_like(maps)
    for start in range(0, len(maps), CHUNK):
        chunk = maps[start:start + CHUNK]
        field = elastic_field(chunk.shape, rng, displacement, sigma)
        deformed[start:start + CHUNK] = warp_label_maps(chunk, field)
    # A tumor the warp pushed out: that layout stays as it was (flipped only).
    had = np.isin(maps, mask_classes).any(axis=(1, 2))
    lost = had & ~np.isin(deformed, mask_classes).any(axis=(1, 2))
    deformed[lost] = maps[lost]
    return deformed[..., None], int(lost.sum())
