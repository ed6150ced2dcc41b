"""The settings of every notebook, per profile: one table, so that nothing is retyped.

A notebook's cell tagged ``parameters`` holds ``PROFILE``; the next cell asks this module for
that profile's settings and makes them the notebook's variables::

    settings = notebook_settings("05_conditional_wgan_gp", PROFILE)
    globals().update(settings)

Profiles:

- ``"gpu"``: the teaching settings, the ones each notebook's text is written for (a Colab T4
  or better).
- ``"cpu"``: sized to finish each notebook within 20 minutes on a 2-core CPU (the project's
  own 2-core AMD EPYC). ``CPU_MINUTES`` holds the wall-clock of each notebook in
  ``CPU_MEASURED``, **measured** by ``make docs`` (``docs/build_notebooks.py``: Papermill, top
  to bottom, in order and in one working directory, so that 03 and 04 load 02's and 03's
  runs) on 2026-12-01, rounded up to the minute, while other jobs shared the machine (load
  average 8 to 15 for 01-03 and 08, 2 to 5 for 04-07, 09 and 10: slower than a quiet
  machine); ``docs/notebooks/timings.json`` has the seconds and the loads, and
  ``tests/test_profiles.py`` checks ``CPU_MINUTES`` against it. The profiles were sized from
  step times measured under load before that (the cWGAN-GP step of 64 px, width 16, batch
  32, n_critic 3: 1.9 s; the 32 px MLP GAN step 0.24 s, the width-16 DCGAN step 0.15 s, the
  n_critic-5 WGAN step 0.49 s; ProGAN at width 16: 5.2 s, hence width 8).
- ``"smoke"``: tiny data and a handful of steps, for CI (``tests/test_notebooks.py``):
  it checks that the code runs and that its asserts hold, not what training achieves.
- ``"auto"`` (the default): ``"gpu"`` when TensorFlow sees a GPU, else ``"cpu"``.

XLA follows the device: ``JIT_COMPILE`` is True on the gpu profile and False elsewhere (on a
CPU, XLA's convolutions are slower than oneDNN's; README, *Speed on a CPU*).

Notebooks 05 (its end), 06, 07 and 08 need a trained generator and use the shipped reference
model (``mrigan_tf/reference/phantom64``), which was trained on the default phantom: 40
subjects, 64 px, seed 0. Their gpu and cpu profiles therefore keep ``SUBJECTS = 40`` and
``SIZE = 64``.
"""

from __future__ import annotations

from typing import Any

PROFILES = ("auto", "gpu", "cpu", "smoke")

#: The default phantom: the one the reference model was trained on.
DEFAULT_PHANTOM = {"SUBJECTS": 40, "SIZE": 64}

