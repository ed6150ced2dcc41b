"""The embedded phantom dataset: contract, determinism, labels, anatomy."""

from __future__ import annotations

import numpy as np
import pytest

from mrigan_tf.cli import main
from mrigan_tf.data.contract import load_dataset
from mrigan_tf.data.phantom import PhantomConfig, build_phantom
from mrigan_tf.errors import MriganError

SUBJECTS, SIZE = 8, 32


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantom") / "ds"
    assert main(["phantom", "--out", str(out), "--subjects", str(SUBJECTS), "--size", str(SIZE),
                 "--seed", "3", "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def phantom(phantom_dir):
    return load_dataset(phantom_dir)


def test_follows_the_contract(phantom):
    n = len(phantom)
    assert phantom.images.shape == (n, SIZE, SIZE, 1) and phantom.images.dtype == np.float32
    assert phantom.masks.shape == (n, SIZE, SIZE, 1) and phantom.masks.dtype == np.uint8
    assert phantom.labels.dtype == np.int32 and set(np.unique(phantom.labels)) <= {0, 1}
    assert phantom.images.min() >= -1.0 and phantom.images.max() <= 1.0
    assert phantom.class_names == ["healthy", "tumor"]
    meta = phantom.meta
    assert meta["source"] == "phantom" and meta["image_size"] == SIZE and meta["seed"] == 3
    assert "not patient data" in meta["not_patient_data"].lower().replace("contains no", "not")
    assert "McGill" in meta["template_credit"]
    # Each subject contributes a stack of slices, not a handful.
    assert n >= SUBJECTS * 10


def test_split_is_by_subject_and_every_split_has_subjects(phantom):
    per_split = phantom.subjects_per_split()
    seen = [s for subjects in per_split.values() for s in subjects]
    assert len(seen) == len(set(seen)) == SUBJECTS
    assert all(per_split[s] for s in ("train", "val", "test"))


def test_masks_agree_with_classes_and_subjects(phantom):
    facts = {f["subject"]: f for f in phantom.meta["subjects"]}
    assert sum(f["has_tumor"] for f in facts.values()) == SUBJECTS // 2
    area = phantom.masks.reshape(len(phantom), -1).sum(axis=1)
    # Class 0 <=> empty mask; every tumor-class slice shows at least a few pixels of tumor.
    assert np.all(area[phantom.labels == 0] == 0)
    assert np.all(area[phantom.labels == 1] >= 8)
    healthy = np.array([not facts[s]["has_tumor"] for s in phantom.subjects])
    assert np.all(phantom.labels[healthy] == 0)
    tumor_subjects = [s for s, f in facts.items() if f["has_tumor"]]
    for s in tumor_subjects:
        assert phantom.labels[phantom.subjects == s].sum() >= 3, s


def test_tumor_has_dark_core_and_bright_rim(phantom):
    # Inside the whole-tumor mask the simulated glioma spans the intensity range: a dark
    # necrotic core and an enhancing rim brighter than the surrounding brain.
    tumor = phantom.images[phantom.masks.astype(bool)]
    brain = phantom.images[(phantom.masks == 0) & (phantom.images > -0.9)]
    assert np.percentile(tumor, 2) < np.percentile(brain, 10)
    assert np.percentile(tumor, 99) > np.percentile(brain, 90)


def test_subjects_share_anatomy_but_differ(phantom):
    # Healthy subjects are one template under different deformations: their mid slices are
    # strongly correlated, yet not identical.
    facts = {f["subject"]: f for f in phantom.meta["subjects"]}
    mids = []
    for s in sorted(s for s, f in facts.items() if not f["has_tumor"])[:3]:
        idx = np.flatnonzero(phantom.subjects == s)
        mids.append(phantom.images[idx[len(idx) // 2], ..., 0].ravel())
    for a, b in [(0, 1), (1, 2)]:
        r = np.corrcoef(mids[a], mids[b])[0, 1]
        assert 0.6 < r < 0.995, r


def test_images_and_masks_are_those_the_reference_model_was_trained_on(phantom):
    # Figures of this seed's images and masks as they were before layouts were added
    # (commit b732651): the layout is read off the simulation, it draws nothing at random.
    assert (len(phantom), int(phantom.masks.sum()), int(phantom.labels.sum())) == (190, 2362, 55)
    images = phantom.images.astype(np.float64)
    assert images.sum() == pytest.approx(-99080.21133970129, rel=1e-9)
    assert np.square(images).sum() == pytest.approx(126201.28661267924, rel=1e-9)


def test_layout_holds_the_tissues_and_the_tumor_parts(phantom):
    assert phantom.layout_classes == ["background", "CSF", "grey matter", "white matter",
                                      "edema", "enhancing rim", "necrotic core"]
    assert phantom.layout_mask_classes == [4, 5, 6]
    layout = phantom.layout[..., 0]
    assert layout.shape == phantom.masks.shape[:3] and phantom.layout.dtype == np.uint8
    # The mask is exactly the tumor classes of the layout (load_dataset checked it too).
    np.testing.assert_array_equal(np.isin(layout, [4, 5, 6]), phantom.masks[..., 0] == 1)
    # Background where the image is background (up to the resize's blur at the brain's edge),
    # brain tissue where it is brain.
    images = phantom.images[..., 0]
    assert images[layout == 0].mean() < -0.95
    assert np.all(images[layout > 0] > -1.0)
    # On this T1: CSF < grey < white matter < enhancing rim, necrosis darker than grey matter.
    background, csf, grey, white, _, rim, necrosis = (images[layout == k].mean() for k in range(7))
    assert background < csf < grey < white < rim and necrosis < grey
    # A healthy slice shows no tumor part; every tumor slice shows edema.
    tumor_parts = [np.isin(layout[i], [4, 5, 6]).any() for i in range(len(phantom))]
    np.testing.assert_array_equal(tumor_parts, phantom.labels == 1)
    assert all((layout[i] == 4).any() for i in np.flatnonzero(phantom.labels == 1))
    # Tumor parts never show alone: a slice with a necrotic core shows the rim or edema too.
    for i in np.flatnonzero((layout == 6).reshape(len(layout), -1).any(axis=1)):
        assert np.isin(layout[i], [4, 5]).any(), i


def test_same_seed_gives_byte_identical_arrays_with_any_worker_count(phantom_dir, tmp_path):
    again = tmp_path / "again"
    assert main(["phantom", "--out", str(again), "--subjects", str(SUBJECTS), "--size", str(SIZE),
                 "--seed", "3", "--workers", "1", "--quiet"]) == 0
    assert (again / "dataset.npz").read_bytes() == (phantom_dir / "dataset.npz").read_bytes()


def test_another_seed_gives_other_subjects():
    a = build_phantom(PhantomConfig(subjects=2, size=16, seed=0), workers=1, progress=False)
    b = build_phantom(PhantomConfig(subjects=2, size=16, seed=1), workers=1, progress=False)
    n = min(len(a), len(b))
    assert not np.array_equal(a.images[:n], b.images[:n])


def test_128_pixels():
    ds = build_phantom(PhantomConfig(subjects=1, size=128, seed=0, tumor_fraction=1.0),
                       workers=1, progress=False)
    assert ds.images.shape[1:] == (128, 128, 1)
    assert ds.labels.sum() > 0


@pytest.mark.parametrize("kwargs", [{"size": 48}, {"size": 8}, {"subjects": 0},
                                    {"tumor_fraction": 1.5}])
def test_bad_configuration_is_refused(kwargs):
    with pytest.raises(MriganError):
        PhantomConfig(**kwargs)
