"""The project's cWGAN-GP train step against the textbook one, side by side, in images/s.

*Textbook* is the step as the keras-io WGAN-GP example writes it: a ``keras.Model`` whose
``train_step`` loops in Python over the critic steps (unrolled when ``fit`` traces it into a
plain ``tf.function``), calls the critic separately on the real and the fake batch, records
the generator's forward pass on the critic's tape, runs without XLA and is fed NumPy arrays
through ``fit(x, batch_size=...)``. *Ours* is ``ConditionalWGANGP`` as ``mrigan-tf train``
runs it: one critic call on real and fake stacked, the fake batch a constant for the critic,
the ``make_dataset`` pipeline (in-memory tensors, cache, shuffle, prefetch), and then each
speed-up that TensorFlow offers, added one at a time:

    ours_no_xla        the step and the pipeline, no XLA
    ours_xla           + jit_compile=True (the GP's nested tape and UpSampling2D compile)
    ours_xla_spe4      + steps_per_execution=4 (four steps per compiled call, no Python
                       between them)
    ours_bf16          the step and the pipeline, no XLA, under the ``mixed_bfloat16``
                       policy: float32 weights, bfloat16 convolutions (oneDNN runs them on
                       CPUs with AVX512_BF16 or AMX; ``cpu_bf16`` in the JSON says whether
                       this one has them), critic scores, losses and the penalty in float32.
                       bfloat16 has float32's range, so no loss scaling; it rounds to 3
                       significant digits, a *numerical* change the float32 variants do not make
    ours_lazy_gp       float32, no XLA, with lazy regularization: the gradient penalty on
                       one critic update in n_critic, weighted n_critic x lambda
                       (``gp_every=n_critic``): a change of *method*, which the variants above
                       do not make (its effect on training is measured apart, in the README)
    ours_bf16_lazy_gp  both: mixed_bfloat16 and lazy regularization

Both models have the same generator and critic (``build_conditional_generator`` /
``build_conditional_critic``), the same weights at the start, the same batch, n_critic,
latent size and data, and no DiffAugment. The math is the same too: the textbook model here
draws alpha uniformly and adds the epsilon (keras-io draws alpha from a normal and has no
epsilon; neither changes the speed). Layouts are channels-last (NHWC), TensorFlow's native
layout on CPUs and the layout cuDNN's tensor-core kernels prefer under mixed precision.

Images/s counts real images per generator step (``batch * steps / seconds``); each model is
warmed up first (tracing, XLA compilation) and timed inside ``fit``, from the end of one
compiled call to the end of the next, the variants taking turns (``rounds`` times) so that
they share the load of a busy machine; the median step over all rounds counts, the fastest
is reported beside it. ``phases_ms`` (and ``phases_ms_bf16``) times the pieces of one of our
steps, each compiled alone without XLA, so the bottleneck shows: the input pipeline (per
batch), one critic update without the penalty, the penalty with its gradient (the nested
tape: a double backward pass), and one generator update.

## Against the machine's own limit (issue 16, item 7)

Images/s against a textbook step says whether ours is faster; it does not say how much of the
machine either uses. So the same run also measures

* ``peak``: this machine's dense-matmul peak, a 2048 x 2048 x 2048 ``tf.matmul`` in float32
  and in bfloat16 through TensorFlow like the step (one ``tf.function``, the same thread
  pool), best of ``--peak-repeats`` products, measured before *and* after the step timings
  (the best of both counts; both are in the JSON, so a load change between them shows);
* the step's FLOPs, **counted from its traced graph** (``mrigan_tf.training.flops``): every
  ``Conv2D``, ``Conv2DBackpropInput``, ``Conv2DBackpropFilter`` and ``MatMul`` the step runs,
  the gradient penalty's double backward included, at 2 FLOPs per multiply-add; elementwise
  ops are not counted (``tests/test_flops.py`` checks the count on a Dense layer, whose known
  answer is 2 B n m forward, 4 B n m more for both gradients, and on a convolution).
  ``flops_forward_x3`` beside it is the common shortcut (3 x the players' forward FLOPs per
  call), to show how far off it is for a GAN step;
* ``step_share_of_peak_float32`` / ``..._bfloat16`` (top level, at the first size): the step's
  achieved FLOP/s (graph FLOPs / median step time) over the peak in its own dtype;
* ``layers``: each convolution's and dense layer's own FLOP/s, forward and forward + both
  gradients, at the batch the step runs it (the critic sees real and fake stacked: 2 x batch),
  and ``phases_ms``' FLOP/s per phase: where the step falls short of the peak.

``load_average_1min`` (``os.getloadavg()``) at the start and the end says how busy the
machine was; on a shared machine, compare the figures of one run only.

Run: ``.venv/bin/python benchmarks/train_step.py [--sizes 64 128] [--steps N]
[--variants textbook ours_no_xla ours_bf16]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import keras
import numpy as np
import tensorflow as tf

from mrigan_tf.data.contract import PreparedDataset
from mrigan_tf.data.pipeline import make_dataset
from mrigan_tf.models import make_gan
from mrigan_tf.models.cwgan_gp import ConditionalWGANGP
from mrigan_tf.models.losses import GP_EPSILON, gradient_penalty, interpolate
from mrigan_tf.models.mixed_precision import cpu_has_bf16, dtype_policy
from mrigan_tf.training.flops import dense_matmul_flops, function_flops

#: Per image size: model width, batch, critic steps per generator step, timed steps.
#: 128 px is kept light (the machine is a shared 2-core CPU).
SETTINGS = {
    64: {"width": 16, "batch": 32, "n_critic": 3, "steps": 4},
    128: {"width": 8, "batch": 16, "n_critic": 3, "steps": 2},
}
#: The variants measured per size: every step of the way at 64 px; at 128 px the textbook
#: step, ours with and without XLA, and the bfloat16 variants (each XLA variant costs a
#: compilation of tens of seconds on this CPU).
VARIANTS = {64: ("textbook", "ours_no_xla", "ours_xla", "ours_xla_spe4", "ours_bf16",
                 "ours_lazy_gp", "ours_bf16_lazy_gp"),
            128: ("textbook", "ours_no_xla", "ours_xla", "ours_bf16", "ours_bf16_lazy_gp")}
LATENT_DIM = 128
GP_WEIGHT = 10.0
#: The matrix side of the peak's product (2048: large enough to reach the peak on a CPU,
#: small enough to time in a second).
PEAK_SIZE = 2048


# ## The textbook step (keras-io, examples/generative/wgan_gp.py, made conditional)

class TextbookWGANGP(keras.Model):
    def __init__(self, discriminator, generator, latent_dim, discriminator_extra_steps=3,
                 gp_weight=10.0):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.d_steps = discriminator_extra_steps
        self.gp_weight = gp_weight

    def compile(self, d_optimizer, g_optimizer):
        super().compile(jit_compile=False)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer

    def gradient_penalty(self, batch_size, real_images, fake_images, labels):
        alpha = tf.random.uniform([batch_size, 1, 1, 1], 0.0, 1.0)
        interpolated = real_images + alpha * (fake_images - real_images)
        with tf.GradientTape() as gp_tape:
            gp_tape.watch(interpolated)
            pred = self.discriminator([interpolated, labels], training=True)
        grads = gp_tape.gradient(pred, [interpolated])[0]
        norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) + GP_EPSILON)
        return tf.reduce_mean((norm - 1.0) ** 2)

    def train_step(self, data):
        real_images, labels = data
        batch_size = tf.shape(real_images)[0]
        for i in range(self.d_steps):
            random_latent_vectors = tf.random.normal(shape=(batch_size, self.latent_dim))
            with tf.GradientTape() as tape:
                fake_images = self.generator([random_latent_vectors, labels], training=True)
                fake_logits = self.discriminator([fake_images, labels], training=True)
                real_logits = self.discriminator([real_images, labels], training=True)
                d_cost = tf.reduce_mean(fake_logits) - tf.reduce_mean(real_logits)
                gp = self.gradient_penalty(batch_size, real_images, fake_images, labels)
                d_loss = d_cost + gp * self.gp_weight
            d_gradient = tape.gradient(d_loss, self.discriminator.trainable_variables)
            self.d_optimizer.apply_gradients(
                zip(d_gradient, self.discriminator.trainable_variables))

        random_latent_vectors = tf.random.normal(shape=(batch_size, self.latent_dim))
        with tf.GradientTape() as tape:
            generated_images = self.generator([random_latent_vectors, labels], training=True)
            gen_img_logits = self.discriminator([generated_images, labels], training=True)
            g_loss = -tf.reduce_mean(gen_img_logits)
        gen_gradient = tape.gradient(g_loss, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(gen_gradient, self.generator.trainable_variables))
        return {"d_loss": d_loss, "g_loss": g_loss}


# ## Data and models

def random_dataset(size: int, n: int, seed: int = 0) -> PreparedDataset:
    """``n`` random slices in the dataset contract (speed does not depend on the pixels)."""
    rng = np.random.default_rng(seed)
    masks = (rng.uniform(size=(n, size, size, 1)) > 0.9).astype(np.uint8)
    return PreparedDataset(
        images=rng.uniform(-1, 1, (n, size, size, 1)).astype(np.float32), masks=masks,
        labels=(np.arange(n) % 2).astype(np.int32),
        subjects=np.array([f"s{i // 8}" for i in range(n)]),
        split=np.array(["train"] * n),
        meta={"class_names": ["healthy", "tumor"], "image_size": size, "source": "benchmark"})


def adam() -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9)


def ours(size: int, s: dict, jit: bool, steps_per_execution: int = 1,
         precision: str = "float32", lazy_gp: bool = False) -> ConditionalWGANGP:
    with dtype_policy(precision):   # layers take the policy when they are created
        model = make_gan("cwgan-gp", (size, size, 2), width=s["width"], latent_dim=LATENT_DIM,
                         n_critic=s["n_critic"], gp_weight=GP_WEIGHT,
                         gp_every=s["n_critic"] if lazy_gp else 1, seed=0)
    model.compile(adam(), adam(), jit_compile=jit, steps_per_execution=steps_per_execution)
    return model


def textbook(reference: ConditionalWGANGP, s: dict) -> TextbookWGANGP:
    """The textbook model on clones of ``reference``'s players, with the same weights."""
    generator = keras.models.clone_model(reference.generator)
    critic = keras.models.clone_model(reference.critic)
    generator.set_weights(reference.generator.get_weights())
    critic.set_weights(reference.critic.get_weights())
    model = TextbookWGANGP(critic, generator, LATENT_DIM, s["n_critic"], GP_WEIGHT)
    model.compile(adam(), adam())
    return model


