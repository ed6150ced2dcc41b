"""Every notebook runs top to bottom, headless, at the smoke profile (tiny data, few steps).

Papermill injects the notebook's ``tests/smoke_parameters/<stem>.json`` (``PROFILE = "smoke"``,
nothing else: every size comes from ``mrigan_tf.profiles``) after the cell tagged
``parameters``, so the notebooks keep their real teaching defaults and CI still runs them in
seconds, with every ``assert`` they make. A notebook added to ``notebooks/`` without its smoke
file fails ``test_every_notebook_has_smoke_parameters``: it cannot slip in untested.

The house shape (DESIGN.md, *Notebooks*) is checked without running anything: a GPU runtime
asked for in the metadata, a setup cell that installs the pinned package only when
``import mrigan_tf`` fails, a ``PROFILE`` parameter whose settings come from the package, no
function or class defined in a cell, a summary with links to the papers, a hint and a
solution for every exercise, and a link to the next notebook.
"""

from __future__ import annotations

import ast
import json
import os
import re
import tomllib
from pathlib import Path

import pytest

import mrigan_tf
from mrigan_tf.environment import install_command
from mrigan_tf.profiles import NOTEBOOKS as PROFILED_NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

SMOKE_DIR = Path(__file__).resolve().parent / "smoke_parameters"
# One JSON file per notebook (tests/smoke_parameters/<notebook stem>.json), so that adding a
# notebook never means editing another notebook's entry.
SMOKE_PARAMETERS: dict[str, dict] = {
    f"{p.stem}.ipynb": json.loads(p.read_text()) for p in sorted(SMOKE_DIR.glob("*.json"))}


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def _without_magic(line: str) -> str:
    """IPython magics (%pip, !ls) are not Python: parse them as ``pass``."""
    stripped = line.lstrip()
    return line[:len(line) - len(stripped)] + "pass" if stripped.startswith(("%", "!")) else line


def test_every_notebook_has_smoke_parameters():
    assert NOTEBOOKS, "no notebooks found"
    assert {p.name for p in NOTEBOOKS} == set(SMOKE_PARAMETERS)
    # The smoke run is a profile, not a second list of sizes to keep in step.
    for name, parameters in SMOKE_PARAMETERS.items():
        assert parameters.get("PROFILE") == "smoke", name
        assert all(k == "PROFILE" or k.endswith("_DIR") for k in parameters), \
            f"{name}: sizes belong in mrigan_tf/profiles.py, not in the smoke file"


def test_every_notebook_has_a_profile():
    assert {p.stem for p in NOTEBOOKS} == set(PROFILED_NOTEBOOKS)


def test_the_install_command_is_pinned_to_this_version():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert install_command() == install_command(version)
    assert install_command().endswith(f'@v{version}"')
    # The README gives the same command.
    assert install_command() in (ROOT / "README.md").read_text()


