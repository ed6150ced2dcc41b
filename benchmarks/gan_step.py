"""Train-step throughput of the GAN walk (vanilla GAN, DCGAN, WGAN), in images per second.

One ``train_step`` is what ``fit()`` runs per batch: for the GAN and DCGAN one discriminator
and one generator update, for the WGAN ``n_critic`` critic updates and one generator update
on the same real batch. Each model, at its default size, is compiled once as
``tf.function(train_step, jit_compile=...)`` (as ``fit()`` would), warmed up (tracing and XLA
compilation happen there), then timed over a number of steps on one fixed batch; a step's
result is fetched before the clock stops, so nothing is left running. Throughput is real
images consumed per second: ``batch_size * timed_steps / seconds``.

All models are measured in the same process, one after the other, so the figures compare.
By default each model runs as ``compile()`` sets it up on this machine: XLA on a GPU, not
on a CPU, where XLA's convolutions made the DCGAN and WGAN steps 1.4-2x slower when we
measured (``--jit both`` shows it; it doubles the run time).

Run: ``.venv/bin/python benchmarks/gan_step.py [--steps N] [--jit {auto,on,off,both}]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import keras
import tensorflow as tf

from mrigan_tf.models import BaseGAN, make_gan

FAMILIES = ("gan", "dcgan", "wgan")


def time_train_step(family: str, image_size: int, batch_size: int, jit_compile: bool,
                    warmup_steps: int, timed_steps: int, seed: int = 0, channels: int = 1,
                    num_classes: int = 1, model_options: dict | None = None) -> dict:
    """Seconds and images/s of ``timed_steps`` train steps of one family's model.

    ``model_options`` go to the family's factory (default: its default size);
    ``num_classes`` > 1 gives the batch alternating class labels (conditional models).
    """
    keras.utils.set_random_seed(seed)
    model = make_gan(family, (image_size, image_size, channels), seed=seed, **(model_options or {}))
    model.compile(jit_compile=jit_compile)
    images = tf.random.uniform((batch_size, image_size, image_size, channels), -1.0, 1.0, seed=seed)
    labels = tf.range(batch_size, dtype=tf.int32) % max(num_classes, 1)
    step = tf.function(model.train_step, jit_compile=jit_compile)

    compile_start = time.perf_counter()
    for _ in range(warmup_steps):
        logs = step((images, labels))
    float(logs["g_loss"])  # wait for the device before starting the clock
    warmup_s = time.perf_counter() - compile_start

    start = time.perf_counter()
    for _ in range(timed_steps):
        logs = step((images, labels))
    float(logs["g_loss"])
    seconds = time.perf_counter() - start
    return {
        "images_per_s": round(batch_size * timed_steps / seconds, 1),
        "step_ms": round(1000 * seconds / timed_steps, 1),
        "warmup_s": round(warmup_s, 2),
        "params": int(model.generator.count_params() + model.discriminator.count_params()),
    }


def main(image_size: int = 64, batch_size: int = 64, warmup_steps: int = 2,
         timed_steps: int = 10, jit: str = "auto") -> dict:
    """Measure every family; returns (and the script prints) the results as a dict.

    ``jit``: "auto" (what ``compile()`` picks here), "on", "off" or "both". Result keys are
    the family names, with ``_xla`` appended where the step was XLA-compiled.
    """
    settings = {"auto": [BaseGAN.default_jit_compile()], "on": [True], "off": [False],
                "both": [False, True]}[jit]
    results: dict = {
        "benchmark": "gan_train_step",
        "image_size": image_size,
        "batch_size": batch_size,
        "channels": 1,
        "warmup_steps": warmup_steps,
        "timed_steps": timed_steps,
        "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
        "cpu_count": os.cpu_count(),
        # Other work on the machine slows every figure; a load above cpu_count says it did.
        "load_average_1min": round(os.getloadavg()[0], 2),
        "machine": platform.machine(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "models": {},
    }
    for family in FAMILIES:
        for jit_compile in settings:
            key = f"{family}{'_xla' if jit_compile else ''}"
            results["models"][key] = time_train_step(family, image_size, batch_size, jit_compile,
                                                      warmup_steps, timed_steps)
    results["images_per_s"] = {key: r["images_per_s"] for key, r in results["models"].items()}
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (64)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (2)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (10)")
    parser.add_argument("--jit", choices=("auto", "on", "off", "both"), default="auto",
                        help="XLA compilation of the train step (auto: on with a GPU)")
    args = parser.parse_args()
    print(json.dumps(main(args.size, args.batch_size, args.warmup, args.steps, args.jit),
                     indent=2))