# Sized to about 10 minutes each on a Colab T4 (docs/estimate_t4.py): 02-04 at 2,000 steps
# and 03-04 at width 32 (width 64 put 04's WGAN, five critic updates a step, at ~27 min);
# 05 with the reference model's three critic updates a step (five: ~12.5 min).
_GPU: dict[str, dict[str, Any]] = {
    "01_preprocessing": {**DEFAULT_PHANTOM},
    "02_vanilla_gan": {
        **DEFAULT_PHANTOM, "STEPS": 2000, "STEPS_PER_EPOCH": 150, "BATCH_SIZE": 64,
        "LATENT_DIM": 100, "UNITS": 256, "N_EVAL": 500},
    "03_dcgan": {
        **DEFAULT_PHANTOM, "STEPS": 2000, "STEPS_PER_EPOCH": 150, "BATCH_SIZE": 64,
        "LATENT_DIM": 100, "WIDTH": 32, "UNITS": 256, "N_EVAL": 500},
    "04_wgan": {
        **DEFAULT_PHANTOM, "STEPS": 2000, "STEPS_PER_EPOCH": 150, "BATCH_SIZE": 64,
        "LATENT_DIM": 100, "WIDTH": 32, "UNITS": 256, "N_CRITIC": 5,
        "CLIP_VALUES": [0.001, 0.01, 0.1], "CLIP_STEPS": 300, "TOY_STEPS": 2000, "N_EVAL": 500},
    "05_conditional_wgan_gp": {
        **DEFAULT_PHANTOM, "STEPS": 2000, "STEPS_PER_EPOCH": 100, "BATCH_SIZE": 64, "WIDTH": 32,
        "LATENT_DIM": 128, "N_CRITIC": 3, "GP_EVERY": 1,
        "AUGMENT": "translation,cutout,brightness,contrast"},
    "06_unet_segmentation": {
        **DEFAULT_PHANTOM, "EPOCHS": 20, "STEPS_PER_EPOCH": 50, "BATCH_SIZE": 32, "WIDTH": 32,
        "GAN_STEPS": 1000, "GAN_WIDTH": 32, "LATENT_DIM": 64, "N_SYNTHETIC": 2000,
        "TSTR_FRACTIONS": [0.1, 0.25, 1.0], "TSTR_STEPS": 500},
    "07_evaluation": {
        **DEFAULT_PHANTOM, "GAN_STEPS": 1000, "GAN_WIDTH": 32, "LATENT_DIM": 64,
        "N_SYNTHETIC": 2000, "BATCH_SIZE": 32, "MAX_IMAGES": 2000, "CLASSIFIER_STEPS": 2000,
        "FID_SAMPLE_SIZES": [16, 32, 64, 128, 256], "FID_REPEATS": 5, "KID_SUBSETS": 50,
        "DIVERSITY_PAIRS": 500, "LPIPS_PAIRS": 200, "TSTR_FRACTIONS": [0.25, 1.0],
        "TSTR_STEPS": 500, "UNET_WIDTH": 32},
    "08_synthetic_dataset": {**DEFAULT_PHANTOM, "N": 10_000, "GAN_STEPS": 200},
    # ProGAN on the reference's phantom: 64 px after 4 x (200 + 200) = 1,600 steps. Every
    # step runs the full-size networks (one compiled step for every phase), whose 4x4 layers
    # hold WIDTH x 16 filters: width 32 and 8,000 steps came to ~86 min on a T4.
    "09_progan": {
        **DEFAULT_PHANTOM, "STEPS": 2000, "STEPS_PER_EPOCH": 200, "BATCH_SIZE": 64, "WIDTH": 16,
        "LATENT_DIM": 128, "PHASE_STEPS": 200, "FADE_STEPS": 200, "N_COMPARE": 2000},
    # One conditional model per loss, the same generator steps each, at the reference model's
    # width, latent size and critic steps (width 32 and 2,000 steps came to ~34 min on a T4);
    # N_CRITIC for the Wasserstein losses only (ns, lsgan and hinge update once a step).
    "10_loss_functions": {
        **DEFAULT_PHANTOM, "LOSSES": ["wgan-gp", "wgan-clip", "ns", "lsgan", "hinge"],
        "STEPS": 800, "STEPS_PER_EPOCH": 100, "BATCH_SIZE": 64, "WIDTH": 16, "LATENT_DIM": 64,
        "N_CRITIC": 3, "N_EVAL": 1000, "CLASSIFIER_STEPS": 1000},
}

# Only what differs from the gpu profile.
_CPU: dict[str, dict[str, Any]] = {
    "01_preprocessing": {},
    # Three MLP GANs of ~3.4 M weights at 32 px (0.24 s a step under load), 800 steps each.
    "02_vanilla_gan": {"SIZE": 32, "STEPS": 800, "STEPS_PER_EPOCH": 100},
    # A width-16 DCGAN at 32 px costs about what the MLP does; the vanilla baseline is loaded
    # from notebook 02's run when it exists.
    "03_dcgan": {"SIZE": 32, "STEPS": 800, "STEPS_PER_EPOCH": 100, "WIDTH": 16},
    # n_critic 5: 0.49 s a step under load; 800 steps (the same as 02 and 03, so that their
    # runs are reused), then three 100-step clipping runs.
    "04_wgan": {"SIZE": 32, "STEPS": 800, "STEPS_PER_EPOCH": 100, "WIDTH": 16,
                "CLIP_STEPS": 100, "TOY_STEPS": 1000},
    # The reference model's recipe (width 16, latent 64, n_critic 3, batch 32): 0.4 s a step
    # on a quiet machine, 1.9 s under load 6, 4.3 s under load 11 (make docs' run, which
    # took 31 min at 400 steps): 200 steps.
    "05_conditional_wgan_gp": {"STEPS": 200, "STEPS_PER_EPOCH": 50, "BATCH_SIZE": 32,
                               "WIDTH": 16, "LATENT_DIM": 64, "N_CRITIC": 3,
                               "AUGMENT": "translation,cutout"},
    # make docs' run took 26 min under load 8-12, 18 of them in 7 TSTR arms of 200 steps:
    # 5 arms (10% and all real subjects) of 150 steps.
    "06_unet_segmentation": {"EPOCHS": 5, "WIDTH": 8, "BATCH_SIZE": 16, "GAN_STEPS": 300,
                             "GAN_WIDTH": 16, "N_SYNTHETIC": 1000, "TSTR_FRACTIONS": [0.1, 1.0],
                             "TSTR_STEPS": 150},
    # make docs' run at MAX_IMAGES 1,000 and 5 TSTR arms of 200 steps took 37 min under load
    # 11 to 5 (the report 7 min, TSTR 7; the memorization audit took 9.5 min, the nearest-slice
    # histograms 7.4, both linear in MAX_IMAGES): 300 slices, 3 TSTR arms of 100 steps.
    "07_evaluation": {"GAN_STEPS": 300, "GAN_WIDTH": 16, "N_SYNTHETIC": 1000,
                      "MAX_IMAGES": 300, "CLASSIFIER_STEPS": 300, "KID_SUBSETS": 20,
                      "DIVERSITY_PAIRS": 200, "LPIPS_PAIRS": 50, "TSTR_FRACTIONS": [1.0],
                      "TSTR_STEPS": 100, "UNET_WIDTH": 8, "BATCH_SIZE": 16},
    "08_synthetic_dataset": {"N": 5000},
    # 64 px after 4 x (40 + 40) = 320 of 400 steps, width 8. At width 16 make docs measured
    # 5.2 s a step under load 5 (two 80-step epochs in 14 min: every step runs the full-size
    # networks, whose 4x4 layers hold 16 x WIDTH filters); width 8 has a quarter of the FLOPs.
    "09_progan": {"STEPS": 400, "STEPS_PER_EPOCH": 40, "BATCH_SIZE": 32, "WIDTH": 8,
                  "LATENT_DIM": 64, "PHASE_STEPS": 40, "FADE_STEPS": 40, "N_COMPARE": 1000},
    # 32 px, the reference's width and latent: five runs of 300 generator steps (the two
    # Wasserstein ones with 3 critic updates each), then five light evaluations.
    "10_loss_functions": {"SIZE": 32, "STEPS": 300, "STEPS_PER_EPOCH": 100, "BATCH_SIZE": 32,
                          "WIDTH": 16, "LATENT_DIM": 64, "N_CRITIC": 3, "N_EVAL": 500,
                          "CLASSIFIER_STEPS": 300},
}

