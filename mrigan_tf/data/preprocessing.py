"""From a 3-D MRI volume (and its label map) to 2-D training slices.

The steps, in order, shared by the phantom and every real-dataset reader:

1. brain mask: skull-stripped data (BraTS, the MNI template) has a zero background, so
   the brain is what is clearly above it, with holes filled;
2. robust intensity normalisation: MRI intensities have no physical unit and vary
   between scanners, so we clip to the 0.5th-99.5th percentile *inside the brain* (a few
   hot voxels must not set the scale) and map that range linearly to [-1, 1], the range of
   the generator's ``tanh``; the background becomes -1;
3. informative slices: axial slices whose brain area is a reasonable fraction of the
   largest one (the top of the skull and the brain stem carry little anatomy);
4. crop to the brain's square bounding box and resize: linear interpolation with
   anti-aliasing for intensities, nearest neighbour for label maps (interpolating labels
   would invent classes that do not exist);
5. label map -> binary mask for the chosen labels, and a class per slice; a layout (the
   label map of tissue and tumor classes, ``mrigan_tf.data.layout``), when given, is cut
   exactly like the mask: same slices, same crop, nearest neighbour at the same sample
   points, so the mask stays its mask classes pixel for pixel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
from scipy import ndimage
from skimage.transform import resize

from mrigan_tf.data.nifti import NiftiVolume
from mrigan_tf.errors import DataError


def compute_brain_mask(volume: np.ndarray, rel_threshold: float = 0.05) -> np.ndarray:
    """Brain mask of a skull-stripped volume: voxels clearly above the background.

    The threshold is ``rel_threshold`` of the way from the background level to the
    99th percentile of intensity; holes (dark necrosis, ventricles) are filled per slice and
    only the largest connected component is kept.
    """
    background = float(np.percentile(volume, 1))
    top = float(np.percentile(volume, 99))
    mask = volume > background + rel_threshold * (top - background)
    if not mask.any():
        return mask
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, n + 1))
        mask = labels == (1 + int(np.argmax(sizes)))
    for k in range(mask.shape[2]):
        mask[:, :, k] = ndimage.binary_fill_holes(mask[:, :, k])
    return mask


def normalize_intensity(volume: np.ndarray, brain_mask: np.ndarray,
                        low_percentile: float = 0.5, high_percentile: float = 99.5,
                        path: str | None = None) -> np.ndarray:
    """Clip to brain percentiles and scale to [-1, 1]; background set to -1 (float32)."""
    if brain_mask.shape != volume.shape:
        raise DataError(path, f"brain mask shape {brain_mask.shape} != volume shape {volume.shape}")
    if not brain_mask.any():
        raise DataError(path, "brain mask is empty: the volume has no voxels above background")
    lo, hi = np.percentile(volume[brain_mask], [low_percentile, high_percentile])
    if not hi > lo:
        raise DataError(path, f"no intensity contrast inside the brain "
                        f"({low_percentile}th and {high_percentile}th percentiles are both {lo:g})")
    scaled = (np.clip(volume, lo, hi) - lo) / (hi - lo) * 2.0 - 1.0
    return np.where(brain_mask, scaled, -1.0).astype(np.float32)


def select_informative_slices(brain_mask: np.ndarray, min_brain_fraction: float = 0.35,
                              step: int = 1) -> np.ndarray:
    """Indices of axial slices whose brain area is >= ``min_brain_fraction`` of the largest."""
    area = brain_mask.reshape(-1, brain_mask.shape[2]).sum(axis=0)
    if area.max() == 0:
        return np.zeros(0, dtype=int)
    keep = np.flatnonzero(area >= min_brain_fraction * area.max())
    return keep[::step]


def brain_bounding_square(brain_mask: np.ndarray, margin: float = 0.05) -> tuple[slice, slice]:
    """In-plane square box (over all slices) around the brain, with a relative margin.

    The box may extend past the volume; ``crop_square`` pads with background there.
    """
    inplane = brain_mask.any(axis=2)
    xs, ys = np.flatnonzero(inplane.any(axis=1)), np.flatnonzero(inplane.any(axis=0))
    cx, cy = (xs[0] + xs[-1] + 1) / 2.0, (ys[0] + ys[-1] + 1) / 2.0
    side = max(xs[-1] - xs[0] + 1, ys[-1] - ys[0] + 1) * (1.0 + 2.0 * margin)
    half = int(np.ceil(side / 2.0))
    x0, y0 = int(round(cx)) - half, int(round(cy)) - half
    return slice(x0, x0 + 2 * half), slice(y0, y0 + 2 * half)


def crop_square(volume: np.ndarray, box: tuple[slice, slice], fill: float) -> np.ndarray:
    """Crop ``volume[box[0], box[1], :]``, padding with ``fill`` where the box leaves it."""
    (xs, ys), (nx, ny) = box, volume.shape[:2]
    pad = [(max(0, -xs.start), max(0, xs.stop - nx)), (max(0, -ys.start), max(0, ys.stop - ny))]
    pad += [(0, 0)] * (volume.ndim - 2)
    padded = np.pad(volume, pad, mode="constant", constant_values=fill)
    x0, y0 = xs.start + pad[0][0], ys.start + pad[1][0]
    return padded[x0:x0 + (xs.stop - xs.start), y0:y0 + (ys.stop - ys.start)]


def to_display(axial: np.ndarray) -> np.ndarray:
    """RAS axial slice (X, Y) -> image rows/cols with anterior at the top."""
    return np.rot90(axial)


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Linear, anti-aliased resize of a 2-D intensity slice to (size, size)."""
    return resize(image, (size, size), order=1, anti_aliasing=True,
                  preserve_range=True, mode="edge").astype(np.float32)


