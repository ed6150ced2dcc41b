"""The OASIS-1 reader: Analyze pairs, classes from CDR, tissue masks, repeat scans, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import ras_affine, synthetic_brain
from mrigan_tf.data.contract import load_dataset
from mrigan_tf.errors import DataError
from mrigan_tf.data.prepare import prepare_dataset

SIZE = 16
CDR = {"OAS1_0001_MR1": "0", "OAS1_0002_MR1": "0", "OAS1_0003_MR1": "0.5",
       "OAS1_0004_MR1": "1", "OAS1_0005_MR1": "", "OAS1_0006_MR1": "0", "OAS1_0007_MR1": "2",
       "OAS1_0001_MR2": "0",
       "OAS1_0100_MR1": "0.5"}   # a session of another disc: in the sheet, not downloaded


def tissue_map(brain: np.ndarray) -> np.ndarray:
    """FSL FAST-like classes on the synthetic ellipsoid: CSF rim, grey ring, white core."""
    x, y, z = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in brain.shape], indexing="ij")
    r = (x / 10.0) ** 2 + (y / 12.0) ** 2 + (z / 8.5) ** 2
    seg = np.zeros(brain.shape, np.uint8)
    seg[(brain > 0) & (r > 0.75)] = 1
    seg[(brain > 0) & (r > 0.35) & (r <= 0.75)] = 2
    seg[(brain > 0) & (r <= 0.35)] = 3
    return seg


def write_analyze(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.AnalyzeImage(data, ras_affine(data.shape)), str(path))
    return path


def write_session(disc: Path, session: str, seed: int) -> Path:
    folder = disc / session
    t88 = folder / "PROCESSED" / "MPRAGE" / "T88_111"
    seg_dir = folder / "FSL_SEG"
    t88.mkdir(parents=True)
    seg_dir.mkdir()
    brain = synthetic_brain(seed=seed)
    stem = f"{session}_mpr_n4_anon_111_t88"
    write_analyze(t88 / f"{stem}_masked_gfc.hdr", brain.astype(np.int16))
    write_analyze(t88 / f"{stem}_gfc.hdr", (brain + 20.0).astype(np.int16))
    write_analyze(seg_dir / f"{stem}_masked_gfc_fseg.hdr", tissue_map(brain))
    return folder


@pytest.fixture(scope="module")
def oasis(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("oasis") / "oasis1"
    for i, session in enumerate(s for s in CDR if s != "OAS1_0100_MR1"):
        write_session(root / ("disc1" if i < 4 else "disc2"), session, seed=i)
    lines = ["ID,M/F,Hand,Age,Educ,SES,MMSE,CDR,eTIV,nWBV,ASF,Delay"]
    lines += [f"{s},F,R,70,,,,{cdr},1500,0.7,1.2,N/A" for s, cdr in CDR.items()]
    (root / "oasis_cross-sectional.csv").write_text("\n".join(lines) + "\n")
    return root


def test_classes_from_cdr_and_exclusions(oasis, tmp_path):
    report = prepare_dataset("oasis", oasis, tmp_path / "out", size=SIZE, workers=1,
                             progress=False)
    ds = load_dataset(tmp_path / "out")
    n = len(ds)
    assert ds.images.shape == (n, SIZE, SIZE, 1)
    assert ds.class_names == ["healthy", "dementia"]
    classes = {f["subject"]: f["class"] for f in ds.meta["subjects"]}
    assert classes == {"OAS1_0001_MR1": 0, "OAS1_0002_MR1": 0, "OAS1_0003_MR1": 1,
                       "OAS1_0004_MR1": 1, "OAS1_0006_MR1": 0, "OAS1_0007_MR1": 1}
    for sid, label in classes.items():   # the class is the person's, on every slice
        assert set(ds.labels[ds.subjects == sid].tolist()) == {label}
    excluded = {e["subject"]: e["reason"] for e in report.excluded}
    assert "no CDR" in excluded["OAS1_0005_MR1"] and "repeat scan" in excluded["OAS1_0001_MR2"]
    assert ds.meta["excluded_subjects"] == report.excluded
    # No lesion: masks are empty and meta says so; the layout is background / brain.
    assert ds.masks.max() == 0 and ds.meta["has_masks"] is False
    assert ds.layout_classes == ["background", "brain"] and ds.layout_mask_classes == []
    assert set(np.unique(ds.layout).tolist()) == {0, 1}
    assert np.all(ds.images[ds.layout == 1] > -1.0)
    # Class balance: 3 healthy and 3 dementia subjects, equal slices per subject.
    per_class = [int((ds.labels == k).sum()) for k in (0, 1)]
    assert per_class[0] == per_class[1] > 0
    assert ds.meta["oasis"]["sheet_rows_without_images"] == 1
    per_split = ds.subjects_per_split()
    assert sum(len(v) for v in per_split.values()) == 6
    # Stratified split: both classes in train, val and test (3 subjects per class).
    for split in ("train", "val", "test"):
        assert set(ds.select(split=split).labels.tolist()) == {0, 1}


def test_missing_cdr_as_healthy_and_tissue_masks(oasis, tmp_path):
    prepare_dataset("oasis", oasis, tmp_path / "out", size=SIZE, workers=1, progress=False,
                    missing_cdr="healthy", tissue="wm", limit=4)
    ds = load_dataset(tmp_path / "out")
    assert ds.meta["has_masks"] is True and "wm" in ds.meta["mask"]
    assert len(set(ds.subjects)) == 4
    # --limit takes the classes in turn: two of each.
    assert sorted(f["class"] for f in ds.meta["subjects"]) == [0, 0, 1, 1]
    # White matter is the core of the ellipsoid: inside the brain, never on its edge.
    assert ds.masks.sum() > 0
    assert np.all(ds.images[ds.masks == 1] > -1.0)
    assert set(ds.labels.tolist()) == {0, 1}   # the class, not "mask shown"
    assert ds.layout_classes == ["background", "brain", "wm"] and ds.layout_mask_classes == [2]
    np.testing.assert_array_equal(ds.layout == 2, ds.masks == 1)


def test_missing_cdr_healthy_includes_the_unrated_session(oasis, tmp_path):
    report = prepare_dataset("oasis", oasis, tmp_path / "out", size=SIZE, workers=1,
                             progress=False, missing_cdr="healthy")
    assert report.num_subjects == 7
    ds = load_dataset(tmp_path / "out")
    assert set(ds.labels[ds.subjects == "OAS1_0005_MR1"].tolist()) == {0}


def test_missing_img_half_and_session_missing_from_sheet(oasis, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(oasis, src)
    img = next((src / "disc1" / "OAS1_0002_MR1").rglob("*_t88_masked_gfc.img"))
    img.unlink()
    write_session(src / "disc2", "OAS1_0042_MR1", seed=9)
    with pytest.raises(DataError, match="missing the .img half") as err:
        prepare_dataset("oasis", src, tmp_path / "out", size=SIZE, workers=1, progress=False)
    assert str(img) in str(err.value)
    assert not (tmp_path / "out").exists()

    report = prepare_dataset("oasis", src, tmp_path / "out", size=SIZE, workers=1,
                             progress=False, skip_bad=True)
    bad = {b.subject: b for b in report.skipped}
    assert set(bad) == {"OAS1_0002_MR1", "OAS1_0042_MR1"}
    assert "no row in the demographics sheet" in bad["OAS1_0042_MR1"].problem
    assert bad["OAS1_0042_MR1"].file.endswith("oasis_cross-sectional.csv")
    assert report.num_subjects == 5


def test_truncated_analyze_and_tissue_label_errors(oasis, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(oasis, src)
    img = next((src / "disc1" / "OAS1_0003_MR1").rglob("*_t88_masked_gfc.img"))
    img.write_bytes(img.read_bytes()[:100])
    with pytest.raises(DataError, match="truncated") as err:
        prepare_dataset("oasis", src, tmp_path / "out", size=SIZE, workers=1, progress=False)
    assert "OAS1_0003_MR1" in str(err.value)
    seg = next((src / "disc1" / "OAS1_0004_MR1").rglob("*_fseg.hdr"))
    write_analyze(seg, tissue_map(synthetic_brain()) * 2)   # labels 2, 4, 6
    report = prepare_dataset("oasis", src, tmp_path / "out", size=SIZE, workers=1,
                             progress=False, tissue="gm", skip_bad=True)
    bad = {b.subject: b.problem for b in report.skipped}
    assert "truncated" in bad["OAS1_0003_MR1"]
    assert "unknown label values [4, 6]" in bad["OAS1_0004_MR1"]


def test_no_sheet_and_no_sessions(oasis, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(oasis, src)
    (src / "oasis_cross-sectional.csv").unlink()
    with pytest.raises(DataError, match="demographics sheet not found"):
        prepare_dataset("oasis", src, tmp_path / "out", progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no OASIS-1 sessions"):
        prepare_dataset("oasis", tmp_path / "other", tmp_path / "out", progress=False)
