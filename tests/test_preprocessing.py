"""mrigan_tf.data.preprocessing: brain mask, normalisation, slicing, resizing, label maps."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import (BRAIN_SHAPE, EDEMA, ENHANCING, NECROSIS, ras_affine, synthetic_brain,
                      synthetic_lesion_labels)
from mrigan_tf.data.nifti import NiftiVolume, load_label_volume, load_nifti_volume
from mrigan_tf.data.preprocessing import (SlicingParams, brain_bounding_square,
                                          compute_brain_mask, crop_square, labels_to_mask,
                                          normalize_intensity, resize_image, resize_labels,
                                          select_informative_slices, slice_subject)
from mrigan_tf.errors import DataError

BRATS = (NECROSIS, EDEMA, ENHANCING)


# --- brain mask ---------------------------------------------------------------------------

def test_brain_mask_is_the_nonzero_ellipsoid(brain_array):
    mask = compute_brain_mask(brain_array)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, brain_array > 0)


def test_brain_mask_fills_dark_holes_and_drops_specks(brain_array):
    vol = brain_array.copy()
    brain = vol > 0
    vol[10:14, 12:16, 9:11] = 0.0          # dark "necrosis" inside the brain
    vol[0, 0, 0] = vol[1, 0, 0] = 150.0    # a bright speck outside the brain
    mask = compute_brain_mask(vol)
    np.testing.assert_array_equal(mask, brain)


# --- intensity normalisation ------------------------------------------------------------------

def test_normalize_range_background_and_percentiles(brain_array):
    brain = brain_array > 0
    out = normalize_intensity(brain_array, brain)
    assert out.dtype == np.float32 and out.shape == brain_array.shape
    assert out.min() == -1.0 and out.max() == 1.0
    assert np.all(out[~brain] == -1.0)                      # background exactly -1
    lo, hi = np.percentile(brain_array[brain], [0.5, 99.5])
    inside, vals = out[brain], brain_array[brain]
    assert np.all(inside[vals <= lo] == -1.0)
    assert np.all(inside[vals >= hi] == 1.0)
    mid = (vals > lo) & (vals < hi)
    assert mid.sum() > 0.9 * brain.sum()
    expected = (vals[mid] - lo) / (hi - lo) * 2.0 - 1.0
    np.testing.assert_allclose(inside[mid], expected, atol=1e-5)
    assert np.all(np.abs(inside[mid]) < 1.0)


def test_normalize_custom_percentiles(brain_array):
    brain = brain_array > 0
    out = normalize_intensity(brain_array, brain, low_percentile=10, high_percentile=90)
    vals = brain_array[brain]
    lo, hi = np.percentile(vals, [10, 90])
    frac_at_minus1 = np.mean(out[brain] == -1.0)
    frac_at_plus1 = np.mean(out[brain] == 1.0)
    assert 0.08 < frac_at_minus1 < 0.12 and 0.08 < frac_at_plus1 < 0.12
    assert np.all(out[brain][vals >= hi] == 1.0) and np.all(out[brain][vals <= lo] == -1.0)


def test_a_few_hot_voxels_do_not_change_the_scale(brain_array):
    brain = brain_array > 0
    hot = brain_array.copy()
    hot_idx = (np.array([12, 10, 14]), np.array([14, 12, 16]), np.array([10, 9, 11]))
    assert brain[hot_idx].all()
    hot[hot_idx] = 1e6
    ref, out = normalize_intensity(brain_array, brain), normalize_intensity(hot, brain)
    assert np.all(out[hot_idx] == 1.0)
    others = brain.copy()
    others[hot_idx] = False
    assert np.max(np.abs(out[others] - ref[others])) < 0.02
    # a min-max scaling would have squashed the brain into a sliver near -1
    assert np.median(out[others]) > -0.5
    assert abs(np.median(out[others]) - np.median(ref[others])) < 0.01


def test_constant_in_brain_raises():
    vol = np.zeros(BRAIN_SHAPE, np.float32)
    vol[6:18, 6:22, 5:15] = 100.0
    with pytest.raises(DataError, match="no intensity contrast") as info:
        normalize_intensity(vol, vol > 0, path="sub-01_T1w.nii.gz")
    assert "sub-01_T1w.nii.gz" in str(info.value)


def test_normalize_rejects_empty_or_misshapen_brain_mask(brain_array):
    with pytest.raises(DataError, match="brain mask is empty"):
        normalize_intensity(brain_array, np.zeros(brain_array.shape, bool), path="a.nii")
    with pytest.raises(DataError, match="shape"):
        normalize_intensity(brain_array, np.ones((2, 2, 2), bool), path="a.nii")


# --- slices, crop ----------------------------------------------------------------------------

def test_select_informative_slices(brain_array):
    mask = brain_array > 0
    area = mask.sum(axis=(0, 1))
    keep = select_informative_slices(mask, min_brain_fraction=0.45)
    np.testing.assert_array_equal(keep, np.flatnonzero(area >= 0.45 * area.max()))
    assert 0 < len(keep) < BRAIN_SHAPE[2]
    assert np.all(np.diff(keep) == 1)  # a contiguous slab through the middle
    np.testing.assert_array_equal(select_informative_slices(mask, 0.45, step=2), keep[::2])
    assert select_informative_slices(np.zeros_like(mask)).size == 0


def test_crop_square_pads_with_fill():
    vol = np.arange(4 * 6 * 2, dtype=np.float32).reshape(4, 6, 2)
    out = crop_square(vol, (slice(-2, 4), slice(0, 6)), fill=-1.0)
    assert out.shape == (6, 6, 2)
    assert np.all(out[:2] == -1.0)
    np.testing.assert_array_equal(out[2:], vol)


def test_brain_bounding_square_is_square_and_covers_brain(brain_array):
    mask = brain_array > 0
    xs, ys = brain_bounding_square(mask, margin=0.05)
    assert xs.stop - xs.start == ys.stop - ys.start
    crop = crop_square(mask.astype(np.uint8), (xs, ys), fill=0)
    assert crop.sum() == mask.sum()  # nothing of the brain was cut off


# --- labels -----------------------------------------------------------------------------------

def test_labels_to_mask_brats_whole_tumor(lesion_array):
    mask = labels_to_mask(lesion_array, positive_labels=BRATS, known_labels=BRATS, path="seg.nii")
    assert mask.dtype == np.uint8
    assert set(np.unique(mask).tolist()) == {0, 1}
    np.testing.assert_array_equal(mask, (lesion_array > 0).astype(np.uint8))


def test_labels_to_mask_subset_of_labels(lesion_array):
    core = labels_to_mask(lesion_array, positive_labels=(NECROSIS, ENHANCING), known_labels=BRATS)
    np.testing.assert_array_equal(core, np.isin(lesion_array, [1, 4]).astype(np.uint8))
    assert core.sum() < (lesion_array > 0).sum()


def test_labels_to_mask_unknown_label_names_file_and_value(lesion_array):
    labels = lesion_array.copy()
    labels[labels == ENHANCING] = 3  # BraTS 2023 convention fed to a 2021 reader
    with pytest.raises(DataError) as info:
        labels_to_mask(labels, positive_labels=BRATS, known_labels=BRATS,
                       path="BraTS-GLI-00000-000-seg.nii.gz")
    msg = str(info.value)
    assert "BraTS-GLI-00000-000-seg.nii.gz" in msg
    assert "unknown label values [3]" in msg


def test_labels_to_mask_without_known_labels_accepts_anything(lesion_array):
    labels = lesion_array.copy()
    labels[0, 0, 0] = 7
    mask = labels_to_mask(labels, positive_labels=BRATS)
    assert mask[0, 0, 0] == 0 and mask.sum() == (lesion_array > 0).sum()


@pytest.mark.parametrize("size", [8, 13, 64])
def test_resize_labels_never_invents_values(size):
    rng = np.random.default_rng(size)
    labels = np.zeros((30, 30), dtype=np.int16)
    for value in (1, 2, 4):
        r, c = rng.integers(0, 24, 2)
        labels[r:r + 7, c:c + 5] = value
    labels[rng.random((30, 30)) < 0.05] = 2  # isolated speckles: worst case for interpolation
    out = resize_labels(labels, size)
    assert out.shape == (size, size)
    assert out.dtype == labels.dtype
    assert set(np.unique(out).tolist()) <= {0, 1, 2, 4}
    binary = resize_labels((labels > 0).astype(np.uint8), size)
    assert binary.dtype == np.uint8 and set(np.unique(binary).tolist()) <= {0, 1}


@pytest.mark.parametrize("size", [8, 17, 64])
def test_resize_image_keeps_range(size):
    rng = np.random.default_rng(size)
    image = rng.uniform(-1.0, 1.0, (30, 30)).astype(np.float32)
    image[:, :3] = -1.0
    image[5:9, 5:9] = 1.0
    out = resize_image(image, size)
    assert out.shape == (size, size) and out.dtype == np.float32
    assert out.min() >= -1.0 - 1e-5 and out.max() <= 1.0 + 1e-5
    # and does not shrink it: wide dark and bright plateaus keep their values
    step = np.where(np.arange(30) < 15, -1.0, 1.0).astype(np.float32)[None, :].repeat(30, 0)
    r = resize_image(step, size)
    assert r.min() == pytest.approx(-1.0, abs=1e-3) and r.max() == pytest.approx(1.0, abs=1e-3)


# --- whole subject ---------------------------------------------------------------------------

def _volume(path="sub-01.nii.gz"):
    return NiftiVolume(data=synthetic_brain(), affine=ras_affine(), path=path)


def _check_sliceset(s, size):
    n = len(s.labels)
    assert n > 0
    assert s.images.shape == (n, size, size, 1) and s.images.dtype == np.float32
    assert s.masks.shape == (n, size, size, 1) and s.masks.dtype == np.uint8
    assert s.labels.shape == (n,) and s.labels.dtype == np.int32
    assert s.slice_index.shape == (n,)
    assert np.all(np.diff(s.slice_index) > 0)
    assert s.images.min() >= -1.0 and s.images.max() <= 1.0
    assert set(np.unique(s.masks).tolist()) <= {0, 1}
    # corners are background after the square crop with a margin
    assert np.all(s.images[:, 0, 0, 0] == -1.0)


def test_slice_subject_healthy_has_empty_masks():
    s = slice_subject(_volume(), None, SlicingParams(size=16))
    _check_sliceset(s, 16)
    assert np.all(s.labels == 0)
    assert s.masks.sum() == 0
    # the informative slab of the ellipsoid, not every axial slice
    assert 5 <= len(s.labels) < BRAIN_SHAPE[2]


def test_slice_subject_all_zero_mask_is_healthy():
    s = slice_subject(_volume(), np.zeros(BRAIN_SHAPE, np.uint8), SlicingParams(size=16))
    assert np.all(s.labels == 0) and s.masks.sum() == 0


@pytest.mark.parametrize("size", [16, 32])
def test_slice_subject_lesion_label_iff_mask_nonempty(size):
    lesion = labels_to_mask(synthetic_lesion_labels(), BRATS, BRATS)
    params = SlicingParams(size=size)
    s = slice_subject(_volume(), lesion, params)
    _check_sliceset(s, size)
    area = s.masks.reshape(len(s.labels), -1).sum(axis=1)
    np.testing.assert_array_equal(s.labels, (area > 0).astype(np.int32))
    assert 0 < s.labels.sum() < len(s.labels)  # both classes present
    # ambiguous slivers are dropped: a lesion slice has a clearly visible mask
    assert np.all(area[s.labels == 1] >= params.min_lesion_pixels)
    # lesion-class slices are slices where the volume's lesion really is
    in_volume = lesion.any(axis=(0, 1))
    assert np.all(in_volume[s.slice_index[s.labels == 1]])
    if size == 32:  # no sliver is dropped at this size: the classes follow the volume exactly
        np.testing.assert_array_equal(s.labels, in_volume[s.slice_index].astype(np.int32))


def test_slice_subject_orientation_anterior_up_right_right():
    # lesion sits +3 voxels Right and +2 Anterior of the centre: display rows run from
    # anterior (top) to posterior, columns from left to right
    lesion = labels_to_mask(synthetic_lesion_labels(), BRATS, BRATS)
    s = slice_subject(_volume(), lesion, SlicingParams(size=32))
    centre_slice = s.masks[np.argmax(s.masks.sum(axis=(1, 2, 3))), :, :, 0]
    rows, cols = np.nonzero(centre_slice)
    assert rows.mean() < 15.5 - 1.0
    assert cols.mean() > 15.5 + 1.0


def test_slice_subject_from_nifti_files(brain_nifti, lesion_nifti):
    vol = load_nifti_volume(brain_nifti)
    mask = labels_to_mask(load_label_volume(lesion_nifti, vol), BRATS, BRATS, path=str(lesion_nifti))
    s = slice_subject(vol, mask, SlicingParams(size=16))
    ref = slice_subject(_volume(), labels_to_mask(synthetic_lesion_labels(), BRATS, BRATS),
                        SlicingParams(size=16))
    np.testing.assert_array_equal(s.images, ref.images)
    np.testing.assert_array_equal(s.masks, ref.masks)
    np.testing.assert_array_equal(s.labels, ref.labels)


def test_slice_subject_shape_mismatch_raises():
    with pytest.raises(DataError) as info:
        slice_subject(_volume("sub-07_T1w.nii.gz"), np.zeros((24, 28, 19), np.uint8))
    msg = str(info.value)
    assert "sub-07_T1w.nii.gz" in msg and "shape mismatch" in msg and "(24, 28, 19)" in msg


def test_slicing_params_as_dict_is_json_ready():
    import json
    d = SlicingParams(size=32).as_dict()
    assert json.loads(json.dumps(d)) == d and d["size"] == 32