def resize_labels(labels: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D label slice: no new label values are invented."""
    return resize(labels, (size, size), order=0, anti_aliasing=False,
                  preserve_range=True, mode="edge").astype(labels.dtype)


def labels_to_mask(label_map: np.ndarray, positive_labels: Iterable[int],
                   known_labels: Iterable[int] | None = None, path: str | None = None) -> np.ndarray:
    """Binary uint8 mask of the voxels whose label is in ``positive_labels``.

    With ``known_labels`` given, any other value raises ``DataError``: an unknown label
    usually means the wrong dataset version's label convention (BraTS 2021 uses 4 for
    enhancing tumor, BraTS 2023 uses 3).
    """
    positive = np.asarray(sorted(set(positive_labels)))
    if known_labels is not None:
        allowed = sorted(set(int(v) for v in known_labels) | {0})
        unknown = np.setdiff1d(np.unique(label_map), allowed)
        if unknown.size:
            raise DataError(path, f"unknown label values {unknown.tolist()} "
                            f"(expected only {allowed})")
    return np.isin(label_map, positive).astype(np.uint8)


@dataclasses.dataclass
class SliceSet:
    """The 2-D slices of one subject, ready for the dataset contract."""

    images: np.ndarray        # float32 (n, size, size, 1) in [-1, 1]
    masks: np.ndarray         # uint8 (n, size, size, 1)
    labels: np.ndarray        # int32 (n,): 1 where the slice shows the lesion, else 0
    slice_index: np.ndarray   # int (n,): axial index in the RAS volume
    layouts: np.ndarray | None = None   # uint8 (n, size, size, 1) label maps, or None


@dataclasses.dataclass
class SlicingParams:
    """How a subject's volume becomes slices (recorded in ``meta.json``)."""

    size: int = 64
    low_percentile: float = 0.5
    high_percentile: float = 99.5
    min_brain_fraction: float = 0.45
    slice_step: int = 1
    crop_margin: float = 0.05
    # A slice counts as lesion-class if its resized mask has at least this many pixels;
    # slices with a smaller, non-empty sliver are dropped as ambiguous, so that
    # "class 0" always means "empty mask".
    min_lesion_pixels: int = 8

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def slice_subject(volume: NiftiVolume, mask_volume: np.ndarray | None = None,
                  params: SlicingParams = SlicingParams(),
                  brain_mask: np.ndarray | None = None,
                  layout_volume: np.ndarray | None = None) -> SliceSet:
    """Normalise a RAS volume and cut it into resized axial slices with masks and classes.

    ``mask_volume`` is a binary (0/1) lesion mask aligned with ``volume`` or ``None`` for a
    subject without lesion; then every slice is class 0 with an empty mask.
    ``layout_volume``: an aligned uint8 label map (``mrigan_tf.data.layout``), cut alongside
    the mask into ``SliceSet.layouts``.
    """
    data = volume.data
    for name, other in (("mask", mask_volume), ("layout", layout_volume)):
        if other is not None and other.shape != data.shape:
            raise DataError(volume.path, f"image/{name} shape mismatch: image {data.shape}, "
                            f"{name} {other.shape}")
    if brain_mask is None:
        brain_mask = compute_brain_mask(data)
    norm = normalize_intensity(data, brain_mask, params.low_percentile, params.high_percentile,
                               path=volume.path)
    keep = select_informative_slices(brain_mask, params.min_brain_fraction, params.slice_step)
    if keep.size == 0:
        raise DataError(volume.path, "no axial slice contains enough brain")
    box = brain_bounding_square(brain_mask[:, :, keep], params.crop_margin)
    images = crop_square(norm[:, :, keep], box, fill=-1.0)
    if mask_volume is None:
        masks = np.zeros(images.shape, dtype=np.uint8)
    else:
        masks = crop_square(mask_volume[:, :, keep].astype(np.uint8), box, fill=0)
    layouts = None if layout_volume is None else \
        crop_square(layout_volume[:, :, keep].astype(np.uint8), box, fill=0)

    out_img, out_mask, out_layout = [], [], []
    for k in range(images.shape[2]):
        out_img.append(np.clip(resize_image(to_display(images[:, :, k]), params.size), -1.0, 1.0))
        out_mask.append(resize_labels(to_display(masks[:, :, k]), params.size))
        if layouts is not None:
            out_layout.append(resize_labels(to_display(layouts[:, :, k]), params.size))
    out_img, out_mask = np.stack(out_img), np.stack(out_mask)
    area = out_mask.reshape(len(out_mask), -1).sum(axis=1)
    usable = (area == 0) | (area >= params.min_lesion_pixels)
    return SliceSet(images=out_img[usable, ..., None], masks=out_mask[usable, ..., None],
                    labels=(area[usable] > 0).astype(np.int32), slice_index=keep[usable],
                    layouts=np.stack(out_layout)[usable, ..., None] if layouts is not None
                    else None)
