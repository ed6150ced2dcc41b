"""ProGAN (mrigan_tf.models.progan): its layers' known answers, the growth schedule, fade-in
at both ends, the command-line options, a run stopped mid-fade and resumed across a phase boundary, and `generate`
reading the run. Tiny on purpose (16 px, width 8, batch 8, 4 steps).

The JAX side is checked in the JAX subprocesses that already run for the other families, so
that none is started here: tests/test_jax_backend.py compares ProGAN's forward pass mid-fade
(generator, critic, faded reals) with TensorFlow's, and tests/test_jax_run.py trains it with
`mrigan-tf train --model progan` on KERAS_BACKEND=jax, resumes it and reads its growth state
from the backup. (Its training step is not in test_jax_backend's step comparison: two more
XLA compilations of the full-size graph take minutes on a loaded 2-core CPU.)
"""

from __future__ import annotations

import math

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest

from mrigan_tf import cli
from mrigan_tf.data.contract import load_dataset
from mrigan_tf.errors import MriganError
from mrigan_tf.experiments import growth_views
from mrigan_tf.models.progan import (EqualizedConv2D, EqualizedDense, PixelNorm, fade_layers,
                                     full_size_step, growth_schedule, make_progan)
from mrigan_tf.training.runner import TrainConfig, train_gan
from mrigan_tf.visualization import plot_growth_schedule

TINY = dict(latent_dim=8, width=8, phase_steps=1, fade_steps=2)


