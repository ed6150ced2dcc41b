"""The reference model: published generator-only run directories, and the shipped one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mrigan_tf.cli import main
from mrigan_tf.data.contract import load_dataset
from mrigan_tf.errors import DataError
from mrigan_tf.reference import (dataset_fingerprint, is_available, matches_dataset,
                                 publish_reference, reference_config, reference_dir)
from mrigan_tf.training.runner import load_run


@pytest.fixture(scope="module")
def published(tiny_cwgan_run, squares_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "toy"
    publish_reference(tiny_cwgan_run, load_dataset(squares_dir), out,
                      commands=["mrigan-tf train ..."], notes={"wall_minutes": 0.1})
    return out


def test_published_reference_holds_the_generator_only_and_says_what_it_was_trained_on(
        published, tiny_cwgan_run, squares_dir):
    assert sorted(p.name for p in published.iterdir()) == [
        "config.json", "generator.weights.h5", "history.csv", "loss_curves.png", "samples.png"]
    config = json.loads((published / "config.json").read_text())
    run_config = json.loads((tiny_cwgan_run / "config.json").read_text())
    assert config["train"] == run_config["train"]
    reference = config["reference"]
    assert reference["commands"] == ["mrigan-tf train ..."] and reference["wall_minutes"] == 0.1
    assert reference["generator_steps"] == 6            # 2 epochs of 3 steps
    data = load_dataset(squares_dir)
    assert reference["dataset"] == dataset_fingerprint(data)
    assert reference["dataset"]["train_subjects"] == sorted(
        set(data.subjects[data.split == "train"].tolist()))


def test_a_generator_only_directory_generates_what_the_full_run_generates(published, tiny_cwgan_run):
    full, _, _ = load_run(tiny_cwgan_run)
    shipped, saved, path = load_run(published)
    assert path.name == "generator.weights.h5"
    np.testing.assert_allclose(shipped.sample(6, seed=3), full.sample(6, seed=3), atol=1e-6)
    # and `mrigan-tf generate` takes it like any run directory
    assert saved["class_names"] == ["healthy", "tumor"]


def test_generate_command_reads_a_published_reference(published, tmp_path):
    assert main(["generate", "--run", str(published), "--n", "12", "--out",
                 str(tmp_path / "syn"), "--quiet"]) == 0
    synthetic = load_dataset(tmp_path / "syn")
    assert len(synthetic) == 12 and set(synthetic.labels.tolist()) == {0, 1}


def test_truncated_generator_weights_name_the_file(published, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_bytes((published / "config.json").read_bytes())
    (broken / "generator.weights.h5").write_bytes(
        (published / "generator.weights.h5").read_bytes()[:300])
    with pytest.raises(DataError, match="generator.weights.h5.*cannot load"):
        load_run(broken)


def test_matching_requires_the_same_training_subjects(squares_dir, monkeypatch, published):
    import mrigan_tf.reference as reference

    data = load_dataset(squares_dir)
    monkeypatch.setitem(reference.REFERENCES, "toy", "test")
    monkeypatch.setattr(reference, "reference_dir", lambda name="toy": published)
    assert matches_dataset(data, "toy") == (True, "")
    # The same data with one training subject moved to the test split: refused, because the
    # reference may have seen a test subject.
    moved = data.subjects[data.split == "train"][0]
    resplit = data.split.copy()
    resplit[data.subjects == moved] = "test"
    other = type(data)(data.images, data.masks, data.labels, data.subjects, resplit, data.meta)
    ok, why = matches_dataset(other, "toy")
    assert not ok and "other subjects" in why
    smaller = data.select(None)
    smaller.meta = {**data.meta, "seed": 99}
    ok, why = matches_dataset(smaller, "toy")
    assert not ok and "seed" in why


def test_unknown_reference_is_a_clear_error():
    with pytest.raises(DataError, match="no such reference model"):
        reference_dir("brats256")


@pytest.mark.skipif(not is_available(), reason="the shipped reference model is not installed")
def test_shipped_reference_model_learned_the_classes_and_is_deterministic():
    """The committed generator: tumor-class pairs carry a tumor mask, healthy ones do not,
    and the same seed gives the same pairs (what makes its report reproducible)."""
    model, saved, _ = load_run(reference_dir())
    config = reference_config()
    assert saved["image_shape"][:2] == [64, 64] and config["reference"]["dataset"]["seed"] == 0
    labels = np.repeat([0, 1], 64).astype(np.int32)
    pairs = model.sample(128, seed=0, labels=labels)
    has_mask = (pairs[..., -1] > 0).reshape(128, -1).any(axis=1)
    assert has_mask[labels == 1].mean() > 0.85
    assert has_mask[labels == 0].mean() < 0.15
    np.testing.assert_array_equal(model.sample(16, seed=0), model.sample(16, seed=0))


#: `mrigan-tf generate --run mrigan_tf/reference/phantom64 --n 500 --seed 0`, written by main
#: at c0418f5 before the layout change of issue 14, had the sha256 ddab24a3...bdae8; main at
#: 2eba77a still wrote exactly those bytes (checked, with TensorFlow's default threads), and
#: this fingerprint was taken from them: 8x8 block means of every image, each mask's pixel
#: count, the labels. Not a byte hash: a convolution's float sums depend on how many threads
#: TensorFlow splits them over (one thread moves pixels by up to 4e-6), not on our code.
REFERENCE_500_FINGERPRINT = Path(__file__).parent / "reference_outputs" / "reference_500_fingerprint.npz"


def test_generating_from_the_shipped_reference_matches_its_fingerprint(tmp_path):
    out = tmp_path / "synthetic"
    assert main(["generate", "--run", str(reference_dir()), "--n", "500", "--seed", "0",
                 "--out", str(out), "--quiet"]) == 0
    written, expected = np.load(out / "dataset.npz"), np.load(REFERENCE_500_FINGERPRINT)
    images = written["images"][..., 0]
    np.testing.assert_array_equal(written["labels"], expected["labels"])
    np.testing.assert_allclose(images.reshape(500, 8, 8, 8, 8).mean(axis=(2, 4)),
                               expected["block_means"], atol=1e-5)
    np.testing.assert_allclose(images.mean(axis=(1, 2)), expected["image_means"], atol=1e-6)
    # A mask pixel flips only if a float sum lands within rounding of the threshold.
    pixels = written["masks"].reshape(500, -1).sum(axis=1)
    assert np.abs(pixels - expected["mask_pixels"]).max() <= 2
    assert expected["mask_pixels"][expected["labels"] == 1].mean() > 20      # real tumors
