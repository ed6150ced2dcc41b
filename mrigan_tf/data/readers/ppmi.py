"""Title: PPMI reader
Description: T1 MRI of the Parkinson's Progression Markers Initiative -> slices classed Control / PD.

PPMI (ppmi-info.org, images from the LONI IDA) downloads as one folder per subject,
``PPMI/<PATNO>/<series description>/<date>/<image ID>/...``, in DICOM or, when asked for at
download time, NIfTI. This reader reads NIfTI, and DICOM series when pydicom is installed
(the optional ``dicom`` extra; one folder per series, see ``readers.dicom``); a NIfTI
volume is preferred when a subject has both. The class comes from a CSV of subject -> cohort:
the collection CSV that IDA writes next to a download (columns ``Subject``, ``Group``) or
the study's ``Participant_Status.csv`` (``PATNO``, ``COHORT_DEFINITION`` or ``COHORT``).
Parkinson's disease is class 1, healthy controls class 0; other cohorts (SWEDD, prodromal,
genetic) are excluded and listed in ``meta.json``.

Every subject of the CSV must have images and every image folder a row: a mismatch is a
bad subject (stop, or skip and list it with ``--skip-bad``), because it usually means a
partial download or the wrong CSV. One volume per subject: the first in sorted path order
(dates sort, so the earliest visit) among those whose path contains ``series`` (e.g.
``MPRAGE``). PPMI T1 scans are not skull-stripped: the slices show the head. Masks are
empty (``has_masks: false``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mrigan_tf.data.layout import brain_layout_meta
from mrigan_tf.data.readers.common import (
    Inventory, Subject, pick_column, read_table, require_directory, slice_classified_volume,
    strip_nifti_suffix, walk_files,
)
from mrigan_tf.data.readers.dicom import dicom_available
from mrigan_tf.errors import DataError

CLASS_NAMES = ["Control", "PD"]
_COHORTS = {
    "pd": 1, "parkinson's disease": 1, "parkinsons disease": 1, "parkinson disease": 1, "1": 1,
    "control": 0, "healthy control": 0, "hc": 0, "2": 0,
}


@dataclasses.dataclass
class PpmiReader:
    """Options: ``csv`` (subject -> cohort), its ``subject_column``/``group_column``, ``series``."""

    csv: str | None = None
    subject_column: str | None = None
    group_column: str | None = None
    series: str | None = None
    source: str = "ppmi"

    def discover(self, src: Path) -> Inventory:
        src = require_directory(src, "PPMI subject folders")
        sheet = self._find_csv(src)
        rows = read_table(sheet)
        sid_col = pick_column(sheet, rows, self.subject_column, ("Subject", "PATNO", "Subject ID"),
                              "subject ID")
        group_col = pick_column(sheet, rows, self.group_column,
                                ("Group", "COHORT_DEFINITION", "COHORT", "Cohort"), "cohort")
        groups: dict[str, set[str]] = {}
        for row in rows:
            if row[sid_col]:
                groups.setdefault(row[sid_col], set()).add(row[group_col])

        volumes: dict[str, list[Path]] = {}
        dicom_series: dict[str, list[Path]] = {}
        for path in walk_files(src):
            rel = path.relative_to(src)
            owner = next((part for part in rel.parts[:-1] if part in groups), rel.parts[0])
            if self.series is not None and self.series.lower() not in str(rel).lower():
                continue
            if strip_nifti_suffix(path.name) is not None:
                volumes.setdefault(owner, []).append(path)
            elif path.suffix.lower() == ".dcm" and len(rel.parts) > 1:
                found = dicom_series.setdefault(owner, [])
                if path.parent not in found:
                    found.append(path.parent)
        can_read_dicom = dicom_available()

        subjects, excluded = [], []
        for sid in sorted(set(groups) | set(volumes) | set(dicom_series)):
            subject = Subject(id=sid, files={})
            values = groups.get(sid)
            if values is None:
                subject.problem = (str(src / sid), f"subject {sid} has images but no row in "
                                   f"{sheet.name}")
                subjects.append(subject)
                continue
            if len(values) > 1:
                subject.problem = (str(sheet), f"subject {sid} has conflicting cohorts "
                                   f"{sorted(values)}")
                subjects.append(subject)
                continue
            value = next(iter(values))
            label = _COHORTS.get(value.strip().lower())
            if label is None:
                excluded.append({"subject": sid, "reason": f"cohort {value!r} is neither PD "
                                 "nor Control"})
                continue
            subject.label = label
            subject.facts = {"cohort": value}
            if sid in volumes:
                subject.files["t1"] = str(volumes[sid][0])
            elif sid in dicom_series and can_read_dicom:
                subject.files["dicom"] = str(sorted(dicom_series[sid])[0])
            elif sid in dicom_series:
                subject.problem = (str(dicom_series[sid][0]), "DICOM series only, and pydicom is "
                                   "not installed: pip install \"mrigan-tf[dicom]\", or convert "
                                   "it to NIfTI (dcm2niix -z y -o OUT DIR)")
            else:
                filt = f" whose path contains {self.series!r}" if self.series else ""
                subject.problem = (str(sheet), f"subject {sid} is in the CSV but has no "
                                   f"NIfTI image{filt} under {src}")
            subjects.append(subject)
        if not subjects:
            raise DataError(src, "no PD or Control subject found (see the cohort column of "
                            f"{sheet})")
        meta = {
            "modality": "T1-weighted" + (f" ({self.series})" if self.series else ""),
            "has_masks": False,
            "mask": "none: masks are all zero (no lesion in this dataset)",
            **brain_layout_meta(),
            "class_definition": "per subject: cohort Control -> 0, Parkinson's disease -> 1",
            "ppmi": {"csv": str(sheet), "subject_column": sid_col, "group_column": group_col},
        }
        return Inventory(subjects=subjects, class_names=list(CLASS_NAMES), meta=meta,
                         excluded=excluded)

    def _find_csv(self, src: Path) -> Path:
        if self.csv is not None:
            return Path(self.csv)
        found = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
        if len(found) != 1:
            listed = f" (found {', '.join(p.name for p in found)})" if found else ""
            raise DataError(src, "cannot tell which CSV maps subjects to cohorts" + listed
                            + "; pass --csv FILE")
        return found[0]

    def read_subject(self, subject: Subject, params):
        if "dicom" in subject.files:
            from mrigan_tf.data.readers.dicom import load_dicom_series

            return slice_classified_volume(load_dicom_series(subject.files["dicom"]),
                                           subject.label, params)
        return slice_classified_volume(subject.files["t1"], subject.label, params)
