"""mrigan_tf.data.nifti: loading volumes defensively, reorienting to RAS+."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from conftest import BRAIN_SHAPE, ras_affine, write_nifti
from mrigan_tf.data.nifti import load_label_volume, load_nifti_volume
from mrigan_tf.errors import DataError


def _raises_naming(path, *words, call=load_nifti_volume, args=()):
    """Call the loader on ``path``; assert a DataError naming the path and every word."""
    with pytest.raises(DataError) as info:
        call(path, *args)
    message = str(info.value)
    assert str(path) in message
    assert info.value.path == str(path)
    for word in words:
        assert word.lower() in message.lower(), (word, message)
    return message


# --- the happy path -------------------------------------------------------------------

def test_loads_ras_volume_as_float32(brain_nifti, brain_array):
    vol = load_nifti_volume(brain_nifti)
    assert vol.data.dtype == np.float32
    assert vol.shape == BRAIN_SHAPE
    np.testing.assert_array_equal(vol.data, brain_array)
    np.testing.assert_allclose(vol.affine, ras_affine())
    assert vol.voxel_size == pytest.approx((2.0, 2.0, 2.0))
    assert vol.path == str(brain_nifti)


def test_label_volume_keeps_brats_labels(brain_nifti, lesion_nifti, lesion_array):
    labels = load_label_volume(lesion_nifti, like=load_nifti_volume(brain_nifti))
    assert labels.shape == BRAIN_SHAPE
    assert np.issubdtype(labels.dtype, np.integer)
    assert set(np.unique(labels).tolist()) == {0, 1, 2, 4}
    np.testing.assert_array_equal(labels, lesion_array)


def test_4d_single_volume_is_squeezed(tmp_path, brain_array):
    path = write_nifti(tmp_path / "single.nii.gz", brain_array[..., None], ras_affine())
    vol = load_nifti_volume(path)
    assert vol.shape == BRAIN_SHAPE
    np.testing.assert_array_equal(vol.data, brain_array)


def test_4d_single_volume_label_map_is_squeezed(tmp_path, brain_nifti, lesion_array):
    path = write_nifti(tmp_path / "seg4d.nii.gz", lesion_array[..., None], ras_affine())
    labels = load_label_volume(path, like=load_nifti_volume(brain_nifti))
    np.testing.assert_array_equal(labels, lesion_array)


def test_scaled_integer_volume_is_read_in_physical_units(tmp_path, brain_array):
    raw = np.round(brain_array).astype(np.int16)
    img = nib.Nifti1Image(raw, ras_affine())
    img.header.set_slope_inter(0.5, 10.0)
    path = tmp_path / "scaled.nii.gz"
    nib.save(img, str(path))
    vol = load_nifti_volume(path)
    np.testing.assert_allclose(vol.data, raw * 0.5 + 10.0)


# --- reorientation ----------------------------------------------------------------------

def _flip_xy(data, affine):
    """The same anatomy stored LPS: x and y axes reversed, affine adjusted to match."""
    nx, ny = data.shape[:2]
    flip = np.array([[-1, 0, 0, nx - 1], [0, -1, 0, ny - 1], [0, 0, 1, 0], [0, 0, 0, 1]],
                    dtype=float)
    return np.ascontiguousarray(data[::-1, ::-1]), affine @ flip


def _permute_axes(data, affine):
    """The same anatomy stored with axes (z, x, y): new index (k, i, j) = old (i, j, k)."""
    perm = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    return np.ascontiguousarray(data.transpose(2, 0, 1)), affine @ perm


@pytest.mark.parametrize("restore", [_flip_xy, _permute_axes], ids=["LPS", "permuted"])
def test_reoriented_file_loads_identical_ras_data(tmp_path, brain_array, lesion_array, restore):
    ras_img = write_nifti(tmp_path / "ras.nii.gz", brain_array, ras_affine())
    ras_seg = write_nifti(tmp_path / "ras_seg.nii.gz", lesion_array, ras_affine())
    other_data, other_affine = restore(brain_array, ras_affine())
    other_seg, _ = restore(lesion_array, ras_affine())
    # the stored arrays really differ, so equality after loading is not trivial
    assert other_data.shape != brain_array.shape or not np.array_equal(other_data, brain_array)
    other_img = write_nifti(tmp_path / "other.nii.gz", other_data, other_affine)
    other_seg_path = write_nifti(tmp_path / "other_seg.nii.gz", other_seg, other_affine)

    a, b = load_nifti_volume(ras_img), load_nifti_volume(other_img)
    assert b.shape == a.shape == BRAIN_SHAPE
    np.testing.assert_array_equal(b.data, a.data)
    np.testing.assert_allclose(b.affine, a.affine, atol=1e-6)
    assert nib.aff2axcodes(b.affine) == ("R", "A", "S")
    seg_a = load_label_volume(ras_seg, like=a)
    seg_b = load_label_volume(other_seg_path, like=b)
    np.testing.assert_array_equal(seg_b, seg_a)


# --- bad input ------------------------------------------------------------------------

def test_missing_file(tmp_path):
    _raises_naming(tmp_path / "nope.nii.gz", "not found")


def test_directory_instead_of_file(tmp_path):
    d = tmp_path / "dir.nii.gz"
    d.mkdir()
    _raises_naming(d, "directory")


def test_text_file_named_nii_gz(tmp_path):
    path = tmp_path / "x.nii.gz"
    path.write_text("subject,age\nsub-01,42\n" * 20)
    _raises_naming(path, "not a NIfTI")


@pytest.mark.parametrize("n_bytes", [0, 100, 4000])
def test_random_bytes_nii(tmp_path, n_bytes):
    path = tmp_path / "random.nii"
    path.write_bytes(np.random.default_rng(n_bytes).bytes(n_bytes))
    _raises_naming(path, "not a NIfTI")


@pytest.mark.parametrize("affine_kind", ["RAS", "LPS"])
def test_truncated_gzip(tmp_path, brain_array, affine_kind):
    data, affine = brain_array, ras_affine()
    if affine_kind == "LPS":  # reorientation reads the voxels too: must still be a DataError
        data, affine = _flip_xy(data, affine)
    path = write_nifti(tmp_path / "cut.nii.gz", data, affine)
    payload = path.read_bytes()
    path.write_bytes(payload[: len(payload) // 2])
    _raises_naming(path, "truncated")


def test_truncated_gzip_label_map(tmp_path, brain_nifti, lesion_array):
    data, affine = _flip_xy(lesion_array, ras_affine())
    path = write_nifti(tmp_path / "cut_seg.nii.gz", data, affine)
    payload = path.read_bytes()
    path.write_bytes(payload[: len(payload) // 2])
    _raises_naming(path, "truncated", call=load_label_volume,
                   args=(load_nifti_volume(brain_nifti),))


def test_truncated_uncompressed_nii(tmp_path, brain_array):
    path = write_nifti(tmp_path / "cut.nii", brain_array)
    payload = path.read_bytes()
    path.write_bytes(payload[: len(payload) // 2])
    _raises_naming(path, "truncated")


def test_2d_data(tmp_path, brain_array):
    path = write_nifti(tmp_path / "slice2d.nii.gz", brain_array[:, :, 10], ras_affine())
    msg = _raises_naming(path, "3-D", "2-D")
    assert "(24, 28)" in msg


def test_single_slice_3d(tmp_path, brain_array):
    path = write_nifti(tmp_path / "one.nii.gz", brain_array[:, :, 10:11], ras_affine())
    _raises_naming(path, "single slice")


def test_5d_data(tmp_path, brain_array):
    data = np.stack([np.stack([brain_array] * 2, -1)] * 2, -1)
    path = write_nifti(tmp_path / "five.nii.gz", data, ras_affine())
    msg = _raises_naming(path, "3-D", "5-D")
    assert "(24, 28, 20, 2, 2)" in msg


def test_4d_series_asks_to_pick_a_volume(tmp_path, brain_array):
    path = write_nifti(tmp_path / "series.nii.gz", np.stack([brain_array] * 3, -1), ras_affine())
    _raises_naming(path, "4-D", "pick one volume")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_voxels(tmp_path, brain_array, bad):
    data = brain_array.copy()
    data[3, 4, 5] = bad
    data[10, 10, 10] = bad
    path = write_nifti(tmp_path / "nan.nii.gz", data)
    msg = _raises_naming(path, "NaN or infinite")
    assert "2 voxels" in msg


@pytest.mark.parametrize("value", [0.0, 7.5])
def test_constant_volume(tmp_path, value):
    path = write_nifti(tmp_path / "flat.nii.gz", np.full(BRAIN_SHAPE, value, np.float32))
    _raises_naming(path, "constant volume")


def test_image_mask_shape_mismatch(tmp_path, brain_nifti, lesion_array):
    path = write_nifti(tmp_path / "seg_small.nii.gz", lesion_array[:, :, :-1], ras_affine())
    msg = _raises_naming(path, "shape mismatch", call=load_label_volume,
                         args=(load_nifti_volume(brain_nifti),))
    assert "(24, 28, 19)" in msg and "(24, 28, 20)" in msg
    assert str(brain_nifti) in msg  # names the image too


def test_label_map_in_another_space(tmp_path, brain_nifti, lesion_array):
    affine = ras_affine()
    affine[:3, 3] += 10.0  # same shape, shifted by 10 mm
    path = write_nifti(tmp_path / "seg_shifted.nii.gz", lesion_array, affine)
    _raises_naming(path, "not in the same space", call=load_label_volume,
                   args=(load_nifti_volume(brain_nifti),))


def test_non_integer_label_map(tmp_path, brain_nifti, brain_array):
    # An intensity image passed as the mask.
    path = write_nifti(tmp_path / "seg_float.nii.gz", brain_array / 7.0)
    _raises_naming(path, "non-negative integers", call=load_label_volume,
                   args=(load_nifti_volume(brain_nifti),))


def test_negative_label_map(tmp_path, brain_nifti, lesion_array):
    path = write_nifti(tmp_path / "seg_neg.nii.gz", -lesion_array)
    _raises_naming(path, "non-negative integers", call=load_label_volume,
                   args=(load_nifti_volume(brain_nifti),))


def test_nan_label_map(tmp_path, brain_nifti, lesion_array):
    data = lesion_array.astype(np.float32)
    data[1, 1, 1] = np.nan
    path = write_nifti(tmp_path / "seg_nan.nii.gz", data)
    _raises_naming(path, "NaN", call=load_label_volume, args=(load_nifti_volume(brain_nifti),))


def test_label_values_beyond_int16_are_not_wrapped(tmp_path, brain_nifti, lesion_array):
    data = lesion_array.astype(np.int32)
    data[data == 4] = 40000  # would silently wrap to a negative int16
    path = write_nifti(tmp_path / "seg_big.nii.gz", data)
    _raises_naming(path, "40000", call=load_label_volume, args=(load_nifti_volume(brain_nifti),))
