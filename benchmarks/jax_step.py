"""The cWGAN-GP training step on the JAX backend: images/s at 64 and 128 px, batch 64 and 256.

Runs ``mrigan_tf.training.jax_trainer.JaxGANTrainer`` (one jit-compiled function per
generator step: n_critic = 5 critic updates with the gradient penalty + 1 generator update,
DiffAugment on) on whatever device JAX sees. ``images_per_s`` counts real images per
generator step (batch / step time); ``critic_images_per_s`` counts the real images the
critic consumes (batch * n_critic per step), as WGAN papers report, comparable with
``benchmarks/cwgan_step.py`` (the TensorFlow step).

It needs no TensorFlow (the GPU machines lent to the project have JAX and Keras only):
nothing it imports pulls TensorFlow in, and ``tensorflow_imported`` in the output says so.

Without JAX installed it prints ``{"benchmark": "jax_step", "skipped": "..."}`` and exits 0,
so ``make bench`` still runs. The Keras backend must be chosen before Keras is imported, so
this script sets ``KERAS_BACKEND=jax`` itself.

Run: ``.venv/bin/python benchmarks/jax_step.py [--quick] [--width 64]``. ``--quick`` (for
CPUs) measures 64 px at batch 16 only, width 16, with a few steps.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time

N_CRITIC = 5
AUGMENT = "translation,cutout,brightness,contrast"


def time_jax_step(image_size: int, batch_size: int, width: int, warmup_steps: int,
                  timed_steps: int, seed: int = 0) -> dict:
    """Seconds and images/s of ``timed_steps`` JAX cWGAN-GP steps on random data."""
    import jax
    import numpy as np

    from mrigan_tf.models.cwgan_gp import make_cwgan_gp
    from mrigan_tf.training.jax_trainer import JaxGANTrainer

    model = make_cwgan_gp((image_size, image_size, 2), width=width, latent_dim=128,
                          n_critic=N_CRITIC, augment=AUGMENT, seed=seed)
    trainer = JaxGANTrainer(model, seed=seed)
    rng = np.random.default_rng(seed)
    # On the device once, as a data pipeline with prefetching would hand it over.
    images = jax.device_put(rng.uniform(-1, 1, (batch_size, image_size, image_size, 2)).astype("float32"))
    labels = jax.device_put((np.arange(batch_size) % 2).astype("int32"))

    start = time.perf_counter()
    for _ in range(warmup_steps):
        logs = trainer.train_step(images, labels)
    float(logs["g_loss"])  # wait for the device before starting the clock
    warmup_s = time.perf_counter() - start

    start = time.perf_counter()
    for _ in range(timed_steps):
        logs = trainer.train_step(images, labels)
    float(logs["g_loss"])
    seconds = time.perf_counter() - start
    per_s = batch_size * timed_steps / seconds
    return {
        "images_per_s": round(per_s, 1),
        "critic_images_per_s": round(per_s * N_CRITIC, 1),
        "step_ms": round(1000 * seconds / timed_steps, 1),
        "warmup_s": round(warmup_s, 2),
        "finite": bool(all(np.isfinite(float(v)) for v in logs.values())),
        "params": int(model.generator.count_params() + model.critic.count_params()),
    }


def main(quick: bool = False, width: int = 64) -> dict:
    if importlib.util.find_spec("jax") is None:
        return {"benchmark": "jax_step",
                "skipped": "JAX is not installed (pip install -e '.[dev]' or 'jax[cpu]')"}
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    if keras.backend.backend() != "jax":
        return {"benchmark": "jax_step", "skipped": f"Keras was already imported with the "
                f"{keras.backend.backend()!r} backend; run this script in its own process"}
    import jax

    devices = jax.devices()
    results: dict = {
        "benchmark": "jax_step",
        "device": f"{devices[0].platform}: {devices[0].device_kind}",
        "device_count": len(devices),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "jax": jax.__version__, "keras": keras.__version__,
        "n_critic": N_CRITIC, "augment": AUGMENT,
        "train_step": {},
    }
    if quick:
        configs, width, warmup, timed = [(64, 16)], min(width, 16), 1, 2
    else:
        configs, warmup, timed = [(64, 64), (64, 256), (128, 64), (128, 256)], 2, 10
    results["width"] = width
    for size, batch in configs:
        key = f"{size}px_batch{batch}"
        try:
            results["train_step"][key] = time_jax_step(size, batch, width, warmup, timed)
        except Exception as exc:  # e.g. out of device memory at 128 px / batch 256: report it
            results["train_step"][key] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    results["tensorflow_imported"] = "tensorflow" in sys.modules
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="CPU-sized: 64 px, batch 16, width <= 16, 2 timed steps")
    parser.add_argument("--width", type=int, default=64, help="model width (default 64)")
    args = parser.parse_args()
    print(json.dumps(main(args.quick, args.width), indent=2))
    sys.exit(0)
