"""Title: OASIS-1 reader
Description: cross-sectional T1 MRI of adults aged 18-96 -> slices classed healthy / dementia.

OASIS-1 (oasis-brains.org) ships 12 discs of sessions, each a folder such as
``OAS1_0001_MR1/`` holding Analyze 7.5 images (an ``.hdr`` header + ``.img`` voxels):

* ``PROCESSED/MPRAGE/T88_111/OAS1_0001_MR1_mpr_n4_anon_111_t88_masked_gfc.hdr``: the
  averaged MPRAGE scans, registered to the Talairach atlas (T88), bias-field corrected
  (``gfc``) and brain-masked (``masked``); ``..._t88_gfc.hdr`` is the same without the mask;
* ``FSL_SEG/..._fseg.hdr``: FSL FAST tissue classes (1 CSF, 2 grey matter, 3 white matter).

The demographics sheet (``oasis_cross-sectional.csv``, column ``ID`` = session) gives the
Clinical Dementia Rating: CDR 0 = healthy, CDR > 0 (0.5 very mild ... 2 moderate) = dementia.
Sessions under 60 have no CDR (they were not assessed): by default they are excluded and
listed in ``meta.json``, since no rating is not a rating of 0. ``MR2`` sessions re-scan a
subject of the same study days later: the MR1 session is kept, so no person appears twice.

There is no lesion here, so the mask is empty (``has_masks: false``) unless a tissue class
is asked for (``tissue="gm"``, say), then the mask is that tissue. The sheet covers all 12
discs; its rows without a downloaded session are simply not used. Analyze headers carry no
orientation: nibabel's Analyze convention is used, and T88 images are axial along the
third axis.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from mrigan_tf.data.layout import brain_layout_meta
from mrigan_tf.data.readers.common import (
    Inventory, Subject, pick_column, read_table, require_directory, slice_classified_volume,
    walk_files,
)
from mrigan_tf.errors import DataError, MriganError

CLASS_NAMES = ["healthy", "dementia"]
TISSUES = {"csf": 1, "gm": 2, "wm": 3}
_SESSION = re.compile(r"^(OAS1_\d{4})_MR(\d+)$")


@dataclasses.dataclass
class OasisReader:
    """Options: ``demographics`` sheet, ``tissue`` mask, ``image`` variant, ``missing_cdr``."""

    demographics: str | None = None
    tissue: str | None = None            # None, "csf", "gm" or "wm"
    image: str = "masked"                # "masked" (skull-stripped) or "unmasked"
    missing_cdr: str = "exclude"         # "exclude" or "healthy"
    source: str = "oasis"

    def __post_init__(self) -> None:
        if self.tissue is not None and self.tissue not in TISSUES:
            raise MriganError(f"--tissue must be one of {', '.join(TISSUES)}, got {self.tissue!r}")
        if self.image not in ("masked", "unmasked"):
            raise MriganError(f"--image must be masked or unmasked, got {self.image!r}")
        if self.missing_cdr not in ("exclude", "healthy"):
            raise MriganError(f"--missing-cdr must be exclude or healthy, got {self.missing_cdr!r}")

    def discover(self, src: Path) -> Inventory:
        src = require_directory(src, "OASIS-1 sessions (OAS1_XXXX_MR1 folders)")
        sessions = sorted((p for p in src.rglob("OAS1_*_MR*") if p.is_dir()
                           and _SESSION.match(p.name)), key=lambda p: p.name)
        if not sessions:
            raise DataError(src, "no OASIS-1 sessions found; expected folders like "
                            "disc1/OAS1_0001_MR1/PROCESSED/MPRAGE/T88_111/")
        sheet = self._find_sheet(src)
        rows = read_table(sheet)
        id_column = pick_column(sheet, rows, None, ("ID", "Subject ID", "MRI ID"), "session ID")
        cdr_column = pick_column(sheet, rows, None, ("CDR",), "Clinical Dementia Rating")
        cdr = {row[id_column]: row[cdr_column] for row in rows}

        subjects, excluded, kept_people = [], [], {}
        for folder in sessions:
            person, visit = _SESSION.match(folder.name).groups()
            if person in kept_people:
                excluded.append({"subject": folder.name, "reason": f"repeat scan of {person}; "
                                 f"{kept_people[person]} is kept, so no person is in two splits"})
                continue
            kept_people[person] = folder.name
            subject = self._subject(folder, sheet, cdr)
            if subject is None:
                excluded.append({"subject": folder.name,
                                 "reason": "no CDR in the sheet (not assessed); "
                                           "use missing_cdr='healthy' to count it as healthy"})
                continue
            subjects.append(subject)
        meta = {
            "modality": "T1-weighted MPRAGE (OASIS-1 T88, "
                        + ("brain-masked" if self.image == "masked" else "unmasked") + ")",
            "has_masks": self.tissue is not None,
            "mask": (f"FSL FAST tissue class {self.tissue}" if self.tissue
                     else "none: masks are all zero (no lesion in this dataset)"),
            **brain_layout_meta(self.tissue),
            "class_definition": "per subject: CDR 0 -> healthy, CDR > 0 -> dementia",
            "oasis": {"demographics": str(sheet),
                      "sheet_rows_without_images": len(set(cdr) - {s.name for s in sessions})},
        }
        return Inventory(subjects=subjects, class_names=list(CLASS_NAMES), meta=meta,
                         excluded=excluded)

    def _find_sheet(self, src: Path) -> Path:
        if self.demographics is not None:
            return Path(self.demographics)
        found = sorted(p for p in walk_files(src)
                       if p.name.lower().startswith("oasis_cross-sectional")
                       and p.suffix.lower() in (".csv", ".tsv"))
        if not found:
            raise DataError(src, "demographics sheet not found; download "
                            "oasis_cross-sectional.csv from oasis-brains.org and pass "
                            "--demographics FILE (or put it in --src)")
        return found[0]

    def _subject(self, folder: Path, sheet: Path, cdr: dict[str, str]) -> Subject | None:
        session = folder.name
        subject = Subject(id=session, files={})
        if session not in cdr:
            subject.problem = (str(sheet), f"session {session} has images but no row "
                               "in the demographics sheet")
            return subject
        text = cdr[session].strip()
        if text in ("", "N/A", "NA", "n/a", "nan"):
            if self.missing_cdr == "exclude":
                return None
            value = 0.0
        else:
            try:
                value = float(text)
            except ValueError:
                subject.problem = (str(sheet), f"session {session}: CDR {text!r} is not a number")
                return subject
        subject.label = int(value > 0)
        subject.facts = {"cdr": value if text else None}

        t88 = folder / "PROCESSED" / "MPRAGE" / "T88_111"
        pattern = "*_t88_masked_gfc.hdr" if self.image == "masked" else "*_t88_gfc.hdr"
        images = sorted(t88.glob(pattern)) if t88.is_dir() else []
        if not images:
            subject.problem = (str(t88 / pattern), "missing image: no T88 Analyze header "
                               f"matching {pattern} in this session")
            return subject
        subject.files["t1"] = str(images[0])
        if self.tissue is not None:
            segs = sorted(folder.rglob("*_fseg.hdr"))
            if not segs:
                subject.problem = (str(folder / "FSL_SEG" / "*_fseg.hdr"),
                                   "missing FSL_SEG tissue map (needed for --tissue)")
                return subject
            subject.files["tissue"] = str(segs[0])
        for header in subject.files.values():
            voxels = Path(header).with_suffix(".img")
            if not voxels.is_file():
                subject.problem = (str(voxels), "missing the .img half of an Analyze .hdr/.img "
                                   "pair (both files make one image)")
                return subject
        return subject

    def read_subject(self, subject: Subject, params):
        if self.tissue is None:
            return slice_classified_volume(subject.files["t1"], subject.label, params)
        return slice_classified_volume(subject.files["t1"], subject.label, params,
                                       label_path=subject.files["tissue"],
                                       positive_labels=[TISSUES[self.tissue]],
                                       known_labels=TISSUES.values())
