"""The BraTS reader: both naming conventions, modalities, regions, per-slice classes, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import EDEMA, ENHANCING, NECROSIS, synthetic_brain, synthetic_lesion_labels, write_nifti
from mrigan_tf.data.contract import load_dataset
from mrigan_tf.data.preprocessing import SlicingParams
from mrigan_tf.data.readers.brats import BratsReader
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.data.prepare import list_shards, prepare_dataset

SIZE = 16
MODALITY_GAIN = {"t1": 1.0, "t1ce": 1.3, "t2": 0.7, "flair": 0.5}


def write_brats_subject(root: Path, sid: str, convention: str = "2021", seed: int = 0,
                        tumor: bool = True) -> Path:
    """A fake BraTS subject folder: four modalities (distinct contrasts) and a segmentation."""
    folder = root / sid
    folder.mkdir(parents=True)
    sep = "_" if convention == "2021" else "-"
    names = ({"t1": "t1", "t1ce": "t1ce", "t2": "t2", "flair": "flair"} if convention == "2021"
             else {"t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f"})
    brain = synthetic_brain(seed=seed)
    for k, (modality, suffix) in enumerate(names.items()):
        noise = np.random.default_rng(seed * 10 + k).normal(0, 2, brain.shape)
        data = np.where(brain > 0, brain * MODALITY_GAIN[modality] + noise, 0).astype(np.float32)
        write_nifti(folder / f"{sid}{sep}{suffix}.nii.gz", data)
    labels = synthetic_lesion_labels() if tumor else np.zeros(brain.shape, np.int16)
    if convention == "2023":
        labels = np.where(labels == ENHANCING, 3, labels).astype(np.int16)
    write_nifti(folder / f"{sid}{sep}seg.nii.gz", labels.astype(np.uint8))
    return folder


@pytest.fixture(scope="module")
def brats2021(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("brats") / "BraTS2021_Training_Data"
    for i in range(5):
        write_brats_subject(root, f"BraTS2021_{i:05d}", seed=i, tumor=i != 4)
    return root


@pytest.fixture(scope="module")
def brats2023(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("brats23") / "ASNR-MICCAI-BraTS2023-GLI"
    for i in range(3):
        write_brats_subject(root, f"BraTS-GLI-{i:05d}-000", convention="2023", seed=i)
    return root


@pytest.fixture(scope="module")
def prepared2021(brats2021, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "brats"
    report = prepare_dataset("brats", brats2021, out, size=SIZE, workers=1, progress=False)
    return report, load_dataset(out)


def broken_copy(src: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "src"
    shutil.copytree(src, dest)
    return dest


def test_2021_layout_follows_the_contract(prepared2021):
    report, ds = prepared2021
    n = len(ds)
    assert ds.images.shape == (n, SIZE, SIZE, 1) and ds.masks.shape == (n, SIZE, SIZE, 1)
    assert report.num_subjects == 5 and report.num_slices == n and not report.skipped
    assert sorted(set(ds.subjects)) == [f"BraTS2021_{i:05d}" for i in range(5)]
    assert ds.class_names == ["healthy", "tumor"]
    meta = ds.meta
    assert meta["source"] == "brats" and meta["has_masks"] is True
    assert meta["modality"] == "t1ce" and meta["channels"] == ["t1ce"]
    assert meta["brats"]["label_conventions"] == ["2021"]
    assert meta["preprocessing"]["size"] == SIZE


def test_class_per_slice_is_tumor_shown(prepared2021):
    _, ds = prepared2021
    area = ds.masks.reshape(len(ds), -1).sum(axis=1)
    np.testing.assert_array_equal(ds.labels, (area > 0).astype(np.int32))
    # Tumor subjects have both classes of slices (the lesion spans only some slices);
    # the subject without a tumor has healthy slices only.
    for sid in set(ds.subjects):
        labels = ds.labels[ds.subjects == sid]
        if sid == "BraTS2021_00004":
            assert labels.sum() == 0
        else:
            assert 0 < labels.sum() < len(labels)


def test_split_is_by_subject(prepared2021):
    _, ds = prepared2021
    per_split = ds.subjects_per_split()
    seen = [s for v in per_split.values() for s in v]
    assert len(seen) == len(set(seen)) == 5
    assert all(per_split[s] for s in ("train", "val", "test"))
    assert {f["subject"]: f["split"] for f in ds.meta["subjects"]} == {
        s: split for split, ids in per_split.items() for s in ids}


def test_masks_follow_the_lesion(prepared2021, brats2021):
    """The mask is the resized lesion: on its largest slice it sits where the label map says."""
    _, ds = prepared2021
    tumor = ds.select(label=1)
    area = tumor.masks.reshape(len(tumor), -1).sum(axis=1)
    assert area.max() >= 8
    # Inside the mask the (t1ce) image is brain, not background.
    assert np.all(tumor.images[tumor.masks == 1] > -1.0)


def test_layout_holds_the_tumor_parts_and_the_mask_is_the_region(prepared2021, brats2021):
    _, ds = prepared2021
    assert ds.layout_classes == ["background", "brain", "edema", "enhancing", "necrosis"]
    assert ds.layout_mask_classes == [2, 3, 4]          # whole tumor
    np.testing.assert_array_equal(np.isin(ds.layout, [2, 3, 4]), ds.masks == 1)
    assert set(np.unique(ds.layout).tolist()) == {0, 1, 2, 3, 4}
    # Brain where the image shows brain (not background), background where it does not.
    assert np.all(ds.images[ds.layout == 1] > -1.0)
    assert ds.images[ds.layout == 0].mean() < -0.9
    # The tumor core's layout is the same, its mask classes are enhancing and necrosis only.
    reader = BratsReader(region="tumor_core")
    inventory = reader.discover(brats2021)
    assert inventory.meta["layout_mask_classes"] == [3, 4]
    subject = next(s for s in inventory.subjects if s.id == "BraTS2021_00000")
    slices = reader.read_subject(subject, SlicingParams(size=SIZE, min_lesion_pixels=1))
    np.testing.assert_array_equal(np.isin(slices.layouts, [3, 4]), slices.masks == 1)
    assert (slices.layouts == 2).any()


def test_regions_are_nested(brats2021):
    reader = {r: BratsReader(region=r) for r in ("whole_tumor", "tumor_core", "enhancing_tumor")}
    subject = next(s for s in reader["whole_tumor"].discover(brats2021).subjects
                   if s.id == "BraTS2021_00000")
    params = SlicingParams(size=SIZE, min_lesion_pixels=1)
    area = {r: int(reader[r].read_subject(subject, params).masks.sum()) for r in reader}
    assert area["whole_tumor"] > area["tumor_core"] > area["enhancing_tumor"] > 0


def test_several_modalities_become_aligned_channels(brats2021):
    reader = BratsReader(modalities="t1ce,flair")
    assert reader.modalities == ("t1ce", "flair")
    subject = reader.discover(brats2021).subjects[0]
    slices = reader.read_subject(subject, SlicingParams(size=SIZE))
    single = BratsReader(modalities=["t2f"]).read_subject(  # 2023 alias of flair
        BratsReader(modalities="flair").discover(brats2021).subjects[0], SlicingParams(size=SIZE))
    assert slices.images.shape[-1] == 2
    np.testing.assert_array_equal(slices.images[..., 1:], single.images)
    np.testing.assert_array_equal(slices.masks, single.masks)
    # Different contrasts, same background: the channels differ inside the brain only.
    brain = slices.images[..., 0] > -1.0
    assert not np.allclose(slices.images[..., 0][brain], slices.images[..., 1][brain])


def test_several_modalities_through_prepare_train_a_joint_gan(brats2021, tmp_path):
    """t1ce + flair as two channels: the contract holds them, and the cWGAN-GP learns
    (image channels + mask) jointly from them unchanged."""
    from mrigan_tf.training.runner import TrainConfig, train_gan

    out = tmp_path / "out"
    prepare_dataset("brats", brats2021, out, size=SIZE, workers=1, progress=False,
                    modalities="t1ce,flair")
    ds = load_dataset(out)
    assert ds.meta["channels"] == ["t1ce", "flair"]
    assert ds.images.shape[1:] == (SIZE, SIZE, 2) and ds.masks.shape[1:] == (SIZE, SIZE, 1)
    assert ds.joint().shape[1:] == (SIZE, SIZE, 3)
    config = TrainConfig(model="cwgan-gp", data=str(out), steps=2, steps_per_epoch=2,
                         batch_size=4, jit_compile=False,
                         model_options={"width": 4, "latent_dim": 8, "n_critic": 1})
    model, _ = train_gan(config, tmp_path / "run", verbose=0)
    samples = model.sample(4, seed=0)
    samples = samples[0] if isinstance(samples, tuple) else samples
    assert samples.shape[1:] == (SIZE, SIZE, 3)


def test_2023_naming_and_labels(brats2023, tmp_path):
    out = tmp_path / "out"
    report = prepare_dataset("brats", brats2023, out, size=SIZE, workers=1, progress=False,
                             modalities="t1c", limit=2)
    ds = load_dataset(out)
    assert report.num_subjects == 2 and len(set(ds.subjects)) == 2
    assert ds.meta["brats"]["label_conventions"] == ["2023"]
    assert ds.meta["channels"] == ["t1ce"] and ds.labels.sum() > 0
    # Enhancing tumor is label 3 in 2023: the region is found, not silently empty.
    reader = BratsReader(modalities="t1c", region="enhancing_tumor")
    subject = reader.discover(brats2023).subjects[0]
    rim = reader.read_subject(subject, SlicingParams(size=SIZE, min_lesion_pixels=1))
    assert rim.masks.sum() > 0


def test_2021_labels_in_a_2023_file_are_refused(brats2023, tmp_path):
    src = broken_copy(brats2023, tmp_path)
    seg = src / "BraTS-GLI-00001-000" / "BraTS-GLI-00001-000-seg.nii.gz"
    write_nifti(seg, synthetic_lesion_labels().astype(np.uint8))   # enhancing = 4
    with pytest.raises(DataError, match=r"unknown label values \[4\]") as err:
        prepare_dataset("brats", src, tmp_path / "out", size=SIZE, workers=1, progress=False)
    assert str(seg) in str(err.value)
    assert not (tmp_path / "out").exists()


# ## Bad input: a clear error naming the file, or skipped and listed with skip_bad

def _no_partial_output(tmp_path: Path) -> None:
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_truncated_file(brats2021, tmp_path):
    src = broken_copy(brats2021, tmp_path)
    bad = src / "BraTS2021_00002" / "BraTS2021_00002_t1ce.nii.gz"
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(DataError, match="truncated") as err:
        prepare_dataset("brats", src, tmp_path / "out", size=SIZE, workers=1, progress=False)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    _no_partial_output(tmp_path)

    report = prepare_dataset("brats", src, tmp_path / "out", size=SIZE, workers=1,
                             progress=False, skip_bad=True)
    assert [b.subject for b in report.skipped] == ["BraTS2021_00002"]
    assert report.skipped[0].file == str(bad) and "truncated" in report.skipped[0].problem
    assert "BraTS2021_00002" in report.summary()
    ds = load_dataset(tmp_path / "out")
    assert "BraTS2021_00002" not in set(ds.subjects) and len(set(ds.subjects)) == 4
    assert ds.meta["skipped_subjects"][0]["subject"] == "BraTS2021_00002"


def test_missing_modality(brats2021, tmp_path):
    src = broken_copy(brats2021, tmp_path)
    (src / "BraTS2021_00001" / "BraTS2021_00001_t1ce.nii.gz").unlink()
    with pytest.raises(DataError, match="missing modality t1ce") as err:
        prepare_dataset("brats", src, tmp_path / "out", size=SIZE, workers=1, progress=False)
    assert "BraTS2021_00001_t1ce.nii.gz" in str(err.value)
    _no_partial_output(tmp_path)
    # Another modality of the same subject is still fine.
    report = prepare_dataset("brats", src, tmp_path / "out", size=SIZE, workers=1,
                             progress=False, modalities="flair")
    assert report.num_subjects == 5


def test_seg_image_shape_mismatch(brats2021, tmp_path):
    src = broken_copy(brats2021, tmp_path)
    seg = src / "BraTS2021_00003" / "BraTS2021_00003_seg.nii.gz"
    write_nifti(seg, np.zeros((24, 28, 18), np.uint8))
    with pytest.raises(DataError, match="shape mismatch") as err:
        prepare_dataset("brats", src, tmp_path / "out", size=SIZE, workers=1, progress=False)
    assert str(seg) in str(err.value)
    _no_partial_output(tmp_path)


def test_modality_shape_mismatch(brats2021, tmp_path):
    src = broken_copy(brats2021, tmp_path)
    flair = src / "BraTS2021_00003" / "BraTS2021_00003_flair.nii.gz"
    write_nifti(flair, synthetic_brain(shape=(24, 28, 22)))
    reader = BratsReader(modalities="t1ce,flair")
    subject = next(s for s in reader.discover(src).subjects if s.id == "BraTS2021_00003")
    with pytest.raises(DataError, match="shape mismatch between modalities") as err:
        reader.read_subject(subject, SlicingParams(size=SIZE))
    assert str(flair) in str(err.value)


def test_unknown_label_value(brats2021, tmp_path):
    src = broken_copy(brats2021, tmp_path)
    seg = src / "BraTS2021_00000" / "BraTS2021_00000_seg.nii.gz"
    labels = synthetic_lesion_labels()
    labels[labels == EDEMA] = 7
    write_nifti(seg, labels.astype(np.uint8))
    with pytest.raises(DataError, match=r"unknown label values \[7\]") as err:
        prepare_dataset("brats", src, tmp_path / "out", size=SIZE, workers=1, progress=False)
    assert str(seg) in str(err.value)
    report = prepare_dataset("brats", src, tmp_path / "out", size=SIZE, workers=1,
                             progress=False, skip_bad=True)
    assert [b.subject for b in report.skipped] == ["BraTS2021_00000"]
    assert {NECROSIS, EDEMA, ENHANCING} == {1, 2, 4}


def test_empty_and_missing_directories(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty directory"):
        prepare_dataset("brats", tmp_path / "empty", tmp_path / "out", progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("no volumes here")
    with pytest.raises(DataError, match="no BraTS files found"):
        prepare_dataset("brats", tmp_path / "other", tmp_path / "out", progress=False)
    with pytest.raises(DataError, match="not found"):
        prepare_dataset("brats", tmp_path / "nowhere", tmp_path / "out", progress=False)
    _no_partial_output(tmp_path)


def test_bad_options():
    with pytest.raises(MriganError, match="unknown BraTS modality 't3'"):
        BratsReader(modalities="t3")
    with pytest.raises(MriganError, match="unknown BraTS region"):
        BratsReader(region="edema")


def test_parallel_workers_give_identical_bytes_and_shards(brats2021, prepared2021, tmp_path):
    serial_report, serial = prepared2021
    out = tmp_path / "parallel"
    prepare_dataset("brats", brats2021, out, size=SIZE, workers=2, progress=False)
    assert (out / "dataset.npz").read_bytes() == (serial_report.out / "dataset.npz").read_bytes()
    parallel = load_dataset(out)
    np.testing.assert_array_equal(parallel.images, serial.images)
    np.testing.assert_array_equal(parallel.subjects, serial.subjects)

    sharded = tmp_path / "sharded"
    report = prepare_dataset("brats", brats2021, sharded, size=SIZE, workers=2, progress=False,
                             shard_slices=15)
    shards = list_shards(sharded)
    assert [p.name for p in shards] == report.shards and len(shards) >= 2
    parts = [load_dataset(p) for p in shards]
    assert sum(len(p) for p in parts) == len(serial)
    np.testing.assert_array_equal(np.concatenate([p.images for p in parts]), serial.images)
    np.testing.assert_array_equal(np.concatenate([p.split for p in parts]), serial.split)
    # Whole subjects per shard.
    owners = [set(p.subjects) for p in parts]
    assert sum(len(o) for o in owners) == len(set().union(*owners)) == 5