# ## Timing

class _StepClock(keras.callbacks.Callback):
    """The time at which each compiled call of ``fit`` ends (a loss read waits for it)."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        float(next(iter(logs.values())))
        self.times.append(time.perf_counter())


def time_fit(model, fit_args: dict, calls: int, steps_per_call: int = 1) -> list[float]:
    """Seconds per generator step, one figure per interval between consecutive compiled
    calls of ``fit`` (``calls`` calls, so ``calls - 1`` figures).

    Measured between steps, not around ``fit``: starting and ending ``fit`` (its iterator,
    its callbacks) cost nothing per step in a real run, but here they were measured to add
    stalls of ~1.3 s at random, which decided which variant looked faster.
    """
    clock = _StepClock()
    model.fit(**fit_args, epochs=1, steps_per_epoch=calls * steps_per_call, verbose=0,
              callbacks=[clock])
    return [(b - a) / steps_per_call for a, b in zip(clock.times, clock.times[1:])]


def time_interleaved(variants: dict, batch: int, steps: int, rounds: int) -> dict:
    """Warm every variant up, then time them in turns, ``rounds`` times.

    On a shared machine the load changes from minute to minute; taking turns exposes every
    variant to the same load. The figure compared is the median step time over all rounds
    (robust to the moments other work steals the CPU); the fastest step is reported beside it.
    """
    results, seconds = {}, {name: [] for name in variants}
    for name, (model, fit_args, spe) in variants.items():
        start = time.perf_counter()
        time_fit(model, fit_args, 2, spe)
        results[name] = {"warmup_s": round(time.perf_counter() - start, 1)}
    for _ in range(rounds):
        for name, (model, fit_args, spe) in variants.items():
            seconds[name] += time_fit(model, fit_args, max(3, -(-steps // spe) + 1), spe)
    for name, runs in seconds.items():
        fastest, median = min(runs), float(np.median(runs))
        results[name].update({"images_per_s": round(batch / median, 1),
                              "step_ms": round(1000 * median, 1),
                              "step_ms_fastest": round(1000 * fastest, 1),
                              "steps_timed": len(runs)})
    return results


def time_function(fn, args, n: int) -> float:
    """Milliseconds per call of ``fn(*args)`` (a ``tf.function``), after two warm-up calls."""
    for _ in range(2):
        result = fn(*args)
    float(tf.reduce_sum(result))
    start = time.perf_counter()
    for _ in range(n):
        result = fn(*args)
    float(tf.reduce_sum(result))   # wait for the device before stopping the clock
    return round(1000 * (time.perf_counter() - start) / n, 1)


def time_phases(size: int, s: dict, pipeline: tf.data.Dataset, n: int,
                precision: str = "float32") -> dict:
    """Milliseconds of each phase of our step, each compiled alone (no XLA)."""
    model = ours(size, s, jit=False, precision=precision)
    real, labels = next(iter(pipeline))

    def critic_without_gp(real, labels):
        # The model's own critic update, on an update that draws no penalty.
        return model.discriminator_step(real, labels, penalize=False)["d_loss"]

    def penalty_and_its_gradient(real, labels):
        latent = model.draw_latent(tf.shape(real)[0])
        fake = model.generate(latent, labels, training=True)
        alpha = model.draw_interpolation_weights(tf.shape(real)[0])
        with tf.GradientTape() as tape:
            gp = gradient_penalty(model.input_gradients(interpolate(real, fake, alpha), labels))
        grads = tape.gradient(gp, model.critic.trainable_variables)
        # The last bias has no gradient here (a constant shift does not change the slope).
        return gp + 0.0 * tf.add_n([tf.reduce_sum(g) for g in grads if g is not None])

    phases = {"critic_update_without_gp": tf.function(critic_without_gp),
              "gradient_penalty_with_gradient": tf.function(penalty_and_its_gradient),
              "generator_update": tf.function(
                  lambda real, labels: model.generator_step(real, labels)["g_loss"])}
    iterator = iter(pipeline)
    next(iterator)
    start = time.perf_counter()
    for _ in range(4 * n):
        batch = next(iterator)
    float(tf.reduce_sum(batch[0]))
    data_ms = round(1000 * (time.perf_counter() - start) / (4 * n), 2)
    results = {"data_pipeline_per_batch": data_ms}
    gflop_per_s = {}
    for name, fn in phases.items():
        results[name] = time_function(fn, (real, labels), n)
        flops = function_flops(fn, real, labels)["total"]
        gflop_per_s[name] = round(flops / (results[name] / 1000) / 1e9, 1)
    return {**results, "gflop_per_s": gflop_per_s,
            "note": "one generator step = n_critic x (critic update + penalty) + generator update"}


# ## Against the peak

def matmul_peak(dtype: str, size: int = PEAK_SIZE, repeats: int = 8) -> dict:
    """GFLOP/s of a ``size``-cubed ``tf.matmul`` in ``dtype``, best of ``repeats``."""
    a = tf.cast(tf.random.normal((size, size), seed=1), dtype)
    b = tf.cast(tf.random.normal((size, size), seed=2), dtype)
    product = tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.matmul(a, b)[:1, :1], tf.float32)))
    float(product(a, b))   # trace and warm up
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        float(product(a, b))
        seconds.append(time.perf_counter() - start)
    flops = dense_matmul_flops(size, size, size)
    return {"gflop_per_s": round(flops / min(seconds) / 1e9, 1),
            "gflop_per_s_median": round(flops / float(np.median(seconds)) / 1e9, 1)}


def measure_peaks(repeats: int) -> dict:
    return {dtype: matmul_peak(dtype, repeats=repeats) for dtype in ("float32", "bfloat16")}


def step_flops(model: ConditionalWGANGP, pipeline: tf.data.Dataset) -> int:
    """FLOPs of one training step of ``model`` on a batch of ``pipeline`` (its graph)."""
    real, labels = next(iter(pipeline))
    return function_flops(lambda real, labels: model.train_step((real, labels)),
                          real, labels)["total"]


def forward_flops(network: keras.Model, batch: int) -> int:
    """Forward FLOPs of ``network`` on ``batch`` samples, from its Conv2D and Dense layers'
    shapes (2 x multiply-adds, like the graph count)."""
    total = 0
    for layer in network.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            total += 2 * batch * h * w * kh * kw * cin * cout
        elif isinstance(layer, keras.layers.Dense):
            total += dense_matmul_flops(batch, layer.kernel.shape[1], layer.kernel.shape[0])
    return total


def forward_x3_flops(model: ConditionalWGANGP, batch: int) -> int:
    """The shortcut estimate of a step's FLOPs: 3 x forward for each player call that is
    differentiated, forward alone for the fakes of the critic updates. Each critic update:
    G on B (no gradient), D on 2B; its penalty: D on B; the generator update: G and D on B."""
    g, d = forward_flops(model.generator, batch), forward_flops(model.critic, batch)
    penalized = sum(model.penalizes(i) for i in range(model.n_critic))
    return model.n_critic * (g + 3 * 2 * d) + penalized * 3 * d + 3 * (g + d)


def _time_best(fn, args, n: int) -> float:
    """Seconds of the fastest of ``n`` calls of the ``tf.function`` ``fn`` (after warm-up)."""
    float(fn(*args))
    best = np.inf
    for _ in range(n):
        start = time.perf_counter()
        float(fn(*args))
        best = min(best, time.perf_counter() - start)
    return best


def layer_speeds(model: ConditionalWGANGP, batch: int, n: int = 5) -> list[dict]:
    """Each Conv2D / Dense layer of both players timed alone at the step's batch (the critic
    at 2 x batch, real and fake stacked): forward, and forward + both gradients (3 x the
    forward's FLOPs), in GFLOP/s. Small channel counts show here."""
    rows = []
    for network, rows_in in ((model.generator, batch), (model.critic, 2 * batch)):
        for layer in network.layers:
            if isinstance(layer, keras.layers.Conv2D):
                stride = layer.strides[0]
                x = tf.random.normal((rows_in, *layer.input.shape[1:]))

                def forward(x, kernel, stride=stride):
                    return tf.nn.conv2d(x, kernel, stride, "SAME")
            elif isinstance(layer, keras.layers.Dense):
                x = tf.random.normal((rows_in, layer.kernel.shape[0]))
                forward = tf.matmul
            else:
                continue
            kernel = tf.convert_to_tensor(layer.kernel)   # a copy: the layer stays as it is

            def forward_backward(x, kernel, forward=forward):
                with tf.GradientTape() as tape:
                    tape.watch([x, kernel])
                    y = forward(x, kernel)
                dx, dk = tape.gradient(y, [x, kernel])
                return tf.reduce_sum(dx[:1]) + tf.reduce_sum(dk[:1])

            flops = function_flops(forward, x, kernel)["total"]
            t_forward = _time_best(tf.function(lambda x, k, f=forward: tf.reduce_sum(f(x, k)[:1])),
                                   (x, kernel), n)
            t_both = _time_best(tf.function(forward_backward), (x, kernel), n)
            rows.append({"network": network.name, "layer": layer.name,
                         "input": list(x.shape), "mflop_forward": round(flops / 1e6, 1),
                         "forward_ms": round(1000 * t_forward, 2),
                         "forward_gflop_per_s": round(flops / t_forward / 1e9, 1),
                         "forward_backward_ms": round(1000 * t_both, 2),
                         "forward_backward_gflop_per_s": round(3 * flops / t_both / 1e9, 1)})
    return rows


def measure_size(size: int, steps: int | None = None, phases: bool | None = None,
                 rounds: int = 3, variants: tuple[str, ...] | None = None) -> dict:
    """Every variant of ``VARIANTS[size]``; per-phase timings (default: at 64 px only)."""
    s = dict(SETTINGS[size])
    steps = steps or s["steps"]
    batch = s["batch"]
    data = random_dataset(size, n=8 * batch)
    pipeline = make_dataset(data, "train", batch_size=batch, output="joint", repeat=True)
    joint, labels = data.joint().astype(np.float32), data.labels
    keras.utils.set_random_seed(0)

    results: dict = {"settings": {**s, "steps": steps, "rounds": rounds,
                                  "latent_dim": LATENT_DIM}}
    reference = ours(size, s, jit=False)
    fed = {"x": pipeline, "shuffle": False}   # ours all read the make_dataset pipeline
    builders = {
        "textbook": lambda: (textbook(reference, s), {"x": joint, "y": labels,
                                                       "batch_size": batch}, 1),
        "ours_no_xla": lambda: (reference, fed, 1),
        "ours_xla": lambda: (ours(size, s, jit=True), fed, 1),
        "ours_xla_spe4": lambda: (ours(size, s, jit=True, steps_per_execution=4), fed, 4),
        "ours_bf16": lambda: (ours(size, s, jit=False, precision="mixed_bfloat16"), fed, 1),
        "ours_lazy_gp": lambda: (ours(size, s, jit=False, lazy_gp=True), fed, 1),
        "ours_bf16_lazy_gp": lambda: (ours(size, s, jit=False, precision="mixed_bfloat16",
                                           lazy_gp=True), fed, 1),
    }
    names = VARIANTS[size] if variants is None else [v for v in variants if v in builders]
    variants = {name: builders[name]() for name in names}
    results.update(time_interleaved(variants, batch, steps, rounds))
    # The step's FLOPs from its graph, per variant of the same method (the lazy penalty
    # does fewer), and its FLOP/s at the median and the fastest step.
    for name, (model, _, _) in variants.items():
        if name == "textbook" or name.startswith("ours_xla"):
            continue   # the textbook's graph is ours' method; XLA rewrites the graph
        flops = step_flops(model, pipeline)
        r = results[name]
        r["gflop_per_step"] = round(flops / 1e9, 3)
        r["gflop_per_s"] = round(flops / (r["step_ms"] / 1000) / 1e9, 1)
        r["gflop_per_s_fastest"] = round(flops / (r["step_ms_fastest"] / 1000) / 1e9, 1)
    if "ours_no_xla" in variants:
        results["ours_no_xla"]["gflop_per_step_forward_x3"] = round(
            forward_x3_flops(reference, batch) / 1e9, 3)
    results["layers"] = layer_speeds(reference, batch)
    if "textbook" in variants and len(variants) > 1:
        base = results["textbook"]["images_per_s"]
        results["speedup_vs_textbook"] = {name: round(results[name]["images_per_s"] / base, 2)
                                          for name in variants if name != "textbook"}
        speedups = results["speedup_vs_textbook"]
        best = max(speedups, key=speedups.get)
        results["best"] = {"variant": best, "ratio": speedups[best]}
        # Like for like: the textbook's method *and* its float32 arithmetic; then the same
        # method in any precision. "best" above may also change the method (lazy penalty).
        for key, chosen in (("best_float32", [v for v in speedups
                                              if "bf16" not in v and "lazy" not in v]),
                            ("best_same_method", [v for v in speedups if "lazy" not in v])):
            if chosen:
                pick = max(chosen, key=speedups.get)
                results[key] = {"variant": pick, "ratio": speedups[pick]}
    if phases or (phases is None and size == 64):
        results["phases_ms"] = time_phases(size, s, pipeline, n=max(2, steps // 2))
        results["phases_ms_bf16"] = time_phases(size, s, pipeline, n=max(2, steps // 2),
                                                precision="mixed_bfloat16")
    return results


def main(sizes=(64, 128), steps: int | None = None, phases: bool | None = None,
         rounds: int = 3, variants: tuple[str, ...] | None = None,
         peak_repeats: int = 8) -> dict:
    results: dict = {
        "benchmark": "cwgan_gp_train_step_vs_textbook",
        "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
        "cpu_count": os.cpu_count(),
        # Other work on the machine slows every figure; a load above cpu_count says it did.
        "load_average_1min": round(os.getloadavg()[0], 2),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or "all",
        "machine": platform.machine(),
        "cpu_bf16": cpu_has_bf16(),
        "tensorflow": tf.__version__, "keras": keras.__version__,
        "goal": "ours >= 1.5x textbook images/s at 64 px",
        "sizes": {},
    }
    peak_before = measure_peaks(peak_repeats)
    for size in sizes:
        results["sizes"][str(size)] = measure_size(size, steps, phases, rounds, variants)
    peak_after = measure_peaks(peak_repeats)
    results["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    peak = {dtype: max(peak_before[dtype]["gflop_per_s"], peak_after[dtype]["gflop_per_s"])
            for dtype in peak_before}
    results["peak_matmul_gflop_per_s"] = {**peak, "before_steps": peak_before,
                                          "after_steps": peak_after, "size": PEAK_SIZE}
    # The step's share of the peak in its own dtype, at each size; the first size's at the
    # top level (the goal: >= 0.5).
    for size, r in results["sizes"].items():
        r["step_share_of_peak"] = {}
        for variant, dtype in (("ours_no_xla", "float32"), ("ours_bf16", "bfloat16")):
            if variant in r and "gflop_per_s" in r[variant]:
                r["step_share_of_peak"][dtype] = round(r[variant]["gflop_per_s"] / peak[dtype], 3)
    first = results["sizes"][str(sizes[0])]["step_share_of_peak"]
    results["goal_peak"] = ">= 0.5 of the matmul peak in the step's dtype"
    for dtype, share in first.items():
        results[f"step_share_of_peak_{dtype}"] = share
    for key, inner in (("ratio_best_vs_textbook", "best"),
                       ("ratio_best_float32_vs_textbook", "best_float32"),
                       ("ratio_best_same_method_vs_textbook", "best_same_method")):
        results[key] = {size: r[inner]["ratio"] for size, r in results["sizes"].items()
                        if inner in r}
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128], choices=sorted(SETTINGS))
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default per size)")
    parser.add_argument("--no-phases", action="store_true", help="skip the per-phase timings")
    parser.add_argument("--variants", nargs="+", default=None,
                        help="time only these variants (default: every one of the size's)")
    parser.add_argument("--peak-repeats", type=int, default=8,
                        help="matmul products timed for the peak, before and after the steps")
    parser.add_argument("--rounds", type=int, default=3,
                        help="times each variant is timed, in turns (the best round counts)")
    parser.add_argument("--threads", type=int, default=None,
                        help="TensorFlow intra-op threads (default: all cores). On a machine "
                             "others are using, 1 thread keeps the variants' ratio fair: "
                             "multi-threaded steps wait on their slowest thread")
    args = parser.parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    print(json.dumps(main(tuple(args.sizes), args.steps, False if args.no_phases else None,
                          args.rounds, args.variants, args.peak_repeats), indent=2))
