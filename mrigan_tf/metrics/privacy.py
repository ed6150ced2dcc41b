"""
Title: Privacy of a synthetic dataset: closest records and membership inference
Description: Does the synthetic set give away its training slices? Distances to the closest
training record, with held-out real slices as the yardstick, and a black-box membership-
inference attack with a bootstrap confidence interval.

## The yardstick

A slice of a new subject can lie close to some training slice: brains are alike. So nearness
means nothing on its own; it is compared with how near *held-out* real slices (subjects the
generator never saw) come to the training set (Platzer & Reutterer, 2021). A generator that
samples fresh slices from the real distribution looks, to every statistic below, like one more
held-out set.

All distances are Euclidean, between flattened slices or between given feature vectors
(``prdc.k_nearest_neighbours``, exact for the neighbours it returns).

## Distance to closest record (DCR) and nearest-neighbour distance ratio (NNDR)

For a query x (a synthetic or a held-out slice) and the training set T, with d_1(x) <= d_2(x)
its distances to the nearest and the second-nearest training slice:

    DCR(x)  = d_1(x)                     (Park et al., 2018)
    NNDR(x) = d_1(x) / d_2(x)            (Zhao et al., 2021; Lowe's ratio test, 2004)

NNDR is 0 for an exact copy of one training slice and near 1 for a query in a crowd of
training slices; when d_2 = 0 (a query on a duplicated training slice) we set it to 0, as an
exact copy. We report, with p = 5:

    the p-th percentile of DCR (and of NNDR) over the synthetic and over the held-out slices;
    share_below = share of synthetic x with DCR(x) < the held-out p-th percentile of DCR

share_below is about p / 100 for a generator that does not copy, and near 1 for one that
returns noisy copies of its training slices (likewise for NNDR).

## Membership inference (GAN-Leaks, black box)

The attacker holds real slices and the synthetic set and guesses which real slices trained the
generator: a memorizing generator puts synthetic slices near its training slices. Following
the full black-box attack of Chen et al. (2020), each real slice r is scored by

    score(r) = - min_{s in synthetic} |r - s|

Members are the training slices, non-members the held-out slices. The attack's ROC AUC is the
probability that a random member scores above a random non-member, ties counting one half; it
is computed from mid-ranks (the Mann-Whitney U statistic):

    AUC = (R_members - n_m (n_m + 1) / 2) / (n_m n_n)

with R_members the sum of the members' ranks among all scores (tied scores share their mean
rank). AUC = 0.5 is chance. Its 95% confidence interval is the percentile bootstrap: members
and non-members are resampled with replacement separately (seeded), whole subjects at a time
when subject ids are given. Slices of one subject are alike, so resampling slices alone gives
too narrow an interval; pass the subjects when you have them. The attack is **flagged** when
the interval's lower bound is above 0.5: the synthetic set tells members from non-members
better than chance.

References: N. Park et al., "Data Synthesis based on Generative Adversarial Networks",
VLDB 2018; Z. Zhao, A. Kunar, R. Birke, L. Y. Chen, "CTAB-GAN", ACML 2021; D. Lowe,
"Distinctive Image Features from Scale-Invariant Keypoints", IJCV 2004; M. Platzer,
T. Reutterer, "Holdout-Based Empirical Assessment of Mixed-Type Synthetic Data", Frontiers in
Big Data 2021; D. Chen, N. Yu, Y. Zhang, M. Fritz, "GAN-Leaks: A Taxonomy of Membership
Inference Attacks against Generative Models", CCS 2020.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.stats import rankdata

from mrigan_tf.metrics.prdc import as_feature_matrix, k_nearest_neighbours

PERCENTILE = 5.0
CONFIDENCE = 0.95
N_BOOTSTRAP = 1000


def _feature_sets(**named: np.ndarray) -> dict[str, np.ndarray]:
    """Each named set as an (N, D) matrix; all must be non-empty and of one dimension."""
    sets = {name: as_feature_matrix(array, name.replace("_", "-")) for name, array in named.items()}
    sizes = {name: m.shape[1] for name, m in sets.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError("the sets differ in values per sample: "
                         + ", ".join(f"{name} {size}" for name, size in sizes.items()))
    return sets


# ## Distance to closest record and nearest-neighbour distance ratio

@dataclasses.dataclass(frozen=True)
class ClosestRecords:
    """Per query: the distance to the closest training record (DCR), the ratio of the nearest
    to the second-nearest training distance (NNDR), and the index of the closest record."""

    dcr: np.ndarray
    nndr: np.ndarray
    closest_train_index: np.ndarray


def closest_records(queries: np.ndarray, train: np.ndarray) -> ClosestRecords:
    """DCR and NNDR of every query (N, ...) against the training set (at least 2 samples)."""
    sets = _feature_sets(query=queries, train=train)
    if len(sets["train"]) < 2:
        raise ValueError(f"the nearest-neighbour distance ratio needs at least 2 training "
                         f"samples, got {len(sets['train'])}")
    distances, indices = k_nearest_neighbours(sets["query"], sets["train"], 2)
    nearest, second = distances[:, 0], distances[:, 1]
    ratio = np.divide(nearest, second, out=np.zeros_like(nearest), where=second > 0)
    return ClosestRecords(dcr=nearest, nndr=ratio, closest_train_index=indices[:, 0])


@dataclasses.dataclass(frozen=True)
class ClosestRecordSummary:
    """DCR and NNDR percentiles of synthetic and held-out slices, and the share of synthetic
    slices below the held-out percentile (about ``percentile / 100`` if nothing is copied)."""

    percentile: float
    synthetic_dcr_percentile: float
    heldout_dcr_percentile: float
    synthetic_share_below_heldout_dcr_percentile: float
    synthetic_nndr_percentile: float
    heldout_nndr_percentile: float
    synthetic_share_below_heldout_nndr_percentile: float
    synthetic_dcr_median: float
    heldout_dcr_median: float
    synthetic_nndr_median: float
    heldout_nndr_median: float
    expected_share_if_not_copied: float
    n_synthetic: int
    n_train: int
    n_heldout: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def closest_record_summary(synthetic: np.ndarray, train: np.ndarray, heldout: np.ndarray,
                           percentile: float = PERCENTILE) -> ClosestRecordSummary:
    """DCR and NNDR of the synthetic and the held-out slices against the training slices,
    summarised at the ``percentile``-th percentile (see the module docstring)."""
    sets = _feature_sets(synthetic=synthetic, train=train, held_out=heldout)
    if not 0.0 < percentile < 100.0:
        raise ValueError(f"percentile must be between 0 and 100, got {percentile}")
    syn = closest_records(sets["synthetic"], sets["train"])
    held = closest_records(sets["held_out"], sets["train"])
    dcr_threshold = float(np.percentile(held.dcr, percentile))
    nndr_threshold = float(np.percentile(held.nndr, percentile))
    return ClosestRecordSummary(
        percentile=float(percentile),
        synthetic_dcr_percentile=float(np.percentile(syn.dcr, percentile)),
        heldout_dcr_percentile=dcr_threshold,
        synthetic_share_below_heldout_dcr_percentile=float(np.mean(syn.dcr < dcr_threshold)),
        synthetic_nndr_percentile=float(np.percentile(syn.nndr, percentile)),
        heldout_nndr_percentile=nndr_threshold,
        synthetic_share_below_heldout_nndr_percentile=float(np.mean(syn.nndr < nndr_threshold)),
        synthetic_dcr_median=float(np.median(syn.dcr)),
        heldout_dcr_median=float(np.median(held.dcr)),
        synthetic_nndr_median=float(np.median(syn.nndr)),
        heldout_nndr_median=float(np.median(held.nndr)),
        expected_share_if_not_copied=float(percentile) / 100.0,
        n_synthetic=len(sets["synthetic"]), n_train=len(sets["train"]),
        n_heldout=len(sets["held_out"]))


# ## ROC AUC: a rank formula and its bootstrap

def _scores(values: np.ndarray, name: str) -> np.ndarray:
    scores = np.asarray(values, dtype=np.float64).ravel()
    if len(scores) == 0:
        raise ValueError(f"the ROC AUC needs at least one {name} score, got none")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"the {name} scores contain NaN or infinite values")
    return scores


def roc_auc(positive_scores: np.ndarray, negative_scores: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counting 1/2: the Mann-Whitney formula
    (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg) on mid-ranks."""
    pos, neg = _scores(positive_scores, "positive"), _scores(negative_scores, "negative")
    ranks = rankdata(np.concatenate([pos, neg]))          # ties share their mean rank
    n_pos, n_neg = len(pos), len(neg)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _group_codes(groups: np.ndarray | None, n: int, name: str) -> np.ndarray:
    """Integer codes 0..G-1 of the resampling units: the groups, or each sample on its own."""
    if groups is None:
        return np.arange(n)
    groups = np.asarray(groups).ravel()
    if len(groups) != n:
        raise ValueError(f"one {name} subject per score is needed: got {len(groups)} subjects "
                         f"for {n} scores")
    return np.unique(groups, return_inverse=True)[1].ravel()


