"""Mixed precision: both optimizers loss-scaled, the GP's inner gradient too, float32 losses.

GPUs are where ``mixed_float16`` pays; these tests run the same code path on the CPU (slowly,
on tiny models), where float16 rounds and underflows exactly as it does on a GPU.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from mrigan_tf.models import make_gan
from mrigan_tf.models.cwgan_gp import ConditionalWGANGP
from mrigan_tf.models.losses import gradient_penalty, interpolate
from mrigan_tf.models.mixed_precision import (computes_in_float16, current_loss_scale,
                                              dtype_policy)

from conftest import TINY_CWGAN

INITIAL_SCALE = 2.0 ** 15


def test_dtype_policy_is_scoped_and_checked():
    before = keras.config.dtype_policy().name
    with dtype_policy("mixed_float16"):
        model = make_gan("dcgan", (16, 16, 1), latent_dim=8, width=4)
        assert keras.config.dtype_policy().name == "mixed_float16"
    assert keras.config.dtype_policy().name == before
    assert computes_in_float16(model.generator, model.discriminator)
    assert all(v.dtype == "float32" for v in model.trainable_variables)   # weights stay float32
    with pytest.raises(ValueError, match="unknown precision policy"):
        with dtype_policy("float8"):
            pass


def test_compile_wraps_both_optimizers_only_for_float16_players():
    with dtype_policy("mixed_float16"):
        mixed = make_gan("cwgan-gp", (16, 16, 2), **TINY_CWGAN)
    mixed.compile(jit_compile=False)
    assert isinstance(mixed.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(mixed.g_optimizer, keras.optimizers.LossScaleOptimizer)
    plain = make_gan("cwgan-gp", (16, 16, 2), **TINY_CWGAN)
    plain.compile(jit_compile=False)
    assert not isinstance(plain.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert not isinstance(plain.g_optimizer, keras.optimizers.LossScaleOptimizer)


def _underflowing_critic(policy: str) -> keras.Model:
    """x -> 4000 * sum(x) -> 1e-4 * h -> (float32) 1e-4 * y: a critic whose backward pass
    carries 1e-8 between its float16 layers, below float16's smallest subnormal (6e-8)."""
    const = keras.initializers.Constant
    with dtype_policy(policy):
        image = keras.Input((4, 4, 1))
        label = keras.Input((), dtype="int32")
        x = keras.layers.Flatten()(image)
        h = keras.layers.Dense(1, use_bias=False, kernel_initializer=const(4000.0))(x)
        y = keras.layers.Dense(1, use_bias=False, kernel_initializer=const(1e-4))(h)
        score = keras.layers.Dense(1, use_bias=False, kernel_initializer=const(1e-4),
                                   dtype="float32")(y)
        return keras.Model([image, label], score)


def _tiny_generator() -> keras.Model:
    """(z, class) -> (4, 4, 1) in float32: the other player of a model around a critic."""
    z = keras.Input((4,))
    label = keras.Input((), dtype="int32")
    x = keras.layers.Concatenate()([z, keras.layers.Embedding(2, 2)(label)])
    x = keras.layers.Dense(16, activation="tanh")(x)
    return keras.Model([z, label], keras.layers.Reshape((4, 4, 1))(x))


def _penalty(policy: str, loss_scale: bool) -> float:
    """The gradient penalty of ``_underflowing_critic(policy)`` at fixed interpolates, as a
    ConditionalWGANGP computes it (``input_gradients``), its d_optimizer loss-scaled or not."""
    model = ConditionalWGANGP(_tiny_generator(), _underflowing_critic(policy), latent_dim=4)
    model.compile(keras.optimizers.SGD(), keras.optimizers.SGD(), jit_compile=False,
                  loss_scale=loss_scale)
    scale = current_loss_scale(model.d_optimizer)
    if loss_scale:
        assert float(scale.numpy()) == INITIAL_SCALE
    else:
        assert scale is None
    real = tf.fill((2, 4, 4, 1), 0.5)
    fake = tf.fill((2, 4, 4, 1), 0.5)
    labels = tf.zeros((2,), tf.int32)
    alpha = tf.fill((2, 1, 1, 1), 0.3)
    grads = model.input_gradients(interpolate(real, fake, alpha), labels)
    assert grads.dtype == tf.float32
    return float(gradient_penalty(grads))


