"""The Keras-JAX path: the models build and run under KERAS_BACKEND=jax, and the generic JAX
step (mrigan_tf.training.jax_trainer) computes what the TensorFlow step does, for every GAN
family (the same loss methods, differentiated by jax.value_and_grad instead of a tape).

Keras fixes its backend when it is first imported, and this pytest process runs on
TensorFlow, so every JAX-side check runs in a subprocess with KERAS_BACKEND=jax (the
TensorFlow side of a comparison also gets its own subprocess, so both start alike). Each
subprocess prints one JSON line; the assertions are made here.

Cross-backend tolerances (float32, CPU): the two backends run the same Keras layers through
different kernels (TensorFlow's oneDNN convolutions vs XLA's), which sum in different orders,
so results agree to float32 round-off, not bit for bit:
* forward passes from the same weights: rtol 1e-5, atol 1e-5;
* training steps with SGD(1e-4) (linear in the gradient, so round-off stays round-off):
  losses rtol 1e-5, weights atol 1e-6 where the updates are 1e-5..1e-3 (measured: losses
  ~1e-6 relative, weights ~6e-8), on a critic without layer norm (see STEP_MODEL for why);
* training steps with the default Adam(1e-4, beta_1=0, beta_2=0.9): with beta_1 = 0 its
  first updates are ~lr * sign(grad) whatever the gradient's size, so a gradient within
  round-off of 0 could get the opposite sign on the other backend, and that weight would then
  differ by 2 * lr. So every weight within 2.5 updates and fewer than 2% beyond 1e-5;
  losses rtol 1e-4, atol 1e-5 (measured: ~3e-6 relative).
* The class embeddings: Keras' TensorFlow Adam updates sparse (IndexedSlices) gradients
  without summing repeated indices first, which makes its embedding updates
  ~sqrt(occurrences of the class in the batch) times textbook Adam's; the JAX gradients are
  dense. The TensorFlow side of the comparison densifies the gradients so both run
  textbook Adam (see TF_STEPS).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

needs_jax = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None,
    reason="JAX is not installed, so the Keras-JAX path cannot run: "
           "pip install -e '.[dev]' (or pip install 'jax[cpu]') to test it")

# Both JAX files run on one xdist worker, one after the other: they share its XLA cache.
pytestmark = pytest.mark.xdist_group("jax")

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 900   # one subprocess: imports, XLA compilation and a few tiny steps (generous: a
#                   loaded 2-core machine runs it several times slower than a quiet one)

# The tiny model every check uses: 16 px, width 4, two critic steps per generator step.
# drift_weight is on so that its term is compared too.
MODEL = dict(image_shape=(16, 16, 2), latent_dim=8, width=4, n_critic=2, drift_weight=1e-3, seed=3)
# The training-step comparison uses a critic without layer norm: TensorFlow's
# tf.nn.moments (behind GroupNormalization) puts a stop_gradient on the mean inside the
# variance, which leaves first derivatives exact but changes second derivatives, i.e. the
# gradient penalty's gradient w.r.t. the weights before the norm (measured: ~0.2% on those
# conv layers); JAX's jnp.var differentiates exactly. The forward test keeps the layer norm.
STEP_MODEL = dict(MODEL, critic_norm="none")
BATCH = 6
STEPS = 2


def run_in_backend(backend: str, code: str, cwd: Path, env: dict[str, str] | None = None) -> dict:
    """Run ``code`` under ``KERAS_BACKEND=backend``; return the JSON of its last stdout line.

    ``env``: more environment variables for the subprocess.
    """
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2",
           "CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           **(env or {})}
    try:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the {backend} subprocess ran past {TIMEOUT_S} s:\n{(exc.stderr or '')[-3000:]}")
    if proc.returncode != 0:
        pytest.fail(f"the {backend} subprocess failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"the {backend} subprocess printed no JSON:\n{proc.stdout[-2000:]}"
    return json.loads(lines[-1])


# ## (a) The models build and run forward on both backends, and agree from the same weights

FORWARD = """
import json, keras, numpy as np
from mrigan_tf.models.cwgan_gp import make_cwgan_gp
from mrigan_tf.models.unet import build_unet, compile_unet
from mrigan_tf.models.diffaugment import DiffAugment
from mrigan_tf.models.spade import make_spade
from mrigan_tf.models.progan import make_progan

