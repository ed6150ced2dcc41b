"""docs/build_notebooks.py (make docs): which notebooks, the timings file, the page size cap."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "docs" / "build_notebooks.py")
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)


def test_select_notebooks_all_in_order_or_those_named(tmp_path):
    for name in ["03_c", "01_a", "02_b"]:
        (tmp_path / f"{name}.ipynb").write_text("{}")
    assert [p.stem for p in build.select_notebooks([], tmp_path)] == ["01_a", "02_b", "03_c"]
    assert [p.stem for p in build.select_notebooks(["03_c,01_a.ipynb"], tmp_path)] == ["01_a", "03_c"]
    with pytest.raises(SystemExit, match="no notebook 04_d"):
        build.select_notebooks(["04_d"], tmp_path)


def test_record_timing_replaces_one_entry_and_keeps_the_others(tmp_path):
    path = tmp_path / "timings.json"
    build.record_timing("02_b", {"seconds": 1.0}, path)
    build.record_timing("01_a", {"seconds": 2.0}, path)
    build.record_timing("02_b", {"seconds": 3.0}, path)
    timings = json.loads(path.read_text())
    assert timings["command"] == "make docs"
    assert timings["notebooks"] == {"01_a": {"seconds": 2.0}, "02_b": {"seconds": 3.0}}
    assert list(tmp_path.iterdir()) == [path]          # no temporary file left behind


def _png(size: int) -> str:
    noise = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(noise).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")


def test_render_html_shrinks_pictures_until_the_page_fits():
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plot()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": _png(400)})]
    notebook.cells = [cell]
    full = build.render_html(notebook, max_bytes=10**8)
    assert b"data:image/png;base64" in full
    capped = build.render_html(nbformat.from_dict(json.loads(json.dumps(notebook))),
                               max_bytes=len(full) - 200_000)
    assert len(capped) <= len(full) - 200_000
    picture = Image.open(io.BytesIO(base64.b64decode(
        capped.split(b"data:image/png;base64,")[1].split(b'"')[0])))
    assert picture.width < 400                          # resized, not dropped