def test_gradient_penalty_scales_its_inner_gradient():
    # d score / d x = 4000 * 1e-4 * 1e-4 = 4e-5 per pixel, norm 16 * 4e-5 / 4 = 1.6e-4.
    reference = _penalty("float32", loss_scale=False)
    assert reference == pytest.approx((1.0 - 1.6e-4) ** 2, abs=1e-7)
    # Scaling a float32 critic's input gradient changes nothing.
    assert _penalty("float32", loss_scale=True) == pytest.approx(reference, abs=1e-7)
    unscaled = _penalty("mixed_float16", loss_scale=False)
    scaled = _penalty("mixed_float16", loss_scale=True)
    assert unscaled > reference + 2e-4        # the gradient flushed to zero: penalty 1
    assert scaled == pytest.approx(reference, abs=2e-6)


def _fit(model, image_shape, steps: int, seed: int = 0, callbacks=()):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (8 * steps, *image_shape)).astype(np.float32)
    labels = (np.arange(8 * steps) % 2).astype(np.int32)
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    return model.fit(data, epochs=1, verbose=0, shuffle=False, callbacks=list(callbacks)).history


class LossScaleLog(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.scales: list[tuple[float, float]] = []

    def on_train_batch_end(self, batch, logs=None):
        self.scales.append((float(self.model.d_optimizer.dynamic_scale.numpy()),
                            float(self.model.g_optimizer.dynamic_scale.numpy())))


def test_mixed_float16_cwgan_gp_steps_stay_finite_and_the_loss_scale_settles():
    with dtype_policy("mixed_float16"):
        model = make_gan("cwgan-gp", (16, 16, 2), augment="translation,brightness",
                         **TINY_CWGAN)
    model.compile(jit_compile=False)
    before = [w.copy() for w in model.get_weights()]
    steps, log = 8, LossScaleLog()
    history = _fit(model, (16, 16, 2), steps, callbacks=[log])
    assert all(np.isfinite(v[-1]) for v in history.values()), history
    # The critic's scale halves while the penalty's second-order terms overflow float16
    # (a skipped update each time), then settles: it does not keep falling towards 1.
    d_scales = [d for d, _ in log.scales]
    assert d_scales[-1] == d_scales[-2] == d_scales[-3] >= 2.0 ** 7, d_scales
    assert min(g for _, g in log.scales) >= INITIAL_SCALE / 4
    # Once settled, every update is applied (a skipped one does not advance the inner
    # optimizer): at most one skip per halving.
    halvings = int(np.log2(INITIAL_SCALE / d_scales[-1]))
    assert int(model.d_optimizer.iterations) >= TINY_CWGAN["n_critic"] * steps - halvings
    assert int(model.g_optimizer.iterations) >= steps - 2
    moved = max(float(np.abs(a - b).max()) for a, b in zip(model.get_weights(), before))
    assert moved > 1e-5
    samples = model.sample(4)
    assert samples.dtype == np.float32 and np.isfinite(samples).all()


@pytest.mark.parametrize("family,options", [
    ("gan", {"latent_dim": 8, "generator_units": [16], "discriminator_units": [16]}),
    ("dcgan", {"latent_dim": 8, "width": 4}),
    ("wgan", {"latent_dim": 8, "width": 4, "n_critic": 2}),
])
def test_every_gan_of_the_walk_trains_in_mixed_float16(family, options):
    with dtype_policy("mixed_float16"):
        model = make_gan(family, (16, 16, 1), seed=0, **options)
    model.compile(jit_compile=False)
    history = _fit(model, (16, 16, 1), steps=3)
    assert all(np.isfinite(v[-1]) for v in history.values()), history
    assert float(model.g_optimizer.dynamic_scale.numpy()) >= INITIAL_SCALE / 8


def test_runner_trains_saves_and_reloads_a_mixed_precision_run(squares_dir, tmp_path):
    from mrigan_tf.training.runner import TrainConfig, load_run, train_gan

    config = TrainConfig(model="cwgan-gp", data=str(squares_dir), epochs=1, steps_per_epoch=2,
                         batch_size=8, jit_compile=False, samples=4, precision="mixed_float16",
                         model_options=dict(TINY_CWGAN))
    trained, history = train_gan(config, tmp_path / "run", verbose=0)
    assert keras.config.dtype_policy().name == "float32"      # the global policy is back
    assert all(np.isfinite(v[-1]) for v in history.values())
    model, saved, path = load_run(tmp_path / "run")
    assert path.name == "model.keras" and saved["train"]["precision"] == "mixed_float16"
    assert computes_in_float16(model.generator)
    assert isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
    np.testing.assert_allclose(model.sample(4, seed=1), trained.sample(4, seed=1), atol=1e-6)


def test_mixed_bfloat16_cwgan_gp_step_agrees_with_float32():
    """bfloat16 (recent CPUs, TPUs, GPUs) keeps float32's range: no loss scaling, and one
    step from the same weights, batch and noise logs what float32 logs, to bfloat16's
    three significant digits."""
    keras.utils.set_random_seed(0)   # the initial weights
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (8, 16, 16, 2)).astype(np.float32)
    labels = (np.arange(8) % 2).astype(np.int32)
    options = dict(latent_dim=8, width=8, n_critic=1, augment="translation,brightness", seed=0)
    histories, models, start = {}, {}, None
    for policy in ("float32", "mixed_bfloat16"):
        with dtype_policy(policy):
            model = make_gan("cwgan-gp", (16, 16, 2), **options)
        if start is None:
            start = model.get_weights()
        model.set_weights(start)
        model.compile(jit_compile=False)
        data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
        histories[policy] = model.fit(data, epochs=1, verbose=0, shuffle=False).history
        models[policy] = model
    bf16 = models["mixed_bfloat16"]
    assert not isinstance(bf16.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert not computes_in_float16(bf16.generator, bf16.critic)
    convolutions = [layer for layer in bf16.critic.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convolutions and all(layer.compute_dtype == "bfloat16" for layer in convolutions)
    assert bf16.critic([images, labels]).dtype == "float32"
    # Relative to the loss's own size; an absolute margin for those near 0 (the scores are
    # O(1), and bfloat16 keeps about 3 significant digits of each).
    for name in ("d_loss", "g_loss", "gp", "wasserstein"):
        expected, got = histories["float32"][name][-1], histories["mixed_bfloat16"][name][-1]
        assert got == pytest.approx(expected, rel=2e-2, abs=2e-2), name
    # And the updates went the same way (Adam's first step is lr * sign(gradient), so this
    # counts the gradient entries whose sign bfloat16 kept).
    moves = {policy: np.concatenate([(w - w0).ravel() for w, w0 in
                                     zip(model.get_weights(), start)])
             for policy, model in models.items()}
    a, b = moves["float32"], moves["mixed_bfloat16"]
    assert np.abs(b).max() > 0
    assert float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) > 0.9


@pytest.mark.parametrize("flag,policy", [(["--mixed-precision"], "mixed_float16"),
                                         (["--mixed-precision", "bfloat16"], "mixed_bfloat16"),
                                         ([], "float32")])
def test_train_command_sets_the_precision_policy(squares_dir, tmp_path, flag, policy):
    from mrigan_tf.cli import main

    run = tmp_path / "run"
    assert main(["train", "--model", "cwgan-gp", "--data", str(squares_dir), "--out", str(run),
                 "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "8", "--no-jit",
                 "--width", "4", "--latent-dim", "8", "--n-critic", "1", "--quiet", *flag]) == 0
    assert json.loads((run / "config.json").read_text())["train"]["precision"] == policy
