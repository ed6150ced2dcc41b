"""The PPMI and BIDS readers: subjects and classes from a sheet, one T1 volume each, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import synthetic_brain, write_nifti
from mrigan_tf.data.contract import load_dataset
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.data.prepare import prepare_dataset

SIZE = 16


def head(seed: int) -> np.ndarray:
    """The synthetic brain inside a dimmer 'skull' shell: PPMI/BIDS T1s are not skull-stripped."""
    brain = synthetic_brain(seed=seed)
    shell = np.zeros_like(brain)
    shell[1:-1, 1:-1, 1:-1] = 30.0
    return np.where(brain > 0, brain, shell).astype(np.float32)


# ## PPMI

PPMI_GROUPS = {"3001": "PD", "3002": "PD", "3003": "Control", "3004": "Control",
               "3005": "PD", "3006": "Control", "3007": "Prodromal"}


@pytest.fixture(scope="module")
def ppmi(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ppmi") / "PPMI"
    for i, sid in enumerate(PPMI_GROUPS):
        for series, date in (("MPRAGE_GRAPPA", "2011-03-08_13_29_31.0"),
                             ("AX_T2", "2010-01-01_09_00_00.0")):
            folder = root / sid / series / date / f"S{1000 + i}"
            folder.mkdir(parents=True)
            data = head(i) if series.startswith("MPRAGE") else head(i) * 0.5
            write_nifti(folder / f"PPMI_{sid}_MR_{series}_S{1000 + i}.nii.gz", data)
    # The IDA collection CSV: one row per image, several per subject.
    rows = ["Image Data ID,Subject,Group,Sex,Age,Visit,Modality,Description"]
    for i, (sid, group) in enumerate(PPMI_GROUPS.items()):
        for series in ("MPRAGE_GRAPPA", "AX_T2"):
            rows.append(f"I{i},{sid},{group},F,65,1,MRI,{series}")
    (root / "idaSearch_collection.csv").write_text("\n".join(rows) + "\n")
    return root


def test_ppmi_classes_series_and_exclusions(ppmi, tmp_path):
    report = prepare_dataset("ppmi", ppmi, tmp_path / "out", size=SIZE, workers=1,
                             progress=False, series="MPRAGE")
    ds = load_dataset(tmp_path / "out")
    assert ds.class_names == ["Control", "PD"]
    classes = {f["subject"]: f["class"] for f in ds.meta["subjects"]}
    assert classes == {"3001": 1, "3002": 1, "3003": 0, "3004": 0, "3005": 1, "3006": 0}
    assert [e["subject"] for e in report.excluded] == ["3007"]
    for f in ds.meta["subjects"]:
        assert "MPRAGE_GRAPPA" in f["files"]["t1"]
        assert set(ds.labels[ds.subjects == f["subject"]].tolist()) == {f["class"]}
    assert ds.masks.max() == 0 and ds.meta["has_masks"] is False
    assert ds.meta["ppmi"]["group_column"] == "Group"
    assert int((ds.labels == 0).sum()) == int((ds.labels == 1).sum()) > 0
    # Without the series filter, the earliest visit (the T2 here) is the one taken.
    report = prepare_dataset("ppmi", ppmi, tmp_path / "any", size=SIZE, workers=1,
                             progress=False, limit=2)
    files = [f["files"]["t1"] for f in load_dataset(tmp_path / "any").meta["subjects"]]
    assert len(files) == 2 and all("AX_T2" in f for f in files)


def test_ppmi_participant_status_columns(ppmi, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ppmi, src)
    (src / "idaSearch_collection.csv").unlink()
    codes = {"PD": 1, "Control": 2, "Prodromal": 4}
    status = tmp_path / "Participant_Status.csv"
    status.write_text("PATNO,COHORT,ENROLL_STATUS\n" + "".join(
        f"{sid},{codes[g]},Enrolled\n" for sid, g in PPMI_GROUPS.items()))
    prepare_dataset("ppmi", src, tmp_path / "out", size=SIZE, workers=1, progress=False,
                    csv=str(status), group_column="COHORT", series="mprage")
    ds = load_dataset(tmp_path / "out")
    assert {f["subject"]: f["class"] for f in ds.meta["subjects"]}["3003"] == 0
    assert len(ds.meta["subjects"]) == 6


def test_ppmi_subject_in_csv_without_images(ppmi, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ppmi, src)
    csv = src / "idaSearch_collection.csv"
    csv.write_text(csv.read_text() + "I99,3099,PD,M,70,1,MRI,MPRAGE\n")
    with pytest.raises(DataError, match="3099 is in the CSV but has no NIfTI image") as err:
        prepare_dataset("ppmi", src, tmp_path / "out", size=SIZE, workers=1, progress=False)
    assert str(err.value).startswith(str(csv))
    assert not (tmp_path / "out").exists()
    report = prepare_dataset("ppmi", src, tmp_path / "out", size=SIZE, workers=1,
                             progress=False, skip_bad=True, series="MPRAGE")
    assert [(b.subject, b.file) for b in report.skipped] == [("3099", str(csv))]
    assert report.num_subjects == 6 and "3099" in report.summary()


def test_ppmi_dicom_without_pydicom_says_what_to_do(ppmi, tmp_path, monkeypatch):
    from mrigan_tf.data.readers import ppmi as ppmi_module

    src = tmp_path / "src"
    shutil.copytree(ppmi, src)
    csv = src / "idaSearch_collection.csv"
    csv.write_text(csv.read_text() + "I98,3098,Control,M,70,1,MRI,MPRAGE\n")
    dicom = src / "3098" / "MPRAGE" / "2012-01-01" / "S9"
    dicom.mkdir(parents=True)
    (dicom / "IM0001.dcm").write_bytes(b"\0" * 128 + b"DICM")
    monkeypatch.setattr(ppmi_module, "dicom_available", lambda: False)
    with pytest.raises(DataError, match="pydicom is not installed") as err:
        prepare_dataset("ppmi", src, tmp_path / "out", size=SIZE, workers=1, progress=False)
    assert str(dicom) in str(err.value) and "dcm2niix" in str(err.value)


def test_ppmi_csv_choice_errors(ppmi, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ppmi, src)
    (src / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="pass --csv"):
        prepare_dataset("ppmi", src, tmp_path / "out", progress=False)
    with pytest.raises(DataError, match="cannot tell which column holds the cohort"):
        prepare_dataset("ppmi", src, tmp_path / "out", progress=False, csv=str(src / "other.csv"),
                        subject_column="a")


# ## BIDS

BIDS_GROUPS = {"sub-01": "control", "sub-02": "patient", "sub-03": "control",
               "sub-04": "patient", "sub-05": "n/a", "sub-06": "control", "sub-07": "patient",
               "sub-08": "patient"}


@pytest.fixture(scope="module")
def bids(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bids") / "ds000001"
    for i, sid in enumerate(BIDS_GROUPS):
        if sid in ("sub-03", "sub-04"):   # two sessions: the first is used
            for ses, gain in (("ses-01", 1.0), ("ses-02", 0.5)):
                anat = root / sid / ses / "anat"
                anat.mkdir(parents=True)
                write_nifti(anat / f"{sid}_{ses}_T1w.nii.gz", head(i) * gain)
        else:
            anat = root / sid / "anat"
            anat.mkdir(parents=True)
            write_nifti(anat / f"{sid}_T1w.nii.gz", head(i))
            write_nifti(anat / f"{sid}_T2w.nii.gz", head(i) * 0.3)
    rows = ["participant_id\tage\tgroup"] + [f"{s}\t30\t{g}" for s, g in BIDS_GROUPS.items()]
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    (root / "dataset_description.json").write_text('{"Name": "toy", "BIDSVersion": "1.8.0"}')
    return root


def test_bids_classes_from_a_column(bids, tmp_path):
    report = prepare_dataset("bids", bids, tmp_path / "out", size=SIZE, workers=2,
                             progress=False, class_column="group")
    ds = load_dataset(tmp_path / "out")
    assert ds.class_names == ["control", "patient"]
    assert [e["subject"] for e in report.excluded] == ["sub-05"]
    classes = {f["subject"]: f["class"] for f in ds.meta["subjects"]}
    assert classes == {"sub-01": 0, "sub-02": 1, "sub-03": 0, "sub-04": 1, "sub-06": 0,
                       "sub-07": 1, "sub-08": 1}
    files = {f["subject"]: f["files"]["t1"] for f in ds.meta["subjects"]}
    assert files["sub-03"].endswith("ses-01/anat/sub-03_ses-01_T1w.nii.gz")
    assert files["sub-01"].endswith("sub-01_T1w.nii.gz")
    assert ds.meta["modality"] == "T1w" and ds.masks.max() == 0
    for split in ("train", "val", "test"):
        assert set(ds.select(split=split).labels.tolist()) == {0, 1}
    per_split = ds.subjects_per_split()
    assert sum(len(v) for v in per_split.values()) == len(set(sum(per_split.values(), []))) == 7


def test_bids_chosen_classes_in_order(bids, tmp_path):
    # sub-03 and sub-04 have no T2w: skipped and listed.
    report = prepare_dataset("bids", bids, tmp_path / "out", size=SIZE, workers=1,
                             progress=False, class_column="group", classes="patient,control",
                             suffix="T2w", skip_bad=True)
    assert sorted(b.subject for b in report.skipped) == ["sub-03", "sub-04"]
    ds = load_dataset(tmp_path / "out")
    assert ds.class_names == ["patient", "control"] and ds.meta["modality"] == "T2w"
    classes = {f["subject"]: f["class"] for f in ds.meta["subjects"]}
    assert classes == {"sub-01": 1, "sub-02": 0, "sub-06": 1, "sub-07": 0, "sub-08": 0}


def test_bids_bad_input(bids, tmp_path):
    with pytest.raises(DataError, match="has no \\*_T2w"):
        prepare_dataset("bids", bids, tmp_path / "out", progress=False, class_column="group",
                        suffix="T2w")
    with pytest.raises(DataError, match="no column 'diagnosis'.*participant_id, age, group"):
        prepare_dataset("bids", bids, tmp_path / "out", progress=False, class_column="diagnosis")
    with pytest.raises(DataError, match="no subject has group = 'healthy'"):
        prepare_dataset("bids", bids, tmp_path / "out", progress=False, class_column="group",
                        classes="healthy,patient")
    with pytest.raises(MriganError, match="needs --class-column"):
        prepare_dataset("bids", bids, tmp_path / "out", progress=False)

    src = tmp_path / "src"
    shutil.copytree(bids, src)
    shutil.copytree(src / "sub-01", src / "sub-09")   # an image folder with no row
    rows = (src / "participants.tsv").read_text() + "sub-10\t40\tcontrol\n"   # a row, no images
    (src / "participants.tsv").write_text(rows)
    with pytest.raises(DataError, match="sub-09 has no row in participants.tsv"):
        prepare_dataset("bids", src, tmp_path / "out", progress=False, class_column="group")
    report = prepare_dataset("bids", src, tmp_path / "out", size=SIZE, progress=False,
                             class_column="group", skip_bad=True, workers=1)
    assert sorted(b.subject for b in report.skipped) == ["sub-09", "sub-10"]
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]

    (src / "participants.tsv").unlink()
    with pytest.raises(DataError, match="participants.tsv: missing"):
        prepare_dataset("bids", src, tmp_path / "out2", progress=False, class_column="group")
