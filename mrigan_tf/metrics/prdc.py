"""
Title: Precision, recall, density and coverage on k-nearest-neighbour manifolds
Description: Split "how good is the synthetic set" into fidelity (do synthetic samples look
real?) and diversity (does the synthetic set cover the real one?), on feature vectors.

## Why two numbers, not one

FID mixes fidelity and diversity into one distance: a generator that draws perfect copies of
one tenth of the real slices, and one that draws all of them a little blurred, can score
alike. Kynkaanniemi et al. (2019) estimate the real and the synthetic manifolds by k-nearest-
neighbour balls and ask two questions: what share of synthetic samples falls on the real
manifold (**precision**, fidelity) and what share of real samples falls on the synthetic one
(**recall**, diversity). Naeem et al. (2020) showed both are fooled by outliers (one far-away
real sample blows up a ball that swallows many bad synthetic ones) and proposed **density**
and **coverage**, which use only the real balls.

## Definitions

Real features X_1..X_N and synthetic features Y_1..Y_M (the same features as FID, see
``features.py``); Euclidean distances; NND_k(Z_i) is the distance from Z_i to its k-th nearest
neighbour within its own set (itself excluded), the radius of its ball. With k = 5:

    precision = 1/M     sum_j 1[ exists i: |Y_j - X_i| < NND_k(X_i) ]
    recall    = 1/N     sum_i 1[ exists j: |X_i - Y_j| < NND_k(Y_j) ]
    density   = 1/(k M) sum_j sum_i 1[ |Y_j - X_i| < NND_k(X_i) ]
    coverage  = 1/N     sum_i 1[ min_j |X_i - Y_j| < NND_k(X_i) ]

Precision, recall and coverage lie in [0, 1]; density is unbounded above, and its expectation
is 1 when both sets come from one distribution (each real ball holds k real neighbours, so
about k synthetic ones). The comparisons are strict, as in the reference implementation of
Naeem et al. (``prdc.compute_prdc``, which our tests match exactly); the papers write <=,
which differs only on exact ties.

## How it is computed

Pairwise distances are taken in row blocks (a few tens of MB each), so that 10,000 x 10,000
comparisons of 2048-d features fit in memory: |x - y|^2 = |x|^2 + |y|^2 - 2 x.y with one
matrix product per block, in float64, after centring both sets on the reference set's mean
(distances do not change; the cancellation error does). The distances of the k nearest
neighbours that ``k_nearest_neighbours`` returns are recomputed directly from the differences,
so an exact copy is at distance exactly 0 (``privacy.py`` relies on it).

References: T. Kynkaanniemi, T. Karras, S. Laine, J. Lehtinen, T. Aila, "Improved Precision
and Recall Metric for Assessing Generative Models", NeurIPS 2019; M. F. Naeem, S. J. Oh,
Y. Uh, Y. Choi, J. Yoo, "Reliable Fidelity and Diversity Metrics for Generative Models",
ICML 2020.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

NEAREST_K = 5
#: Entries of one block of the distance matrix (float64): 2**22 entries are 32 MB.
BLOCK_ELEMENTS = 2 ** 22
#: Bound on the rounding error of |x|^2 + |y|^2 - 2 x.y, relative to |x|^2 + |y|^2: float64
#: dot products of D terms err by at most about D * 1.1e-16, so this holds far beyond D = 2048.
SQUARED_DISTANCE_ROUNDING = 1e-10


def as_feature_matrix(vectors: np.ndarray, name: str) -> np.ndarray:
    """(N, ...) samples as an (N, D) float64 matrix, each sample flattened; N must be > 0."""
    array = np.asarray(vectors, dtype=np.float64)
    if array.ndim == 0:
        raise ValueError(f"the {name} set must be an array of samples (N, ...), got a number")
    if len(array) == 0:
        raise ValueError(f"the {name} set is empty: need at least one sample "
                         f"(got an array of shape {array.shape})")
    return array.reshape(len(array), -1)


def _check_same_dimension(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the {names[0]} and {names[1]} samples differ in size: "
                         f"{a.shape[1]} and {b.shape[1]} values per sample")


def exact_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a_i - b_i| row by row, from the differences (no cancellation)."""
    difference = a - b
    return np.sqrt(np.add.reduce(difference * difference, axis=-1))