MODEL = {model!r}
model = make_cwgan_gp(**MODEL)
unet = build_unet(16, channels=1, depth=2, width=4, seed=0)
# SPADE: layouts of three classes, the third the mask; batch-norm generator, spectrally
# normalized two-scale discriminator.
spade = make_spade((16, 16, 1), num_layout_classes=3, mask_classes=[2], latent_dim=8, width=4)
# ProGAN half-way through its fade-in into 16 px (the state travels in the weight files).
progan = make_progan((16, 16, 2), latent_dim=8, width=4, seed=3)
progan.set_growth(2, 0.25)
networks = {{"generator": model.generator, "critic": model.critic, "unet": unet,
             "spade_generator": spade.generator, "spade_discriminator": spade.discriminator,
             "progan_generator": progan.generator, "progan_critic": progan.critic}}
for name, network in networks.items():
    if {load!r}:
        network.load_weights(f"{{name}}.weights.h5")
    else:
        network.save_weights(f"{{name}}.weights.h5")

rng = np.random.default_rng(0)
latent = rng.standard_normal((4, MODEL["latent_dim"])).astype("float32")
labels = np.array([0, 1, 0, 1], "int32")
fake = keras.ops.convert_to_numpy(model.generator([latent, labels], training=False))
scores = keras.ops.convert_to_numpy(model.critic([fake, labels], training=False))
image = rng.uniform(-1, 1, (4, 16, 16, 1)).astype("float32")
probs = keras.ops.convert_to_numpy(unet(image, training=False))

# DiffAugment on a joint tensor whose mask channel is exactly -1 or +1.
mask = np.where(rng.uniform(size=(4, 16, 16, 1)) > 0.7, 1.0, -1.0).astype("float32")
augmented = keras.ops.convert_to_numpy(
    DiffAugment("translation,cutout,brightness,contrast", seed=0)(np.concatenate([image, mask], -1)))

# The U-Net trains with compile() + fit() on this backend (Keras' own train step).
compile_unet(unet, jit_compile=False)
masks01 = (mask > 0).astype("float32")
history = unet.fit(image, masks01, batch_size=2, epochs=2, verbose=0).history

layouts = np.random.default_rng(1).integers(0, 3, (4, 16, 16, 1))
conditions = spade.conditions(layouts, labels)
spade_fake = spade.generate(latent, conditions, training=False)
spade_logits = keras.ops.convert_to_numpy(spade.discriminate(spade_fake, conditions))
spade_fake = keras.ops.convert_to_numpy(spade_fake)

progan_fake = keras.ops.convert_to_numpy(progan.generator([latent, labels], training=False))
progan_scores = keras.ops.convert_to_numpy(progan.critic([progan_fake, labels], training=False))
progan_reals = keras.ops.convert_to_numpy(progan.fade_reals(np.concatenate([image, mask], -1)))

