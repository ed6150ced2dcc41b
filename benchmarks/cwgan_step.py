"""Conditional WGAN-GP: train-step throughput with XLA on and off, and generation speed.

Measured side by side in one process, so the ratios compare under the same machine load:

* train step at 64 px, batch 64, n_critic 5 (each generator step = 5 critic updates with the
  gradient penalty's nested tape + 1 generator update), DiffAugment on; images/s counts the
  real images the critic consumes (batch * n_critic per step), as WGAN papers report;
* generation: 10,000 image/mask pairs drawn, thresholded and written as a dataset
  (dataset.npz + meta.json), for the demo-sized model and a mid-sized one. Goal: 10,000 pairs
  at 64 px in under 60 s on this machine.

Run: ``.venv/bin/python benchmarks/cwgan_step.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import keras
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_step import time_train_step  # noqa: E402  (a sibling benchmark script)

from mrigan_tf.data.contract import write_dataset_files  # noqa: E402
from mrigan_tf.models import make_gan  # noqa: E402
from mrigan_tf.synth import build_synthetic_dataset  # noqa: E402

N_CRITIC = 5


def time_generation(width: int, latent_dim: int, n: int, image_size: int = 64) -> dict:
    model = make_gan("cwgan-gp", (image_size, image_size, 2), width=width, latent_dim=latent_dim,
                     seed=0)
    start = time.perf_counter()
    ds = build_synthetic_dataset(model, ["healthy", "tumor"], n, seed=0, progress=False)
    generated = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        write_dataset_files(ds, Path(tmp))
        size_mb = (Path(tmp) / "dataset.npz").stat().st_size / 1e6
    total = time.perf_counter() - start
    return {"pairs": n, "width": width, "seconds_total": round(total, 1),
            "seconds_generating": round(generated, 1), "seconds_writing": round(total - generated, 1),
            "pairs_per_s": round(n / total, 1), "npz_mb": round(size_mb, 1),
            "goal_10k_under_60s": bool(total * 10_000 / n < 60.0)}


def main(quick: bool = False) -> dict:
    timed = 2 if quick else 5
    results: dict = {
        "benchmark": "cwgan_gp",
        "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "tensorflow": tf.__version__, "keras": keras.__version__,
        "train_step": {},
    }
    for width in (16, 32):
        options = {"width": width, "latent_dim": 128, "n_critic": N_CRITIC,
                   "augment": "translation,cutout,brightness,contrast"}
        for jit in (False, True):
            r = time_train_step("cwgan-gp", 64, 64, jit, warmup_steps=2, timed_steps=timed,
                                channels=2, num_classes=2, model_options=options)
            r["critic_images_per_s"] = round(r["images_per_s"] * N_CRITIC, 1)
            results["train_step"][f"width{width}_{'xla' if jit else 'no_xla'}"] = r
        pair = results["train_step"]
        results["train_step"][f"width{width}_xla_speedup"] = round(
            pair[f"width{width}_xla"]["images_per_s"] / pair[f"width{width}_no_xla"]["images_per_s"], 2)
    n = 2_000 if quick else 10_000
    results["generation"] = {f"width{w}": time_generation(w, 128 if w > 16 else 64, n)
                             for w in (16, 32)}
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, 2,000 pairs")
    print(json.dumps(main(parser.parse_args().quick), indent=2))
