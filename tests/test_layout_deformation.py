"""Layouts flipped and elastically warped before SPADE renders them (``--layouts real``)."""

from __future__ import annotations

import numpy as np
import pytest

from mrigan_tf.data.layout_deformation import deform_layouts, elastic_field

SIZE = 32
TUMOR = 3


def _stripes(n: int) -> np.ndarray:
    """Vertical stripes 4 px wide of classes 0, 1, 2: a pixel's class says its column."""
    columns = (np.arange(SIZE) // 4) % 3
    return np.broadcast_to(columns[None, None, :, None], (n, SIZE, SIZE, 1)).astype(np.uint8).copy()


def _with_small_tumors(n: int, seed: int = 0, every: int = 2) -> np.ndarray:
    """Brain (1) on background (0), and in every ``every``-th layout a 2x2 tumor (3)
    somewhere, often at the edge of the slice."""
    rng = np.random.default_rng(seed)
    layouts = np.zeros((n, SIZE, SIZE, 1), np.uint8)
    layouts[:, 4:-4, 4:-4] = 1
    for i in range(0, n, every):
        y, x = rng.integers(0, SIZE - 2, 2)
        layouts[i, y:y + 2, x:x + 2] = TUMOR
    return layouts


def test_without_displacement_or_flip_the_layouts_are_unchanged():
    layouts = _with_small_tumors(6)
    same, kept = deform_layouts(layouts, [TUMOR], flip=False, displacement_fraction=0.0)
    np.testing.assert_array_equal(same, layouts)
    assert kept == 0


def test_flips_alone_mirror_about_half_of_the_layouts():
    layouts = _with_small_tumors(200, every=1)       # a tumor off the midline in each
    flipped, _ = deform_layouts(layouts, [TUMOR], displacement_fraction=0.0, seed=1)
    mirrored = [np.array_equal(f, l[:, ::-1]) and not np.array_equal(f, l)
                for f, l in zip(flipped, layouts)]
    unchanged = [np.array_equal(f, l) for f, l in zip(flipped, layouts)]
    assert all(m or u for m, u in zip(mirrored, unchanged))
    # Binomial(200, 1/2): 100 +- 7 per sd.
    assert 70 <= sum(mirrored) <= 130


def test_the_warp_moves_pixels_by_at_most_its_displacement():
    layouts = _stripes(20)
    warped, _ = deform_layouts(layouts, [TUMOR], flip=False, displacement_fraction=0.1, seed=2)
    reach = int(np.ceil(0.1 * SIZE)) + 1     # the field's peak, and nearest-neighbour rounding
    columns = layouts[0, 0, :, 0]
    allowed = [set(columns[max(0, x - reach):x + reach + 1]) for x in range(SIZE)]
    for layout in warped[..., 0]:
        for x in range(SIZE):
            assert set(layout[:, x]) <= allowed[x], f"column {x}: {set(layout[:, x])}"
    # And it does move them: most layouts differ from the input, and from each other.
    assert np.mean([not np.array_equal(w, l) for w, l in zip(warped, layouts)]) > 0.9
    assert not np.array_equal(warped[0], warped[1])


def test_labels_stay_labels_and_every_tumor_stays():
    layouts = _with_small_tumors(300)
    warped, kept = deform_layouts(layouts, [TUMOR], displacement_fraction=0.25, seed=3)
    assert warped.shape == layouts.shape and warped.dtype == np.uint8
    assert set(np.unique(warped)) <= set(np.unique(layouts))     # nearest neighbour: no new classes
    had = (layouts == TUMOR).reshape(len(layouts), -1).any(axis=1)
    has = (warped == TUMOR).reshape(len(warped), -1).any(axis=1)
    np.testing.assert_array_equal(has, had)          # the class a slice was drawn for holds
    # At this strength some 2x2 tumors at the edge were squeezed out: those stay unwarped.
    assert 0 < kept < had.sum()


def test_deterministic_for_a_seed():
    layouts = _with_small_tumors(10)
    a, _ = deform_layouts(layouts, [TUMOR], seed=5)
    b, _ = deform_layouts(layouts, [TUMOR], seed=5)
    c, _ = deform_layouts(layouts, [TUMOR], seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_the_field_peaks_at_the_displacement_and_is_smooth():
    field = elastic_field((SIZE, SIZE), np.random.default_rng(0), displacement=3.0, sigma=4.0)
    assert field.shape == (2, SIZE, SIZE)
    np.testing.assert_allclose(np.abs(field).max(axis=(1, 2)), 3.0)
    # Smooth: neighbouring pixels move nearly alike (white noise would differ by ~the peak).
    assert np.abs(np.diff(field, axis=2)).max() < 1.0


@pytest.mark.parametrize("shape", [(4, SIZE, SIZE), (4, SIZE, SIZE, 2)])
def test_bad_shapes_are_refused(shape):
    with pytest.raises(ValueError, match=r"\(N, H, W, 1\)"):
        deform_layouts(np.zeros(shape, np.uint8), [TUMOR])
