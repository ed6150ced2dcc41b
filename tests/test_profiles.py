"""The notebooks' profiles: one table, complete, consistent with the notebooks that read it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mrigan_tf import profiles
from mrigan_tf.profiles import (CPU_MINUTES, NOTEBOOKS, describe_profile, notebook_settings,
                                resolve_profile)

ROOT = Path(__file__).resolve().parents[1]
#: Notebooks that use the shipped reference model, trained on the 40-subject 64 px phantom.
REFERENCE_NOTEBOOKS = ("05_conditional_wgan_gp", "06_unet_segmentation", "07_evaluation",
                       "08_synthetic_dataset")
COST_KEYS = ("STEPS", "EPOCHS", "STEPS_PER_EPOCH", "GAN_STEPS", "TSTR_STEPS", "CLIP_STEPS",
             "TOY_STEPS", "N_SYNTHETIC", "MAX_IMAGES", "CLASSIFIER_STEPS", "N", "WIDTH",
             "UNET_WIDTH", "GAN_WIDTH", "SIZE", "SUBJECTS", "N_EVAL", "KID_SUBSETS",
             "DIVERSITY_PAIRS", "LPIPS_PAIRS", "FID_REPEATS")


def _notebook_source(name: str) -> str:
    cells = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def test_every_notebook_on_disk_has_settings():
    assert set(NOTEBOOKS) == {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}


@pytest.mark.parametrize("name", NOTEBOOKS)
@pytest.mark.parametrize("profile", ["gpu", "cpu", "smoke"])
def test_each_profile_sets_the_same_names(name, profile):
    gpu = notebook_settings(name, "gpu")
    settings = notebook_settings(name, profile)
    assert set(settings) == set(gpu)
    assert settings["PROFILE"] == profile
    # XLA follows the device: on with a GPU, off on a CPU where it is slower.
    if name not in profiles.TRAINS_NOTHING:
        assert settings["JIT_COMPILE"] is (profile == "gpu")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_profile_table_has_no_stray_names(name):
    # A name in the cpu or smoke table that the gpu table lacks is a typo the notebook never reads.
    assert set(profiles._CPU[name]) <= set(profiles._GPU[name])
    assert set(profiles._SMOKE[name]) <= set(profiles._GPU[name])


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_setting_is_read_and_never_retyped_by_its_notebook(name):
    source = _notebook_source(name)
    for key in notebook_settings(name, "gpu"):
        if key == "PROFILE":
            continue
        assert re.search(rf"\b{key}\b", source), f"{name} never uses the setting {key}"
        # The notebook assigns no profile setting itself: it reads it from the table.
        assert not re.search(rf"^{key} = ", source, flags=re.M), f"{name} retypes {key}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_smaller_profiles_cost_no_more(name):
    gpu, cpu, smoke = (notebook_settings(name, p) for p in ("gpu", "cpu", "smoke"))
    for key in COST_KEYS:
        if key in gpu:
            assert cpu[key] <= gpu[key], (name, key)
            assert smoke[key] <= cpu[key], (name, key)


@pytest.mark.parametrize("name", REFERENCE_NOTEBOOKS)
def test_reference_notebooks_keep_the_reference_phantom(name):
    for profile in ("gpu", "cpu"):
        settings = notebook_settings(name, profile)
        assert (settings["SUBJECTS"], settings["SIZE"]) == (40, 64), (name, profile)
    # Notebook 08 generates from the reference model even at the smoke profile.
    smoke = notebook_settings("08_synthetic_dataset", "smoke")
    assert (smoke["SUBJECTS"], smoke["SIZE"]) == (40, 64)


def test_cpu_estimates_fit_the_budget():
    assert set(CPU_MINUTES) == set(NOTEBOOKS)
    assert all(0 < minutes <= 20 for minutes in CPU_MINUTES.values())


def test_measured_cpu_minutes_are_the_rendered_runs():
    """A minute figure called measured is make docs' wall-clock, rounded up, and that run
    finished (docs/notebooks/timings.json)."""
    import math

    from mrigan_tf.profiles import CPU_MEASURED

    runs = json.loads((ROOT / "docs" / "notebooks" / "timings.json").read_text())["notebooks"]
    for name in CPU_MEASURED:
        assert runs[name]["status"] == "ok" and runs[name]["profile"] == "cpu", name
        assert CPU_MINUTES[name] == math.ceil(runs[name]["seconds"] / 60), name


@pytest.mark.parametrize("name", ["02_vanilla_gan", "03_dcgan", "04_wgan",
                                  "05_conditional_wgan_gp"])
def test_the_parameters_text_quotes_the_gpu_profile(name):
    """The notebook's Parameters cell says what its gpu profile trains: the same step count
    (and width, critic steps), so that a change to the table cannot leave the text behind."""
    cells = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]
    text = next("".join(c["source"]) for c in cells if "".join(c["source"]).startswith(
        "## Parameters"))
    gpu_line = text[text.index('- `"gpu"`'):text.index('- `"cpu"`')]
    gpu = notebook_settings(name, "gpu")
    assert f"{gpu['STEPS']:,} generator steps" in gpu_line, gpu_line
    if "WIDTH" in gpu and name != "02_vanilla_gan":
        assert f"`WIDTH = {gpu['WIDTH']}`" in gpu_line, gpu_line
    if name == "05_conditional_wgan_gp":
        assert f"`N_CRITIC = {gpu['N_CRITIC']}`" in gpu_line, gpu_line


def test_the_reference_sized_settings():
    assert notebook_settings("08_synthetic_dataset", "gpu")["N"] == 10_000
    assert notebook_settings("05_conditional_wgan_gp", "cpu")["N_CRITIC"] == 3


def test_auto_follows_the_device(monkeypatch):
    monkeypatch.setattr(profiles, "gpu_available", lambda: True)
    assert resolve_profile("auto") == "gpu"
    assert notebook_settings("03_dcgan")["JIT_COMPILE"] is True
    monkeypatch.setattr(profiles, "gpu_available", lambda: False)
    assert resolve_profile("auto") == "cpu"
    assert notebook_settings("03_dcgan")["WIDTH"] == 16
    assert resolve_profile("smoke") == "smoke"


def test_overrides_replace_one_setting_and_reject_unknown_names():
    settings = notebook_settings("02_vanilla_gan", "cpu", STEPS=300)
    assert settings["STEPS"] == 300 and settings["SIZE"] == 32
    with pytest.raises(ValueError, match="has no setting WIDTH"):
        notebook_settings("02_vanilla_gan", "cpu", WIDTH=8)


def test_bad_names_are_errors():
    with pytest.raises(ValueError, match="unknown PROFILE 'laptop'"):
        notebook_settings("02_vanilla_gan", "laptop")
    with pytest.raises(ValueError, match="no settings for notebook"):
        notebook_settings("99_nothing", "cpu")
    # A path or a file name works as well as the stem.
    assert notebook_settings("notebooks/01_preprocessing.ipynb", "smoke")["SIZE"] == 32


def test_describe_profile_prints_the_profile_first(capsys):
    settings = describe_profile("04_wgan", "smoke")
    first, second = capsys.readouterr().out.splitlines()[:2]
    assert first.startswith("PROFILE smoke")
    assert "STEPS = 4" in second and settings["STEPS"] == 4


def test_the_readme_quotes_the_cpu_estimates():
    readme = (ROOT / "README.md").read_text()
    for name, minutes in CPU_MINUTES.items():
        row = next(line for line in readme.splitlines() if line.startswith(f"| {name[:2]} | ["))
        assert f"| ~{minutes} min |" in row, name