def _resample_weights(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """How many times each sample is drawn when its groups are resampled with replacement."""
    n_groups = int(codes.max()) + 1
    drawn = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)
    return drawn[codes].astype(np.float64)


def bootstrap_roc_auc(positive_scores: np.ndarray, negative_scores: np.ndarray,
                      n_bootstrap: int = N_BOOTSTRAP, confidence: float = CONFIDENCE,
                      seed: int = 0, positive_groups: np.ndarray | None = None,
                      negative_groups: np.ndarray | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval (low, high) of ``roc_auc``.

    Positives and negatives are resampled separately, with replacement; by group (e.g.
    subject ids, one per score) when groups are given, else one score at a time. A resample is
    a weighting of the original scores, so each replicate is a weighted Mann-Whitney count
    (the rank formula with each score repeated as often as it was drawn).
    """
    pos, neg = _scores(positive_scores, "positive"), _scores(negative_scores, "negative")
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be at least 1, got {n_bootstrap}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    pos_codes = _group_codes(positive_groups, len(pos), "positive")
    neg_codes = _group_codes(negative_groups, len(neg), "negative")
    # For each positive: where the negatives below it end and those tied with it end.
    order = np.argsort(neg, kind="stable")
    sorted_neg = neg[order]
    below_end = np.searchsorted(sorted_neg, pos, side="left")
    tied_end = np.searchsorted(sorted_neg, pos, side="right")
    rng = np.random.default_rng(seed)
    replicates = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        pos_weights = _resample_weights(pos_codes, rng)
        neg_weights = _resample_weights(neg_codes, rng)
        cumulative = np.concatenate([[0.0], np.cumsum(neg_weights[order])])
        wins = cumulative[below_end] + 0.5 * (cumulative[tied_end] - cumulative[below_end])
        replicates[b] = (pos_weights @ wins) / (pos_weights.sum() * neg_weights.sum())
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return float(low), float(high)


# ## The membership-inference attack

@dataclasses.dataclass(frozen=True)
class MembershipInference:
    """The attack's ROC AUC (members: train slices, positives) with its bootstrap interval;
    ``flagged`` when the interval's lower bound is above 0.5."""

    auc: float
    ci_low: float
    ci_high: float
    confidence: float
    flagged: bool
    n_bootstrap: int
    seed: int
    resampled_by: str
    n_members: int
    n_nonmembers: int
    n_synthetic: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def membership_scores(real: np.ndarray, synthetic: np.ndarray) -> np.ndarray:
    """The attacker's score of each real sample: minus its distance to the closest synthetic one."""
    sets = _feature_sets(real=real, synthetic=synthetic)
    distances, _ = k_nearest_neighbours(sets["real"], sets["synthetic"], 1)
    return -distances[:, 0]


def membership_inference(synthetic: np.ndarray, train: np.ndarray, heldout: np.ndarray,
                         n_bootstrap: int = N_BOOTSTRAP, confidence: float = CONFIDENCE,
                         seed: int = 0, train_subjects: np.ndarray | None = None,
                         heldout_subjects: np.ndarray | None = None) -> MembershipInference:
    """GAN-Leaks black-box attack: can the synthetic set tell training slices (members) from
    held-out slices (non-members)? See the module docstring for the definitions.

    Give ``train_subjects`` and ``heldout_subjects`` (one id per slice) to bootstrap whole
    subjects; without them slices are resampled one by one.
    """
    sets = _feature_sets(synthetic=synthetic, train=train, held_out=heldout)
    if (train_subjects is None) != (heldout_subjects is None):
        raise ValueError("give subjects for both the train and the held-out slices, or neither")
    member = membership_scores(sets["train"], sets["synthetic"])
    nonmember = membership_scores(sets["held_out"], sets["synthetic"])
    auc = roc_auc(member, nonmember)
    low, high = bootstrap_roc_auc(member, nonmember, n_bootstrap, confidence, seed,
                                  train_subjects, heldout_subjects)
    return MembershipInference(
        auc=auc, ci_low=low, ci_high=high, confidence=float(confidence), flagged=bool(low > 0.5),
        n_bootstrap=int(n_bootstrap), seed=int(seed),
        resampled_by="slice" if train_subjects is None else "subject",
        n_members=len(member), n_nonmembers=len(nonmember), n_synthetic=len(sets["synthetic"]))


def privacy_audit(synthetic: np.ndarray, train: np.ndarray, heldout: np.ndarray,
                  percentile: float = PERCENTILE, n_bootstrap: int = N_BOOTSTRAP,
                  confidence: float = CONFIDENCE, seed: int = 0,
                  train_subjects: np.ndarray | None = None,
                  heldout_subjects: np.ndarray | None = None) -> dict:
    """Closest-record distances and the membership-inference attack, as a JSON-ready dict."""
    attack = membership_inference(synthetic, train, heldout, n_bootstrap, confidence, seed,
                                  train_subjects, heldout_subjects)
    return {
        "closest_record": closest_record_summary(synthetic, train, heldout, percentile).as_dict(),
        "membership_inference": attack.as_dict(),
        "flagged": attack.flagged,
        "rule": (f"flagged when the lower bound of the {100 * confidence:g}% bootstrap "
                 "interval of the membership-inference AUC is above 0.5"),
    }