def pairwise_distance_blocks(queries: np.ndarray, reference: np.ndarray,
                             block_elements: int = BLOCK_ELEMENTS
                             ) -> Iterator[tuple[slice, np.ndarray, float]]:
    """Euclidean distances from every query to every reference row, a block of rows at a time.

    Yields ``(rows, distances, tolerance)``: ``distances[a, b]`` is the distance from
    ``queries[rows][a]`` to ``reference[b]``, shape (rows, len(reference)), float64, within
    ``tolerance`` of the exact distance. Both inputs are (N, D) matrices (``as_feature_matrix``).
    """
    centre = reference.mean(axis=0)
    q, r = queries - centre, reference - centre
    r_squared = np.einsum("ij,ij->i", r, r)
    rows_per_block = max(1, block_elements // max(1, len(r)))
    for start in range(0, len(q), rows_per_block):
        rows = slice(start, min(start + rows_per_block, len(q)))
        block = q[rows]
        block_squared = np.einsum("ij,ij->i", block, block)
        squared = block_squared[:, None] + r_squared[None, :] - 2.0 * (block @ r.T)
        # |sqrt(u) - sqrt(v)| <= sqrt(|u - v|): the squared distance's error bound gives the
        # distance's.
        tolerance = np.sqrt(SQUARED_DISTANCE_ROUNDING * (block_squared.max() + r_squared.max()))
        yield rows, np.sqrt(np.maximum(squared, 0.0)), float(tolerance)


def k_nearest_neighbours(queries: np.ndarray, reference: np.ndarray, k: int,
                         block_elements: int = BLOCK_ELEMENTS) -> tuple[np.ndarray, np.ndarray]:
    """Per query: the distances to its ``k`` nearest reference rows, nearest first, and their
    indices into ``reference``; both of shape (len(queries), k).

    Inputs are (N, ...) arrays, flattened per sample. The neighbours are found on the block
    distances; their distances are then recomputed from the differences (an exact copy is at
    distance 0). A query that is itself a reference row is its own nearest neighbour.
    """
    q = as_feature_matrix(queries, "query")
    r = as_feature_matrix(reference, "reference")
    _check_same_dimension(q, r, ("query", "reference"))
    if not 1 <= k <= len(r):
        raise ValueError(f"asked for {k} nearest neighbours among {len(r)} reference samples; "
                         f"k must be between 1 and the number of reference samples")
    indices = np.empty((len(q), k), dtype=np.int64)
    exact = np.empty((len(q), k))
    for rows, distances, _ in pairwise_distance_blocks(q, r, block_elements):
        indices[rows] = np.argpartition(distances, k - 1, axis=1)[:, :k]
    rows_per_block = max(1, block_elements // (k * q.shape[1]))
    for start in range(0, len(q), rows_per_block):
        rows = slice(start, start + rows_per_block)
        exact[rows] = exact_distances(q[rows, None, :], r[indices[rows]])
    order = np.argsort(exact, axis=1, kind="stable")
    return np.take_along_axis(exact, order, axis=1), np.take_along_axis(indices, order, axis=1)


def neighbourhood_radii(features: np.ndarray, k: int = NEAREST_K,
                        block_elements: int = BLOCK_ELEMENTS) -> np.ndarray:
    """NND_k: the distance from each sample to its k-th nearest *other* sample of the same set.

    A duplicate counts as a neighbour at distance 0, as in the reference implementation
    (which takes the (k+1)-th smallest distance, the sample itself being the first).
    """
    f = as_feature_matrix(features, "feature")
    if len(f) <= k:
        raise ValueError(f"k-nearest-neighbour radii with k={k} need more than {k} samples, "
                         f"got {len(f)}")
    distances, _ = k_nearest_neighbours(f, f, k + 1, block_elements)
    return distances[:, k]


@dataclasses.dataclass(frozen=True)
class PrecisionRecallDensityCoverage:
    """The four manifold metrics (see the module docstring) and what they were computed on."""

    precision: float
    recall: float
    density: float
    coverage: float
    nearest_k: int
    n_real: int
    n_synthetic: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def precision_recall_density_coverage(real_features: np.ndarray,
                                      synthetic_features: np.ndarray,
                                      nearest_k: int = NEAREST_K,
                                      block_elements: int = BLOCK_ELEMENTS
                                      ) -> PrecisionRecallDensityCoverage:
    """Precision, recall (Kynkaanniemi et al. 2019), density and coverage (Naeem et al. 2020)
    of (M, D) synthetic features against (N, D) real features, with k = ``nearest_k``.

    Both sets need more than ``nearest_k`` samples. Memory: one block of ``block_elements``
    distances at a time, plus the features.
    """
    real = as_feature_matrix(real_features, "real")
    synthetic = as_feature_matrix(synthetic_features, "synthetic")
    _check_same_dimension(real, synthetic, ("real", "synthetic"))
    if nearest_k < 1:
        raise ValueError(f"nearest_k must be at least 1, got {nearest_k}")
    real_radii = neighbourhood_radii(real, nearest_k, block_elements)
    synthetic_radii = neighbourhood_radii(synthetic, nearest_k, block_elements)

    # One pass over blocks of real rows: every count is a sum or an "any" over real rows
    # (for each synthetic sample) or over synthetic columns (for each real sample).
    on_real_manifold = np.zeros(len(synthetic), dtype=bool)
    real_balls_holding = np.zeros(len(synthetic), dtype=np.int64)
    real_on_synthetic_manifold = np.zeros(len(real), dtype=bool)
    real_covered = np.zeros(len(real), dtype=bool)
    for rows, distances, tolerance in pairwise_distance_blocks(real, synthetic, block_elements):
        # Rounding must not decide whether a sample is inside a ball: distances within the
        # tolerance of a radius are recomputed exactly. So a tie stays a tie (a shared sample
        # that is another's k-th neighbour lies on its ball, outside, as the definition says).
        near_boundary = ((np.abs(distances - real_radii[rows, None]) <= tolerance)
                         | (np.abs(distances - synthetic_radii[None, :]) <= tolerance))
        a, b = np.nonzero(near_boundary)
        distances[a, b] = exact_distances(real[rows][a], synthetic[b])
        inside_real_ball = distances < real_radii[rows, None]
        on_real_manifold |= inside_real_ball.any(axis=0)
        real_balls_holding += inside_real_ball.sum(axis=0)
        real_on_synthetic_manifold[rows] = (distances < synthetic_radii[None, :]).any(axis=1)
        real_covered[rows] = distances.min(axis=1) < real_radii[rows]
    return PrecisionRecallDensityCoverage(
        precision=float(on_real_manifold.mean()),
        recall=float(real_on_synthetic_manifold.mean()),
        density=float(real_balls_holding.sum() / (nearest_k * len(synthetic))),
        coverage=float(real_covered.mean()),
        nearest_k=int(nearest_k), n_real=int(len(real)), n_synthetic=int(len(synthetic)))
