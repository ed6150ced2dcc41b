"""
Title: The classifier two-sample test (C2ST)
Description: Can a small CNN tell synthetic slices from real ones it has never seen? Its
held-out accuracy, with a binomial confidence interval, is the answer (Lopez-Paz & Oquab,
"Revisiting Classifier Two-Sample Tests", ICLR 2017).

## Why a classifier, next to FID

FID compares the means and covariances of a feature space: two sets can agree in those and
still differ in ways any trained eye sees at once (a texture, a blur, a mask edge that never
quite follows the lesion). A classifier trained to separate the two sets looks for *any*
difference it can learn. If the sets are one distribution, no classifier does better than a
coin on slices it has not trained on; held-out accuracy well above 1/2 proves they differ,
and the slices it is surest about show how.

## The test

With P real and Q synthetic slices:

1. Each side is split in two halves, train and held-out. Real slices are split **by
   subject** when subject ids are given (``PreparedDataset`` inputs give them): slices of one
   subject are near copies of each other, and a classifier that met a subject in training
   would recognise its other slices, which is memorising, not telling the sets apart.
2. The sets are balanced: in each half the larger side is subsampled (seeded) to the size of
   the smaller, so chance is exactly 1/2 and no class prior can be learnt.
3. A CNN of fixed capacity is trained on the train halves (label 1 = synthetic) for a fixed
   budget, and classifies the n = 2m held-out slices (m per side). With k of them right:

       accuracy = k / n

   Under H0 (one distribution) the classifier, which never saw the held-out halves, calls
   each held-out slice "synthetic" with one probability q whatever its side, so k is a sum
   of Binomial(m, 1 - q) and Binomial(m, q): mean n/2 and a spread at most that of
   Binomial(n, 1/2) (equal when q = 1/2). The p-value is the one-sided binomial tail

       p = P(K >= k),  K ~ Binomial(n, 1/2)

   (H1: accuracy > 1/2; doing worse than a coin is no evidence of a difference), exact or
   conservative (Hoeffding, 1956). The 95% interval is Clopper-Pearson's (exact), from beta
   quantiles:

       lower = B^{-1}(0.025; k, n - k + 1),   upper = B^{-1}(0.975; k + 1, n - k)

   (lower = 0 when k = 0, upper = 1 when k = n).

   Both treat the n held-out slices as independent. Slices of one subject are not: the
   classifier tends to call all of a subject's slices the same way, so with few held-out
   subjects the accuracy spreads more than the binomial says. The result therefore also
   gives ``subject_ci_low`` / ``subject_ci_high``, an interval that counts subjects
   (``subject_clustered_interval``: the cluster-robust variance over held-out subjects,
   every synthetic slice its own subject).

The real-vs-real **floor** (``real_vs_real_floor``) is the same test with the real training
subjects against the held-out (val + test) subjects: it should sit at 1/2 within its interval,
and it tells how much of a synthetic set's score a new *real* subject would also earn. On the
demo phantom (28 train, 12 held-out subjects, so 6 per held-out half) the image floor over
seeds 0-3 was 0.452, 0.439, 0.500 and 0.417. The binomial interval of the last,
[0.359, 0.476], excludes 1/2; its subject interval, [0.231, 0.602], like all the others,
does not. With so few subjects, read the subject interval.

## The classifier: fixed capacity, fixed budget

Three 3x3 convolutions at stride 2 (32, 64, 128 filters: 93k weights for one input channel),
each followed by LeakyReLU(0.2); global average *and* global max pooling side by side (a
local defect is one cell of the last feature map, and the average alone dilutes it); one
logit. Adam, learning rate 1e-3 decaying along a cosine to zero over ``C2ST_STEPS`` = 500
steps of ``C2ST_BATCH_SIZE`` = 64 balanced slices in a seeded order: 55-85 s on two CPU
cores at 64 px, whatever the number of slices (two to three and a half minutes while other
jobs shared the cores). No augmentation (a flip could hide a left/right asymmetry of the
generator, a difference worth finding), no dropout, no early stopping (it would spend
held-out slices). Deterministic for a seed: seeded initialisers, numpy-drawn batches.

These settings are module constants on purpose and **must not be weakened to flatter a
generator**: a weaker classifier always finds a GAN "more realistic". On the shipped
reference model (``reference/phantom64``, ``benchmarks/c2st_reference.py``) this classifier
tells 2000 generated slices from the 28 training subjects' 680 slices with held-out accuracy
0.994 [0.985, 0.998] on the image alone and 0.988 [0.977, 0.995] with the mask (680 held-out
slices; 0.993 and 0.991 with the synthetic set cut to the phantom's class mix), while the
real-vs-real floor is 0.452 [0.395, 0.511] and 0.483 [0.425, 0.542] (294 held-out slices).
A smaller classifier (16, 32, 64 filters, 600 steps) already reached 0.98: there is headroom
for better generators. Every model is judged by the same classifier; if a stronger one is
ever needed, raise the constants for every model compared, and report the settings
(``TwoSampleTestResult.settings``) next to the numbers.

## The split, by subject and by class

When subject ids are given, whole subjects go to one half, in a seeded order, each to the
half it leaves closer to the other in its share of *each class's* slices. Without the class
balance, a few subjects make the halves' class mix differ by chance: with 12 held-out
subjects, one half held 53% tumor slices and the other 5%, and a classifier that learnt
"tumor" for that side scored *below* chance on its held-out half (a floor of 0.46). The
subsampling that balances the sizes keeps each half's class mix, too. Labels serve only the
split: real and synthetic sets with different class mixes still differ, and the test says so.
Class is not all that subjects differ in, though: whatever the six subjects of one half have
more of, the other six have less of, which is why the floor above leans below 1/2.

## Inputs

The image channel(s) alone (``channels="image"``) or image and mask jointly
(``channels="image+mask"``: the dataset contract's ``concat([image, 2*mask-1], -1)``,
``PreparedDataset.joint()``): the joint test also sees whether the masks fit the images.
Arrays of shape (N, H, W, C) in [-1, 1] are used as given.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence

import keras
import numpy as np
import scipy.stats

from mrigan_tf.data.contract import PreparedDataset

C2ST_FILTERS = (32, 64, 128)   # 3x3 convolutions at stride 2, 64 px -> an 8x8 feature map
#: CI's notebook smoke runs (tests/test_notebooks.py), whose numbers mean nothing, set this
#: environment variable to a shorter budget; every result and report records the steps it
#: ran with (``c2st_settings()``), so a smoke figure cannot pass for a real one.
SMOKE_STEPS_ENV = "MRIGAN_TF_SMOKE_C2ST_STEPS"
C2ST_STEPS = int(os.environ.get(SMOKE_STEPS_ENV, 500))
C2ST_BATCH_SIZE = 64
C2ST_LEARNING_RATE = 1e-3
_STEPS_PER_EXECUTION = 25   # fewer Python round trips per step; the same updates
CONFIDENCE_LEVEL = 0.95
CHANNELS = ("image", "image+mask")
FLOOR_HELDOUT_SPLITS = ("val", "test")


@dataclasses.dataclass(frozen=True, eq=False)   # it holds arrays: compare describe()s
class TwoSampleTestResult:
    """Held-out accuracy of the real-vs-synthetic classifier, its interval and p-value.

    ``surest_synthetic`` indexes the ``synthetic`` input: held-out synthetic slices, the one
    the classifier is surest is synthetic first (``surest_scores``: its P(synthetic)).
    In ``real_vs_real_floor`` "real" is the train split and "synthetic" the held-out subjects.
    """

    accuracy: float
    ci_low: float
    ci_high: float
    p_value: float
    correct: int
    heldout: int                 # n = 2 * heldout_per_side
    real_accuracy: float         # share of held-out real slices called real
    synthetic_accuracy: float    # share of held-out synthetic slices called synthetic
    train_per_side: int
    heldout_per_side: int
    channels: str
    surest_synthetic: np.ndarray
    surest_scores: np.ndarray
    seed: int
    settings: dict
    subject_ci_low: float = float("nan")    # the interval counting subjects, not slices
    subject_ci_high: float = float("nan")
    heldout_subjects: int = 0               # held-out clusters, both sides together

    @property
    def distinguishable(self) -> bool:
        """True when both intervals (slices, subjects) lie above 1/2: the sets differ."""
        return self.ci_low > 0.5 and self.subject_ci_low > 0.5

    def describe(self) -> dict:
        """The result as JSON-ready numbers (indices as a list)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["surest_synthetic"] = [int(i) for i in self.surest_synthetic]
        out["surest_scores"] = [round(float(s), 6) for s in self.surest_scores]
        out["distinguishable"] = self.distinguishable
        out["confidence_level"] = CONFIDENCE_LEVEL
        return out


