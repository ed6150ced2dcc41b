"""Title: OpenNeuro / BIDS reader
Description: any BIDS dataset's anatomical T1w images -> slices classed by a participants.tsv column.

The Brain Imaging Data Structure names files by rule: ``sub-<label>/[ses-<label>/]anat/
sub-<label>[_ses-<label>]..._T1w.nii.gz``, with one row per subject in
``participants.tsv`` (column ``participant_id`` = ``sub-<label>``). Every OpenNeuro
dataset follows it, so one reader covers them all; what differs is which column says
what a subject is (``group``, ``diagnosis``, ``dx`` ...): the user names it, and may list
the values to keep in label order (``classes=["control", "patient"]``).

One image per subject: the first in sorted order (the first session, the first run).
Values ``n/a`` (BIDS's missing value) or outside ``classes`` exclude the subject, listed in
``meta.json``. A row with no image, or an image with no row, is a bad subject. T1w images
on OpenNeuro are usually not skull-stripped, and masks are empty (``has_masks: false``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from mrigan_tf.data.layout import brain_layout_meta
from mrigan_tf.data.readers.common import (
    Inventory, Subject, pick_column, read_table, require_directory, slice_classified_volume,
    strip_nifti_suffix,
)
from mrigan_tf.errors import DataError, MriganError

_MISSING = {"", "n/a", "na", "nan"}


@dataclasses.dataclass
class BidsReader:
    """Options: ``class_column`` (required), ``classes`` (values, in label order), ``suffix``."""

    class_column: str | None = None
    classes: Sequence[str] | str | None = None
    suffix: str = "T1w"
    source: str = "bids"

    def __post_init__(self) -> None:
        if not self.class_column:
            raise MriganError("bids needs --class-column: the participants.tsv column that "
                              "gives each subject's class (e.g. group)")
        if isinstance(self.classes, str):
            self.classes = [c.strip() for c in self.classes.split(",") if c.strip()]
        if self.classes is not None:
            self.classes = list(self.classes)
            if len(set(self.classes)) != len(self.classes) or not self.classes:
                raise MriganError(f"--classes must list distinct values, got {self.classes}")

    def discover(self, src: Path) -> Inventory:
        src = require_directory(src, "BIDS dataset (sub-*/ folders and participants.tsv)")
        sheet = src / "participants.tsv"
        if not sheet.is_file():
            raise DataError(sheet, "missing; a BIDS dataset lists its subjects in "
                            "participants.tsv at its root")
        rows = read_table(sheet, required=("participant_id",))
        column = pick_column(sheet, rows, self.class_column, (), "class")
        values = {row["participant_id"]: row[column] for row in rows if row["participant_id"]}
        present = sorted({v for v in values.values() if v.lower() not in _MISSING})
        class_names = self.classes if self.classes is not None else present
        if not class_names:
            raise DataError(sheet, f"column {column!r} holds no values")
        unknown = [c for c in class_names if c not in present]
        if unknown:
            raise DataError(sheet, f"no subject has {column} = {', '.join(map(repr, unknown))}; "
                            f"the values are {', '.join(map(repr, present))}")

        images: dict[str, list[Path]] = {}
        for folder in sorted(src.glob("sub-*")):
            if folder.is_dir():
                found = [p for p in list(folder.glob("anat/*")) + list(folder.glob("ses-*/anat/*"))
                         if (strip_nifti_suffix(p.name) or "").endswith(f"_{self.suffix}")]
                images[folder.name] = sorted(found)
        if not images:
            raise DataError(src, "no sub-* folders; expected sub-<label>/anat/"
                            f"sub-<label>_{self.suffix}.nii.gz")

        subjects, excluded = [], []
        for sid in sorted(set(values) | set(images)):
            subject = Subject(id=sid, files={})
            if sid not in values:
                subject.problem = (str(src / sid), f"{sid} has no row in participants.tsv")
            else:
                value = values[sid]
                if value.lower() in _MISSING or value not in class_names:
                    excluded.append({"subject": sid,
                                     "reason": f"{column} = {value!r} is not one of the classes"})
                    continue
                subject.label = class_names.index(value)
                subject.facts = {column: value}
                if images.get(sid):
                    subject.files["t1"] = str(images[sid][0])
                else:
                    subject.problem = (str(src / sid / "anat" / f"{sid}_{self.suffix}.nii.gz"),
                                       f"{sid} is in participants.tsv but has no "
                                       f"*_{self.suffix}.nii(.gz) image")
            subjects.append(subject)
        meta = {
            "modality": self.suffix,
            "has_masks": False,
            "mask": "none: masks are all zero (no lesion annotation in this dataset)",
            **brain_layout_meta(),
            "class_definition": f"per subject: participants.tsv column {column!r}",
            "bids": {"class_column": column, "dataset": src.name},
        }
        return Inventory(subjects=subjects, class_names=list(class_names), meta=meta,
                         excluded=excluded)

    def read_subject(self, subject: Subject, params):
        return slice_classified_volume(subject.files["t1"], subject.label, params)