def _markdown(cells: list[dict]) -> list[str]:
    return [_source(c) for c in cells if c["cell_type"] == "markdown"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_the_house_shape(path):
    notebook = json.loads(path.read_text())
    cells = notebook["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    # Outputs are stripped in git.
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), \
        f"{path.name}: strip outputs before committing"
    # Colab opens it on a GPU runtime.
    assert notebook["metadata"].get("accelerator") == "GPU"
    assert notebook["metadata"].get("colab", {}).get("gpuType") == "T4"
    # Title, then a Colab badge; the first code cell is the setup: it installs the pinned
    # version only when the package is missing, and reports the device.
    assert _source(cells[0]).startswith("# ") and "colab.research.google.com" in _source(cells[0])
    setup = _source(code[0])
    assert "try:\n    import mrigan_tf\nexcept ImportError:" in setup
    assert f"%pip install -q {install_command().removeprefix('pip install ')}" in setup
    assert "describe_environment(check_gpu=True)" in setup
    # A parameters cell with PROFILE = "auto", whose settings the next cell takes from the
    # package for this notebook.
    params = [i for i, c in enumerate(code) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, f"{path.name}: exactly one cell tagged 'parameters'"
    assigned = {t.id: node.value for node in ast.parse(_source(code[params[0]])).body
                if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}
    assert isinstance(assigned.get("PROFILE"), ast.Constant) and assigned["PROFILE"].value == "auto"
    assert set(SMOKE_PARAMETERS[path.name]) <= set(assigned)
    assert f'describe_profile("{path.stem}", PROFILE' in _source(code[params[0] + 1])
    # Notebooks teach the package's code; they never define functions or classes of their own.
    for c in code:
        src = "\n".join(_without_magic(line) for line in _source(c).splitlines())
        defined = [n.name for n in ast.walk(ast.parse(src))
                   if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        assert not defined, f"{path.name} defines {defined}: put them in the mrigan_tf package"
    # The lesson's end: a summary with the papers, exercises, a hint and a worked solution for
    # each, and the next notebook.
    markdown = _markdown(cells)
    summary = [m for m in markdown if m.startswith("## Summary")]
    assert summary and re.search(r"https?://", summary[0]), f"{path.name}: summary with papers"
    exercises = [m for m in markdown if m.startswith("## Exercises")]
    assert len(exercises) == 1, f"{path.name}: one '## Exercises' cell"
    numbered = re.findall(r"^(\d+)\. \*\*", exercises[0], flags=re.M)
    assert numbered, f"{path.name}: numbered exercises"
    text = "\n".join(markdown)
    for n in numbered:
        assert f"<summary>{n}. " in text and re.search(rf"<summary>{n}\. [^<]*hint</summary>", text), \
            f"{path.name}: exercise {n} has no hint"
        assert re.search(rf"<summary>{n}\. [^<]*solution</summary>", text), \
            f"{path.name}: exercise {n} has no solution"
    next_part = markdown[-1].partition("## Next")[2]
    assert re.search(r"\]\([^)]+\)", next_part), f"{path.name}: end with a '## Next' link"


EAGER_KERNEL_STARTUP = "import tensorflow as tf; tf.config.run_functions_eagerly(True)"


@pytest.fixture(scope="session")
def kernel_name(tmp_path_factory):
    """A Jupyter kernel registered for this interpreter (the venv), found via JUPYTER_PATH."""
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter")
    name = "mrigan-tf-test"
    spec_dir = Path(install(kernel_name=name, prefix=str(prefix)))
    # The smoke runs' kernels run every tf.function eagerly: their fits are two to four
    # steps, and tracing a GAN step costs more than running a few untraced (07, 10 and 02:
    # 211 -> 154 CPU-s). The traced steps of every model are tested in the other test files.
    spec = json.loads((spec_dir / "kernel.json").read_text())
    spec["argv"].append(f"--IPKernelApp.exec_lines={EAGER_KERNEL_STARTUP}")
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(prefix / "share" / "jupyter")] + [p for p in [os.environ.get("JUPYTER_PATH")] if p])
    return name


class SharedKernel:
    """One kernel for this test process's notebook runs, one after another.

    A kernel's start is mostly TensorFlow's import: about 15 of a smoke run's 25-75 CPU
    seconds. Each notebook starts with an empty namespace (its names deleted), its own working
    directory and no open figures, so a missing import or a name left over from another
    notebook still fails; what persists is what stays in imported modules. A notebook that
    fails takes the kernel with it: the next one gets a fresh kernel.
    """

    def __init__(self, kernel_name: str):
        self.kernel_name, self.manager = kernel_name, None

    def execute(self, path: Path, out: Path, cwd: Path, parameters: dict) -> None:
        import nbformat
        import papermill
        from jupyter_client.manager import AsyncKernelManager

        notebook = nbformat.read(path, as_version=4)
        # Every name the last notebook made goes (%reset -f would also take __spec__, which
        # multiprocessing reads from __main__).
        fresh_start = nbformat.v4.new_code_cell(
            "_name = None\n"
            "for _name in [n for n in globals() if not n.startswith('_')\n"
            "              and n not in get_ipython().user_ns_hidden]:\n"
            "    del globals()[_name]\n"
            "import os as _os, matplotlib.pyplot as _plt\n"
            f"_os.chdir({str(cwd)!r}); _plt.close('all'); del _os, _plt, _name",
            metadata={"tags": ["shared-kernel-reset"]})
        notebook.cells.insert(0, fresh_start)
        copy = cwd / f"input_{path.name}"
        nbformat.write(notebook, copy)
        if self.manager is None:
            self.manager = AsyncKernelManager(kernel_name=self.kernel_name)
        try:
            papermill.execute_notebook(
                str(copy), str(out), parameters=parameters, kernel_name=self.kernel_name,
                km=self.manager, cwd=str(cwd), progress_bar=False, log_output=False,
                execution_timeout=900)
        except BaseException:
            self.shutdown()
            raise

    def shutdown(self) -> None:
        if self.manager is not None and self.manager.has_kernel:
            from jupyter_core.utils import run_sync
            run_sync(self.manager.shutdown_kernel)(now=True)
        self.manager = None


@pytest.fixture(scope="session")
def shared_kernel(kernel_name):
    from mrigan_tf.metrics.c2st import SMOKE_STEPS_ENV

    # The kernel inherits it: two-sample tests of 40 steps instead of 500 (a third of 07's
    # smoke run went into four of them).
    previous = os.environ.get(SMOKE_STEPS_ENV)
    os.environ[SMOKE_STEPS_ENV] = "40"
    kernel = SharedKernel(kernel_name)
    yield kernel
    kernel.shutdown()
    if previous is None:
        os.environ.pop(SMOKE_STEPS_ENV, None)
    else:
        os.environ[SMOKE_STEPS_ENV] = previous


@pytest.mark.notebook
@pytest.mark.spread
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_with_smoke_parameters(path, tmp_path, shared_kernel):
    out = tmp_path / path.name
    shared_kernel.execute(path, out, tmp_path, SMOKE_PARAMETERS[path.name])
    executed = json.loads(out.read_text())
    errors = [o for c in executed["cells"] if c["cell_type"] == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # The smoke run really ran the smoke profile: injected, and reported by the settings cell.
    injected = [i for i, c in enumerate(executed["cells"])
                if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    assert injected and 'PROFILE = "smoke"' in _source(executed["cells"][injected[0]])
    settings_output = "".join(o.get("text", "") if isinstance(o.get("text", ""), str)
                              else "".join(o["text"])
                              for o in executed["cells"][injected[0] + 1].get("outputs", []))
    assert settings_output.startswith("PROFILE smoke"), settings_output