print(json.dumps({{
    "backend": keras.backend.backend(),
    "fake": fake.tolist(), "scores": scores.tolist(), "probs": probs.tolist(),
    "augmented_shape": list(augmented.shape),
    "augmented_mask_values": sorted(set(np.round(augmented[..., 1], 5).ravel().tolist())),
    "augmented_finite": bool(np.isfinite(augmented).all()),
    "unet_loss": history["loss"],
    "spade_fake": spade_fake.tolist(), "spade_logits": spade_logits.tolist(),
    "progan_fake": progan_fake.tolist(), "progan_scores": progan_scores.tolist(),
    "progan_reals": progan_reals.tolist(),
}}))
"""


@pytest.fixture(scope="module")
def forward_results(tmp_path_factory):
    """The TensorFlow subprocess writes the weights; the JAX one loads and runs them."""
    workdir = tmp_path_factory.mktemp("forward")
    tf_result = run_in_backend("tensorflow", FORWARD.format(model=MODEL, load=False), workdir)
    jax_result = run_in_backend("jax", FORWARD.format(model=MODEL, load=True), workdir)
    return tf_result, jax_result


@needs_jax
def test_models_build_and_run_under_jax(forward_results):
    _, jax_result = forward_results
    assert jax_result["backend"] == "jax"
    fake = np.asarray(jax_result["fake"])
    assert fake.shape == (4, 16, 16, 2)
    assert np.all(np.abs(fake) <= 1.0)                      # tanh output
    assert np.asarray(jax_result["scores"]).shape == (4, 1)
    probs = np.asarray(jax_result["probs"])
    assert probs.shape == (4, 16, 16, 1) and np.all((probs >= 0) & (probs <= 1))
    # Geometric augmentations move the mask and fill with background: it stays -1 / +1.
    assert jax_result["augmented_shape"] == [4, 16, 16, 2]
    assert jax_result["augmented_finite"]
    assert set(jax_result["augmented_mask_values"]) <= {-1.0, 1.0}
    # The U-Net learns under fit() on JAX: finite losses that go down on a fixed batch.
    losses = jax_result["unet_loss"]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    # SPADE renders one image per layout; its discriminator scores 4x4 + 2x2 patches.
    assert np.asarray(jax_result["spade_fake"]).shape == (4, 16, 16, 1)
    assert np.asarray(jax_result["spade_logits"]).shape == (4, 16 + 4)
    # ProGAN mid-fade: full-size pairs in [-1, 1] and one score each.
    assert np.asarray(jax_result["progan_fake"]).shape == (4, 16, 16, 2)
    assert np.all(np.abs(np.asarray(jax_result["progan_fake"])) <= 1.0)
    assert np.asarray(jax_result["progan_scores"]).shape == (4, 1)


@needs_jax
def test_same_weights_give_same_outputs_on_both_backends(forward_results):
    tf_result, jax_result = forward_results
    assert tf_result["backend"] == "tensorflow"
    for key in ("fake", "scores", "probs", "spade_fake", "spade_logits", "progan_fake",
                "progan_scores", "progan_reals"):
        np.testing.assert_allclose(jax_result[key], tf_result[key], rtol=1e-5, atol=1e-5,
                                   err_msg=f"{key} differs between backends")


# ## (b) The JAX training step computes what the TensorFlow step does, for every family

# Both sides: the same model, the weights of the TensorFlow side's initialisation, the same
# batch and the same noise (latent vectors and interpolation weights drawn here with NumPy),
# DiffAugment off (its random streams differ between backends). The cWGAN-GP runs with its
# default Adam, with SGD, and lazily regularized; the other families with SGD (linear in the
# gradient, so round-off stays round-off). "gan_fm" is the vanilla GAN with feature matching
# and label smoothing; "dcgan" has batch norm in both players, whose moving statistics are
# compared too (they are in the weight files); "wgan" clips its critic after every update.
FAMILY_MODELS = {
    "gan_fm": ("gan", (16, 16, 1), dict(latent_dim=8, generator_units=(16,),
                                        discriminator_units=(16,), feature_matching=True,
                                        label_smoothing=0.1)),
    "dcgan": ("dcgan", (16, 16, 1), dict(latent_dim=8, width=4)),
    "wgan": ("wgan", (16, 16, 1), dict(latent_dim=8, width=4, n_critic=2, clip_value=0.05)),
    # The cWGAN-GP's other losses and the small-data tricks: hinge with R1, a spectrally
    # normalized critic with minibatch stddev and a generator EMA (its weights compared
    # too); non-saturating with AC-GAN conditioning. (wgan-clip and lsgan are the WGAN's
    # clipping hook and another keras.ops function of the same scores: not compiled again.)
    "cwgan_hinge": ("cwgan-gp", (16, 16, 2), dict(latent_dim=8, width=4, critic_norm="none",
                                                  loss="hinge", r1_weight=1.0, spectral_norm=True,
                                                  minibatch_std=2, ema_decay=0.5)),
    "cwgan_acgan": ("cwgan-gp", (16, 16, 2), dict(latent_dim=8, width=4, critic_norm="none",
                                                  loss="ns", conditioning="acgan",
                                                  acgan_weight=0.5, ema_decay=0.9)),
    # ProGAN from 8 px, one step per phase and two per fade-in: its two steps run at 8 px and
    # then fade into 16 px, so the growth state that after_generator_update sets (saved in
    # the weight files, compared below) and the faded reals take part.
    "progan": ("progan", (16, 16, 2), dict(latent_dim=8, width=4, start_size=8, phase_steps=1,
                                           fade_steps=2, minibatch_std=2, ema_decay=0.5)),
    # SPADE, trained on (image, condition map) batches: noise() draws layouts of 3 classes,
    # the third the mask. Batch norm in the generator; a spectrally normalized two-scale
    # discriminator with instance norm; hinge + feature matching; an EMA. Without R1: its
    # double backward through the instance norm meets tf.nn.moments' stop_gradient (see
    # STEP_MODEL), which moved TensorFlow's generator loss by 7e-4 relative after one step.
    "spade": ("spade", (16, 16, 1), dict(num_layout_classes=3, mask_classes=[2], latent_dim=8,
                                         width=4, ema_decay=0.5)),
}
SHARED = """
import json, keras, numpy as np
from mrigan_tf.models import make_gan
from mrigan_tf.models.cwgan_gp import make_cwgan_gp

