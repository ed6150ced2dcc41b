"""The classifier two-sample test: controls, determinism, the split, the interval, bad input.

Tiny 16x16 slices (a bright Gaussian blob at a random place, a little noise), so that the
fixed classifier trains in a few seconds per test on a CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from mrigan_tf.data.contract import PreparedDataset
from mrigan_tf.metrics import c2st
from mrigan_tf.metrics.c2st import (balanced_halves, chance_p_value, classifier_two_sample_test,
                                    clopper_pearson_interval, real_vs_real_floor,
                                    subject_clustered_interval)

SIZE = 16
TEST_STEPS = 60


@pytest.fixture(autouse=True, scope="module")
def short_budget():
    """The toy sets below need far fewer than the fixed budget: the tests check the
    machinery in seconds; benchmarks/c2st_reference.py checks the fixed settings."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(c2st, "C2ST_STEPS", TEST_STEPS)
        yield


def _blobs(n: int, seed: int, checkerboard: float = 0.0, mask_shift: int = 0):
    """Slices in [-1, 1] with one blob each, and the blob's mask (shifted by ``mask_shift``)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float32)
    centres = rng.uniform(4, SIZE - 4, (n, 2)).astype(np.float32)
    d2 = (yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2
    images = -0.6 + 1.2 * np.exp(-d2 / 8.0) + rng.normal(0, 0.05, (n, SIZE, SIZE))
    images += checkerboard * ((yy + xx) % 2 * 2 - 1)
    masks = np.roll(d2 < 6.0, mask_shift, axis=2).astype(np.uint8)
    return np.clip(images, -1, 1).astype(np.float32)[..., None], masks[..., None]


def _dataset(images, masks, subjects, split=None) -> PreparedDataset:
    n = len(images)
    return PreparedDataset(images, masks, (masks.reshape(n, -1).max(axis=1) > 0).astype(np.int32),
                           np.asarray(subjects, dtype=str),
                           np.asarray(split if split is not None else ["train"] * n, dtype=str),
                           {"class_names": ["healthy", "tumor"], "image_size": SIZE,
                            "source": "test", "modality": "test"})


@pytest.fixture(scope="module")
def different():
    """Clearly different sets of unequal size: the synthetic ones carry a checkerboard."""
    real, _ = _blobs(80, seed=1)
    synthetic, _ = _blobs(200, seed=2, checkerboard=0.15)
    return real, synthetic, classifier_two_sample_test(real, synthetic, seed=0, surest=5)


def test_positive_control_tells_different_sets_apart(different):
    _, _, result = different
    assert result.accuracy >= 0.95
    assert result.ci_low > 0.5 and result.distinguishable
    assert result.p_value < 1e-6
    assert result.settings["steps"] == TEST_STEPS
    assert result.correct == round(result.accuracy * result.heldout)


def test_negative_control_two_halves_of_one_distribution():
    # Under H0 the accuracy scatters around 1/2 like a binomial: over 30 fresh pairs of sets
    # of 120 slices, this budget gave a mean of 0.491 and a spread of 0.047 (binomial: 0.046).
    # The pair here scores 0.51, far from the interval's edges, so that a CPU whose arithmetic
    # differs in the last bits cannot tip it.
    images, _ = _blobs(200, seed=13)
    result = classifier_two_sample_test(images[:100], images[100:], seed=0)
    assert result.ci_low <= 0.5 <= result.ci_high
    assert not result.distinguishable
    assert result.p_value > 0.05


def test_same_seed_same_result(different):
    real, synthetic, first = different
    again = classifier_two_sample_test(real, synthetic, seed=0, surest=5)
    assert again.describe() == first.describe()


def test_a_reused_classifier_learns_what_a_new_one_learns(different, monkeypatch):
    """The compiled classifier kept for a shape starts each test afresh: after a test with
    another seed, seed 0 gives what a classifier built just for it gives."""
    real, synthetic, first = different
    classifier_two_sample_test(real, synthetic, seed=3)              # trains the kept one
    reused = classifier_two_sample_test(real, synthetic, seed=0, surest=5)
    monkeypatch.setattr(c2st, "_COMPILED", {})                        # a new classifier
    new = classifier_two_sample_test(real, synthetic, seed=0, surest=5)
    assert reused.describe() == new.describe() == first.describe()
    np.testing.assert_array_equal(reused.surest_scores, new.surest_scores)
    # Not a vacuous comparison: another seed's classifier scores the slices differently.
    other = classifier_two_sample_test(real, synthetic, seed=3, surest=5)
    assert not np.array_equal(other.surest_scores, new.surest_scores)


def test_balanced_subsampling_halves_the_smaller_set(different):
    _, _, result = different
    # 80 real vs 200 synthetic: 40 + 40 per side, the synthetic side subsampled.
    assert result.train_per_side == result.heldout_per_side == 40
    assert result.heldout == 80
    real_train, real_test, synth_train, synth_test = balanced_halves(80, 200, seed=0)
    assert len(real_train) == len(real_test) == len(synth_train) == len(synth_test) == 40
    assert not set(real_train) & set(real_test) and not set(synth_train) & set(synth_test)
    assert real_test.max() < 80 and synth_test.max() < 200
    assert not np.array_equal(balanced_halves(80, 200, seed=1)[3], synth_test)


def test_surest_synthetic_are_held_out_and_ranked(different):
    _, _, result = different
    synth_test = balanced_halves(80, 200, seed=0)[3]
    assert len(result.surest_synthetic) == 5
    assert set(result.surest_synthetic.tolist()) <= set(synth_test.tolist())
    assert np.all(np.diff(result.surest_scores) <= 0) and result.surest_scores[-1] > 0.5


@pytest.mark.parametrize("seed", range(5))
def test_halves_never_share_a_subject_and_keep_the_class_mix(seed):
    # 12 subjects of 12 slices; 4 of them have 6 tumor slices each, 8 none.
    subjects = np.repeat([f"s{i:02d}" for i in range(12)], 12)
    labels = np.concatenate([np.repeat([0, 1], 6) if i < 4 else np.zeros(12, int)
                             for i in range(12)])
    synthetic_labels = np.arange(500) % 2
    real_train, real_test, synth_train, synth_test = balanced_halves(
        144, 500, seed, real_groups=subjects, real_labels=labels,
        synthetic_labels=synthetic_labels)
    assert not set(subjects[real_train]) & set(subjects[real_test])
    assert len(real_train) == len(synth_train) == len(real_test) == len(synth_test) == 72
    assert labels[real_train].sum() == labels[real_test].sum() == 12   # 2 tumor subjects each
    assert synthetic_labels[synth_train].mean() == synthetic_labels[synth_test].mean() == 0.5


def test_two_subjects_of_different_classes_go_to_different_halves():
    real_train, real_test, _, _ = balanced_halves(4, 10, real_groups=["a", "a", "b", "b"],
                                                  real_labels=[0, 0, 1, 1])
    assert len(real_train) == len(real_test) == 2


def test_image_and_mask_sees_masks_that_miss_the_lesion():
    real_images, real_masks = _blobs(120, seed=4)
    synth_images, synth_masks = _blobs(120, seed=5, mask_shift=5)   # the images alike
    real = _dataset(real_images, real_masks, [f"r{i // 4}" for i in range(120)])
    synthetic = _dataset(synth_images, synth_masks, [f"g{i}" for i in range(120)])
    joint = classifier_two_sample_test(real, synthetic, seed=0, channels="image+mask")
    assert joint.channels == "image+mask" and joint.accuracy >= 0.9 and joint.ci_low > 0.5


def test_real_vs_real_floor_is_at_chance():
    images, masks = _blobs(240, seed=1003)
    subjects = [f"s{i // 12:02d}" for i in range(240)]   # 20 subjects of 12 slices
    split = ["train" if i < 144 else ("val" if i < 192 else "test") for i in range(240)]
    result = real_vs_real_floor(_dataset(images, masks, subjects, split), seed=0)
    assert result.heldout_per_side == 48   # half of the 96 val + test slices
    assert result.ci_low <= 0.5 <= result.ci_high
    assert result.subject_ci_low <= 0.5 <= result.subject_ci_high
    assert 2 + 4 <= result.heldout_subjects <= 6 + 4   # 4 held-out subjects on each side


def test_floor_is_computed_once_per_dataset_and_setting(monkeypatch):
    calls = []

    def counting(train, heldout, seed, channels, surest):
        calls.append((len(train), seed, channels))
        return ("floor", len(calls))

    monkeypatch.setattr(c2st, "classifier_two_sample_test", counting)
    monkeypatch.setattr(c2st, "_FLOOR_CACHE", {})
    images, masks = _blobs(48, seed=5)
    subjects = [f"s{i // 8}" for i in range(48)]
    split = ["train" if i < 32 else "test" for i in range(48)]
    data = _dataset(images, masks, subjects, split)
    first = real_vs_real_floor(data, seed=0)
    assert real_vs_real_floor(data, seed=0) is first and len(calls) == 1
    # Another seed, other channels, other slices, another budget: each a new floor.
    real_vs_real_floor(data, seed=1)
    real_vs_real_floor(data, seed=0, channels="image+mask")
    changed = _dataset(images.copy(), masks, subjects, split)
    changed.images[0, 0, 0, 0] += 0.5
    real_vs_real_floor(changed, seed=0)
    monkeypatch.setattr(c2st, "C2ST_STEPS", c2st.C2ST_STEPS + 1)
    real_vs_real_floor(data, seed=0)
    assert len(calls) == 5


def test_clopper_pearson_matches_scipy_and_closed_forms():
    for k, n in [(7, 20), (450, 600), (1, 3)]:
        expected = scipy.stats.binomtest(k, n).proportion_ci(0.95, method="exact")
        assert clopper_pearson_interval(k, n) == pytest.approx(
            (expected.low, expected.high), abs=1e-12)
    # All wrong / all right: the one-sided bounds (alpha/2)^(1/n) have closed forms.
    assert clopper_pearson_interval(0, 10) == pytest.approx((0.0, 1 - 0.025 ** 0.1))
    assert clopper_pearson_interval(10, 10) == pytest.approx((0.025 ** 0.1, 1.0))
    assert chance_p_value(15, 20) == pytest.approx(scipy.stats.binom.sf(14, 20, 0.5))
    assert chance_p_value(10, 10) == pytest.approx(0.5 ** 10)


def test_subject_clustered_interval_known_answers():
    # Every slice its own subject: a -/+ t_{n-1} sqrt(a (1 - a) / (n - 1)).
    right = np.r_[np.ones(30), np.zeros(10)]
    half = scipy.stats.t.ppf(0.975, 39) * np.sqrt(0.75 * 0.25 / 39)
    assert subject_clustered_interval(right, np.arange(40)) == pytest.approx(
        (0.75 - half, 0.75 + half))
    # Whole subjects right or wrong, equal sizes: the t interval of the subjects' means.
    per_subject = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0, 1.0])
    half = scipy.stats.t.ppf(0.975, 9) * scipy.stats.sem(per_subject)
    assert subject_clustered_interval(np.repeat(per_subject, 3), np.repeat(np.arange(10), 3)) \
        == pytest.approx((0.8 - half, min(1.0, 0.8 + half)))
    with pytest.raises(ValueError, match="at least 2 clusters"):
        subject_clustered_interval(right, np.zeros(40))


def test_bad_input_is_refused_with_a_clear_message():
    images, masks = _blobs(8, seed=7)
    with pytest.raises(ValueError, match="synthetic set is empty"):
        classifier_two_sample_test(images, images[:0])
    with pytest.raises(ValueError, match="real slices are .* but synthetic slices are"):
        classifier_two_sample_test(images, np.concatenate([images, images], axis=-1))
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        classifier_two_sample_test(images[..., 0], images)
    with pytest.raises(ValueError, match="needs PreparedDatasets"):
        classifier_two_sample_test(images, images, channels="image+mask")
    with pytest.raises(ValueError, match="channels must be one of"):
        classifier_two_sample_test(images, images, channels="mask")
    with pytest.raises(ValueError, match="one value per slice"):
        classifier_two_sample_test(images, images, real_groups=["a", "b"])
    with pytest.raises(ValueError, match="1 subject"):
        classifier_two_sample_test(images, images, real_groups=["a"] * 8)
    with pytest.raises(ValueError, match="too few slices"):
        classifier_two_sample_test(images[:1], images)
    with pytest.raises(ValueError, match="NaN/inf"):
        classifier_two_sample_test(np.where(images > 0, np.nan, images), images)
    ds = _dataset(images, masks, ["a"] * 8)   # all in train: no held-out subjects
    with pytest.raises(ValueError, match="val \\+ test split"):
        real_vs_real_floor(ds)
