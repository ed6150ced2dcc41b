"""Benchmark: how long `mrigan-tf evaluate` takes for 2000 synthetic vs 2000 training slices
at 64 px (goal: a few minutes on a laptop CPU), stage by stage. Prints JSON.

The real set is the embedded phantom (40 subjects); its train split is topped up to 2000
slices with jittered copies (flip, +-2 px shift, noise) filed as extra train subjects, and the
"synthetic" set is 2000 more jittered slices, so that the sizes match the goal without
training a GAN first. Only the timings mean something here, not the metric values.
Run with `--extractor inception` to time InceptionV3 at 299 px (random weights when the
ImageNet weights are not cached: timing only).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _jittered(images: np.ndarray, masks: np.ndarray, n: int, rng: np.random.Generator):
    pick = rng.integers(0, len(images), n)
    x, m = images[pick].copy(), masks[pick].copy()
    flip = rng.random(n) < 0.5
    x[flip], m[flip] = x[flip, :, ::-1], m[flip, :, ::-1]
    shifts = rng.integers(-2, 3, (n, 2))
    for i, (dy, dx) in enumerate(shifts):
        x[i] = np.roll(x[i], (dy, dx), axis=(0, 1))
        m[i] = np.roll(m[i], (dy, dx), axis=(0, 1))
    x = np.clip(x + rng.normal(0, 0.02, x.shape), -1, 1).astype(np.float32)
    return x, m, pick


def _datasets(root: Path, n: int, size: int, subjects: int):
    from mrigan_tf.data.contract import PreparedDataset, save_dataset
    from mrigan_tf.data.phantom import PhantomConfig, build_phantom

    real = build_phantom(PhantomConfig(subjects=subjects, size=size, seed=0), progress=False)
    rng = np.random.default_rng(0)
    train = real.select("train")
    extra = max(0, n - len(train))
    x, m, pick = _jittered(train.images, train.masks, extra, rng)
    topped = PreparedDataset(
        np.concatenate([real.images, x]), np.concatenate([real.masks, m]),
        np.concatenate([real.labels, train.labels[pick]]),
        np.concatenate([real.subjects, np.char.add(train.subjects[pick], "-copy")]),
        np.concatenate([real.split, np.full(extra, "train")]), dict(real.meta))
    sx, sm, spick = _jittered(train.images, train.masks, n, np.random.default_rng(1))
    synthetic = PreparedDataset(sx, sm, train.labels[spick],
                                np.asarray([f"synthetic-{i:05d}" for i in range(n)]),
                                np.full(n, "train"), dict(real.meta, source="synthetic"))
    return save_dataset(topped, root / "real"), save_dataset(synthetic, root / "synthetic")


def main(n: int = 2000, size: int = 64, subjects: int = 40, extractor: str = "domain") -> dict:
    import tensorflow as tf

    from mrigan_tf.evaluation.report import evaluate_synthetic
    from mrigan_tf.metrics.keras_weights import INCEPTION_V3_NOTOP, find_cached_weights

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        real_dir, synthetic_dir = _datasets(Path(tmp), n, size, subjects)
        prepare = time.perf_counter() - t0
        weights = "imagenet" if find_cached_weights(INCEPTION_V3_NOTOP) else None
        t0 = time.perf_counter()
        report = evaluate_synthetic(real_dir, synthetic_dir, Path(tmp) / "evaluation",
                                    extractor=extractor, max_images=n, progress=False,
                                    inception_weights=weights)
        seconds = time.perf_counter() - t0
    return {
        "benchmark": "evaluation",
        "n_synthetic": report["sample_sizes"]["synthetic"]["total"],
        "n_train": report["sample_sizes"]["real_train"]["total"],
        "n_heldout": report["sample_sizes"]["real_heldout"]["total"],
        "size": size,
        "extractor": report["extractor"]["name"],
        "extractor_weights": report["extractor"]["weights"],
        "lpips_available": report["diversity"]["lpips"]["available"],
        "gpu": bool(tf.config.list_physical_devices("GPU")),
        "cores": os.cpu_count() or 1,
        "seconds_prepare_inputs": round(prepare, 2),
        "seconds_evaluate": round(seconds, 2),
        "seconds_per_stage": report["timings_s"],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--extractor", default="domain", choices=("domain", "inception"))
    args = parser.parse_args()
    print(json.dumps(main(n=args.n, size=args.size, extractor=args.extractor), indent=2))