MODEL, FAMILY_MODELS, BATCH, STEPS = {model!r}, {families!r}, {batch}, {steps}
keras.utils.set_random_seed(0)
KINDS = ("sgd", "adam", "sgd_lazy") + tuple(FAMILY_MODELS)

def build(kind):
    # "sgd_lazy": lazy regularization, the penalty on one critic update in n_critic.
    if kind in FAMILY_MODELS:
        family, shape, options = FAMILY_MODELS[kind]
        return make_gan(family, shape, seed=3, **options)
    options = dict(MODEL, gp_every=MODEL["n_critic"]) if kind.endswith("lazy") else MODEL
    return make_cwgan_gp(**options)

def optimizers(kind):
    # "adam": the model's defaults; the rest SGD, linear in the gradient. The families'
    # N(0, 0.02) weights get small gradients: 1e-3 moves their batch-norm scales too.
    if kind == "adam":
        return make_cwgan_gp(**MODEL).default_optimizers()
    lr = 1e-3 if kind in FAMILY_MODELS else 1e-4
    return keras.optimizers.SGD(lr), keras.optimizers.SGD(lr)

def noise(model):
    rng = np.random.default_rng(1)
    shape = model.image_shape
    real = rng.uniform(-1, 1, (BATCH, *shape)).astype("float32")
    labels = (np.arange(BATCH) % 2).astype("int32")
    if getattr(model, "LAYOUT_CONDITIONAL", False):   # SPADE: condition maps, not classes
        layouts = rng.integers(0, model.num_layout_classes, (BATCH, *shape[:2], 1))
        labels = model.conditions(layouts, labels).astype("float32")
    latents = rng.standard_normal((STEPS, model.n_critic + 1, BATCH, model.latent_dim)).astype("float32")
    alphas = rng.uniform(0, 1, (STEPS, model.n_critic, BATCH, 1, 1, 1)).astype("float32")
    return real, labels, latents, alphas