_SMOKE: dict[str, dict[str, Any]] = {
    "01_preprocessing": {"SUBJECTS": 6, "SIZE": 32},
    "02_vanilla_gan": {"SUBJECTS": 6, "SIZE": 16, "STEPS": 4, "STEPS_PER_EPOCH": 2,
                       "BATCH_SIZE": 8, "LATENT_DIM": 8, "UNITS": 16, "N_EVAL": 32},
    "03_dcgan": {"SUBJECTS": 6, "SIZE": 16, "STEPS": 4, "STEPS_PER_EPOCH": 2, "BATCH_SIZE": 8,
                 "LATENT_DIM": 8, "WIDTH": 8, "UNITS": 16, "N_EVAL": 32},
    "04_wgan": {"SUBJECTS": 6, "SIZE": 16, "STEPS": 4, "STEPS_PER_EPOCH": 2, "BATCH_SIZE": 8,
                "LATENT_DIM": 8, "WIDTH": 8, "UNITS": 16, "N_CRITIC": 2,
                "CLIP_VALUES": [0.001, 0.1], "CLIP_STEPS": 2, "TOY_STEPS": 10, "N_EVAL": 32},
    "05_conditional_wgan_gp": {"SUBJECTS": 6, "SIZE": 16, "STEPS": 4, "STEPS_PER_EPOCH": 2,
                               "BATCH_SIZE": 8, "WIDTH": 8, "LATENT_DIM": 8, "N_CRITIC": 2,
                               "GP_EVERY": 2},
    "06_unet_segmentation": {"SUBJECTS": 6, "SIZE": 16, "EPOCHS": 2, "STEPS_PER_EPOCH": 2,
                             "BATCH_SIZE": 8, "WIDTH": 4, "GAN_STEPS": 2, "GAN_WIDTH": 8,
                             "LATENT_DIM": 8, "N_SYNTHETIC": 32, "TSTR_FRACTIONS": [1.0],
                             "TSTR_STEPS": 3},
    "07_evaluation": {"SUBJECTS": 6, "SIZE": 16, "GAN_STEPS": 2, "GAN_WIDTH": 8,
                      "LATENT_DIM": 8, "N_SYNTHETIC": 32, "BATCH_SIZE": 8, "MAX_IMAGES": 32,
                      "CLASSIFIER_STEPS": 10, "FID_SAMPLE_SIZES": [8, 16], "FID_REPEATS": 2,
                      "KID_SUBSETS": 3, "DIVERSITY_PAIRS": 20, "LPIPS_PAIRS": 4,
                      "TSTR_FRACTIONS": [1.0], "TSTR_STEPS": 2, "UNET_WIDTH": 4},
    "08_synthetic_dataset": {"N": 40, "GAN_STEPS": 2},
    "09_progan": {"SUBJECTS": 6, "SIZE": 16, "STEPS": 4, "STEPS_PER_EPOCH": 2, "BATCH_SIZE": 8,
                  "WIDTH": 8, "LATENT_DIM": 8, "PHASE_STEPS": 1, "FADE_STEPS": 1,
                  "N_COMPARE": 32},
    # Two of the five losses, one Wasserstein and one not: both code paths, in CI's minute
    # (section 2 still differentiates all five).
    "10_loss_functions": {"LOSSES": ["wgan-gp", "hinge"],
                          "SUBJECTS": 6, "SIZE": 16, "STEPS": 2, "STEPS_PER_EPOCH": 2,
                          "BATCH_SIZE": 8, "WIDTH": 4, "LATENT_DIM": 8, "N_CRITIC": 2,
                          "N_EVAL": 32, "CLASSIFIER_STEPS": 10},
}

