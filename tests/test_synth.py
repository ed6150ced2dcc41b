"""Writing a synthetic dataset: the contract, exact class counts, determinism, atomicity."""

from __future__ import annotations

import csv

import nibabel as nib
import numpy as np
import pytest

from mrigan_tf import synth
from mrigan_tf.cli import main
from mrigan_tf.data.contract import load_dataset
from mrigan_tf.errors import MriganError
from mrigan_tf.synth import class_counts, write_synthetic_dataset


def test_class_counts_add_up_exactly():
    assert class_counts(10, 2).tolist() == [5, 5]
    assert class_counts(10, 3).sum() == 10
    assert class_counts(7, 2, proportions=[0.7, 0.3]).tolist() == [5, 2]
    assert class_counts(1000, 2, proportions=[3, 1]).tolist() == [750, 250]
    assert class_counts(4, 3, per_class=True).tolist() == [4, 4, 4]
    for bad in ([1.0], [-1, 2], [0, 0]):
        with pytest.raises(MriganError, match="proportions"):
            class_counts(10, 2, proportions=bad)
    with pytest.raises(MriganError):
        class_counts(0, 2)


def test_generated_dataset_follows_the_contract(tiny_cwgan_run, tmp_path):
    out = tmp_path / "synthetic"
    ds = write_synthetic_dataset(tiny_cwgan_run, out, n=50, seed=1, proportions=[0.8, 0.2],
                                 batch_size=16, progress=False)
    loaded = load_dataset(out)             # validates the contract
    assert len(loaded) == 50 and loaded.images.shape == (50, 16, 16, 1)
    assert set(np.unique(loaded.masks).tolist()) <= {0, 1}
    assert np.bincount(loaded.labels).tolist() == [40, 10]
    assert np.array_equal(loaded.images, ds.images)
    assert set(loaded.split.tolist()) == {"train", "val"} and (loaded.split == "val").sum() == 5
    meta = loaded.meta
    assert meta["source"] == "synthetic" and meta["model"] == "cwgan-gp" and meta["seed"] == 1
    assert meta["checkpoint"].endswith("model.keras")
    assert meta["generation"]["requested_counts"] == {"healthy": 40, "tumor": 10}
    assert set(meta["label_mask_disagreements"]) == {"healthy_with_nonempty_mask",
                                                     "tumor_with_empty_mask"}


def test_same_seed_gives_a_byte_identical_dataset(tiny_cwgan_run, tmp_path):
    kwargs = dict(n=40, batch_size=16, progress=False)
    write_synthetic_dataset(tiny_cwgan_run, tmp_path / "a", seed=3, **kwargs)
    write_synthetic_dataset(tiny_cwgan_run, tmp_path / "b", seed=3, **kwargs)
    write_synthetic_dataset(tiny_cwgan_run, tmp_path / "c", seed=4, **kwargs)
    a = (tmp_path / "a" / "dataset.npz").read_bytes()
    assert a == (tmp_path / "b" / "dataset.npz").read_bytes()
    assert a != (tmp_path / "c" / "dataset.npz").read_bytes()


def test_exports_png_nifti_and_manifest(tiny_cwgan_run, tmp_path):
    out = tmp_path / "exported"
    ds = write_synthetic_dataset(tiny_cwgan_run, out, n=3, per_class=True, seed=0,
                                 formats=("npz", "png", "nifti"), progress=False)
    assert len(ds) == 6
    with open(out / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["class"] for r in rows} == {"healthy", "tumor"}
    for row in rows:
        assert (out / row["image_png"]).is_file() and (out / row["mask_png"]).is_file()
        assert int(row["mask_pixels"]) == int(ds.masks[int(row["index_in_npz"])].sum())
    tumor = nib.load(out / "nifti" / "tumor_masks.nii.gz")
    assert tumor.shape == (16, 16, 3)
    assert np.array_equal(np.asarray(tumor.dataobj), np.moveaxis(ds.masks[ds.labels == 1, ..., 0], 0, -1))


def test_interrupted_generation_leaves_nothing(tiny_cwgan_run, tmp_path, monkeypatch):
    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synth, "_write_exports", killed)
    with pytest.raises(KeyboardInterrupt):
        write_synthetic_dataset(tiny_cwgan_run, tmp_path / "out", n=8, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cli_generate_and_its_errors(tiny_cwgan_run, tmp_path, capsys):
    out = tmp_path / "gen"
    assert main(["generate", "--run", str(tiny_cwgan_run), "--n", "12", "--out", str(out),
                 "--proportions", "1,2", "--quiet"]) == 0
    assert np.bincount(load_dataset(out).labels).tolist() == [4, 8]
    capsys.readouterr()
    assert main(["generate", "--run", str(tmp_path / "nope"), "--n", "4",
                 "--out", str(tmp_path / "x")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["generate", "--run", str(tiny_cwgan_run), "--n", "4", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["generate", "--run", str(tiny_cwgan_run), "--n", "4", "--out",
                 str(tmp_path / "y"), "--format", "npz,jpeg"]) == 2
    assert not (tmp_path / "y").exists()