def clopper_pearson_interval(correct: int, total: int,
                             level: float = CONFIDENCE_LEVEL) -> tuple[float, float]:
    """The exact (Clopper-Pearson) two-sided interval for a binomial proportion correct/total."""
    if total < 1 or not 0 <= correct <= total:
        raise ValueError(f"need 0 <= correct <= total and total >= 1, got {correct}/{total}")
    alpha = 1.0 - level
    low = 0.0 if correct == 0 else scipy.stats.beta.ppf(alpha / 2, correct, total - correct + 1)
    high = 1.0 if correct == total else scipy.stats.beta.ppf(1 - alpha / 2, correct + 1,
                                                              total - correct)
    return float(low), float(high)


def chance_p_value(correct: int, total: int) -> float:
    """One-sided P(K >= correct) for K ~ Binomial(total, 1/2): the test's p-value."""
    return float(scipy.stats.binomtest(correct, total, 0.5, alternative="greater").pvalue)


def subject_clustered_interval(correct: np.ndarray, clusters: np.ndarray,
                               level: float = CONFIDENCE_LEVEL) -> tuple[float, float]:
    """The accuracy's interval when held-out slices come in correlated clusters (subjects).

    With c_i in {0, 1} (slice i called right), a = mean(c), n slices in G clusters, the
    cluster-robust (sandwich) variance and a Student-t interval with G - 1 degrees of freedom:

        V = G / (G - 1) * sum_g (sum_{i in g} (c_i - a))^2 / n^2,   a -/+ t_{G-1} sqrt(V)

    clipped to [0, 1]. With every slice its own cluster, V = a (1 - a) / (n - 1).
    """
    correct = np.asarray(correct, np.float64)
    _, cluster_of = np.unique(np.asarray(clusters), return_inverse=True)
    n, groups = len(correct), int(cluster_of.max()) + 1 if len(correct) else 0
    if groups < 2:
        raise ValueError(f"a clustered interval needs at least 2 clusters, got {groups}")
    a = correct.mean()
    residual_sums = np.bincount(cluster_of, weights=correct - a, minlength=groups)
    half = (scipy.stats.t.ppf(0.5 + level / 2, groups - 1)
            * np.sqrt(groups / (groups - 1) * np.sum(residual_sums ** 2) / n ** 2))
    return float(max(0.0, a - half)), float(min(1.0, a + half))


