"""The repository's promises about installation hold: pyproject, environment.yml, Makefile, CI, README."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def _requirements() -> dict[str, Requirement]:
    reqs = [Requirement(r) for r in PROJECT["dependencies"]]
    return {r.name.lower(): r for r in reqs}


def test_stack_versions():
    reqs = _requirements()
    assert SpecifierSet(PROJECT["requires-python"]).contains("3.11")
    assert not SpecifierSet(PROJECT["requires-python"]).contains("3.10")
    assert not reqs["tensorflow"].specifier.contains("2.18.0")
    assert reqs["tensorflow"].specifier.contains("2.19.0")
    assert not reqs["keras"].specifier.contains("3.9.0") and reqs["keras"].specifier.contains("3.10.0")
    for name in ("nibabel", "nilearn", "numpy", "scikit-image", "matplotlib"):
        assert name in reqs


def test_no_tensorflow_addons_anywhere():
    everything = list(PROJECT["dependencies"])
    for extra in PROJECT["optional-dependencies"].values():
        everything += extra
    assert not any(Requirement(r).name.lower() == "tensorflow-addons" for r in everything)
    readme = (ROOT / "README.md").read_text()
    assert "tensorflow-addons" in readme and "GroupNormalization" in readme


def test_extras_and_console_script():
    extras = PROJECT["optional-dependencies"]
    assert {"notebooks", "dev"} <= set(extras)
    dev = {Requirement(r).name.lower() for r in extras["dev"]}
    assert {"pytest", "papermill", "ipykernel"} <= dev
    assert PROJECT["scripts"]["mrigan-tf"] == "mrigan_tf.cli:main"
    from mrigan_tf.cli import main
    assert callable(main)


def test_environment_yml_agrees_with_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    # Python pinned by conda must satisfy the package's requires-python.
    python = [d for d in conda if d.startswith("python")]
    assert len(python) == 1
    version = re.split(r"[=<>]+", python[0])[1]
    assert SpecifierSet(PROJECT["requires-python"]).contains(version)
    # Everything else comes from pyproject via pip, so the two cannot drift apart.
    assert set(conda) - {python[0]} <= {"pip"}
    assert len(pip_sections) == 1
    installs_self = [line for line in pip_sections[0] if re.match(r"^(-e )?\.(\[[a-z,]+\])?$", line)]
    assert installs_self, "environment.yml must pip-install this package"
    extras = re.findall(r"\[([a-z,]+)\]", installs_self[0])
    assert extras and set(extras[0].split(",")) <= set(PROJECT["optional-dependencies"])
    assert "notebooks" in extras[0].split(",")


def test_two_commands_come_first_and_ci_runs_the_test_command():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo:", "test:", "bench:"):
        assert re.search(rf"^{target}", makefile, re.M), target
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1)
    assert "make demo" in first_block and "make test" in first_block
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_is_honest_about_the_embedded_data():
    readme = (ROOT / "README.md").read_text()
    assert "not patient data" in readme
    assert "MNI152" in readme and "McGill" in readme


def test_readme_lists_every_notebook_with_a_colab_badge():
    readme = (ROOT / "README.md").read_text()
    linked = set(re.findall(r"\(notebooks/([\w.-]+\.ipynb)\)", readme))
    badges = set(re.findall(r"blob/main/notebooks/([\w.-]+\.ipynb)", readme))
    on_disk = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert linked == on_disk, f"README table vs notebooks/: {sorted(linked ^ on_disk)}"
    assert badges >= on_disk
