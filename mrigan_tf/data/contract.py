"""The prepared-dataset contract, shared by real and synthetic datasets.

A dataset is a directory holding

* ``dataset.npz``: ``images`` float32 (N, H, W, 1) in [-1, 1]; ``masks`` uint8 (N, H, W, 1)
  in {0, 1}; ``labels`` int32 (N,); ``subjects`` str (N,); ``split`` str (N,) in
  {train, val, test}. Splits are by subject: no subject appears in two splits. Optional:
  ``layout`` uint8 (N, H, W, 1), a label map (tissue and tumor classes) whose mask classes
  are exactly ``masks`` (``mrigan_tf.data.layout``; its classes named in ``meta.json``'s
  ``layout_classes``, the mask classes in ``layout_mask_classes``).
* ``meta.json``: class names, image size, source, modality, preprocessing parameters,
  seed, package version (and, for synthetic sets, the model and generation settings).

Everything that reads or writes a dataset goes through ``load_dataset`` / ``save_dataset``,
so the contract is checked in one place.
"""

from __future__ import annotations

import dataclasses
import io
import json
import numbers
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from mrigan_tf.atomic import atomic_directory
from mrigan_tf.data.layout import layout_problem
from mrigan_tf.errors import DataError

ARRAYS_FILE = "dataset.npz"
META_FILE = "meta.json"
SPLITS = ("train", "val", "test")
REQUIRED_META = ("class_names", "image_size", "source", "modality")
ARRAY_NAMES = ("images", "masks", "labels", "subjects", "split")
#: Arrays a dataset may hold beside the required ones.
OPTIONAL_ARRAYS = ("layout",)

# A fixed timestamp for every member of the npz zip: numpy's own savez stamps the current
# time, which would make two runs with the same seed differ byte for byte.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclasses.dataclass
class PreparedDataset:
    """Arrays and metadata of one prepared dataset (see the module docstring)."""

    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    subjects: np.ndarray
    split: np.ndarray
    meta: dict[str, Any]
    #: uint8 (N, H, W, 1) label map, or None (a dataset without layouts).
    layout: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def class_names(self) -> list[str]:
        return list(self.meta["class_names"])

    @property
    def num_classes(self) -> int:
        return len(self.meta["class_names"])

    @property
    def image_size(self) -> int:
        return int(self.meta["image_size"])

    @property
    def layout_classes(self) -> list[str]:
        """Names of the layout's classes (empty without layouts)."""
        return list(self.meta.get("layout_classes") or []) if self.layout is not None else []

    @property
    def layout_mask_classes(self) -> list[int]:
        """The layout classes whose union is the mask (the tumor classes)."""
        return list(self.meta.get("layout_mask_classes") or []) if self.layout is not None else []

    def joint(self) -> np.ndarray:
        """The GAN's joint input ``concat([image, 2*mask-1], -1)``, shape (N, H, W, C + 1)."""
        return np.concatenate([self.images, 2.0 * self.masks.astype(np.float32) - 1.0], axis=-1)

    def select(self, split: str | None = None, label: int | None = None) -> "PreparedDataset":
        """The subset of slices in one split and/or of one class."""
        keep = np.ones(len(self), dtype=bool)
        if split is not None:
            if split not in SPLITS:
                raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
            keep &= self.split == split
        if label is not None:
            keep &= self.labels == label
        return PreparedDataset(self.images[keep], self.masks[keep], self.labels[keep],
                               self.subjects[keep], self.split[keep], dict(self.meta),
                               None if self.layout is None else self.layout[keep])

    def counts(self) -> dict[str, dict[str, int]]:
        """Slice counts per split and class, e.g. ``{"train": {"healthy": 120, ...}}``."""
        out: dict[str, dict[str, int]] = {}
        for s in SPLITS:
            in_split = self.split == s
            out[s] = {name: int(np.sum(in_split & (self.labels == k)))
                      for k, name in enumerate(self.class_names)}
        return out

    def subjects_per_split(self) -> dict[str, list[str]]:
        return {s: sorted(set(self.subjects[self.split == s].tolist())) for s in SPLITS}


def image_channels(meta: dict[str, Any]) -> int:
    """Image channels: 1 (one modality), or one per name in ``meta["channels"]``.

    A multi-modal dataset (e.g. BraTS prepared with ``--modalities t1ce,flair``) lists its
    modalities, in channel order, as ``meta["channels"]``; the mask stays one channel.
    """
    return len(meta.get("channels") or [None])


def _meta_problem(meta: dict[str, Any]) -> str | None:
    """What is wrong with the metadata the contract needs, or ``None``."""
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        return f"meta is missing {', '.join(missing)}"
    size = meta["image_size"]
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        return f"meta image_size must be a positive integer, got {size!r}"
    channels = meta.get("channels")
    if channels is not None and (not isinstance(channels, (list, tuple)) or not channels
                                 or not all(isinstance(c, str) for c in channels)):
        return f"meta channels must be a non-empty list of modality names, got {channels!r}"
    names = meta["class_names"]
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
        return f"meta class_names must be a non-empty list of names, got {names!r}"
    return None


