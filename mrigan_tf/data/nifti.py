"""Loading MRI volumes with nibabel, defensively.

An MRI volume is a 3-D array of voxels plus an *affine*: the 4x4 matrix that maps voxel
indices (i, j, k) to millimetres in scanner/world space. Files on disk store axes in
whatever order the scanner or converter chose, so we always reorient to the closest
canonical orientation, RAS+ (i -> Right, j -> Anterior, k -> Superior). After that,
``data[:, :, k]`` is an axial slice for every dataset, whatever its source.

Real data is messy. Every way a file can be broken that we have seen gets a clear
``DataError`` naming the file, instead of a numpy traceback three modules later.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from mrigan_tf.errors import DataError


@dataclasses.dataclass
class NiftiVolume:
    """A 3-D volume in RAS+ orientation."""

    data: np.ndarray          # float32 (X, Y, Z), X -> Right, Y -> Anterior, Z -> Superior
    affine: np.ndarray        # 4x4 voxel -> world (mm)
    path: str | None = None

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.data.shape)

    def to_nifti(self) -> nib.Nifti1Image:
        return nib.Nifti1Image(self.data, self.affine)


def _open_image(path: Path):
    if not path.exists():
        raise DataError(path, "file not found")
    if path.is_dir():
        raise DataError(path, "is a directory, expected a NIfTI file (.nii or .nii.gz)")
    try:
        return nib.load(str(path))
    except ImageFileError:
        raise DataError(path, "not a NIfTI/Analyze image nibabel can read "
                        "(expected .nii, .nii.gz or an .hdr/.img pair)") from None
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError, ValueError) as exc:
        raise DataError(path, f"corrupt or truncated file ({type(exc).__name__}: {exc})") from None


def _read_array(img, path: Path, dtype) -> np.ndarray:
    try:
        return np.asarray(img.dataobj, dtype=dtype)
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError, ValueError) as exc:
        raise DataError(path, "corrupt or truncated file: the header reads but the voxel data "
                        f"does not ({type(exc).__name__}: {exc})") from None


def _canonical(img, path: Path):
    # Reorienting a non-RAS image reads its voxels, so a truncated file can fail here too.
    try:
        return nib.as_closest_canonical(img)
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError, ValueError) as exc:
        raise DataError(path, "corrupt or truncated file: the header reads but the voxel data "
                        f"does not ({type(exc).__name__}: {exc})") from None


def _as_3d(img, path: Path):
    shape = img.shape
    if len(shape) == 4 and shape[3] == 1:
        return img.slicer[..., 0]
    if len(shape) != 3:
        hint = (" (a 4-D series: pick one volume first)" if len(shape) == 4 else "")
        raise DataError(path, f"expected a 3-D volume, got {len(shape)}-D data of shape "
                        f"{tuple(shape)}{hint}")
    if min(shape) < 2:
        raise DataError(path, f"expected a 3-D volume, got a single slice of shape {tuple(shape)}")
    return img


def load_nifti_volume(path: str | os.PathLike) -> NiftiVolume:
    """Load an intensity volume, reoriented to RAS+, as float32.

    Raises ``DataError`` naming ``path`` when the file is missing, not NIfTI/Analyze,
    truncated, not 3-D, contains NaN/inf voxels, or is constant (an empty or failed scan).
    """
    path = Path(path)
    img = _as_3d(_open_image(path), path)
    img = _canonical(img, path)
    data = _read_array(img, path, np.float32)
    bad = ~np.isfinite(data)
    if bad.any():
        raise DataError(path, f"{int(bad.sum())} voxels are NaN or infinite; "
                        "fix or re-export the scan")
    lo, hi = float(data.min()), float(data.max())
    if lo == hi:
        raise DataError(path, f"constant volume (every voxel is {lo:g}): an empty or failed scan")
    return NiftiVolume(data=data, affine=img.affine.astype(np.float64), path=str(path))


def load_label_volume(path: str | os.PathLike, like: NiftiVolume) -> np.ndarray:
    """Load an integer label map (segmentation) aligned with ``like``, in RAS+.

    Raises ``DataError`` when the file is unreadable, holds non-integer or negative
    values, or does not match the image's shape or orientation.
    """
    path = Path(path)
    img = _as_3d(_open_image(path), path)
    img = _canonical(img, path)
    if tuple(img.shape) != like.shape:
        raise DataError(path, f"image/mask shape mismatch: mask is {tuple(img.shape)}, "
                        f"image {like.path or ''} is {like.shape}")
    if not np.allclose(img.affine, like.affine, atol=1e-3):
        raise DataError(path, f"mask and image {like.path or ''} are not in the same space "
                        "(their affines differ); resample the mask onto the image first")
    data = _read_array(img, path, np.float32)
    if not np.all(np.isfinite(data)):
        raise DataError(path, "label map contains NaN or infinite values")
    if not np.all(data == np.round(data)) or data.min() < 0:
        raise DataError(path, "label map must hold non-negative integers "
                        "(is this an intensity image passed as a mask?)")
    if data.max() > np.iinfo(np.int16).max:
        raise DataError(path, f"label value {data.max():g} is too large for a label map "
                        f"(at most {np.iinfo(np.int16).max})")
    return data.astype(np.int16)
