"""SSIM for the memorization audit: our separable NumPy filters against ``tf.image.ssim``.

The audit scores each synthetic slice against its 8 nearest training slices; this times one
batch of such pairs (64 px) both ways in the same run and checks that they agree.
"""

from __future__ import annotations

import json
import time

import numpy as np


def _cpu_seconds(fn, repeats: int = 3) -> float:
    fn()                                   # warm-up: imports, TensorFlow's first-call setup
    start = time.process_time()
    for _ in range(repeats):
        fn()
    return (time.process_time() - start) / repeats


def main() -> dict:
    import tensorflow as tf

    from mrigan_tf.metrics.ssim import FILTER_SIGMA, FILTER_SIZE, ssim_pairs

    pairs, size = 384, 64
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (pairs, size, size, 1)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.3, a.shape), -1, 1).astype(np.float32)
    x, y = tf.constant((a + 1) / 2), tf.constant((b + 1) / 2)

    def tensorflow():
        return tf.image.ssim(x, y, 1.0, filter_size=FILTER_SIZE, filter_sigma=FILTER_SIGMA).numpy()

    ours_s, tf_s = _cpu_seconds(lambda: ssim_pairs(a, b)), _cpu_seconds(tensorflow)
    return {"benchmark": "ssim", "pairs": pairs, "image_size": size,
            "cpu_seconds_numpy": round(ours_s, 4), "cpu_seconds_tf_image_ssim": round(tf_s, 4),
            "speedup": round(tf_s / ours_s, 2),
            "max_abs_difference": float(np.abs(ssim_pairs(a, b) - tensorflow()).max())}


if __name__ == "__main__":
    print(json.dumps(main()))
