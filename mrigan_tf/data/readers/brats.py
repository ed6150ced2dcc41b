"""Title: BraTS reader (2020, 2021 and 2023 layouts)
Description: multi-modal glioma MRI with expert tumor segmentations -> slices with masks.

The Brain Tumor Segmentation challenge ships one folder per patient, skull-stripped,
co-registered and resampled to 1 mm (240 x 240 x 155 voxels):

* 2020/2021: ``BraTS2021_00000/BraTS2021_00000_{t1,t1ce,t2,flair,seg}.nii.gz``
  (2020: ``BraTS20_Training_001_...``); labels 1 necrotic core, 2 edema, **4** enhancing;
* 2023: ``BraTS-GLI-00000-000/BraTS-GLI-00000-000-{t1n,t1c,t2w,t2f,seg}.nii.gz``;
  the same regions with enhancing tumor relabelled **3**.

We name the modalities the 2021 way (``t1``, ``t1ce``, ``t2``, ``flair``) and accept the
2023 names as aliases. Several modalities become channels of one image, all cut with the
same brain mask and crop so that they stay aligned pixel for pixel. The mask is one of the
challenge's three nested regions:

* whole tumor (WT) = necrosis + edema + enhancing, best seen on FLAIR;
* tumor core (TC) = necrosis + enhancing;
* enhancing tumor (ET), best seen on T1ce.

The class is per slice: 1 where the slice shows the chosen region. Each slice's layout
(``mrigan_tf.data.layout``) is background / brain / edema / enhancing / necrosis, whatever
the region; the region's parts are its mask classes. A label value outside
the convention (a 4 in a 2023 file, say) is an error: it almost always means the wrong
convention, and silently dropping it would make wrong masks.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mrigan_tf.data.layout import BRATS_LAYOUT, layout_meta
from mrigan_tf.data.readers.common import (
    Inventory, Subject, require_directory, strip_nifti_suffix, walk_files,
)
from mrigan_tf.errors import DataError, MriganError

CLASS_NAMES = ["healthy", "tumor"]
MODALITIES = ("t1", "t1ce", "t2", "flair")
ALIASES = {"t1": "t1", "t1n": "t1", "t1ce": "t1ce", "t1c": "t1ce", "t1gd": "t1ce",
           "t2": "t2", "t2w": "t2", "flair": "flair", "t2f": "flair"}
# File suffix of each modality (and of the segmentation) in the two naming conventions.
SUFFIXES = {"2021": {"t1": "t1", "t1ce": "t1ce", "t2": "t2", "flair": "flair", "seg": "seg"},
            "2023": {"t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f", "seg": "seg"}}
LABELS = {"2021": {"necrosis": 1, "edema": 2, "enhancing": 4},
          "2023": {"necrosis": 1, "edema": 2, "enhancing": 3}}
REGIONS = {"whole_tumor": ("necrosis", "edema", "enhancing"),
           "tumor_core": ("necrosis", "enhancing"),
           "enhancing_tumor": ("enhancing",)}
_FILE = re.compile(r"^(?P<sid>.+?)[_-](?P<kind>t1ce|t1c|t1n|t1|t2w|t2f|t2|flair|seg)$")


@dataclasses.dataclass
class BratsReader:
    """Options: ``modalities`` (one or several, as channels), ``region``, ``labels``."""

    modalities: Sequence[str] | str = ("t1ce",)
    region: str = "whole_tumor"
    labels: str = "auto"     # "auto" (from the file names), "2021" or "2023"
    source: str = "brats"

    def __post_init__(self) -> None:
        names = self.modalities.split(",") if isinstance(self.modalities, str) else self.modalities
        wanted = []
        for name in names:
            key = name.strip().lower()
            if key not in ALIASES:
                raise MriganError(f"unknown BraTS modality {name!r}; choose from "
                                  f"{', '.join(MODALITIES)} (2023 names t1n, t1c, t2w, t2f)")
            if ALIASES[key] not in wanted:
                wanted.append(ALIASES[key])
        if not wanted:
            raise MriganError("choose at least one BraTS modality, e.g. --modalities t1ce")
        self.modalities = tuple(wanted)
        if self.region not in REGIONS:
            raise MriganError(f"unknown BraTS region {self.region!r}; choose from "
                              f"{', '.join(REGIONS)}")
        if self.labels not in ("auto", "2021", "2023"):
            raise MriganError(f"--labels must be auto, 2021 or 2023, got {self.labels!r}")

    # ## Find the subjects

    def discover(self, src: Path) -> Inventory:
        src = require_directory(src, "BraTS subject folders")
        groups: dict[str, dict[str, Path]] = {}
        for path in walk_files(src):
            stem = strip_nifti_suffix(path.name)
            match = _FILE.match(stem) if stem else None
            if match:
                groups.setdefault(match["sid"], {})[match["kind"]] = path
        if not groups:
            raise DataError(src, "no BraTS files found; expected folders like "
                            "BraTS2021_00000/BraTS2021_00000_t1ce.nii.gz or "
                            "BraTS-GLI-00000-000/BraTS-GLI-00000-000-t1c.nii.gz")
        subjects = [self._subject(sid, files) for sid, files in sorted(groups.items())]
        conventions = sorted({s.facts["convention"] for s in subjects if "convention" in s.facts})
        meta = {
            "modality": "+".join(self.modalities),
            "channels": list(self.modalities),
            "has_masks": True,
            "mask": {"whole_tumor": "whole tumor (necrosis + edema + enhancing)",
                     "tumor_core": "tumor core (necrosis + enhancing)",
                     "enhancing_tumor": "enhancing tumor"}[self.region],
            "class_definition": "per slice: 1 where the slice shows the masked region",
            **layout_meta(BRATS_LAYOUT, [BRATS_LAYOUT.index(part)
                                         for part in REGIONS[self.region]]),
            "brats": {"region": self.region, "label_conventions": conventions,
                      "labels": {c: LABELS[c] for c in conventions}},
        }
        return Inventory(subjects=subjects, class_names=list(CLASS_NAMES), meta=meta)

    def _subject(self, sid: str, files: dict[str, Path]) -> Subject:
        convention = self.labels
        if convention == "auto":
            convention = "2023" if set(files) & {"t1n", "t1c", "t2w", "t2f"} else "2021"
        suffixes = SUFFIXES[convention]
        found, missing = {}, []
        for role in (*self.modalities, "seg"):
            path = files.get(suffixes[role])
            if path is None:
                missing.append(role)
            else:
                found[role] = str(path)
        subject = Subject(id=sid, files=found, facts={"convention": convention})
        if missing:
            folder = Path(next(iter(files.values()))).parent
            sep = "-" if convention == "2023" else "_"
            expected = folder / f"{sid}{sep}{suffixes[missing[0]]}.nii.gz"
            what = "segmentation" if missing[0] == "seg" else f"modality {missing[0]}"
            subject.problem = (str(expected), f"missing {what} of subject {sid} "
                               f"(found {', '.join(sorted(files))})")
        return subject

    # ## Read one subject (in a worker process)

    def read_subject(self, subject: Subject, params):
        from mrigan_tf.data.layout import brain_layout, paint
        from mrigan_tf.data.nifti import load_label_volume, load_nifti_volume
        from mrigan_tf.data.preprocessing import (
            SliceSet, compute_brain_mask, labels_to_mask, slice_subject,
        )

        volumes = [load_nifti_volume(subject.files[m]) for m in self.modalities]
        reference = volumes[0]
        for other in volumes[1:]:
            if other.shape != reference.shape:
                raise DataError(other.path, f"shape mismatch between modalities: {other.shape} "
                                f"here, {reference.shape} in {reference.path}")
            if not np.allclose(other.affine, reference.affine, atol=1e-3):
                raise DataError(other.path, f"not co-registered with {reference.path} "
                                "(the affines differ)")
        seg_path = subject.files["seg"]
        seg = load_label_volume(seg_path, reference)
        labels = LABELS[subject.facts["convention"]]
        mask = labels_to_mask(seg, [labels[r] for r in REGIONS[self.region]],
                              known_labels=labels.values(), path=seg_path)
        # One brain mask for every modality: same slices, same crop, aligned channels.
        brain = compute_brain_mask(reference.data)
        layout = paint(brain_layout(brain), seg,
                       {labels[part]: BRATS_LAYOUT.index(part) for part in labels})
        del seg
        channels = []
        for volume in volumes:
            channels.append(slice_subject(volume, mask, params, brain_mask=brain,
                                          layout_volume=None if channels else layout))
            volume.data = None   # free the full-resolution volume as soon as it is cut
        first = channels[0]
        return SliceSet(images=np.concatenate([c.images for c in channels], axis=-1),
                        masks=first.masks, labels=first.labels, slice_index=first.slice_index,
                        layouts=first.layouts)