results = {{}}
"""

TF_STEPS = SHARED + """
import tensorflow as tf
import os

# The class embeddings get sparse gradients (tf.IndexedSlices) on TensorFlow, and Keras'
# Adam squares each *occurrence* of a class in the batch instead of the summed gradient
# (no deduplication), so its embedding updates are ~sqrt(occurrences) times textbook Adam's.
# BaseGAN.apply_gradients densifies them, as the JAX gradients are: both run textbook Adam.
for kind in KINDS:
    model = build(kind)
    if kind in ("sgd", "adam", "sgd_lazy") and not os.path.isdir("init"):
        os.makedirs("init")
        model.generator.save_weights("init/generator.weights.h5")
        model.discriminator.save_weights("init/critic.weights.h5")
    elif kind in FAMILY_MODELS:
        os.makedirs(f"init_{{kind}}")
        model.generator.save_weights(f"init_{{kind}}/generator.weights.h5")
        model.discriminator.save_weights(f"init_{{kind}}/critic.weights.h5")
    init = "init" if kind not in FAMILY_MODELS else f"init_{{kind}}"
    model.generator.load_weights(f"{{init}}/generator.weights.h5")
    model.discriminator.load_weights(f"{{init}}/critic.weights.h5")
    model.reset_ema()   # the average starts from the loaded generator, as the JAX side's
    model.compile(*optimizers(kind), jit_compile=False)
    real, labels, latents, alphas = noise(model)
    # The TensorFlow step draws its own noise; feed it ours, in the order the step draws
    # it: per discriminator update a latent batch (then alpha, on the penalized updates),
    # then the generator update's latent batch. (Eager execution, so these replacements are
    # called at every draw.)
    penalized = [i for i in range(model.n_critic) if model.penalizes(i)]
    latent_draws = iter(latents.reshape(-1, BATCH, model.latent_dim))
    alpha_draws = iter(alphas[:, penalized].reshape(-1, BATCH, 1, 1, 1))
    model.draw_latent = lambda batch_size: tf.constant(next(latent_draws))
    model.draw_interpolation_weights = lambda batch_size: tf.constant(next(alpha_draws))
    logs = []
    for step in range(STEPS):
        for tracker in model.metrics:
            tracker.reset_state()   # the logs are then this step's values, not running means
        out = model.train_step((tf.constant(real), tf.constant(labels)))
        logs.append({{k: float(v) for k, v in out.items()}})
    os.makedirs(f"{{kind}}_tf")
    model.generator.save_weights(f"{{kind}}_tf/generator.weights.h5")
    model.discriminator.save_weights(f"{{kind}}_tf/critic.weights.h5")
    if model.ema_generator is not None:
        model.ema_generator.save_weights(f"{{kind}}_tf/generator_ema.weights.h5")
    results[kind] = logs
print(json.dumps(results))
"""

JAX_STEPS = SHARED + """
from mrigan_tf.training.jax_trainer import JaxGANTrainer
for kind in KINDS:
    model = build(kind)
    trainer = JaxGANTrainer(model, *optimizers(kind))
    trainer.load_weights("init" if kind not in FAMILY_MODELS else f"init_{{kind}}")
    real, labels, latents, alphas = noise(model)
    logs = []
    for step in range(STEPS):
        out = trainer.train_step(real, labels, latents[step], alphas[step])
        logs.append({{k: float(v) for k, v in out.items()}})
    trainer.save_weights(f"{{kind}}_jax")
    results[kind] = logs
    # And the random-noise path that real training uses runs and stays finite.
    results[kind + "_fit"] = trainer.fit([(real, labels)], steps=2, progress=False)
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def step_results(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("steps")
    fmt = dict(model=STEP_MODEL, families=FAMILY_MODELS, batch=BATCH, steps=STEPS)
    tf_result = run_in_backend("tensorflow", TF_STEPS.format(**fmt), workdir)
    jax_result = run_in_backend("jax", JAX_STEPS.format(**fmt), workdir)
    return workdir, tf_result, jax_result


def _h5_arrays(path: Path) -> dict[str, np.ndarray]:
    import h5py

    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: arrays.__setitem__(name, item[()])
                     if isinstance(item, h5py.Dataset) else None)
    return arrays