def _numpy(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


def _upsample(x: np.ndarray, factor: int) -> np.ndarray:
    return x.repeat(factor, axis=1).repeat(factor, axis=2)


def _downsample(x: np.ndarray, factor: int) -> np.ndarray:
    b, h, w, c = x.shape
    return x.reshape(b, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


@pytest.fixture(scope="module")
def model():
    return make_progan((16, 16, 2), seed=0, **TINY)


# ## The layers

def test_equalized_learning_rate_scales_unit_normal_weights_by_hes_constant():
    conv = EqualizedConv2D(4, 3)
    conv.build((1, 5, 5, 8))
    # He's constant sqrt(2 / fan_in), fan_in = 3 * 3 * 8 = 72: exactly 1/6.
    assert conv.scale == pytest.approx(1 / 6)
    # Stored N(0, 1), not N(0, c^2): Adam then moves every layer at the same relative speed.
    big = EqualizedConv2D(64, 3)
    big.build((1, 5, 5, 64))
    assert float(np.std(_numpy(big.kernel))) == pytest.approx(1.0, abs=0.02)
    # Applied at run time: all-ones kernel and input, the centre pixel sums 72 ones times 1/6.
    conv.kernel.assign(np.ones(conv.kernel.shape, "float32"))
    out = _numpy(conv(np.ones((1, 5, 5, 8), "float32")))
    assert out[0, 2, 2] == pytest.approx(np.full(4, 12.0))
    dense = EqualizedDense(3, gain=1.0)
    dense.build((1, 16))
    assert dense.scale == pytest.approx(0.25)                    # 1 / sqrt(16)
    dense.kernel.assign(np.ones((16, 3), "float32"))
    assert _numpy(dense(np.ones((1, 16), "float32"))) == pytest.approx(np.full((1, 3), 4.0))


def test_pixel_norm_gives_each_pixel_unit_mean_square():
    rng = np.random.default_rng(0)
    # Pixels at very different scales all come out at mean square 1, direction unchanged.
    x = rng.normal(size=(2, 3, 3, 16)) * rng.uniform(0.01, 100, size=(2, 3, 3, 1))
    out = _numpy(PixelNorm()(x.astype("float32")))
    np.testing.assert_allclose(np.mean(out ** 2, axis=-1), 1.0, rtol=1e-5)
    cosine = np.sum(out * x, -1) / np.linalg.norm(out, axis=-1) / np.linalg.norm(x, axis=-1)
    np.testing.assert_allclose(cosine, 1.0, rtol=1e-5)


# ## The growth schedule

def test_growth_schedule_as_a_function_of_the_step():
    # From 4 px (level 0) to 16 px (level 2): 3 steps at 4 px, then per level 2 fading + 3.
    expected = {0: (0, 1.0), 2: (0, 1.0), 3: (1, 0.0), 4: (1, 0.5), 5: (1, 1.0), 7: (1, 1.0),
                8: (2, 0.0), 9: (2, 0.5), 10: (2, 1.0), 1000: (2, 1.0)}
    for step, (level, alpha) in expected.items():
        got = [float(_numpy(v)) for v in growth_schedule(step, 0, 2, 3, 2)]
        assert got == [level, alpha], step
    assert full_size_step(0, 2, 3, 2) == 10
    # Starting at 8 px: the first fade-in is the one into 16 px.
    assert [float(_numpy(v)) for v in growth_schedule(3, 1, 2, 3, 2)] == [2.0, 0.0]
    assert [float(_numpy(v)) for v in growth_schedule(5, 1, 2, 3, 2)] == [2.0, 1.0]
    # Already at full size: nothing to grow.
    assert [float(_numpy(v)) for v in growth_schedule(0, 2, 2, 3, 2)] == [2.0, 1.0]
    assert full_size_step(2, 2, 3, 2) == 0


def test_options_are_checked():
    with pytest.raises(ValueError, match="start_size"):
        make_progan((16, 16, 2), start_size=32, **TINY)
    with pytest.raises(ValueError, match="fade_steps"):
        make_progan((16, 16, 2), latent_dim=8, width=8, fade_steps=0)
    with pytest.raises(ValueError, match="power of two >= 8"):
        make_progan((4, 4, 2), **TINY)
    # Without EMA it stays without one through its config (the family's default is 0.999).
    plain = make_progan((8, 8, 2), ema_decay=0.0, start_size=8, **TINY)
    again = type(plain).from_config(plain.get_config())
    assert again.ema_generator is None and again.start_size == 8 and again.fade_steps == 2


# ## Fade-in

def test_generator_fade_in_blends_the_upsampled_lower_head_and_the_new_one(model):
    generator = model.generator
    probe = keras.Model(generator.inputs, [generator.get_layer("to_rgb_8x8").output,
                                           generator.get_layer("to_rgb_16x16").output,
                                           generator.output])
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((3, 8)).astype("float32"), np.array([0, 1, 0], "int32")]

    def run(level, alpha):
        model.set_growth(level, alpha)
        low, new, out = (_numpy(v) for v in probe(inputs, training=False))
        return _upsample(low, 2), new, out

    low, new, out = run(2, 0.0)      # alpha = 0: the 8 px image, upsampled
    np.testing.assert_allclose(out, np.tanh(low), atol=1e-6)
    _, _, stable = run(1, 1.0)       # ... which is what the stable 8 px phase outputs
    np.testing.assert_allclose(stable, out, atol=1e-6)
    low, new, out = run(2, 1.0)      # alpha = 1: the new 16 px head alone
    np.testing.assert_allclose(out, np.tanh(new), atol=1e-6)
    low, new, out = run(2, 0.25)
    np.testing.assert_allclose(out, np.tanh(0.75 * low + 0.25 * new), atol=1e-6)
    assert np.abs(low - new).max() > 0.1      # the two heads differ: the blend is not vacuous
    model.set_growth(*model.growth_at(0))


def test_critic_and_real_images_see_only_the_current_resolution(model):
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (4, 16, 16, 2)).astype("float32")
    labels = np.array([0, 1, 0, 1], "int32")
    blurred = _upsample(_downsample(x, 2), 2)                    # x at 8 px, shown at 16

    def scores(images):
        return _numpy(model.critic([images, labels], training=False))

    model.set_growth(1, 1.0)   # 8 px: the critic's 16 px path has weight 0
    np.testing.assert_allclose(scores(x), scores(blurred), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_numpy(model.fade_reals(x)), blurred, atol=1e-6)
    model.set_growth(2, 0.5)   # fading into 16 px: detail counts, reals half sharp
    assert np.abs(scores(x) - scores(blurred)).max() > 1e-3
    np.testing.assert_allclose(_numpy(model.fade_reals(x)), 0.5 * blurred + 0.5 * x, atol=1e-6)
    model.set_growth(*model.growth_at(0))


def test_notebook_helpers_show_the_growth(model):
    """Notebook 09's views of the growth: what the critic sees per state, and the schedule."""
    x = np.random.default_rng(3).uniform(-1, 1, (2, 16, 16, 2)).astype("float32")
    views = growth_views(model, [(0, 1.0), (2, 0.5), (2, 1.0)], real=x)
    assert views.shape == (3, 2, 16, 16, 2)
    np.testing.assert_allclose(views[0], _upsample(_downsample(x, 4), 4), atol=1e-6)
    np.testing.assert_allclose(views[2], x, atol=1e-6)
    samples = growth_views(model, [(1, 1.0)], latent=np.zeros((2, 8), "float32"),
                           labels=np.array([0, 1]))
    assert samples.shape == (1, 2, 16, 16, 2)
    np.testing.assert_array_equal(samples[0], _upsample(samples[0][:, ::2, ::2], 2))
    assert model.growth == (0, 1.0)                  # put back
    steps = np.arange(12)
    levels, alphas = (_numpy(v) for v in growth_schedule(steps, 0, 2, 3, 2))
    figure = plot_growth_schedule(steps, levels, alphas)
    assert len(figure.axes) == 2
    plt.close(figure)


# ## A run stopped mid-fade, resumed across the phase boundary; generate reads it

TINY_RUN = dict(steps_per_epoch=2, batch_size=8, jit_compile=False, samples=4,
                model_options=dict(TINY, ema_decay=0.9))


