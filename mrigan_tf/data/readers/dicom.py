"""Title: Reading a DICOM series as a volume (optional: needs pydicom)
Description: one folder of 2-D DICOM slices -> a 3-D RAS volume, as ``load_nifti_volume`` gives.

Scanners write a 3-D acquisition as one DICOM file per slice. Each file says where it is:
``ImagePositionPatient`` (the first pixel's position, mm), ``ImageOrientationPatient``
(the directions of rows and columns) and ``PixelSpacing``. The slices are sorted along the
normal of their plane (file names and ``InstanceNumber`` are not reliable), stacked, and
given the affine those tags imply. DICOM's patient axes are LPS (x to the Left, y to the
Posterior), so the first two rows of the affine are negated to get RAS, and the volume is
reoriented to RAS+ like every NIfTI volume.

pydicom (pip install "mrigan-tf[dicom]") reads uncompressed series; compressed ones (JPEG
2000, JPEG-LS) need its optional decoders or a conversion with ``dcm2niix``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mrigan_tf.errors import DataError


def dicom_available() -> bool:
    """Whether pydicom is installed (the optional ``dicom`` extra)."""
    try:
        import pydicom  # noqa: F401
    except ImportError:
        return False
    return True


def load_dicom_series(directory: str | os.PathLike):
    """The DICOM series in ``directory`` as a RAS+ ``NiftiVolume`` (float32, rescaled)."""
    import nibabel as nib
    import pydicom
    from pydicom.errors import InvalidDicomError

    from mrigan_tf.data.nifti import NiftiVolume

    directory = Path(directory)
    slices = []
    for path in sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            ds = pydicom.dcmread(path)
        except InvalidDicomError:
            continue   # DICOMDIR companions, notes, thumbnails
        except Exception as exc:
            raise DataError(path, f"unreadable or truncated DICOM file ({type(exc).__name__}: {exc})") from None
        if "PixelData" in ds:
            slices.append((path, ds))
        elif "Rows" in ds or "Image Storage" in _sop_class_name(ds):
            # An image header whose pixels never come: the file was cut short.
            raise DataError(path, "truncated DICOM file: an image header without pixel data")
    if len(slices) < 2:
        raise DataError(directory, f"expected a DICOM series of 2-D slices, found {len(slices)} "
                        "image file(s)")
    series = {str(ds.get("SeriesInstanceUID", "")) for _, ds in slices}
    if len(series) > 1:
        raise DataError(directory, f"holds {len(series)} DICOM series; put each series in "
                        "its own folder")
    for path, ds in slices:
        for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            if tag not in ds:
                raise DataError(path, f"DICOM slice has no {tag}; cannot place it in 3-D")

    orientation = np.asarray(slices[0][1].ImageOrientationPatient, dtype=float)
    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    for path, ds in slices:
        if not np.allclose(np.asarray(ds.ImageOrientationPatient, float), orientation, atol=1e-4):
            raise DataError(path, "slice orientation differs from the rest of the series")
    slices.sort(key=lambda item: float(np.dot(normal, np.asarray(item[1].ImagePositionPatient, float))))
    positions = np.array([np.asarray(ds.ImagePositionPatient, float) for _, ds in slices])
    gaps = np.diff(positions @ normal)
    if np.any(gaps < 1e-3) or np.ptp(gaps) > 0.01 * max(float(np.mean(gaps)), 1e-3) + 1e-3:
        raise DataError(directory, "slices are not evenly spaced (missing or duplicate slices?): "
                        f"gaps between {gaps.min():.3g} and {gaps.max():.3g} mm")

    planes = []
    shape = None
    for path, ds in slices:
        try:
            pixels = ds.pixel_array.astype(np.float32)
        except Exception as exc:
            raise DataError(path, f"cannot decode the pixel data ({type(exc).__name__}: {exc}); "
                            "compressed DICOM needs pydicom's optional decoders, or convert "
                            "the series with dcm2niix") from None
        if shape is not None and pixels.shape != shape:
            raise DataError(path, f"slice is {pixels.shape}, the others {shape}")
        shape = pixels.shape
        slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
        planes.append(pixels.T * slope + intercept)   # (columns, rows): i along the row direction

    row_spacing, col_spacing = (float(v) for v in slices[0][1].PixelSpacing)
    affine = np.eye(4)
    affine[:3, 0] = row_dir * col_spacing     # along a row: the next column
    affine[:3, 1] = col_dir * row_spacing     # down a column: the next row
    affine[:3, 2] = (positions[-1] - positions[0]) / (len(positions) - 1)
    affine[:3, 3] = positions[0]
    affine[:2, :] *= -1.0                     # LPS -> RAS
    image = nib.as_closest_canonical(nib.Nifti1Image(np.stack(planes, axis=-1), affine))
    data = np.asarray(image.dataobj, dtype=np.float32)
    if not np.all(np.isfinite(data)):
        raise DataError(directory, "series holds NaN or infinite values")
    if float(data.min()) == float(data.max()):
        raise DataError(directory, "constant series: an empty or failed scan")
    return NiftiVolume(data=data, affine=image.affine.astype(np.float64), path=str(directory))


def _sop_class_name(ds) -> str:
    """The name of the file's SOP class ("MR Image Storage", ...), from its body or file meta."""
    uid = ds.get("SOPClassUID") or getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID")
    return getattr(uid, "name", "") if uid is not None else ""
