"""mrigan_tf.data.pipeline: from a dataset (directory or in memory) to tf.data batches."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from conftest import TINY_SIZE  # noqa: E402
from mrigan_tf.data.layout import layout_meta  # noqa: E402
from mrigan_tf.data.pipeline import make_dataset  # noqa: E402
from mrigan_tf.errors import DataError  # noqa: E402

S = TINY_SIZE


def _collect(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


@pytest.mark.parametrize("output,x_shape,y_shape,y_dtype", [
    ("joint", (4, S, S, 2), (4,), tf.int32),
    ("image", (4, S, S, 1), (4,), tf.int32),
    ("segmentation", (4, S, S, 1), (4, S, S, 1), tf.float32),
])
def test_element_spec_and_batch_shapes(tiny_dataset, output, x_shape, y_shape, y_dtype):
    ds = make_dataset(tiny_dataset, "train", batch_size=4, output=output)
    x_spec, y_spec = ds.element_spec
    assert tuple(x_spec.shape) == x_shape and x_spec.dtype == tf.float32  # static: XLA-friendly
    assert tuple(y_spec.shape) == y_shape and y_spec.dtype == y_dtype
    for x, y in ds:
        assert tuple(x.shape) == x_shape and tuple(y.shape) == y_shape
        assert float(tf.reduce_min(x)) >= -1.0 and float(tf.reduce_max(x)) <= 1.0


def test_joint_matches_image_and_mask(tiny_dataset):
    train = tiny_dataset.select("train")
    x, y = _collect(make_dataset(tiny_dataset, "train", batch_size=4, shuffle=False))
    np.testing.assert_array_equal(x[..., 0], train.images[..., 0])
    np.testing.assert_array_equal(x[..., 1], 2.0 * train.masks[..., 0].astype(np.float32) - 1.0)
    assert set(np.unique(x[..., 1]).tolist()) == {-1.0, 1.0}
    np.testing.assert_array_equal(y, train.labels)
    # a slice is tumor-class iff its mask channel has a +1 pixel
    np.testing.assert_array_equal((x[..., 1] > 0).any(axis=(1, 2)).astype(np.int32), y)


def test_segmentation_mask_is_binary_float(tiny_dataset):
    x, m = _collect(make_dataset(tiny_dataset, "train", batch_size=4, output="segmentation",
                                 shuffle=False))
    assert m.dtype == np.float32 and set(np.unique(m).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(m, tiny_dataset.select("train").masks.astype(np.float32))


def test_layout_output_packs_layout_and_class(tiny_dataset):
    layout = np.ones_like(tiny_dataset.masks)
    layout[tiny_dataset.masks == 1] = 2
    ds = dataclasses.replace(tiny_dataset, layout=layout, meta={
        **tiny_dataset.meta, **layout_meta(["background", "brain", "lesion"], [2])})
    x, c = _collect(make_dataset(ds, "train", batch_size=4, output="layout", shuffle=False))
    train = ds.select("train")
    assert c.dtype == np.int32 and c.shape == (12, S, S, 1)
    np.testing.assert_array_equal(x, train.images)
    np.testing.assert_array_equal(c % 3, train.layout)
    np.testing.assert_array_equal(c // 3, np.broadcast_to(train.labels[:, None, None, None], c.shape))
    with pytest.raises(DataError, match="no layouts"):
        make_dataset(tiny_dataset, "train", batch_size=4, output="layout")


def test_reads_a_dataset_directory(tiny_dataset_dir, tiny_dataset):
    x, y = _collect(make_dataset(tiny_dataset_dir, "val", batch_size=3, shuffle=False))
    val = tiny_dataset.select("val")
    assert x.shape == (3, S, S, 2)
    np.testing.assert_array_equal(x[..., 0], val.images[..., 0])
    np.testing.assert_array_equal(y, val.labels)


@pytest.mark.parametrize("batch,drop,expected", [(5, True, [5, 5]), (5, False, [5, 5, 2]),
                                                 (4, True, [4, 4, 4]), (12, True, [12])])
def test_batch_count_with_and_without_drop_remainder(tiny_dataset, batch, drop, expected):
    ds = make_dataset(tiny_dataset, "train", batch_size=batch, drop_remainder=drop)
    assert [int(x.shape[0]) for x, _ in ds] == expected
    if drop:
        assert int(ds.cardinality()) == len(expected)


def test_split_none_uses_every_slice(tiny_dataset):
    x, _ = _collect(make_dataset(tiny_dataset, None, batch_size=6, shuffle=False))
    assert x.shape[0] == 18


def test_shuffle_is_seeded_and_a_permutation(tiny_dataset):
    def epoch(seed):
        return _collect(make_dataset(tiny_dataset, "train", batch_size=12, output="image",
                                     seed=seed))

    (a, ya), (b, yb) = epoch(7), epoch(7)
    np.testing.assert_array_equal(a, b)  # same seed, same order
    np.testing.assert_array_equal(ya, yb)
    train = tiny_dataset.select("train")
    assert not np.array_equal(a, train.images)  # actually shuffled
    # a permutation of the training slices, each image still with its own label
    index = {im.tobytes(): k for k, im in enumerate(train.images)}
    perm = np.array([index[im.tobytes()] for im in a])
    assert sorted(perm.tolist()) == list(range(12))
    np.testing.assert_array_equal(ya, train.labels[perm])


def test_repeat_gives_endless_batches(tiny_dataset):
    ds = make_dataset(tiny_dataset, "train", batch_size=5, repeat=True)
    assert len(list(ds.take(7))) == 7


def test_split_smaller_than_batch_raises(tiny_dataset):
    with pytest.raises(DataError) as info:
        make_dataset(tiny_dataset, "val", batch_size=4)
    msg = str(info.value)
    assert "'val' holds 3 slices" in msg and "batch size 4" in msg
    # without drop_remainder a small split is fine: one short batch
    assert [int(x.shape[0]) for x, _ in make_dataset(tiny_dataset, "val", batch_size=4,
                                                      drop_remainder=False)] == [3]


def test_split_smaller_than_batch_names_the_directory(tiny_dataset_dir):
    with pytest.raises(DataError) as info:
        make_dataset(tiny_dataset_dir, "test", batch_size=64)
    assert str(tiny_dataset_dir) in str(info.value)


def test_empty_split_raises(tiny_dataset):
    no_test = tiny_dataset.select("train")
    with pytest.raises(DataError, match="split 'test' holds no slices"):
        make_dataset(no_test, "test", batch_size=1)


def test_bad_arguments(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="output must be one of"):
        make_dataset(tiny_dataset, "train", output="pairs")
    with pytest.raises(ValueError, match="split must be one of"):
        make_dataset(tiny_dataset, "training")
    with pytest.raises(DataError, match="not found"):
        make_dataset(tmp_path / "missing", "train")