# (rtol, atol) of the losses per optimizer; see the module docstring.
LOSS_TOLERANCE = {"sgd": (1e-5, 1e-6), "adam": (1e-4, 1e-5), "sgd_lazy": (1e-5, 1e-6),
                  **{family: (1e-5, 1e-6) for family in FAMILY_MODELS}}
KINDS = list(LOSS_TOLERANCE)
#: What each family logs, so that agreeing is not agreeing on a missing log.
LOGGED = {"gan_fm": {"d_loss", "g_loss", "d_real", "d_fake"},
          "dcgan": {"d_loss", "g_loss", "d_real", "d_fake"},
          "wgan": {"d_loss", "g_loss", "em_distance"},
          "cwgan_hinge": {"d_loss", "g_loss", "d_real", "d_fake", "r1"},
          "cwgan_acgan": {"d_loss", "g_loss", "d_real", "d_fake", "aux_real", "aux_fake",
                          "aux_accuracy", "g_aux"},
          "spade": {"d_loss", "g_loss", "g_hinge", "feature_matching", "d_real", "d_fake"}}


@needs_jax
@pytest.mark.parametrize("kind", KINDS)
def test_jax_step_losses_match_tensorflow(step_results, kind):
    _, tf_result, jax_result = step_results
    rtol, atol = LOSS_TOLERANCE[kind]
    logged = LOGGED.get(kind, {"d_loss", "g_loss", "gp", "wasserstein"})
    assert len(tf_result[kind]) == len(jax_result[kind]) == STEPS
    for step, (tf_logs, jax_logs) in enumerate(zip(tf_result[kind], jax_result[kind])):
        assert set(jax_logs) == set(tf_logs) == logged
        for name in tf_logs:
            np.testing.assert_allclose(jax_logs[name], tf_logs[name], rtol=rtol, atol=atol,
                                       err_msg=f"{kind}, step {step}: {name} differs (jax vs tf)")
    # Not a vacuous comparison: the penalty is active and the losses moved between steps.
    if "gp" in logged:
        assert tf_result[kind][0]["gp"] > 1e-3
    assert tf_result[kind][0]["d_loss"] != tf_result[kind][1]["d_loss"]


@needs_jax
@pytest.mark.parametrize("kind", KINDS)
def test_jax_step_updates_weights_like_tensorflow(step_results, kind):
    workdir, _, _ = step_results
    # The generator EMA, where the model keeps one, starts from the initial generator.
    averaged = (workdir / f"{kind}_tf" / "generator_ema.weights.h5").is_file()
    assert averaged == (kind in ("cwgan_hinge", "cwgan_acgan", "progan", "spade"))
    for player in ("generator", "critic") + (("generator_ema",) if averaged else ()):
        init_dir = workdir / ("init" if kind not in FAMILY_MODELS else f"init_{kind}")
        init = _h5_arrays(init_dir / f"{player.removesuffix('_ema')}.weights.h5")
        tf_after = _h5_arrays(workdir / f"{kind}_tf" / f"{player}.weights.h5")
        jax_after = _h5_arrays(workdir / f"{kind}_jax" / f"{player}.weights.h5")
        assert set(jax_after) == set(tf_after) == set(init) and init
        moved = 0
        differences = []
        for name, tf_value in tf_after.items():
            moved += int(np.max(np.abs(tf_value - init[name])) > 1e-6)
            differences.append(np.abs(jax_after[name] - tf_value).ravel())
        differences = np.concatenate(differences)
        if kind != "adam":
            assert differences.max() < 1e-6, f"{player}: max difference {differences.max():.2e}"
        else:
            # Adam: all within two updates (a flipped sign), and nearly all much closer.
            assert differences.max() < 2.5 * STEPS * 1e-4, f"{player}: {differences.max():.2e}"
            assert np.mean(differences > 1e-5) < 0.02, \
                f"{player}: {np.mean(differences > 1e-5):.1%} of the weights differ by > 1e-5"
        # Training moved most tensors, so agreeing is not agreeing on nothing.
        assert moved >= len(init) // 2, f"{player}: only {moved} of {len(init)} tensors changed"