def build_c2st_classifier(input_shape: Sequence[int], seed: int = 0) -> keras.Model:
    """The fixed CNN (uncompiled): slices (H, W, C) -> the logit of "synthetic"."""
    def init(k):
        return keras.initializers.GlorotUniform(seed=seed * 101 + k)

    inputs = keras.Input(tuple(input_shape), name="slice")
    x = inputs
    for k, filters in enumerate(C2ST_FILTERS):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same",
                                kernel_initializer=init(k), name=f"conv{k + 1}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"act{k + 1}")(x)
    x = keras.layers.Concatenate(name="pool")([
        keras.layers.GlobalAveragePooling2D(name="avg_pool")(x),
        keras.layers.GlobalMaxPooling2D(name="max_pool")(x)])
    logit = keras.layers.Dense(1, kernel_initializer=init(len(C2ST_FILTERS)), name="logit")(x)
    return keras.Model(inputs, logit, name="c2st_classifier")


#: One compiled classifier per input shape and schedule. A test reloads its seed's initial
#: weights and the optimizer's initial state into it, so the train step is traced once per
#: process instead of once per test (about 2 s each: an evaluation runs several tests,
#: the test suite hundreds); what it learns is what a new classifier would learn.
_COMPILED: dict[tuple, tuple[keras.Model, list[np.ndarray]]] = {}


