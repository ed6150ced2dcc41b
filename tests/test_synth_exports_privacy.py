"""A synthetic dataset and its exports carry no identifier of the real subjects it came from.

A tiny real dataset with realistic subject ids (and, as ``prepare`` writes them, those ids and
their source files in its ``meta.json``) trains a tiny generator for one step; the synthetic
dataset written from it, with PNG and NIfTI exports, is then searched for every real id: in
file names, ``manifest.csv``, ``meta.json``, the NIfTI header's text fields, the arrays of
``dataset.npz`` and, as a sweep, the bytes of every file.
"""

from __future__ import annotations

import csv
import gzip
import json

import nibabel as nib
import numpy as np
import pytest

from conftest import TINY_CWGAN, build_squares_dataset
from mrigan_tf.data.contract import PreparedDataset, save_dataset
from mrigan_tf.synth import write_synthetic_dataset

NIFTI_TEXT_FIELDS = ("descrip", "aux_file", "db_name", "intent_name")


def _real_dataset_with_identifiers() -> PreparedDataset:
    toy = build_squares_dataset(n_subjects=4, slices=4, size=16)
    real_id = {f"toy-{s}": f"BraTS2021_{417 + s:05d}" for s in range(4)}
    subjects = np.array([real_id[s] for s in toy.subjects])
    split = np.where(toy.split == "val", "train", toy.split)   # toy-1 trains too
    meta = dict(toy.meta, subjects=[
        {"subject": sid, "split": str(split[subjects == sid][0]),
         "files": {"t1": f"/archive/{sid}/{sid}_t1.nii.gz",
                   "seg": f"/archive/{sid}/{sid}_seg.nii.gz"}}
        for sid in real_id.values()])
    return PreparedDataset(toy.images, toy.masks, toy.labels, subjects, split, meta)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(real subject ids, the synthetic dataset directory written with every export)."""
    from mrigan_tf.training.runner import TrainConfig, train_gan

    real = _real_dataset_with_identifiers()
    root = tmp_path_factory.mktemp("privacy")
    data = save_dataset(real, root / "data")
    run = root / "run"
    train_gan(TrainConfig(model="cwgan-gp", data=str(data), epochs=1, steps_per_epoch=1,
                          batch_size=8, jit_compile=False, samples=2,
                          model_options=dict(TINY_CWGAN)), run, verbose=0)
    out = root / "synthetic"
    write_synthetic_dataset(run, out, n=3, per_class=True, seed=0,
                            formats=("npz", "png", "nifti"), progress=False)
    return sorted(set(real.subjects.tolist())), out


def _leaks(text: str, ids: list[str]) -> list[str]:
    return [sid for sid in ids if sid.lower() in text.lower()]


def test_file_names_carry_no_subject_id(exported):
    ids, out = exported
    names = [str(p.relative_to(out)) for p in out.rglob("*")]
    assert any(n.endswith(".png") for n in names) and any(n.endswith(".nii.gz") for n in names)
    assert [n for n in names if _leaks(n, ids)] == []


def test_manifest_and_meta_carry_no_subject_id(exported):
    ids, out = exported
    manifest = (out / "manifest.csv").read_text()
    assert len(list(csv.DictReader(manifest.splitlines()))) == 6
    assert _leaks(manifest, ids) == []
    meta = (out / "meta.json").read_text()
    assert json.loads(meta)["source"] == "synthetic"
    assert _leaks(meta, ids) == []


def test_nifti_headers_carry_no_subject_id(exported):
    ids, out = exported
    files = sorted((out / "nifti").glob("*.nii.gz"))
    assert len(files) == 4
    for path in files:
        header = nib.load(path).header
        for field in NIFTI_TEXT_FIELDS:
            value = np.asarray(header[field]).tobytes().decode("latin-1")
            assert _leaks(value, ids) == [], f"{path.name}: {field} = {value!r}"
        for extension in header.extensions:
            assert _leaks(extension.get_content().decode("latin-1"), ids) == [], path.name


def test_dataset_arrays_and_every_byte_carry_no_subject_id(exported):
    ids, out = exported
    with np.load(out / "dataset.npz") as npz:
        for name in npz.files:
            if npz[name].dtype.kind in "US":
                assert _leaks(" ".join(npz[name].astype(str).tolist()), ids) == [], name
    for path in out.rglob("*"):
        if not path.is_file() or path.suffix == ".npz":
            continue
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        assert _leaks(raw.decode("latin-1"), ids) == [], path.relative_to(out)