@needs_jax
def test_progan_grows_alike_on_both_backends(step_results):
    """Two steps from 8 px with one step per phase and two per fade-in: both backends end
    half-way into 16 px, (level, alpha) = (2, 0.5), in every FadeIn of the generator."""
    workdir, _, _ = step_results

    def growth(folder):
        arrays = _h5_arrays(workdir / folder / "generator.weights.h5")
        fades = sorted(k for k, v in arrays.items() if "fade_in" in k and v.shape == ())
        assert len(fades) == 4, fades     # (level, alpha) of two FadeIn layers
        return [float(arrays[k]) for k in fades]

    assert growth("init_progan") == [1.0, 1.0, 1.0, 1.0]        # 8 px, faded in
    assert growth("progan_tf") == growth("progan_jax") == [2.0, 0.5, 2.0, 0.5]


@needs_jax
def test_lazy_regularization_changes_the_critic_updates(step_results):
    """The lazy step is not the exact one in disguise: from the same weights and noise its
    critic ends elsewhere (on both backends, which the two tests above compare)."""
    workdir, _, _ = step_results
    exact = _h5_arrays(workdir / "sgd_tf" / "critic.weights.h5")
    lazy = _h5_arrays(workdir / "sgd_lazy_tf" / "critic.weights.h5")
    init = _h5_arrays(workdir / "init" / "critic.weights.h5")
    update = max(np.max(np.abs(exact[n] - init[n])) for n in init)
    gap = max(np.max(np.abs(lazy[n] - exact[n])) for n in init)
    assert gap > 0.05 * update, (gap, update)


@needs_jax
def test_jax_weights_load_in_the_tensorflow_model(step_results, tmp_path):
    """What the JAX trainer saves, the TensorFlow model (this process's backend) loads:
    loaded and saved again, every array comes back unchanged."""
    import keras

    from mrigan_tf.models.cwgan_gp import make_cwgan_gp

    workdir, _, _ = step_results
    assert keras.backend.backend() == "tensorflow"
    model = make_cwgan_gp(**STEP_MODEL)
    for player, network in (("generator", model.generator), ("critic", model.critic)):
        network.load_weights(workdir / "adam_jax" / f"{player}.weights.h5")
        network.save_weights(tmp_path / f"{player}.weights.h5")
        saved = _h5_arrays(workdir / "adam_jax" / f"{player}.weights.h5")
        again = _h5_arrays(tmp_path / f"{player}.weights.h5")
        assert set(saved) == set(again)
        for name, value in saved.items():
            np.testing.assert_array_equal(again[name], value, err_msg=f"{player} {name}")


@needs_jax
@pytest.mark.parametrize("kind", ["sgd", *FAMILY_MODELS])
def test_jax_fit_draws_its_own_noise(step_results, kind):
    _, _, jax_result = step_results
    history = jax_result[kind + "_fit"]
    assert set(history) == LOGGED.get(kind, {"d_loss", "g_loss", "gp", "wasserstein"})
    assert all(len(values) == 2 and np.all(np.isfinite(values)) for values in history.values())
    # Drawn noise, not the given noise of the compared steps: the losses differ from theirs.
    assert history["g_loss"][0] != jax_result[kind][0]["g_loss"]


