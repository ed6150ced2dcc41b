"""Every notebook runs top to bottom, headless, with smoke parameters (tiny data, few steps).

Papermill injects the notebook's ``tests/smoke_parameters/<stem>.json`` after the cell tagged
``parameters``, so the notebooks keep their real teaching defaults and CI still runs them in
seconds. A notebook
added to ``notebooks/`` without its smoke file fails ``test_every_notebook_has_smoke_parameters``:
it cannot slip in untested.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
from pathlib import Path

import pytest

import mrigan_tf

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


def _package_names() -> set[str]:
    """Every top-level function and class defined in the mrigan_tf package."""
    names = set()
    for py in Path(inspect.getfile(mrigan_tf)).parent.rglob("*.py"):
        tree = ast.parse(py.read_text())
        names |= {n.name for n in tree.body
                  if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")}
    return names


def test_every_notebook_has_smoke_parameters():
    assert NOTEBOOKS, "no notebooks found"
    assert {p.name for p in NOTEBOOKS} == set(SMOKE_PARAMETERS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_the_house_shape(path):
    cells = _cells(path)
    code = [c for c in cells if c["cell_type"] == "code"]
    # Outputs are stripped in git.
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), \
        f"{path.name}: strip outputs before committing"
    # Title, then a Colab badge; the first code cell is the Colab-aware setup.
    assert _source(cells[0]).startswith("# ") and "colab.research.google.com" in _source(cells[0])
    assert '"google.colab" in sys.modules' in _source(code[0])
    # A parameters cell whose names the smoke run overrides.
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, f"{path.name}: exactly one cell tagged 'parameters'"
    assigned = {t.id for node in ast.parse(_source(params[0])).body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    assert set(SMOKE_PARAMETERS[path.name]) <= assigned
    assert any("## Exercises" in _source(c) for c in cells if c["cell_type"] == "markdown")
    # Notebooks teach the package's code; they never re-implement it.
    defined = set()
    for c in code:
        src = "\n".join(_without_magic(line) for line in _source(c).splitlines())
        defined |= {n.name for n in ast.walk(ast.parse(src))
                    if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert not any(isinstance(n, ast.ClassDef) for n in ast.walk(ast.parse(src))), \
            f"{path.name}: classes belong in the mrigan_tf package"
    clash = defined & _package_names()
    assert not clash, f"{path.name} redefines package code: {sorted(clash)}"


@pytest.fixture(scope="session")
def kernel_name(tmp_path_factory):
    """A Jupyter kernel registered for this interpreter (the venv), found via JUPYTER_PATH."""
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter")
    name = "mrigan-tf-test"
    install(kernel_name=name, prefix=str(prefix))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(prefix / "share" / "jupyter")] + [p for p in [os.environ.get("JUPYTER_PATH")] if p])
    return name


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_with_smoke_parameters(path, tmp_path, kernel_name):
    import papermill

    out = tmp_path / path.name
    papermill.execute_notebook(
        str(path), str(out), parameters=SMOKE_PARAMETERS[path.name], kernel_name=kernel_name,
        cwd=str(tmp_path), progress_bar=False, log_output=False, execution_timeout=900)
    executed = json.loads(out.read_text())
    errors = [o for c in executed["cells"] if c["cell_type"] == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # The smoke run really used the smoke parameters.
    injected = [c for c in executed["cells"]
                if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    assert injected and all(f"{k} = " in _source(injected[0]) for k in SMOKE_PARAMETERS[path.name])