def _untrained_classifier(input_shape: Sequence[int], seed: int) -> keras.Model:
    """The compiled classifier for ``input_shape``, as ``build_c2st_classifier(seed)`` with
    a new optimizer would start."""
    key = (tuple(input_shape), C2ST_STEPS, C2ST_LEARNING_RATE, _STEPS_PER_EXECUTION,
           keras.config.dtype_policy().name)
    fresh = build_c2st_classifier(input_shape, seed=seed)
    if key not in _COMPILED:
        fresh.compile(optimizer=keras.optimizers.Adam(
                          keras.optimizers.schedules.CosineDecay(C2ST_LEARNING_RATE, C2ST_STEPS)),
                      loss=keras.losses.BinaryCrossentropy(from_logits=True), jit_compile=False,
                      steps_per_execution=_STEPS_PER_EXECUTION)
        fresh.optimizer.build(fresh.trainable_variables)
        _COMPILED[key] = (fresh, [np.array(v) for v in fresh.optimizer.variables])
        return fresh
    model, optimizer_start = _COMPILED[key]
    model.set_weights(fresh.get_weights())
    for variable, value in zip(model.optimizer.variables, optimizer_start):
        variable.assign(value)
    return model


class _Batches(keras.utils.PyDataset):
    """The whole training schedule, batch by batch, in a fixed (seeded) order."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, order: np.ndarray,
                 batch_size: int):
        super().__init__()
        self.images, self.labels, self.order, self.batch_size = images, labels, order, batch_size

    def __len__(self) -> int:
        return len(self.order) // self.batch_size

    def __getitem__(self, i: int):
        index = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        return self.images[index], self.labels[index]


def _as_slices(data, channels: str, name: str):
    """(N, H, W, C) float32 slices, subject ids and class labels (``None``: not known)."""
    if channels not in CHANNELS:
        raise ValueError(f"channels must be one of {CHANNELS}, got {channels!r}")
    if isinstance(data, PreparedDataset):
        images = data.images if channels == "image" else data.joint()
        return np.asarray(images, np.float32), np.asarray(data.subjects), np.asarray(data.labels)
    if channels != "image":
        raise ValueError(f"channels={channels!r} needs PreparedDatasets (they hold the masks); "
                         f"pass {name} as a dataset, or the joint array itself "
                         "(PreparedDataset.joint()) with channels='image'")
    images = np.asarray(data, np.float32)
    if images.ndim != 4:
        raise ValueError(f"{name} slices must be an (N, H, W, C) array, got shape {images.shape}")
    return images, None, None


def _split_in_half(labels: np.ndarray, groups: np.ndarray | None, rng: np.random.Generator,
                   name: str) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out indices with the same class mix; whole groups per half if given."""
    if groups is None:
        groups = np.arange(len(labels))
    names, group_of = np.unique(groups, return_inverse=True)
    if len(names) < 2:
        raise ValueError(f"the {name} slices come from {len(names)} subject(s); splitting them "
                         "into train and held-out halves by subject needs at least 2")
    _, label_of = np.unique(labels, return_inverse=True)
    counts = np.zeros((len(names), label_of.max() + 1))
    np.add.at(counts, (group_of, label_of), 1)
    counts /= counts.sum(axis=0)   # shares of each class: a rare class weighs as much
    # Whole subjects in a seeded order, each to the half it leaves closer to the other in
    # every class. Without the class balance, a few subjects make the halves' class mix
    # differ by chance, and what one half has too much of the other lacks: a classifier
    # that learns it scores *below* chance on the held-out half.
    filled = np.zeros((2, counts.shape[1]))
    in_train = np.zeros(len(names), dtype=bool)
    for g in rng.permutation(len(names)):
        gap = filled[0] - filled[1]
        joined = np.abs(gap + counts[g]).sum()   # the gap if g joins the train half
        apart = np.abs(gap - counts[g]).sum()
        # A tie (e.g. the second of two subjects of different classes): the emptier half.
        half = 0 if (joined, filled[0].sum()) <= (apart, filled[1].sum()) else 1
        in_train[g] = half == 0
        filled[half] += counts[g]
    train = in_train[group_of]
    return np.flatnonzero(train), np.flatnonzero(~train)


