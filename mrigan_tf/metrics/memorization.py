"""
Title: Memorization audit: are synthetic slices copies of training slices?
Description: Compare how close each synthetic slice comes to the training set with how close
genuinely new real slices (the held-out test split) come to it.

## The idea

A generator that memorizes reproduces training slices, maybe with a little noise. Nearness
alone proves nothing: brain slices are alike, and a new subject's slice can sit very close to
some training slice. So the yardstick is the real data itself. For every held-out real slice
(other subjects, never seen in training) we find its nearest training slice; that
distribution says how near "new" looks. Synthetic slices that come nearer than almost all
held-out slices do are suspicious.

## Definitions

Similarity is measured twice: Pearson correlation of the pixels, and SSIM
(``ssim.ssim_pairs``). For a slice x and the training set T:

    nn(x) = max_{t in T} sim(x, t)

With h_i = nn(heldout_i) and s_j = nn(synthetic_j), for p in {0, 1, 5} percent:

    threshold_p = the (100 - p)-th percentile of {h_i}   (p = 0: the largest h_i)
    fraction_p  = share of synthetic j with s_j > threshold_p

When class labels are given, threshold_p is computed per class (held-out slices of the
synthetic slice's class), since e.g. healthy slices are more alike than tumor slices.

A generator that samples new slices from the real distribution gives fraction_p close to
p / 100 (for p = 0, about 1 / (number of held-out slices + 1)); a copying one gives a
fraction near 1. We call memorization **suspected** when fraction_5 >= 3 x 0.05 = 0.15,
for either similarity. With fewer than 20 held-out slices the percentiles are coarse: the
report gives the sample sizes.

## Speed

Correlations are matrix products of standardized pixel vectors (2000 x 2000 slices at 64 px
take well under a second). SSIM is too slow for all pairs, so it is computed only against
each query's ``top_k`` most-correlated training slices: nn_SSIM is the best SSIM among those
candidates (a lower bound on the exact nearest-SSIM, equal to it whenever the most similar
slice by SSIM is among the top_k by correlation, which is almost always the case for near
copies, the case that matters).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mrigan_tf.metrics.nearest_neighbour import top_k_correlation
from mrigan_tf.metrics.ssim import ssim_pairs

PERCENTILES = (0, 1, 5)
SUSPECT_PERCENTILE = 5
SUSPECT_FACTOR = 3.0


@dataclasses.dataclass
class NearestTraining:
    """Each query's nearest training slice by correlation and by SSIM (indices into train)."""

    correlation: np.ndarray
    correlation_index: np.ndarray
    ssim: np.ndarray
    ssim_index: np.ndarray


def nearest_training_slices(queries: np.ndarray, train: np.ndarray, top_k: int = 8,
                            batch_size: int = 2048) -> NearestTraining:
    """Nearest training slice of every query by correlation, and by SSIM among the top_k."""
    corr, idx = top_k_correlation(queries, train, top_k)
    k = idx.shape[1]
    flat_q = np.repeat(np.arange(len(queries)), k)
    flat_t = idx.ravel()
    ssim = np.concatenate([ssim_pairs(queries[flat_q[s:s + batch_size]],
                                      train[flat_t[s:s + batch_size]])
                           for s in range(0, len(flat_q), batch_size)]).reshape(len(queries), k)
    best = ssim.argmax(axis=1)
    rows = np.arange(len(queries))
    return NearestTraining(correlation=corr[:, 0], correlation_index=idx[:, 0],
                           ssim=ssim[rows, best], ssim_index=idx[rows, best])


def _exceedance(synthetic: np.ndarray, heldout: np.ndarray, synthetic_groups: np.ndarray,
                heldout_groups: np.ndarray) -> dict:
    """Exceedance fractions, with thresholds taken within each group (class)."""
    out = {}
    for p in PERCENTILES:
        above = np.zeros(len(synthetic), dtype=bool)
        thresholds = {}
        for g in np.unique(synthetic_groups):
            h = heldout[heldout_groups == g]
            if len(h) == 0:   # no held-out slice of this class: use all of them
                h = heldout
            threshold = float(np.max(h) if p == 0 else np.percentile(h, 100 - p))
            thresholds[str(g)] = threshold
            above |= (synthetic_groups == g) & (synthetic > threshold)
        out[f"p{p}"] = {"thresholds": thresholds,
                        "fraction_synthetic_above": float(np.mean(above)),
                        "expected_if_independent": (1.0 / (len(heldout) + 1) if p == 0
                                                    else p / 100.0)}
    return out


