"""Title: Image-folder reader
Description: 2-D images sorted into one folder per class (the Kaggle brain-tumor sets) -> slices.

Many public brain-MRI sets are 2-D images, one folder per class::

    SRC/glioma/Tr-gl_0010.jpg    SRC/masks/glioma/Tr-gl_0010.png    (optional twin tree)
    SRC/no_tumor/Tr-no_0011.jpg

Masks, when there are any, live in a twin tree (``SRC/masks/<class>/`` with the same file
names, any image extension) or next to their image as ``NAME_mask.<ext>`` (the Kaggle LGG
set). When a class has masks, every one of its images needs one; a class without any
(``no_tumor``) gets empty masks. A mask pixel is lesion where it is brighter than half the
mask's maximum, which reads 0/1, 0/255 and JPEG-compressed masks alike.

Each image is scaled to [-1, 1] by its own range (these sets are already windowed for
display, often as 8-bit RGB screenshots), padded to a square with background, and resized
like MRI slices (linear for images, nearest neighbour for masks). The layout
(``mrigan_tf.data.layout``) is background / brain (the image's foreground, found as in a
volume: clearly above the darkest pixels, holes filled) / lesion (the mask, where there are
masks).

These sets rarely say which images come from the same patient, so each image is its own
"subject" and neighbouring slices of one patient can land in train and test: a known
weakness of these sets. When file names carry the patient (``TCGA_CS_4941_19960909_12.tif``),
``subject_pattern`` (a regular expression searched in the file name; its first group that
matched, or the whole match, names the patient) keeps each patient in one split.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mrigan_tf.data.layout import brain_layout, brain_layout_meta
from mrigan_tf.data.readers.common import Inventory, Subject, require_directory, walk_files
from mrigan_tf.errors import DataError, MriganError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
MASK_SUFFIX = "_mask"


@dataclasses.dataclass
class FolderReader:
    """Options: ``classes`` (folders, in label order), ``masks`` root, ``subject_pattern``."""

    classes: Sequence[str] | str | None = None
    masks: str | None = None
    subject_pattern: str | None = None
    source: str = "folder"

    def __post_init__(self) -> None:
        if isinstance(self.classes, str):
            self.classes = [c.strip() for c in self.classes.split(",") if c.strip()]
        if self.classes is not None:
            self.classes = list(self.classes)
        if self.subject_pattern is not None:
            try:
                re.compile(self.subject_pattern)
            except re.error as exc:
                raise MriganError(f"--subject-pattern is not a valid regular expression: {exc}") from None

    def discover(self, src: Path) -> Inventory:
        src = require_directory(src, "class folders (SRC/<class>/*.png)")
        mask_root = Path(self.masks) if self.masks is not None else src / "masks"
        if self.masks is not None and not mask_root.is_dir():
            raise DataError(mask_root, "masks folder not found")
        folders = sorted(p.name for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")
                         and p.resolve() != mask_root.resolve())
        class_names = self.classes if self.classes is not None else folders
        if not class_names:
            raise DataError(src, "no class folders; expected SRC/<class>/*.png")
        for name in class_names:
            if name not in folders:
                raise DataError(src / name, f"class folder not found (found {', '.join(folders)})")

        pattern = re.compile(self.subject_pattern) if self.subject_pattern else None
        groups: dict[str, Subject] = {}
        any_masks = False
        for label, name in enumerate(class_names):
            class_dir = src / name
            images = [p for p in walk_files(class_dir) if p.suffix.lower() in IMAGE_SUFFIXES
                      and not p.stem.endswith(MASK_SUFFIX)]
            if not images:
                raise DataError(class_dir, f"no images ({', '.join(IMAGE_SUFFIXES)}) in this "
                                "class folder")
            class_has_masks = (mask_root / name).is_dir() or any(
                _sibling_mask(p) is not None for p in images)
            any_masks |= class_has_masks
            for path in images:
                rel = path.relative_to(class_dir)
                sid = f"{name}/{rel.with_suffix('').as_posix()}"
                if pattern is not None:
                    match = pattern.search(path.stem)
                    if match is None:
                        raise DataError(path, f"file name does not match --subject-pattern "
                                        f"{self.subject_pattern!r}")
                    sid = next((g for g in match.groups() if g), match.group(0))
                subject = groups.setdefault(sid, Subject(id=sid, files={}, label=label))
                subject.label = max(subject.label, label)
                mask = None
                if class_has_masks:
                    mask = _twin_mask(mask_root / name / rel) or _sibling_mask(path)
                    if mask is None and subject.problem is None:
                        subject.problem = (str(path), "no mask for this image, though its class "
                                           f"has masks (looked in {mask_root / name} and for "
                                           f"{path.stem}{MASK_SUFFIX}.*)")
                subject.items.append((str(path), None if mask is None else str(mask), label))
                subject.files.setdefault("image", str(path))
        meta = {
            "modality": "2-D images as found in the class folders",
            "has_masks": any_masks,
            "mask": ("lesion masks from the masks tree or NAME_mask files" if any_masks
                     else "none: masks are all zero"),
            **brain_layout_meta("lesion" if any_masks else None),
            "class_definition": "per image: its class folder",
            "folder": {"masks": str(mask_root) if any_masks else None,
                       "subject_pattern": self.subject_pattern},
        }
        return Inventory(subjects=sorted(groups.values(), key=lambda s: s.id),
                         class_names=list(class_names), meta=meta)

    def read_subject(self, subject: Subject, params):
        from mrigan_tf.data.preprocessing import (
            SliceSet, compute_brain_mask, resize_image, resize_labels,
        )

        images, masks, layouts, labels = [], [], [], []
        for image_path, mask_path, label in subject.items:
            image = _read_image(Path(image_path))
            lo, hi = float(image.min()), float(image.max())
            if hi <= lo:
                raise DataError(image_path, f"constant image (every pixel is {lo:g})")
            image = (image - lo) / (hi - lo) * 2.0 - 1.0
            if mask_path is None:
                mask = np.zeros(image.shape, np.uint8)
            else:
                raw = _read_image(Path(mask_path))
                if raw.shape != image.shape:
                    raise DataError(mask_path, f"image/mask shape mismatch: mask is {raw.shape}, "
                                    f"image {image_path} is {image.shape}")
                mask = (raw > raw.max() / 2.0).astype(np.uint8) if raw.max() > 0 else \
                    np.zeros(raw.shape, np.uint8)
            images.append(np.clip(resize_image(_pad_square(image, -1.0), params.size), -1.0, 1.0))
            masks.append(resize_labels(_pad_square(mask, 0), params.size))
            layout = brain_layout(compute_brain_mask(image[:, :, None])[:, :, 0], mask)
            layouts.append(resize_labels(_pad_square(layout, 0), params.size))
            labels.append(label)
        return SliceSet(images=np.stack(images)[..., None].astype(np.float32),
                        masks=np.stack(masks)[..., None].astype(np.uint8),
                        labels=np.asarray(labels, np.int32),
                        slice_index=np.arange(len(labels)),
                        layouts=np.stack(layouts)[..., None].astype(np.uint8))


def _twin_mask(stem_path: Path) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        candidate = stem_path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def _sibling_mask(image: Path) -> Path | None:
    return _twin_mask(image.with_name(image.stem + MASK_SUFFIX + image.suffix))


def _read_image(path: Path) -> np.ndarray:
    """A 2-D float32 array of an image file (colour converted to grey)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I", "F") or im.mode.startswith("I;16"):
                array = np.asarray(im, dtype=np.float32)
            else:
                array = np.asarray(im.convert("L"), dtype=np.float32)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(path, f"unreadable or truncated image ({type(exc).__name__}: {exc})") from None
    if array.ndim != 2:
        raise DataError(path, f"expected a 2-D image, got shape {array.shape}")
    return array


def _pad_square(array: np.ndarray, fill) -> np.ndarray:
    rows, cols = array.shape
    side = max(rows, cols)
    top, left = (side - rows) // 2, (side - cols) // 2
    return np.pad(array, ((top, side - rows - top), (left, side - cols - left)),
                  constant_values=fill)
