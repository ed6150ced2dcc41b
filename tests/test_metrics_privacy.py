"""Privacy metrics: closest-record distances, the membership-inference attack and its AUC.

The controls: a "generator" returning noisy copies of its training slices must be caught; one
sampling the same distribution independently of the training slices must not.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mrigan_tf.metrics.privacy import (bootstrap_roc_auc, closest_record_summary,
                                       closest_records, membership_inference, privacy_audit,
                                       roc_auc)

sklearn_metrics = pytest.importorskip("sklearn.metrics",
                                      reason="scikit-learn comes with the dev extra 'prdc'")

SLICE = (8, 8, 1)


def _slices(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(size=(n, *SLICE)).astype(np.float32)


@pytest.fixture(scope="module")
def real_sets():
    rng = np.random.default_rng(0)
    return _slices(rng, 200), _slices(rng, 150)   # train, held-out


def test_noisy_copies_of_training_slices_are_caught(real_sets):
    train, heldout = real_sets
    rng = np.random.default_rng(1)
    copies = train[rng.integers(0, len(train), 300)] + rng.normal(0, 0.05, (300, *SLICE))
    attack = membership_inference(copies, train, heldout, n_bootstrap=300, seed=0)
    assert attack.auc > 0.8 and attack.ci_low > 0.5 and attack.flagged
    summary = closest_record_summary(copies, train, heldout)
    assert summary.synthetic_share_below_heldout_dcr_percentile > 0.9
    assert summary.synthetic_share_below_heldout_nndr_percentile > 0.9
    assert summary.synthetic_dcr_percentile < summary.heldout_dcr_percentile / 5
    assert summary.expected_share_if_not_copied == 0.05


def test_independent_samples_of_the_same_distribution_pass(real_sets):
    train, heldout = real_sets
    fresh = _slices(np.random.default_rng(2), 300)
    attack = membership_inference(fresh, train, heldout, n_bootstrap=300, seed=0)
    assert attack.ci_low <= 0.5 <= attack.ci_high and not attack.flagged
    assert abs(attack.auc - 0.5) < 0.1
    summary = closest_record_summary(fresh, train, heldout)
    assert summary.synthetic_share_below_heldout_dcr_percentile < 0.15
    assert summary.synthetic_share_below_heldout_nndr_percentile < 0.15


def test_privacy_audit_is_json_ready(real_sets):
    train, heldout = real_sets
    report = privacy_audit(_slices(np.random.default_rng(3), 50), train, heldout, n_bootstrap=50)
    assert json.loads(json.dumps(report)) == report
    assert report["flagged"] is report["membership_inference"]["flagged"] is False
    assert report["closest_record"]["n_heldout"] == 150


def test_closest_records_known_answers():
    train = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 10.0], [0.0, 10.0]])
    queries = np.array([[0.0, 0.0],     # a copy: DCR 0, NNDR 0
                        [2.0, 0.0],     # halfway between two records: NNDR 1
                        [1.0, 0.0],     # DCR 1, second 3
                        [0.0, 10.0]])   # on a duplicated record: DCR 0, NNDR 0 by convention
    found = closest_records(queries, train)
    assert found.dcr.tolist() == [0.0, 2.0, 1.0, 0.0]
    assert np.allclose(found.nndr, [0.0, 1.0, 1.0 / 3.0, 0.0])
    assert found.closest_train_index[[0, 2]].tolist() == [0, 0]


@pytest.mark.parametrize("positive, negative, expected", [
    ([3.0, 4.0], [1.0, 2.0], 1.0),      # perfect separation
    ([1.0, 2.0], [3.0, 4.0], 0.0),      # reversed
    ([5.0, 5.0], [5.0, 5.0, 5.0], 0.5),  # all tied
    ([1.0, 2.0], [1.0], 0.75),          # one win, one tie
    ([2.0], [1.0, 2.0, 3.0], 0.5),      # one win, one tie, one loss
])
def test_roc_auc_known_answers(positive, negative, expected):
    assert roc_auc(positive, negative) == pytest.approx(expected)


def test_roc_auc_agrees_with_sklearn():
    rng = np.random.default_rng(4)
    for n_pos, n_neg in ((5, 7), (40, 13), (100, 100)):
        positive = rng.integers(0, 6, n_pos).astype(float)   # few values: many ties
        negative = rng.integers(0, 5, n_neg).astype(float)
        labels = np.r_[np.ones(n_pos), np.zeros(n_neg)]
        expected = sklearn_metrics.roc_auc_score(labels, np.r_[positive, negative])
        assert roc_auc(positive, negative) == pytest.approx(expected, abs=1e-12)


def test_bootstrap_interval():
    assert bootstrap_roc_auc([3.0, 4.0], [1.0, 2.0], n_bootstrap=50) == (1.0, 1.0)
    rng = np.random.default_rng(5)
    positive, negative = rng.normal(0.3, 1, 80), rng.normal(0, 1, 90)
    low, high = bootstrap_roc_auc(positive, negative, n_bootstrap=400, seed=7)
    assert low < roc_auc(positive, negative) < high
    # A resample is a reweighting: each replicate equals the rank formula on the resample.
    # Groups of one sample each are the same as no groups.
    assert bootstrap_roc_auc(positive, negative, n_bootstrap=400, seed=7,
                             positive_groups=np.arange(80),
                             negative_groups=np.arange(90) + 1000) == (low, high)
    narrower = bootstrap_roc_auc(positive, negative, n_bootstrap=400, seed=7, confidence=0.5)
    assert low < narrower[0] <= narrower[1] < high


def test_bootstrap_replicates_equal_the_rank_formula_on_resamples():
    rng = np.random.default_rng(6)
    positive = rng.integers(0, 4, 30).astype(float)
    negative = rng.integers(0, 4, 20).astype(float)
    # With one replicate and confidence ~0, the interval is that replicate itself.
    low, _ = bootstrap_roc_auc(positive, negative, n_bootstrap=1, seed=11, confidence=1e-9)
    draws = np.random.default_rng(11)
    pos_counts = np.bincount(draws.integers(0, 30, 30), minlength=30)
    neg_counts = np.bincount(draws.integers(0, 20, 20), minlength=20)
    expected = roc_auc(np.repeat(positive, pos_counts), np.repeat(negative, neg_counts))
    assert low == pytest.approx(expected, abs=1e-12)


def test_subject_bootstrap_is_wider_for_alike_slices():
    """Ten near-identical slices per subject: the evidence is 20 subjects, not 200 slices."""
    rng = np.random.default_rng(8)

    def subjects(n):
        centres = rng.normal(size=(n, int(np.prod(SLICE))))
        return np.repeat(centres, 10, axis=0) + rng.normal(0, 0.01, (10 * n, centres.shape[1]))

    train, heldout, synthetic = subjects(20), subjects(20), subjects(30)
    ids = np.repeat(np.arange(20), 10)
    by_slice = membership_inference(synthetic, train, heldout, n_bootstrap=300)
    by_subject = membership_inference(synthetic, train, heldout, n_bootstrap=300,
                                      train_subjects=ids, heldout_subjects=ids + 100)
    assert by_subject.auc == by_slice.auc and by_subject.resampled_by == "subject"
    assert (by_subject.ci_high - by_subject.ci_low) > 2 * (by_slice.ci_high - by_slice.ci_low)


def test_same_seed_same_interval(real_sets):
    train, heldout = real_sets
    synthetic = _slices(np.random.default_rng(9), 60)
    a = membership_inference(synthetic, train, heldout, n_bootstrap=100, seed=3)
    b = membership_inference(synthetic, train, heldout, n_bootstrap=100, seed=3)
    c = membership_inference(synthetic, train, heldout, n_bootstrap=100, seed=4)
    assert a == b
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high) and a.auc == c.auc


def test_clear_errors(real_sets):
    train, heldout = real_sets
    synthetic = train[:10]
    empty = np.zeros((0, *SLICE), np.float32)
    with pytest.raises(ValueError, match="synthetic set is empty"):
        membership_inference(empty, train, heldout)
    with pytest.raises(ValueError, match="train set is empty"):
        closest_record_summary(synthetic, empty, heldout)
    with pytest.raises(ValueError, match="held-out set is empty"):
        privacy_audit(synthetic, train, [])
    with pytest.raises(ValueError, match="at least one positive score"):
        roc_auc([], [1.0])
    with pytest.raises(ValueError, match="at least one negative score"):
        bootstrap_roc_auc([1.0], np.array([]))
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([np.nan], [1.0])
    with pytest.raises(ValueError, match="at least 2 training samples"):
        closest_records(synthetic, train[:1])
    with pytest.raises(ValueError, match="values per sample"):
        membership_inference(synthetic[:, :4], train, heldout)
    with pytest.raises(ValueError, match="or neither"):
        membership_inference(synthetic, train, heldout, train_subjects=np.arange(len(train)))
    with pytest.raises(ValueError, match="one positive subject per score"):
        bootstrap_roc_auc([1.0, 2.0], [0.0], positive_groups=["a"])
