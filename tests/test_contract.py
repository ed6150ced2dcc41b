"""mrigan_tf.data.contract and mrigan_tf.atomic: the prepared-dataset contract on disk."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_SIZE, build_tiny_dataset
from mrigan_tf.atomic import atomic_directory, atomic_file
from mrigan_tf.data.contract import (ARRAYS_FILE, META_FILE, PreparedDataset, load_dataset,
                                     save_dataset, validate_dataset, write_npz_deterministic)
from mrigan_tf.data.layout import layout_meta, mask_from_layout
from mrigan_tf.errors import DataError

ARRAYS = ("images", "masks", "labels", "subjects", "split")


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".partial" in p.name)


# --- round trip and determinism ---------------------------------------------------------------

def test_save_load_round_trip(tmp_path, tiny_dataset):
    out = save_dataset(tiny_dataset, tmp_path / "ds")
    assert sorted(p.name for p in out.iterdir()) == [ARRAYS_FILE, META_FILE]
    loaded = load_dataset(out)
    for name in ARRAYS:
        a, b = getattr(loaded, name), getattr(tiny_dataset, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, b)
    for key, value in tiny_dataset.meta.items():
        assert loaded.meta[key] == value
    assert loaded.meta["num_slices"] == 18
    assert loaded.meta["counts"] == {"train": {"healthy": 8, "tumor": 4},
                                     "val": {"healthy": 1, "tumor": 2},
                                     "test": {"healthy": 3, "tumor": 0}}
    assert _leftovers(tmp_path) == []


def test_npz_is_plain_numpy(tmp_path, tiny_dataset):
    out = save_dataset(tiny_dataset, tmp_path / "ds")
    with np.load(out / ARRAYS_FILE, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(ARRAYS)
        np.testing.assert_array_equal(npz["images"], tiny_dataset.images)


def test_saving_twice_is_byte_identical(tmp_path):
    a = save_dataset(build_tiny_dataset(seed=5), tmp_path / "a")
    b = save_dataset(build_tiny_dataset(seed=5), tmp_path / "b")
    assert (a / ARRAYS_FILE).read_bytes() == (b / ARRAYS_FILE).read_bytes()
    assert (a / META_FILE).read_bytes() == (b / META_FILE).read_bytes()
    c = save_dataset(build_tiny_dataset(seed=6), tmp_path / "c")
    assert (a / ARRAYS_FILE).read_bytes() != (c / ARRAYS_FILE).read_bytes()


def test_write_npz_deterministic_ignores_memory_layout(tmp_path):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    write_npz_deterministic(tmp_path / "c.npz", {"x": arr})
    write_npz_deterministic(tmp_path / "f.npz", {"x": np.asfortranarray(arr)})
    assert (tmp_path / "c.npz").read_bytes() == (tmp_path / "f.npz").read_bytes()


def test_dataset_helpers(tiny_dataset):
    ds = tiny_dataset
    assert len(ds) == 18 and ds.num_classes == 2 and ds.image_size == TINY_SIZE
    joint = ds.joint()
    assert joint.shape == (18, TINY_SIZE, TINY_SIZE, 2) and joint.dtype == np.float32
    np.testing.assert_array_equal(joint[..., 0], ds.images[..., 0])
    np.testing.assert_array_equal(joint[..., 1], 2.0 * ds.masks[..., 0] - 1.0)
    assert set(np.unique(joint[..., 1]).tolist()) == {-1.0, 1.0}
    train_tumor = ds.select("train", label=1)
    assert len(train_tumor) == 4 and set(train_tumor.split.tolist()) == {"train"}
    assert np.all(train_tumor.labels == 1)
    assert ds.subjects_per_split() == {"train": ["s0", "s1", "s2", "s3"], "val": ["s4"],
                                       "test": ["s5"]}
    with pytest.raises(ValueError, match="split"):
        ds.select("validation")


# --- validation ----------------------------------------------------------------------------

def _replace(ds: PreparedDataset, **changes) -> PreparedDataset:
    return dataclasses.replace(ds, **changes)


def _bad(ds, words, path="somewhere/ds"):
    with pytest.raises(DataError) as info:
        validate_dataset(ds, path)
    msg = str(info.value)
    assert msg.startswith(path + ": ")
    for w in words:
        assert w in msg, (w, msg)


def test_valid_dataset_passes(tiny_dataset):
    validate_dataset(tiny_dataset, "x")


@pytest.mark.parametrize("field,make,words", [
    ("images", lambda d: d.images.astype(np.float64), ["images must be float32", "float64"]),
    ("images", lambda d: d.images[..., 0], ["images must be float32 of shape (18, 16, 16, 1)"]),
    ("images", lambda d: d.images[:, :8, :8], ["(18, 8, 8, 1)"]),
    ("images", lambda d: d.images[:-1], ["(17, 16, 16, 1)"]),
    ("masks", lambda d: d.masks.astype(np.int64), ["masks must be uint8", "int64"]),
    ("masks", lambda d: d.masks.astype(bool), ["masks must be uint8", "bool"]),
    ("masks", lambda d: d.masks[:, :, :, 0], ["masks must be uint8"]),
    ("labels", lambda d: d.labels.astype(np.int64), ["labels must be int32", "int64"]),
    ("labels", lambda d: d.labels[:, None], ["labels must be 1-D"]),
    ("subjects", lambda d: d.subjects.astype(object), ["subjects must be a string array"]),
    ("subjects", lambda d: d.subjects[:-1], ["subjects must be a string array of shape (18,)"]),
    ("split", lambda d: np.zeros(18, np.int32), ["split must be a string array"]),
])
def test_validate_rejects_wrong_dtypes_and_shapes(tiny_dataset, field, make, words):
    _bad(_replace(tiny_dataset, **{field: make(tiny_dataset)}), words)


@pytest.mark.parametrize("value,words", [(1.5, ["must lie in [-1, 1]", "1.5"]),
                                         (-1.01, ["must lie in [-1, 1]", "-1.01"]),
                                         (np.nan, ["NaN/inf"]), (np.inf, ["NaN/inf"])])
def test_validate_rejects_out_of_range_images(tiny_dataset, value, words):
    images = tiny_dataset.images.copy()
    images[3, 2, 2, 0] = value
    _bad(_replace(tiny_dataset, images=images), words)


def test_validate_rejects_unscaled_images(tiny_dataset):
    _bad(_replace(tiny_dataset, images=(tiny_dataset.images + 1.0) * 127.5), ["[-1, 1]"])


@pytest.mark.parametrize("value", [2, 255])
def test_validate_rejects_non_binary_masks(tiny_dataset, value):
    masks = tiny_dataset.masks.copy()
    masks[1, 4, 4, 0] = value
    _bad(_replace(tiny_dataset, masks=masks), ["masks must be 0/1", str(value)])


@pytest.mark.parametrize("value", [2, -1])
def test_validate_rejects_unknown_labels(tiny_dataset, value):
    labels = tiny_dataset.labels.copy()
    labels[0] = value
    _bad(_replace(tiny_dataset, labels=labels), [f"labels [{value}]", "healthy", "tumor"])


@pytest.mark.parametrize("name", ["training", "validation", "", "TEST"])
def test_validate_rejects_bad_split_names(tiny_dataset, name):
    split = tiny_dataset.split.copy().astype("<U16")
    split[-1] = name
    # s5 alone holds the last slice's split; give all of s5 the bad name (no leakage error)
    split[tiny_dataset.subjects == "s5"] = name
    _bad(_replace(tiny_dataset, split=split), ["split values must be in", repr(name)])


def test_validate_rejects_subject_in_two_splits(tiny_dataset):
    split = tiny_dataset.split.copy()
    idx = np.flatnonzero(tiny_dataset.subjects == "s1")
    split[idx[0]] = "test"  # one slice of a training subject leaks into test
    _bad(_replace(tiny_dataset, split=split), ["'s1'", "'train'", "'test'", "never by slice"])


def test_validate_rejects_missing_meta_and_empty(tiny_dataset):
    meta = dict(tiny_dataset.meta)
    del meta["modality"], meta["source"]
    _bad(_replace(tiny_dataset, meta=meta), ["meta is missing", "source", "modality"])
    empty = tiny_dataset.select("train", label=5)
    _bad(empty, ["no slices"])


def test_save_refuses_invalid_dataset_and_writes_nothing(tmp_path, tiny_dataset):
    masks = tiny_dataset.masks * 3
    with pytest.raises(DataError, match="masks must be 0/1"):
        save_dataset(_replace(tiny_dataset, masks=masks), tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_existing_non_empty_dir(tmp_path, tiny_dataset):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="already exists"):
        save_dataset(tiny_dataset, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    save_dataset(tiny_dataset, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [ARRAYS_FILE, META_FILE]
    assert _leftovers(tmp_path) == []


# --- load_dataset errors -------------------------------------------------------------------

def _load_fails(path, *words, names=None):
    with pytest.raises(DataError) as info:
        load_dataset(path)
    msg = str(info.value)
    assert str(names or path) in msg, msg
    assert info.value.path == str(names or path)
    for w in words:
        assert w in msg, (w, msg)
    return msg


def test_load_missing_dir(tmp_path):
    _load_fails(tmp_path / "nope", "dataset directory not found", "mrigan-tf phantom")


def test_load_file_instead_of_dir(tmp_path):
    f = tmp_path / "ds.npz"
    f.write_bytes(b"x")
    _load_fails(f, "expected a dataset directory")


@pytest.mark.parametrize("missing", [ARRAYS_FILE, META_FILE])
def test_load_missing_files(tiny_dataset_dir, missing):
    (tiny_dataset_dir / missing).unlink()
    _load_fails(tiny_dataset_dir, "missing", names=tiny_dataset_dir / missing)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.0])
def test_load_truncated_npz(tiny_dataset_dir, keep):
    npz = tiny_dataset_dir / ARRAYS_FILE
    payload = npz.read_bytes()
    npz.write_bytes(payload[: int(len(payload) * keep)])
    _load_fails(tiny_dataset_dir, "truncated", names=npz)


def test_load_npz_that_is_a_single_npy(tiny_dataset_dir):
    npz = tiny_dataset_dir / ARRAYS_FILE
    with open(npz, "wb") as fh:
        np.save(fh, np.zeros(3))
    _load_fails(tiny_dataset_dir, "npz", names=npz)


def test_load_npz_missing_arrays(tiny_dataset_dir, tiny_dataset):
    npz = tiny_dataset_dir / ARRAYS_FILE
    write_npz_deterministic(npz, {"images": tiny_dataset.images, "labels": tiny_dataset.labels})
    _load_fails(tiny_dataset_dir, "missing arrays", "masks", "subjects", "split", names=npz)


def test_load_npz_violating_contract_names_npz(tiny_dataset_dir, tiny_dataset):
    npz = tiny_dataset_dir / ARRAYS_FILE
    arrays = {k: getattr(tiny_dataset, k) for k in ARRAYS}
    arrays["images"] = arrays["images"] * 2.0
    write_npz_deterministic(npz, arrays)
    _load_fails(tiny_dataset_dir, "[-1, 1]", names=npz)


# --- layouts: the optional label map beside the masks --------------------------------------

def _with_layout(ds: PreparedDataset) -> PreparedDataset:
    """``ds`` with a background / brain / lesion layout whose lesion class is its mask."""
    layout = np.ones_like(ds.masks)
    layout[:, 0] = 0                       # the background row
    layout[ds.masks == 1] = 2
    meta = {**ds.meta, **layout_meta(["background", "brain", "lesion"], [2])}
    return _replace(ds, layout=layout, meta=meta)


def test_layout_round_trip_and_select(tmp_path, tiny_dataset):
    ds = _with_layout(tiny_dataset)
    loaded = load_dataset(save_dataset(ds, tmp_path / "ds"))
    np.testing.assert_array_equal(loaded.layout, ds.layout)
    assert loaded.layout.dtype == np.uint8
    assert loaded.layout_classes == ["background", "brain", "lesion"]
    assert loaded.layout_mask_classes == [2]
    np.testing.assert_array_equal(mask_from_layout(loaded.layout, [2]), loaded.masks)
    tumor = loaded.select("train", label=1)
    np.testing.assert_array_equal(tumor.layout, ds.layout[(ds.split == "train") & (ds.labels == 1)])
    # Without layouts, a dataset stays valid and says it has none.
    plain = load_dataset(save_dataset(tiny_dataset, tmp_path / "plain"))
    assert plain.layout is None and plain.layout_classes == [] and plain.select("val").layout is None


def _layout_changed(ds, layout=None, **meta):
    return _replace(ds, layout=ds.layout if layout is None else layout, meta={**ds.meta, **meta})


@pytest.mark.parametrize("make,words", [
    (lambda d: _layout_changed(d, d.layout.astype(np.int32)), ["layout must be uint8", "int32"]),
    (lambda d: _layout_changed(d, d.layout[:, :8]), ["(18, 16, 16, 1)", "(18, 8, 16, 1)"]),
    (lambda d: _layout_changed(d, np.where(d.layout == 1, 7, d.layout).astype(np.uint8)),
     ["layout values [7]", "3 layout classes"]),
    (lambda d: _layout_changed(d, np.where(d.masks == 1, 1, d.layout).astype(np.uint8)),
     ["masks differ from the mask classes ['lesion']", "derivable"]),
    (lambda d: _layout_changed(d, layout_classes=None), ["layout_classes"]),
    (lambda d: _layout_changed(d, layout_classes=["background"]), ["layout_classes"]),
    (lambda d: _layout_changed(d, layout_mask_classes=[0]), ["layout_mask_classes", "1..2"]),
    (lambda d: _layout_changed(d, layout_mask_classes=[3]), ["layout_mask_classes"]),
    (lambda d: _layout_changed(d, layout_mask_classes="lesion"), ["layout_mask_classes"]),
])
def test_validate_rejects_bad_layouts(tiny_dataset, make, words):
    _bad(make(_with_layout(tiny_dataset)), words)


def test_a_mask_that_differs_from_its_layout_names_the_npz(tiny_dataset_dir, tiny_dataset):
    ds = _with_layout(tiny_dataset)
    save_dataset(ds, tiny_dataset_dir, overwrite=True)
    npz = tiny_dataset_dir / ARRAYS_FILE
    arrays = {k: getattr(ds, k) for k in (*ARRAYS, "layout")}
    arrays["layout"] = arrays["layout"].copy()
    arrays["layout"][4, 5, 5, 0] = 2 - arrays["layout"][4, 5, 5, 0] // 2 * 1   # brain <-> lesion
    write_npz_deterministic(npz, arrays)
    msg = _load_fails(tiny_dataset_dir, "at 1 pixels (first in slice 4)", names=npz)
    assert "derivable from the layout" in msg


@pytest.mark.parametrize("text,words", [
    ('{"class_names": ["healthy", "tumor"], ', ["not valid JSON"]),
    ("", ["not valid JSON"]),
    ("\xff\xfe garbage", ["not valid JSON"]),
    ('["healthy", "tumor"]', ["JSON object"]),
])
def test_load_bad_json(tiny_dataset_dir, text, words):
    meta = tiny_dataset_dir / META_FILE
    meta.write_bytes(text.encode("latin-1"))
    _load_fails(tiny_dataset_dir, *words, names=meta)


def test_load_meta_missing_keys_names_meta_json(tiny_dataset_dir):
    meta_path = tiny_dataset_dir / META_FILE
    meta = json.loads(meta_path.read_text())
    del meta["class_names"]
    meta_path.write_text(json.dumps(meta))
    _load_fails(tiny_dataset_dir, "class_names", names=meta_path)


@pytest.mark.parametrize("size", ["sixteen", None, [16]])
def test_load_meta_bad_image_size_names_meta_json(tiny_dataset_dir, size):
    meta_path = tiny_dataset_dir / META_FILE
    meta = json.loads(meta_path.read_text())
    meta["image_size"] = size
    meta_path.write_text(json.dumps(meta))
    _load_fails(tiny_dataset_dir, "image_size", names=meta_path)


# --- atomic writes ----------------------------------------------------------------------------

def test_atomic_directory_success(tmp_path):
    target = tmp_path / "out" / "ds"
    with atomic_directory(target) as tmp:
        assert tmp != target and tmp.parent == target.parent and tmp.name.startswith(".ds.partial")
        (tmp / "a.txt").write_text("hello")
        assert not target.exists()  # nothing visible until the block succeeds
    assert (target / "a.txt").read_text() == "hello"
    assert _leftovers(target.parent) == []


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_atomic_directory_leaves_nothing_when_body_raises(tmp_path, exc):
    target = tmp_path / "ds"
    with pytest.raises(type(exc)):
        with atomic_directory(target) as tmp:
            (tmp / "half.npz").write_bytes(b"half")
            raise exc
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # no hidden .partial directory either


def test_atomic_directory_failure_keeps_previous_target(tmp_path):
    target = tmp_path / "ds"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(target, overwrite=True) as tmp:
            (tmp / "new.txt").write_text("new")
            raise RuntimeError("boom")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert _leftovers(tmp_path) == []


def test_atomic_directory_refuses_non_empty_dir(tmp_path):
    target = tmp_path / "ds"
    target.mkdir()
    (target / "keep.txt").write_text("precious")
    with pytest.raises(DataError) as info:
        with atomic_directory(target):
            pytest.fail("the body must not run")
    assert str(target) in str(info.value) and "already exists" in str(info.value)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert (target / "keep.txt").read_text() == "precious"
    assert _leftovers(tmp_path) == []


def test_atomic_directory_accepts_empty_dir_and_overwrite(tmp_path):
    target = tmp_path / "ds"
    target.mkdir()
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("1")
    assert [p.name for p in target.iterdir()] == ["a"]
    with atomic_directory(target, overwrite=True) as tmp:
        (tmp / "b").write_text("2")
    assert [p.name for p in target.iterdir()] == ["b"]
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_atomic_directory_target_is_a_file(tmp_path, overwrite):
    target = tmp_path / "ds"
    target.write_text("not a dataset")
    with pytest.raises(DataError) as info:
        with atomic_directory(target, overwrite=overwrite) as tmp:
            (tmp / "a").write_text("1")
    assert str(target) in str(info.value)
    assert target.read_text() == "not a dataset"
    assert _leftovers(tmp_path) == []


def test_atomic_directory_parent_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    target = tmp_path / "afile" / "ds"
    with pytest.raises(DataError) as info:
        with atomic_directory(target) as tmp:
            (tmp / "a").write_text("1")
    assert str(tmp_path / "afile") in str(info.value)


def test_atomic_file(tmp_path):
    target = tmp_path / "report.json"
    with atomic_file(target) as tmp:
        tmp.write_text("{}")
        assert not target.exists()
    assert target.read_text() == "{}"
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            tmp.write_text('{"half":')
            raise RuntimeError("boom")
    assert target.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