def _subsample(index: np.ndarray, labels: np.ndarray, size: int,
               rng: np.random.Generator) -> np.ndarray:
    """``size`` of ``index``, at random but keeping the class mix (systematic sampling)."""
    if len(index) <= size:
        return index
    by_class = index[np.lexsort((rng.random(len(index)), labels[index]))]
    picks = ((np.arange(size) + rng.random()) * len(index) / size).astype(int)
    return np.sort(by_class[picks])


def balanced_halves(real_count: int, synthetic_count: int, seed: int = 0,
                    real_groups: np.ndarray | None = None,
                    synthetic_groups: np.ndarray | None = None,
                    real_labels: np.ndarray | None = None,
                    synthetic_labels: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps 1 and 2 of the test: (real train, real held-out, synthetic train, synthetic
    held-out) indices. Each side is split in halves (whole groups per half when groups are
    given, the class mix of ``labels`` kept in both), then the larger side of each half is
    subsampled to the smaller's size, keeping its class mix. Seeded; sorted indices."""
    rng = np.random.default_rng([seed, 0])
    real_labels = np.zeros(real_count, int) if real_labels is None else np.asarray(real_labels)
    synthetic_labels = (np.zeros(synthetic_count, int) if synthetic_labels is None
                        else np.asarray(synthetic_labels))
    if real_count < 2 or synthetic_count < 2:
        raise ValueError(f"too few slices for a train and a held-out half on each side: "
                         f"{real_count} real, {synthetic_count} synthetic (need at least 2 each)")
    real_train, real_test = _split_in_half(real_labels, real_groups, rng, "real")
    synth_train, synth_test = _split_in_half(synthetic_labels, synthetic_groups, rng, "synthetic")
    m_train = min(len(real_train), len(synth_train))
    m_test = min(len(real_test), len(synth_test))
    return (_subsample(real_train, real_labels, m_train, rng),
            _subsample(real_test, real_labels, m_test, rng),
            _subsample(synth_train, synthetic_labels, m_train, rng),
            _subsample(synth_test, synthetic_labels, m_test, rng))


def classifier_two_sample_test(real, synthetic, seed: int = 0, channels: str = "image",
                               real_groups: Sequence | None = None,
                               synthetic_groups: Sequence | None = None,
                               real_labels: Sequence | None = None,
                               synthetic_labels: Sequence | None = None,
                               surest: int = 16) -> TwoSampleTestResult:
    """Train the fixed CNN on half of each set; its accuracy on the other halves (see above).

    ``real`` and ``synthetic``: ``PreparedDataset``s (``channels`` picks ``"image"`` or
    ``"image+mask"``; their ``subjects`` and ``labels`` serve as groups and labels) or
    (N, H, W, C) arrays in [-1, 1], used as given (``channels="image"``).
    ``*_groups``: a subject id per slice; the halves of that side never share a subject.
    ``*_labels``: a class per slice; both halves of that side keep its class mix.
    ``surest``: how many of the held-out synthetic slices most confidently called synthetic
    to return (indices into ``synthetic``). Deterministic for ``seed``.
    """
    sides = {}
    for name, data, groups, labels in (("real", real, real_groups, real_labels),
                                       ("synthetic", synthetic, synthetic_groups,
                                        synthetic_labels)):
        x, own_groups, own_labels = _as_slices(data, channels, name)
        if len(x) == 0:
            raise ValueError(f"the {name} set is empty; the two-sample test needs slices on "
                             "both sides")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"the {name} slices contain {int(np.sum(~np.isfinite(x)))} "
                             "NaN/inf values")
        groups = own_groups if groups is None else np.asarray(groups)
        labels = own_labels if labels is None else np.asarray(labels)
        for what, values in (("groups", groups), ("labels", labels)):
            if values is not None and values.shape != (len(x),):
                raise ValueError(f"{name}_{what} must hold one value per slice ({len(x)}), "
                                 f"got shape {values.shape}")
        sides[name] = (x, groups, labels)
    (x_real, real_groups, real_labels), (x_synth, synth_groups, synth_labels) = sides.values()
    if x_real.shape[1:] != x_synth.shape[1:]:
        raise ValueError(f"real slices are {x_real.shape[1:]} but synthetic slices are "
                         f"{x_synth.shape[1:]}: compare slices of one size and the same "
                         "channels (both image, or both image + mask)")

    real_train, real_test, synth_train, synth_test = balanced_halves(
        len(x_real), len(x_synth), seed, real_groups, synth_groups, real_labels, synth_labels)
    m_train, m_test = len(real_train), len(real_test)
    x_train = np.concatenate([x_real[real_train], x_synth[synth_train]])
    y_train = np.repeat(np.array([0.0, 1.0], np.float32), m_train)   # 1 = synthetic
    batch_size = min(C2ST_BATCH_SIZE, len(x_train))
    # The schedule up front: a seeded permutation of the train halves per pass, cut into
    # C2ST_STEPS batches; one fit() over it is deterministic and has no per-epoch overhead.
    rng = np.random.default_rng([seed, 1])
    passes = int(np.ceil(C2ST_STEPS * batch_size / len(x_train)))
    order = np.concatenate([rng.permutation(len(x_train)) for _ in range(passes)])
    order = order[:C2ST_STEPS * batch_size]

    model = _untrained_classifier(x_real.shape[1:], seed)
    model.fit(_Batches(x_train, y_train, order, batch_size), epochs=1, shuffle=False, verbose=0)

    x_test = np.concatenate([x_real[real_test], x_synth[synth_test]])
    # Called directly, not through predict(): no second function to trace for one pass.
    logits = np.concatenate([keras.ops.convert_to_numpy(model(x_test[i:i + 256]))[:, 0]
                             for i in range(0, len(x_test), 256)]).astype(np.float64)
    p_synthetic = 1.0 / (1.0 + np.exp(-logits))
    p_real, p_synth = p_synthetic[:m_test], p_synthetic[m_test:]
    right = np.concatenate([p_real < 0.5, p_synth >= 0.5])
    real_right, synth_right = int(np.sum(right[:m_test])), int(np.sum(right[m_test:]))
    correct, total = real_right + synth_right, 2 * m_test
    low, high = clopper_pearson_interval(correct, total)
    clusters = np.concatenate([
        [f"real/{g}" for g in (real_test if real_groups is None else real_groups[real_test])],
        [f"synthetic/{g}" for g in (synth_test if synth_groups is None
                                    else synth_groups[synth_test])]])
    subject_low, subject_high = subject_clustered_interval(right, clusters)
    surest_order = np.argsort(-p_synth, kind="stable")[:max(0, surest)]
    return TwoSampleTestResult(
        accuracy=correct / total, ci_low=low, ci_high=high,
        p_value=chance_p_value(correct, total), correct=correct, heldout=total,
        real_accuracy=real_right / m_test, synthetic_accuracy=synth_right / m_test,
        train_per_side=m_train, heldout_per_side=m_test, channels=channels,
        subject_ci_low=subject_low, subject_ci_high=subject_high,
        heldout_subjects=len(np.unique(clusters)),
        surest_synthetic=synth_test[surest_order], surest_scores=p_synth[surest_order],
        seed=seed, settings=c2st_settings())