#: Minutes of each notebook at the cpu profile on the 2-core CPU under load: measured for
#: those in ``CPU_MEASURED`` (``make docs``, docs/notebooks/timings.json), else estimated (see
#: the module docstring). 03 and 04 ran after 02 and 03 at the same profile and loaded their
#: runs; without them, add about 3 and 5 minutes.
CPU_MINUTES = {"01_preprocessing": 4, "02_vanilla_gan": 15, "03_dcgan": 7, "04_wgan": 11,
               "05_conditional_wgan_gp": 10, "06_unet_segmentation": 12, "07_evaluation": 20,
               "08_synthetic_dataset": 5, "09_progan": 16, "10_loss_functions": 10}
#: The notebooks whose ``CPU_MINUTES`` is a measured wall-clock (rounded up).
CPU_MEASURED = ("01_preprocessing", "02_vanilla_gan", "03_dcgan", "04_wgan",
                "05_conditional_wgan_gp", "06_unet_segmentation", "07_evaluation",
                "08_synthetic_dataset", "09_progan", "10_loss_functions")

NOTEBOOKS = tuple(_GPU)
#: Notebooks that train nothing, hence have no XLA switch.
TRAINS_NOTHING = ("01_preprocessing",)


def gpu_available() -> bool:
    """Whether TensorFlow sees a GPU."""
    import tensorflow as tf   # heavy, and only the "auto" profile needs it

    return bool(tf.config.list_physical_devices("GPU"))


def resolve_profile(profile: str = "auto") -> str:
    """``"auto"`` -> ``"gpu"`` when a GPU is visible, else ``"cpu"``; other profiles as given."""
    if profile not in PROFILES:
        raise ValueError(f"unknown PROFILE {profile!r}: choose one of {', '.join(PROFILES)}")
    if profile == "auto":
        return "gpu" if gpu_available() else "cpu"
    return profile


def _notebook_key(notebook: str) -> str:
    key = notebook.rsplit("/", 1)[-1].removesuffix(".ipynb")
    if key not in _GPU:
        raise ValueError(f"no settings for notebook {notebook!r}; known: {', '.join(_GPU)}")
    return key


def notebook_settings(notebook: str, profile: str = "auto", **overrides: Any) -> dict[str, Any]:
    """The settings of ``notebook`` (e.g. ``"05_conditional_wgan_gp"``) at ``profile``.

    Returns upper-case names -> values, with ``PROFILE`` (the resolved profile) and
    ``JIT_COMPILE`` (XLA on the gpu profile only). ``overrides`` replace single settings
    (``notebook_settings("02_vanilla_gan", "cpu", STEPS=300)``); a name the notebook does not
    have is an error rather than a silent no-op.
    """
    key = _notebook_key(notebook)
    resolved = resolve_profile(profile)
    settings = dict(_GPU[key])
    if resolved == "cpu":
        settings.update(_CPU[key])
    elif resolved == "smoke":
        settings.update(_SMOKE[key])
    if key not in TRAINS_NOTHING:
        settings["JIT_COMPILE"] = resolved == "gpu"
    unknown = set(overrides) - set(settings)
    if unknown:
        raise ValueError(f"{key} has no setting {', '.join(sorted(unknown))}; "
                         f"its settings: {', '.join(sorted(settings))}")
    settings.update(overrides)
    return {"PROFILE": resolved, **settings}


def describe_profile(notebook: str, profile: str = "auto", **overrides: Any) -> dict[str, Any]:
    """Print which profile runs and its settings (one line); return ``notebook_settings``."""
    settings = notebook_settings(notebook, profile, **overrides)
    resolved = settings["PROFILE"]
    why = {"gpu": "the teaching settings", "smoke": "tiny settings for CI: numbers mean nothing",
           "cpu": (f"sized for a 2-core CPU, about {CPU_MINUTES[_notebook_key(notebook)]} min "
                   + ("(measured under load)" if _notebook_key(notebook) in CPU_MEASURED
                      else "(estimated)"))}[resolved]
    chosen = f"auto -> {resolved}" if profile == "auto" else resolved
    print(f"PROFILE {chosen} ({why})")
    print("  " + ", ".join(f"{k} = {v!r}" for k, v in settings.items() if k != "PROFILE"))
    return settings