def test_jax_trainer_refuses_the_tensorflow_backend():
    """Imported under TensorFlow, the module says which backend it needs."""
    from mrigan_tf.errors import MriganError

    sys.modules.pop("mrigan_tf.training.jax_trainer", None)
    with pytest.raises(MriganError, match="KERAS_BACKEND=jax"):
        importlib.import_module("mrigan_tf.training.jax_trainer")


# ## (c) The JAX path needs no TensorFlow at all

# The GPU machine (and a Colab session under KERAS_BACKEND=jax) may have JAX and Keras but no
# TensorFlow. Prepended to a subprocess's code, this import hook makes TensorFlow look
# uninstalled: every `import tensorflow...` fails, as it does there.
WITHOUT_TENSORFLOW = """
import sys

class HideTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            # (No braces here: the code snippets this joins are str.format templates.)
            raise ModuleNotFoundError("No module named %r (hidden by the test)" % name, name=name)
        return None

sys.meta_path.insert(0, HideTensorFlow())
"""

NO_TENSORFLOW_PATH = WITHOUT_TENSORFLOW + """
import json, keras, numpy as np
import mrigan_tf.cli, mrigan_tf.models, mrigan_tf.training.jax_runner   # all of it imports
from mrigan_tf.data.contract import load_dataset
from mrigan_tf.models import make_cwgan_gp
from mrigan_tf.synth import build_synthetic_dataset
from mrigan_tf.models.diffaugment import DiffAugment
from mrigan_tf.training.jax_trainer import JaxGANTrainer

train = load_dataset({data!r}).select("train")
real, labels = train.joint()[:BATCH_SIZE], train.labels[:BATCH_SIZE]
model = make_cwgan_gp((16, 16, 2), latent_dim=8, width=4, n_critic=2,
                      augment="translation,cutout,brightness,contrast", seed=0)
trainer = JaxGANTrainer(model, seed=0)
history = trainer.fit([(real, labels)], steps=2, progress=False)
trainer.sync_to_model()
synthetic = build_synthetic_dataset(model, train.class_names, n=6, progress=False)
augmented = keras.ops.convert_to_numpy(DiffAugment("translation,cutout", seed=0)(real))

# The TensorFlow lesson's train_step says what to use instead.
try:
    model.compile(jit_compile=False)
    model.train_step((real, labels))
    tf_step_error = None
except ModuleNotFoundError as exc:
    tf_step_error = str(exc)

print(json.dumps({{
    "backend": keras.backend.backend(),
    "history": history, "steps_done": trainer.steps_done,
    "images": list(synthetic.images.shape), "masks": list(synthetic.masks.shape),
    "labels": synthetic.labels.tolist(), "samples_finite": bool(np.isfinite(synthetic.images).all()),
    "augmented": list(augmented.shape),
    "tf_step_error": tf_step_error,
    "tensorflow_imported": "tensorflow" in sys.modules,
}}))
""".replace("BATCH_SIZE", "8")


@needs_jax
def test_the_jax_path_runs_without_tensorflow(squares_dir, tmp_path):
    """Build, train 2 steps and generate with TensorFlow hidden: nothing on the path needs it."""
    result = run_in_backend("jax", NO_TENSORFLOW_PATH.format(data=str(squares_dir)), tmp_path)
    assert result["backend"] == "jax"
    assert result["tensorflow_imported"] is False
    assert set(result["history"]) == {"d_loss", "g_loss", "gp", "wasserstein"}
    assert all(len(v) == 2 and np.all(np.isfinite(v)) for v in result["history"].values())
    assert result["steps_done"] == 2
    assert result["images"] == [6, 16, 16, 1] and result["masks"] == [6, 16, 16, 1]
    assert sorted(result["labels"]) == [0, 0, 0, 1, 1, 1] and result["samples_finite"]
    assert result["augmented"] == [8, 16, 16, 2]
    assert "needs TensorFlow" in result["tf_step_error"]
    assert "KERAS_BACKEND=jax" in result["tf_step_error"]