def validate_dataset(ds: PreparedDataset, path: str | os.PathLike | None = None) -> None:
    """Raise ``DataError`` (naming ``path``) unless ``ds`` satisfies the contract."""
    where = path

    def fail(problem: str) -> None:
        raise DataError(where, problem)

    meta_problem = _meta_problem(ds.meta)
    if meta_problem:
        fail(meta_problem)
    n = ds.labels.shape[0] if ds.labels.ndim == 1 else -1
    if n < 0:
        fail(f"labels must be 1-D, got shape {ds.labels.shape}")
    size = int(ds.meta["image_size"])
    channels = image_channels(ds.meta)
    if ds.images.dtype != np.float32 or ds.images.shape != (n, size, size, channels):
        fail(f"images must be float32 of shape ({n}, {size}, {size}, {channels}), "
             f"got {ds.images.dtype} {ds.images.shape}")
    if ds.masks.dtype != np.uint8 or ds.masks.shape != (n, size, size, 1):
        fail(f"masks must be uint8 of shape ({n}, {size}, {size}, 1), "
             f"got {ds.masks.dtype} {ds.masks.shape}")
    if ds.labels.dtype != np.int32:
        fail(f"labels must be int32, got {ds.labels.dtype}")
    for name in ("subjects", "split"):
        arr = getattr(ds, name)
        if arr.dtype.kind != "U" or arr.shape != (n,):
            fail(f"{name} must be a string array of shape ({n},), got {arr.dtype} {arr.shape}")
    if n == 0:
        fail("dataset holds no slices")
    if not np.all(np.isfinite(ds.images)):
        fail(f"images contain {int(np.sum(~np.isfinite(ds.images)))} NaN/inf values")
    lo, hi = float(ds.images.min()), float(ds.images.max())
    if lo < -1.0 - 1e-6 or hi > 1.0 + 1e-6:
        fail(f"images must lie in [-1, 1], found [{lo:.3g}, {hi:.3g}]")
    bad_mask = np.setdiff1d(np.unique(ds.masks), [0, 1])
    if bad_mask.size:
        fail(f"masks must be 0/1, found values {bad_mask.tolist()}")
    k = len(ds.meta["class_names"])
    bad_labels = np.setdiff1d(np.unique(ds.labels), np.arange(k))
    if bad_labels.size:
        fail(f"labels {bad_labels.tolist()} are outside the {k} classes {ds.meta['class_names']}")
    bad_split = sorted(set(np.unique(ds.split).tolist()) - set(SPLITS))
    if bad_split:
        fail(f"split values must be in {SPLITS}, found {bad_split}")
    owners: dict[str, str] = {}
    for subject, split in set(zip(ds.subjects.tolist(), ds.split.tolist())):
        if subject in owners and owners[subject] != split:
            fail(f"subject {subject!r} appears in both {owners[subject]!r} and {split!r} "
                 "splits; splits must be by subject, never by slice")
        owners[subject] = split
    if ds.layout is not None:
        problem = layout_problem(ds.layout, ds.masks, ds.meta)
        if problem:
            fail(problem)


def save_dataset(ds: PreparedDataset, out_dir: str | os.PathLike, overwrite: bool = False,
                 extra_files: dict[str, bytes] | None = None) -> Path:
    """Validate ``ds`` and write it atomically to ``out_dir`` (dataset.npz + meta.json).

    ``extra_files`` (relative name -> bytes) are written inside the same atomic step.
    """
    validate_dataset(ds, out_dir)
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        write_dataset_files(ds, tmp)
        for name, payload in (extra_files or {}).items():
            dest = tmp / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(payload)
    return Path(out_dir)


def write_dataset_files(ds: PreparedDataset, directory: Path) -> None:
    """Write dataset.npz and meta.json into an existing (temporary) directory.

    Not atomic by itself: callers write into an ``atomic_directory``.
    """
    arrays = {name: getattr(ds, name) for name in ARRAY_NAMES + OPTIONAL_ARRAYS
              if getattr(ds, name) is not None}
    write_npz_deterministic(directory / ARRAYS_FILE, arrays)
    meta = dict(ds.meta)
    meta["counts"] = ds.counts()
    meta["num_slices"] = len(ds)
    (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def write_npz_deterministic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an ``.npz`` that ``np.load`` reads, byte-identical for identical arrays."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=1)


def load_dataset(path: str | os.PathLike) -> PreparedDataset:
    """Read and validate a dataset directory; raise ``DataError`` naming what is wrong."""
    root = Path(path)
    if not root.exists():
        raise DataError(root, "dataset directory not found "
                        "(build one with `mrigan-tf phantom --out DIR` or `mrigan-tf prepare`)")
    if not root.is_dir():
        raise DataError(root, "expected a dataset directory holding dataset.npz and meta.json")
    arrays_path, meta_path = root / ARRAYS_FILE, root / META_FILE
    for p in (arrays_path, meta_path):
        if not p.is_file():
            raise DataError(p, "missing; a dataset directory holds dataset.npz and meta.json")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(meta_path, f"not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise DataError(meta_path, "must hold a JSON object")
    meta_problem = _meta_problem(meta)
    if meta_problem:
        raise DataError(meta_path, meta_problem)
    if not zipfile.is_zipfile(arrays_path):  # also a lone .npy, which np.load would accept
        raise DataError(arrays_path, "unreadable or truncated npz (not a complete zip archive)")
    try:
        with np.load(arrays_path, allow_pickle=False) as npz:
            missing = [k for k in ARRAY_NAMES if k not in npz.files]
            if missing:
                raise DataError(arrays_path, f"missing arrays: {', '.join(missing)}")
            arrays = {k: npz[k] for k in ARRAY_NAMES + OPTIONAL_ARRAYS if k in npz.files}
    except DataError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise DataError(arrays_path, f"unreadable or truncated npz ({exc})") from None
    ds = PreparedDataset(meta=meta, **arrays)
    # validate_dataset names the directory; the arrays file is where the problem lives.
    validate_dataset(ds, arrays_path)
    return ds