def _summary(values: np.ndarray) -> dict:
    return {"mean": float(np.mean(values)), "median": float(np.median(values)),
            "p95": float(np.percentile(values, 95)), "max": float(np.max(values))}


def memorization_audit(synthetic: np.ndarray, train: np.ndarray, heldout: np.ndarray,
                       top_k: int = 8, n_pairs: int = 8,
                       synthetic_labels: np.ndarray | None = None,
                       heldout_labels: np.ndarray | None = None) -> dict:
    """Audit (N, H, W, 1) synthetic slices against the training slices, with held-out real
    slices as the yardstick (see the module docstring for the exact definitions).

    Returns a JSON-ready dict: per similarity ("ssim", "correlation") the nearest-neighbour
    summaries for synthetic and held-out slices, the exceedance fractions, ``suspected``; and
    ``closest_pairs``: the ``n_pairs`` synthetic slices nearest to a training slice by SSIM
    (indices into ``synthetic`` and ``train``) for a figure.

    With ``synthetic_labels`` and ``heldout_labels``, the thresholds are taken per class
    (a synthetic tumor slice is compared with held-out tumor slices): classes differ in how
    alike their slices are, so one pooled threshold would depend on the class proportions.
    """
    for name, arr in (("synthetic", synthetic), ("train", train), ("heldout", heldout)):
        if len(arr) == 0:
            raise ValueError(f"the memorization audit needs {name} slices, got none")
    if (synthetic_labels is None) != (heldout_labels is None):
        raise ValueError("give labels for both the synthetic and the held-out slices, or neither")
    syn_groups = (np.zeros(len(synthetic), np.int64) if synthetic_labels is None
                  else np.asarray(synthetic_labels))
    held_groups = (np.zeros(len(heldout), np.int64) if heldout_labels is None
                   else np.asarray(heldout_labels))
    if len(syn_groups) != len(synthetic) or len(held_groups) != len(heldout):
        raise ValueError("one label per slice is needed")
    syn = nearest_training_slices(synthetic, train, top_k)
    held = nearest_training_slices(heldout, train, top_k)
    report: dict = {"n_synthetic": int(len(synthetic)), "n_train": int(len(train)),
                    "n_heldout": int(len(heldout)), "top_k": int(top_k),
                    "thresholds_per_class": synthetic_labels is not None,
                    "rule": f"suspected when at least {SUSPECT_FACTOR:g} x "
                            f"{SUSPECT_PERCENTILE / 100:g} of the synthetic slices are nearer "
                            "to a training slice than the "
                            f"{100 - SUSPECT_PERCENTILE}th percentile of the held-out real "
                            "slices are, by SSIM or by correlation"}
    suspected = False
    for name, s, h in (("ssim", syn.ssim, held.ssim),
                       ("correlation", syn.correlation, held.correlation)):
        exceed = _exceedance(s, h, syn_groups, held_groups)
        flag = (exceed[f"p{SUSPECT_PERCENTILE}"]["fraction_synthetic_above"]
                >= SUSPECT_FACTOR * SUSPECT_PERCENTILE / 100.0)
        suspected |= flag
        report[name] = {"synthetic_nn": _summary(s), "heldout_nn": _summary(h),
                        "exceedance": exceed, "suspected": bool(flag)}
    report["suspected"] = bool(suspected)
    order = np.argsort(-syn.ssim, kind="stable")[:n_pairs]
    report["closest_pairs"] = [
        {"synthetic_index": int(j), "train_index": int(syn.ssim_index[j]),
         "ssim": float(syn.ssim[j]),
         "correlation_with_that_slice": float(np.corrcoef(
             synthetic[j].ravel(), train[syn.ssim_index[j]].ravel())[0, 1])
         if np.std(synthetic[j]) > 0 and np.std(train[syn.ssim_index[j]]) > 0 else None}
        for j in order]
    return report