class _AtTrainBegin(keras.callbacks.Callback):
    """What the model holds when fit() starts, after BackupAndRestore restored the backup."""

    def on_train_begin(self, logs=None):
        self.growth = self.model.growth
        self.steps = int(self.model.g_optimizer.iterations.numpy())
        self.ema = [w.numpy().copy() for w in self.model.ema_generator.weights]


def test_run_resumed_mid_fade_continues_its_phase_and_generate_reads_it(squares_dir, tmp_path,
                                                                         capsys):
    run = tmp_path / "run"
    # 2 steps: step 0 at 4 px, step 1 the first of 2 fading into 8 px; next: alpha 0.5.
    config = TrainConfig(model="progan", data=str(squares_dir), epochs=1, **TINY_RUN)
    stopped, _ = train_gan(config, run, verbose=0)
    assert stopped.growth == (1, 0.5)
    stopped_ema = [w.numpy().copy() for w in stopped.ema_generator.weights]

    probe = _AtTrainBegin()
    config = TrainConfig(model="progan", data=str(squares_dir), epochs=2, **TINY_RUN)
    resumed, history = train_gan(config, run, resume=True, callbacks=[probe], verbose=0)
    # Restored where it stopped: the step, mid-fade, and the generator's weight average.
    assert probe.steps == 2 and probe.growth == (1, 0.5)
    for restored, saved in zip(probe.ema, stopped_ema, strict=True):
        np.testing.assert_array_equal(restored, saved)
    # Then on across the boundary: step 2 finished the fade, step 3 stable at 8 px, next the
    # fade into 16 px begins (alpha 0); the average and the critic follow the same state.
    assert int(resumed.g_optimizer.iterations.numpy()) == 4
    assert resumed.growth == (2, 0.0)
    for network in (resumed.ema_generator, resumed.critic):
        assert {(float(f.level.numpy()), float(f.alpha.numpy())) for f in fade_layers(network)} \
            == {(2.0, 0.0)}
    assert all(np.isfinite(v[-1]) for v in history.values())

    # `mrigan-tf generate` on the ProGAN run: the contract's image, mask and class.
    out = tmp_path / "synthetic"
    assert cli.main(["generate", "--run", str(run), "--n", "6", "--out", str(out), "--quiet"]) == 0
    synthetic = load_dataset(out)
    assert synthetic.images.shape == (6, 16, 16, 1) and synthetic.images.dtype == np.float32
    assert synthetic.images.min() >= -1 and synthetic.images.max() <= 1
    assert synthetic.masks.shape == (6, 16, 16, 1) and set(np.unique(synthetic.masks)) <= {0, 1}
    assert sorted(synthetic.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    assert synthetic.meta["model"] == "progan"


def test_the_command_line_options_reach_the_model(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr("mrigan_tf.training.runner.train_gan", lambda config, out, resume, verbose:
                        seen.update(config=config) or (None, {"d_loss": [0.5]}))
    assert cli.main(["train", "--model", "progan", "--data", "d", "--out", str(tmp_path),
                     "--steps", "10", "--phase-steps", "3", "--fade-steps", "2",
                     "--start-size", "8", "--width", "8", "--quiet"]) == 0
    options = seen["config"].model_options
    assert options == {"width": 8, "phase_steps": 3, "fade_steps": 2, "start_size": 8}
    model = make_progan((16, 16, 2), latent_dim=8, **options)
    assert (model.start_level, model.phase_steps, model.fade_steps) == (1, 3, 2)
    assert model.growth == (1, 1.0) and model.full_size_step == 5


def test_options_of_one_family_are_refused_with_another(squares_dir):
    base = dict(data=str(squares_dir), steps=1)
    with pytest.raises(MriganError, match="--phase-steps is an option of --model progan, "
                                          "not of cwgan-gp"):
        TrainConfig(model="cwgan-gp", model_options={"phase_steps": 3}, **base)
    with pytest.raises(MriganError, match="--loss is an option of --model cwgan-gp, not of progan"):
        TrainConfig(model="progan", model_options={"loss": "hinge"}, **base)
    TrainConfig(model="progan", model_options={"start_size": 8, "fade_steps": 3}, **base)


def test_default_settings_are_the_papers(model):
    d_adam, g_adam = model.default_optimizers()
    assert float(d_adam.learning_rate) == pytest.approx(1e-3) and float(g_adam.beta_1) == 0.0
    assert float(g_adam.beta_2) == pytest.approx(0.99)
    assert (model.n_critic, model.gp_weight, model.drift_weight) == (1, 10.0, 1e-3)
    assert model.ema_decay == 0.999 and model.CONDITIONAL
    assert model.critic.get_layer("minibatch_std").group_size == 4
    assert math.isclose(model.generator.get_layer("to_rgb_16x16").gain, 1.0)
