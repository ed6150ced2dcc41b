"""Feature extractors (domain CNN, InceptionV3 with random weights) and LPIPS-VGG plumbing.

No network: pretrained paths are tested with ``weights=None`` and with an empty Keras cache.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import build_squares_dataset
from mrigan_tf.data.contract import PreparedDataset
from mrigan_tf.metrics.domain_classifier import balanced_accuracy, train_domain_classifier
from mrigan_tf.metrics.features import domain_extractor, inception_extractor
from mrigan_tf.metrics.inception_score import inception_score
from mrigan_tf.metrics.keras_weights import (INCEPTION_V3_NOTOP, WeightsUnavailable,
                                             find_cached_weights, require_cached_weights)
from mrigan_tf.metrics.lpips import LpipsVGG, load_lpips


@pytest.fixture(scope="module")
def squares():
    return build_squares_dataset(n_subjects=8, slices=8, size=16, seed=0)


@pytest.fixture(scope="module")
def classifier(squares):
    return train_domain_classifier(squares, steps=60, batch_size=16, seed=0)


def test_domain_classifier_learns_the_classes(classifier, squares):
    test = squares.select("test")
    assert classifier.test_accuracy is not None and classifier.test_accuracy >= 0.9
    probs = classifier.probabilities(test.images)
    assert probs.shape == (len(test), 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # Balanced, confidently classified real slices score near the maximum K = 2.
    assert inception_score(probs)[0] > 1.5
    assert classifier.describe()["trained_on"] == "toy train split"
    assert classifier.describe()["test_balanced_accuracy"] >= 0.9


def test_domain_features_are_deterministic(classifier, squares):
    extractor = domain_extractor(classifier)
    images = squares.images[:10]
    feats = extractor(images)
    assert feats.shape == (10, 64) and feats.dtype == np.float64
    np.testing.assert_array_equal(feats, extractor(images))
    assert "trained here on the toy train split" in extractor.weights
    assert "accuracy" in extractor.weights
    # Same data and seed: the same classifier (training is seeded, shuffled with numpy).
    again = train_domain_classifier(squares, steps=60, batch_size=16, seed=0)
    np.testing.assert_allclose(again.features(images), feats, rtol=1e-4, atol=1e-5)


def build_small_lesions(n_subjects: int = 12, slices: int = 16, size: int = 16,
                        seed: int = 0) -> PreparedDataset:
    """3 healthy slices per tumor slice; the tumor is a 3x3 spot (3.5% of the slice) on
    "anatomy" (a disk) whose size and brightness vary far more from slice to slice than the
    spot moves the slice's mean: the case of the small lesions on the MRI phantom."""
    rng = np.random.default_rng(seed)
    n = n_subjects * slices
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    radius = rng.uniform(3, size / 2 - 1, n)
    brightness = rng.uniform(-0.6, 0.2, n)
    disk = np.hypot(yy, xx)[None] < radius[:, None, None]
    images = np.where(disk, brightness[:, None, None], -1.0)
    images = images + rng.normal(0, 0.05, images.shape)
    labels = np.tile((np.arange(slices) % 4 == 0).astype(np.int32), n_subjects)
    masks = np.zeros((n, size, size), np.uint8)
    for i in np.flatnonzero(labels):
        r, c = rng.integers(2, size - 4, 2)
        images[i, r:r + 3, c:c + 3] = 0.95
        masks[i, r:r + 3, c:c + 3] = 1
    subjects = np.repeat([f"toy-{s}" for s in range(n_subjects)], slices)
    split = np.where(np.isin(subjects, ["toy-0", "toy-1", "toy-2"]), "test", "train")
    meta = {"class_names": ["healthy", "tumor"], "image_size": size, "source": "toy",
            "modality": "toy lesions", "seed": seed}
    return PreparedDataset(np.clip(images, -1, 1)[..., None].astype(np.float32),
                           masks[..., None], labels, subjects, split, meta)


def test_balanced_accuracy_known_answers():
    labels = np.array([0, 0, 0, 1])
    assert balanced_accuracy(labels, np.zeros(4)) == 0.5       # majority vote: chance
    assert balanced_accuracy(labels, labels) == 1.0
    assert balanced_accuracy(labels, np.array([0, 0, 1, 1])) == pytest.approx((2 / 3 + 1) / 2)


def test_domain_classifier_finds_small_lesions_despite_imbalance():
    # Answering "healthy" everywhere gives accuracy 0.75 and balanced accuracy 0.5: the
    # classifier must find the minority class, not collapse onto the majority.
    lesions = build_small_lesions()
    assert np.mean(lesions.select("train").labels) == 0.25
    clf = train_domain_classifier(lesions, steps=300, batch_size=32, seed=0)
    description = clf.describe()
    assert description["test_balanced_accuracy"] >= 0.85
    assert description["test_accuracy"] >= 0.9
    test = lesions.select("test")
    predicted = clf.probabilities(test.images).argmax(axis=1)
    assert np.mean(predicted[test.labels == 1] == 1) >= 0.8    # the minority class is found


def test_inception_features_shapes_and_determinism():
    extractor = inception_extractor(weights=None, input_size=75, batch_size=8)
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (6, 16, 16, 1)).astype(np.float32)
    feats = extractor(images)
    assert feats.shape == (6, 2048) and extractor.dim == 2048
    assert np.all(np.isfinite(feats)) and np.all(feats >= 0)   # average-pooled ReLU outputs
    np.testing.assert_allclose(extractor(images), feats, rtol=1e-5, atol=1e-6)
    assert not np.allclose(feats[0], feats[1])
    assert "random" in extractor.weights
    with pytest.raises(ValueError):
        extractor(images[..., 0])


def test_pretrained_weights_are_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr("mrigan_tf.metrics.keras_weights.Path.home",
                        lambda: tmp_path / "home")
    if find_cached_weights(INCEPTION_V3_NOTOP) is not None:
        pytest.skip("weights cached in /tmp/.keras on this machine")
    with pytest.raises(WeightsUnavailable, match="not in the local Keras cache"):
        require_cached_weights(INCEPTION_V3_NOTOP, "InceptionV3")
    with pytest.raises(WeightsUnavailable):
        inception_extractor(weights="imagenet")
    metric, reason = load_lpips("imagenet")
    assert metric is None and "VGG16" in reason and "never downloaded" in reason
    # A file placed in the cache is found (and would be handed to Keras as a path).
    (tmp_path / "empty-keras" / "models").mkdir(parents=True)
    (tmp_path / "empty-keras" / "models" / INCEPTION_V3_NOTOP).write_bytes(b"x")
    assert find_cached_weights(INCEPTION_V3_NOTOP) == \
        tmp_path / "empty-keras" / "models" / INCEPTION_V3_NOTOP


def test_lpips_vgg_random_weights_is_a_distance():
    lpips = LpipsVGG(weights=None)
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (3, 16, 16, 1)).astype(np.float32)
    b = rng.uniform(-1, 1, (3, 16, 16, 1)).astype(np.float32)
    self_distance = lpips.distance(a, a)
    ab, ba = lpips.distance(a, b), lpips.distance(b, a)
    np.testing.assert_allclose(self_distance, 0.0, atol=1e-6)
    np.testing.assert_allclose(ab, ba, rtol=1e-5)
    assert np.all(ab > 1e-3)
    near = lpips.distance(a, np.clip(a + 0.05, -1, 1))
    assert np.all(near < ab)
    diversity = lpips.pairwise_diversity(np.concatenate([a, b]), max_pairs=5)
    assert diversity["pairs"] == 5 and diversity["mean"] > 0
    assert lpips.name == "LPIPS-VGG (unweighted)"
