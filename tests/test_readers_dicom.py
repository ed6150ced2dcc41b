"""DICOM series (optional, pydicom): geometry from the tags, equal to the same volume as NIfTI."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from conftest import VOXEL_MM, ras_affine, synthetic_brain, write_nifti  # noqa: E402
from mrigan_tf.data.contract import load_dataset  # noqa: E402
from mrigan_tf.data.nifti import load_nifti_volume  # noqa: E402
from mrigan_tf.data.readers.dicom import load_dicom_series  # noqa: E402
from mrigan_tf.errors import DataError  # noqa: E402
from mrigan_tf.data.prepare import prepare_dataset  # noqa: E402

SIZE = 16


def write_dicom_series(folder: Path, volume: np.ndarray, affine: np.ndarray) -> Path:
    """Write a RAS volume (with a diagonal RAS affine) as axial DICOM slices, LPS tags.

    The rows/columns run towards Posterior/Left, the opposite of the volume's axes, and the
    files are named in shuffled order: the reader must use the tags, not the names.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True)
    nx, ny, nz = volume.shape
    x0, y0, z0 = affine[:3, 3]
    step = affine[0, 0]
    series = generate_uid()
    order = np.random.default_rng(0).permutation(nz)
    for k in range(nz):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.SeriesInstanceUID, ds.Modality = series, "MR"
        ds.InstanceNumber = int(order[k]) + 1   # deliberately unrelated to the position
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]   # rows -> Left, columns -> Posterior
        # Column c is RAS index nx-1-c, row r is ny-1-r; LPS x, y = -RAS x, y.
        ds.ImagePositionPatient = [-(x0 + step * (nx - 1)), -(y0 + step * (ny - 1)), z0 + step * k]
        ds.PixelSpacing = [step, step]
        ds.SliceThickness = step
        ds.Rows, ds.Columns = ny, nx
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 2, -10
        stored = ((volume[::-1, ::-1, k].T + 10) / 2).astype(np.int16)
        ds.PixelData = stored.tobytes()
        ds.save_as(folder / f"IM{order[k]:04d}.dcm", enforce_file_format=True)
    return folder


@pytest.fixture
def volume() -> np.ndarray:
    # Even values, so that the stored (v + 10) / 2 is exact.
    return (2 * np.round(synthetic_brain() / 2)).astype(np.float32)


def test_series_has_the_geometry_and_voxels_of_the_nifti(volume, tmp_path):
    affine = ras_affine(volume.shape)
    series = write_dicom_series(tmp_path / "series", volume, affine)
    (series / "notes.txt").write_text("not DICOM")   # ignored
    loaded = load_dicom_series(series)
    nifti = load_nifti_volume(write_nifti(tmp_path / "v.nii.gz", volume))
    np.testing.assert_array_equal(loaded.data, nifti.data)
    np.testing.assert_allclose(loaded.affine, nifti.affine, atol=1e-6)
    assert loaded.voxel_size == (VOXEL_MM, VOXEL_MM, VOXEL_MM)


def test_broken_series(volume, tmp_path):
    series = write_dicom_series(tmp_path / "series", volume, ras_affine(volume.shape))
    files = sorted(series.glob("*.dcm"), key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2]))
    files[5].unlink()   # a missing slice in the middle
    with pytest.raises(DataError, match="not evenly spaced"):
        load_dicom_series(series)
    series = write_dicom_series(tmp_path / "series2", volume, ras_affine(volume.shape))
    files = sorted(series.glob("*.dcm"))
    whole = files[6].read_bytes()
    for cut, problem in ((400, "truncated DICOM file"), (len(whole) - 300, "cannot decode")):
        files[6].write_bytes(whole[:cut])
        with pytest.raises(DataError, match=problem) as err:
            load_dicom_series(series)
        assert str(err.value).startswith(str(files[6]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="found 0 image"):
        load_dicom_series(tmp_path / "empty")


def test_ppmi_reads_dicom_like_nifti(volume, tmp_path):
    affine = ras_affine(volume.shape)
    root = tmp_path / "PPMI"
    rows = ["Subject,Group"]
    for sid, group, as_dicom in (("4001", "PD", True), ("4002", "Control", False),
                                 ("4003", "PD", False), ("4004", "Control", True)):
        folder = root / sid / "MPRAGE" / "2015-01-01" / f"S{sid}"
        if as_dicom:
            write_dicom_series(folder, volume, affine)
        else:
            folder.mkdir(parents=True)
            write_nifti(folder / f"{sid}.nii.gz", volume)
        rows.append(f"{sid},{group}")
    (root / "collection.csv").write_text("\n".join(rows) + "\n")
    prepare_dataset("ppmi", root, tmp_path / "out", size=SIZE, workers=1, progress=False)
    ds = load_dataset(tmp_path / "out")
    files = {f["subject"]: f["files"] for f in ds.meta["subjects"]}
    assert "dicom" in files["4001"] and "t1" in files["4002"]
    # Same volume, same slices, whichever format it came in.
    np.testing.assert_array_equal(ds.images[ds.subjects == "4001"], ds.images[ds.subjects == "4002"])
    shutil.rmtree(tmp_path / "out")
