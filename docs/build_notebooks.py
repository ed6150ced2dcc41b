"""Render the notebooks with their outputs: ``make docs`` (or ``make docs NOTEBOOKS=02_vanilla_gan``).

Each notebook of ``notebooks/`` runs top to bottom through Papermill at one profile (``cpu``
by default: the ``PROFILE`` of its cell tagged ``parameters``), in name order and in one
working directory (``runs/docs``), so that 03 and 04 reuse the runs 02 and 03 left there
(``mrigan_tf/profiles.py``, ``CPU_MINUTES``). For each notebook it writes

- ``docs/notebooks/<name>.html``: the executed notebook with its outputs (nbconvert), its
  pictures re-encoded as smaller PNGs when the page would exceed ``--max-mb``; written to a
  temporary file and renamed, so a page is never half-written;
- an entry of ``docs/notebooks/timings.json``: the date, the machine (CPU count, platform),
  the load average at the start and the end (the machine may be shared: a load above its
  CPU count inflates the time), the wall-clock seconds and whether the run raised.

A notebook that raises still gets its page (the error is in it) and its entry; the command
then exits with status 1 after running the others. The executed ``.ipynb`` files stay in
``<workdir>/executed/``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill
from nbconvert import HTMLExporter
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
OUT_DIR = ROOT / "docs" / "notebooks"
KERNEL = "mrigan-tf-docs"


def select_notebooks(names: list[str], notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The notebooks to run, in name (teaching) order: all of ``notebook_dir`` or those named
    (``02_vanilla_gan``, ``02_vanilla_gan.ipynb`` or a comma-separated list)."""
    available = sorted(notebook_dir.glob("*.ipynb"))
    wanted = [n.strip().removesuffix(".ipynb") for arg in names for n in arg.split(",") if n.strip()]
    if not wanted:
        return available
    by_stem = {p.stem: p for p in available}
    unknown = [w for w in wanted if w not in by_stem]
    if unknown:
        sys.exit(f"build_notebooks: no notebook {', '.join(unknown)} in {notebook_dir}; "
                 f"found: {', '.join(by_stem)}")
    return sorted(by_stem[w] for w in set(wanted))


def register_kernel(workdir: Path) -> str:
    """A Jupyter kernel for this interpreter (the venv), found through JUPYTER_PATH."""
    from ipykernel.kernelspec import install

    prefix = workdir / "jupyter"
    install(kernel_name=KERNEL, prefix=str(prefix))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(prefix / "share" / "jupyter")] + [p for p in [os.environ.get("JUPYTER_PATH")] if p])
    return KERNEL


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _shrink_png(data: str, scale: float) -> str:
    """A base64 PNG re-encoded (optimised, and resized by ``scale`` when below 1)."""
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    if scale < 1:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode("ascii")


def render_html(notebook: nbformat.NotebookNode, max_bytes: int) -> bytes:
    """The notebook as one self-contained HTML page, pictures shrunk until it fits ``max_bytes``
    (re-encoded first, then resized to 80%, 64%, ... of their pixels' width)."""
    exporter = HTMLExporter(template_name="lab")
    scale = 1.0
    for _ in range(8):
        body, _ = exporter.from_notebook_node(notebook)
        html = body.encode("utf-8")
        if len(html) <= max_bytes:
            return html
        for cell in notebook.cells:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if "image/png" in data:
                    data["image/png"] = _shrink_png(data["image/png"], 1.0 if scale == 1.0 else 0.8)
        scale *= 0.8
    print(f"build_notebooks: page still {len(html) / 1e6:.1f} MB after shrinking its pictures",
          file=sys.stderr)
    return html


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_notebook(path: Path, profile: str, workdir: Path, kernel: str, max_bytes: int,
                 out_dir: Path = OUT_DIR) -> dict:
    """Execute one notebook, write its page, return its timings entry."""
    executed = workdir / "executed" / path.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    entry = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
             "profile": profile,
             "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                         "processor": platform.processor() or platform.machine()},
             "load_average_start": _load_average()}
    print(f"build_notebooks: {path.name} at PROFILE={profile!r}, load {entry['load_average_start']}",
          flush=True)
    start = time.monotonic()
    try:
        papermill.execute_notebook(
            str(path), str(executed), parameters={"PROFILE": profile}, kernel_name=kernel,
            cwd=str(workdir), progress_bar=False, log_output=True)
        entry["status"] = "ok"
    except Exception as error:   # the page still shows where it failed
        entry["status"] = f"error: {type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error).strip() else ''}"
    entry["seconds"] = round(time.monotonic() - start, 1)
    entry["minutes"] = round(entry["seconds"] / 60, 1)
    entry["load_average_end"] = _load_average()
    if executed.exists():
        html = render_html(nbformat.read(executed, as_version=4), max_bytes)
        _write_atomically(out_dir / f"{path.stem}.html", html)
        entry["html_bytes"] = len(html)
    print(f"build_notebooks: {path.name} {entry['status']} in {entry['seconds']:.0f} s, "
          f"load {entry['load_average_end']}", flush=True)
    return entry


def record_timing(name: str, entry: dict, timings_path: Path) -> None:
    """Add or replace ``name``'s entry of timings.json (the others are kept)."""
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    timings.setdefault("command", "make docs")
    timings.setdefault("notebooks", {})[name] = entry
    timings["notebooks"] = dict(sorted(timings["notebooks"].items()))
    _write_atomically(timings_path, (json.dumps(timings, indent=2) + "\n").encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*",
                        help="notebook names (e.g. 02_vanilla_gan); default: all of notebooks/")
    parser.add_argument("--from", dest="start_at", metavar="NAME",
                        help="run the notebooks from NAME on (e.g. 04_wgan), in order")
    parser.add_argument("--profile", default="cpu", choices=["cpu", "gpu", "smoke", "auto"])
    parser.add_argument("--workdir", type=Path, default=ROOT / "runs" / "docs",
                        help="where the notebooks run (their runs/ and data/ land there)")
    parser.add_argument("--max-mb", type=float, default=2.8, help="largest page, in MB")
    parser.add_argument("--notebook-dir", type=Path, default=NOTEBOOK_DIR)
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR,
                        help="where the pages and timings.json go")
    args = parser.parse_args(argv)

    paths = select_notebooks(args.notebooks, args.notebook_dir)
    if args.start_at:
        paths = [p for p in paths if p.stem >= args.start_at.removesuffix(".ipynb")]
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    kernel = register_kernel(workdir)
    failed = []
    for path in paths:
        entry = run_notebook(path, args.profile, workdir, kernel, int(args.max_mb * 1e6),
                             args.out_dir)
        record_timing(path.stem, entry, args.out_dir / "timings.json")
        if entry["status"] != "ok":
            failed.append(path.stem)
    if failed:
        print(f"build_notebooks: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
