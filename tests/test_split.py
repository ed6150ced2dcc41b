"""mrigan_tf.data.split: subject-level, stratified, deterministic splits."""

from __future__ import annotations

from collections import Counter

import pytest

from mrigan_tf.data.split import split_subjects

SPLITS = ("train", "val", "test")


def _subjects(n_per_class: tuple[int, ...]):
    ids, classes = [], []
    for c, n in enumerate(n_per_class):
        for i in range(n):
            ids.append(f"c{c}-sub-{i:03d}")
            classes.append(c)
    return ids, classes


def test_every_subject_in_exactly_one_split():
    ids, classes = _subjects((20, 20))
    assignment = split_subjects(ids, classes, seed=0)
    assert sorted(assignment) == sorted(ids)         # each subject exactly once (dict keys)
    assert set(assignment.values()) == set(SPLITS)
    # disjointness, written out: no subject in two splits
    groups = {s: {k for k, v in assignment.items() if v == s} for s in SPLITS}
    assert not (groups["train"] & groups["val"] or groups["train"] & groups["test"]
                or groups["val"] & groups["test"])


def test_deterministic_for_a_seed_and_independent_of_input_order():
    ids, classes = _subjects((15, 25))
    a = split_subjects(ids, classes, seed=3)
    b = split_subjects(ids, classes, seed=3)
    c = split_subjects(ids[::-1], classes[::-1], seed=3)
    assert a == b == c


def test_different_seeds_give_different_splits():
    ids, classes = _subjects((20, 20))
    results = [split_subjects(ids, classes, seed=s) for s in range(4)]
    assert any(results[0] != r for r in results[1:])


@pytest.mark.parametrize("n_per_class", [(3, 3), (3, 17), (4, 5), (10, 3), (50, 50)])
def test_each_split_gets_each_class_when_three_per_class(n_per_class):
    ids, classes = _subjects(n_per_class)
    cls = dict(zip(ids, classes))
    for seed in range(3):
        assignment = split_subjects(ids, classes, seed=seed)
        for split in SPLITS:
            seen = {cls[s] for s, v in assignment.items() if v == split}
            assert seen == set(range(len(n_per_class))), (split, seed)


def test_fractions_respected_approximately():
    ids, classes = _subjects((100, 100))
    counts = Counter(split_subjects(ids, classes, fractions=(0.6, 0.25, 0.15), seed=1).values())
    assert counts["train"] == pytest.approx(120, abs=2)
    assert counts["val"] == pytest.approx(50, abs=2)
    assert counts["test"] == pytest.approx(30, abs=2)
    counts = Counter(split_subjects(ids, classes, seed=1).values())  # default 0.7/0.15/0.15
    assert counts["train"] == pytest.approx(140, abs=2)
    assert counts["val"] == pytest.approx(30, abs=2) and counts["test"] == pytest.approx(30, abs=2)


def test_stratified_by_class():
    ids, classes = _subjects((80, 20))
    cls = dict(zip(ids, classes))
    assignment = split_subjects(ids, classes, seed=0)
    for split in SPLITS:
        members = [s for s, v in assignment.items() if v == split]
        tumor_share = sum(cls[s] for s in members) / len(members)
        assert tumor_share == pytest.approx(0.2, abs=0.06), split


def test_zero_fraction_split_is_empty():
    ids, classes = _subjects((10, 10))
    counts = Counter(split_subjects(ids, classes, fractions=(0.8, 0.2, 0.0), seed=0).values())
    assert counts["test"] == 0 and counts["train"] + counts["val"] == 20


def test_small_classes_keep_every_subject():
    ids, classes = _subjects((1, 2))
    assignment = split_subjects(ids, classes, seed=0)
    assert sorted(assignment) == sorted(ids)


@pytest.mark.parametrize("fractions", [(0.5, 0.5, 0.5), (0.7, 0.2, 0.0), (1.2, -0.1, -0.1),
                                       (0.5, 0.5), (0.25, 0.25, 0.25, 0.25)])
def test_invalid_fractions_raise(fractions):
    ids, classes = _subjects((5, 5))
    with pytest.raises(ValueError, match="fractions"):
        split_subjects(ids, classes, fractions=fractions)


def test_duplicate_ids_and_length_mismatch_raise():
    with pytest.raises(ValueError, match="unique"):
        split_subjects(["a", "a", "b"], [0, 0, 1])
    with pytest.raises(ValueError, match="same length"):
        split_subjects(["a", "b"], [0])