def c2st_settings() -> dict:
    """The classifier's fixed capacity and budget, as reported beside every result."""
    return {"filters": list(C2ST_FILTERS), "steps": C2ST_STEPS, "batch_size": C2ST_BATCH_SIZE,
            "learning_rate": C2ST_LEARNING_RATE, "schedule": "cosine to 0",
            "augmentation": None}


#: Floors already computed in this process, by ``_floor_key``: evaluating several generators
#: against one real dataset (``mrigan-tf compare``, a notebook's loop) trains each floor once.
_FLOOR_CACHE: dict[str, TwoSampleTestResult] = {}
_FLOOR_CACHE_SIZE = 8


def _floor_key(dataset: PreparedDataset, seed: int, channels: str,
               heldout_splits: Sequence[str], surest: int) -> str:
    """A digest of everything the floor depends on: the slices, masks, labels, subjects and
    splits, the arguments, and the classifier's settings (a changed budget is a new floor)."""
    digest = hashlib.sha256()
    for array in (dataset.images, dataset.masks, dataset.labels, dataset.subjects,
                  dataset.split):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    digest.update(json.dumps([seed, channels, list(heldout_splits), surest, c2st_settings()],
                             sort_keys=True).encode())
    return digest.hexdigest()


def real_vs_real_floor(dataset: PreparedDataset, seed: int = 0, channels: str = "image",
                       heldout_splits: Sequence[str] = FLOOR_HELDOUT_SPLITS,
                       surest: int = 16) -> TwoSampleTestResult:
    """The same test on real train subjects vs real held-out (val + test) subjects.

    In the result, "real" is the train split and "synthetic" the held-out subjects; both
    sides are split into halves by subject. An accuracy at 1/2 within the interval is what
    a generator as good as a new real subject would score. The test is deterministic for
    its inputs, so a floor is computed once per process and reused (``_FLOOR_CACHE``).
    """
    if not isinstance(dataset, PreparedDataset):
        raise ValueError(f"the real-vs-real floor needs a PreparedDataset (it splits by subject "
                         f"and split), got {type(dataset).__name__}")
    key = _floor_key(dataset, seed, channels, heldout_splits, surest)
    if key not in _FLOOR_CACHE:
        if len(_FLOOR_CACHE) >= _FLOOR_CACHE_SIZE:
            _FLOOR_CACHE.pop(next(iter(_FLOOR_CACHE)))      # the oldest
        _FLOOR_CACHE[key] = _real_vs_real_floor(dataset, seed, channels, heldout_splits,
                                                surest)
    return _FLOOR_CACHE[key]


def _real_vs_real_floor(dataset: PreparedDataset, seed: int, channels: str,
                        heldout_splits: Sequence[str], surest: int) -> TwoSampleTestResult:
    train = dataset.select("train")
    heldout_mask = np.isin(dataset.split, list(heldout_splits))
    heldout = PreparedDataset(dataset.images[heldout_mask], dataset.masks[heldout_mask],
                              dataset.labels[heldout_mask], dataset.subjects[heldout_mask],
                              dataset.split[heldout_mask], dict(dataset.meta))
    for name, part in (("train split", train), (" + ".join(heldout_splits) + " split", heldout)):
        if len(part) == 0:
            raise ValueError(f"the real-vs-real floor needs slices in the {name}; the dataset "
                             "has none")
    return classifier_two_sample_test(train, heldout, seed=seed, channels=channels,
                                      surest=surest)
