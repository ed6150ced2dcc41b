"""The image-folder reader: class folders, twin-tree and sibling masks, subjects, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mrigan_tf.data.contract import load_dataset
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.data.prepare import prepare_dataset

SIZE = 16


def brain_png(path: Path, shape=(48, 40), lesion: tuple[int, int] | None = None,
              rgb: bool = True, seed: int = 0) -> None:
    """A dark background with a bright disc ('brain'); a brighter square at ``lesion``."""
    rng = np.random.default_rng(seed)
    rows, cols = np.ogrid[:shape[0], :shape[1]]
    disc = ((rows - shape[0] / 2) / (shape[0] * 0.4)) ** 2 + ((cols - shape[1] / 2) / (shape[1] * 0.4)) ** 2 <= 1
    img = np.where(disc, 120 + rng.integers(0, 20, shape), 0).astype(np.uint8)
    if lesion is not None:
        r, c = lesion
        img[r:r + 12, c:c + 12] = 230
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.stack([img] * 3, -1) if rgb else img).save(path)


def mask_png(path: Path, shape=(48, 40), lesion=(0, 0), value: int = 255) -> None:
    mask = np.zeros(shape, np.uint8)
    r, c = lesion
    mask[r:r + 12, c:c + 12] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask).save(path)


LESION = (8, 6)   # top-left corner of the lesion square in the 48x40 images


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kaggle") / "Training"
    for i in range(4):
        brain_png(root / "tumor" / f"Tr-tu_{i:04d}.jpg", lesion=LESION, seed=i)
        mask_png(root / "masks" / "tumor" / f"Tr-tu_{i:04d}.png", lesion=LESION,
                 value=255 if i % 2 else 1)
        brain_png(root / "notumor" / f"Tr-no_{i:04d}.png", shape=(40, 40), rgb=False, seed=10 + i)
    brain_png(root / "notumor" / "Tr-no_0099.jpg", shape=(30, 50), seed=99)
    return root


def test_classes_masks_and_shapes(kaggle, tmp_path):
    report = prepare_dataset("folder", kaggle, tmp_path / "out", size=SIZE, workers=1,
                             progress=False)
    ds = load_dataset(tmp_path / "out")
    assert ds.class_names == ["notumor", "tumor"]
    assert len(ds) == 9 and report.num_subjects == 9
    assert ds.images.shape == (9, SIZE, SIZE, 1) and ds.masks.shape == (9, SIZE, SIZE, 1)
    assert int((ds.labels == 1).sum()) == 4 and int((ds.labels == 0).sum()) == 5
    assert ds.meta["has_masks"] is True
    tumor, healthy = ds.select(label=1), ds.select(label=0)
    assert healthy.masks.max() == 0
    # Masks 0/1 and 0/255 read alike; the lesion sits top-left and is the brightest region.
    areas = tumor.masks.reshape(4, -1).sum(axis=1)
    assert np.all(areas == areas[0]) and areas[0] > 4
    rows, cols = np.nonzero(tumor.masks[0, ..., 0])
    assert rows.mean() < SIZE / 2 and cols.mean() < SIZE / 2
    assert tumor.images[tumor.masks == 1].mean() > tumor.images[tumor.masks == 0].mean() + 0.5
    assert ds.images.min() == -1.0 and ds.images.max() <= 1.0
    # Layout: background / brain (the image's foreground) / lesion, the lesion its mask.
    assert ds.layout_classes == ["background", "brain", "lesion"] and ds.layout_mask_classes == [2]
    np.testing.assert_array_equal(ds.layout == 2, ds.masks == 1)
    assert (ds.layout == 1).any() and (ds.layout == 0).any()
    assert ds.images[ds.layout == 1].mean() > ds.images[ds.layout == 0].mean()


def test_class_order_and_subject_pattern(kaggle, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(kaggle, src)
    # Two patients, each with several slices in both classes (the LGG layout: NAME_mask siblings).
    for patient in ("TCGA_CS_4941", "TCGA_DU_5872"):
        for k in range(3):
            stem = f"{patient}_19960909_{k}"
            brain_png(src / "lgg_tumor" / f"{stem}.tif", lesion=LESION, seed=k)
            mask_png(src / "lgg_tumor" / f"{stem}_mask.tif", lesion=LESION)
    prepare_dataset("folder", src, tmp_path / "out", size=SIZE, workers=1, progress=False,
                    classes="lgg_tumor,tumor", subject_pattern=r"^(TCGA_[A-Z]{2}_\d{4})|^(Tr-tu_\d+)")
    ds = load_dataset(tmp_path / "out")
    assert ds.class_names == ["lgg_tumor", "tumor"]
    subjects = set(ds.subjects)
    assert {"TCGA_CS_4941", "TCGA_DU_5872"} <= subjects
    assert int((ds.subjects == "TCGA_CS_4941").sum()) == 3
    assert ds.masks[ds.labels == 0].sum() > 0   # the sibling _mask files were found


def test_bad_images_and_masks(kaggle, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(kaggle, src)
    truncated = src / "notumor" / "Tr-no_0001.png"
    truncated.write_bytes(truncated.read_bytes()[:60])
    with pytest.raises(DataError, match="unreadable or truncated image") as err:
        prepare_dataset("folder", src, tmp_path / "out", size=SIZE, workers=1, progress=False)
    assert str(truncated) in str(err.value)
    (src / "masks" / "tumor" / "Tr-tu_0002.png").unlink()
    mask_png(src / "masks" / "tumor" / "Tr-tu_0003.png", shape=(40, 40))
    report = prepare_dataset("folder", src, tmp_path / "out", size=SIZE, workers=2,
                             progress=False, skip_bad=True)
    bad = {b.subject: b.problem for b in report.skipped}
    assert set(bad) == {"notumor/Tr-no_0001", "tumor/Tr-tu_0002", "tumor/Tr-tu_0003"}
    assert "no mask for this image" in bad["tumor/Tr-tu_0002"]
    assert "image/mask shape mismatch" in bad["tumor/Tr-tu_0003"]
    assert len(load_dataset(tmp_path / "out")) == 6


def test_layout_errors(kaggle, tmp_path):
    with pytest.raises(DataError, match="class folder not found"):
        prepare_dataset("folder", kaggle, tmp_path / "out", progress=False, classes="yes,no")
    (tmp_path / "src" / "empty_class").mkdir(parents=True)
    (tmp_path / "src" / "tumor").mkdir()
    brain_png(tmp_path / "src" / "tumor" / "a.png")
    with pytest.raises(DataError, match="empty_class: no images"):
        prepare_dataset("folder", tmp_path / "src", tmp_path / "out", progress=False)
    with pytest.raises(DataError, match="does not match --subject-pattern"):
        prepare_dataset("folder", kaggle, tmp_path / "out", progress=False,
                        subject_pattern=r"^TCGA_(\d+)")
    with pytest.raises(MriganError, match="not a valid regular expression"):
        prepare_dataset("folder", kaggle, tmp_path / "out", progress=False, subject_pattern="(")
    assert not (tmp_path / "out").exists()
