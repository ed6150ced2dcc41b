"""The `mrigan-tf phantom` command on bad input and interruption: one-line errors, exit codes,
no partial output. The phantom build itself is replaced by a stub (tests/test_phantom.py
covers the real one), so these tests take milliseconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import build_tiny_dataset
from mrigan_tf import cli
from mrigan_tf.data import contract, phantom
from mrigan_tf.data.contract import ARRAYS_FILE, META_FILE, load_dataset


@pytest.fixture
def fake_build(monkeypatch):
    """Replace the (slow) phantom simulation with the tiny dataset; record the calls."""
    calls = []

    def build(config, workers=None, progress=True):
        calls.append(config)
        return build_tiny_dataset()

    monkeypatch.setattr(phantom, "build_phantom", build)
    return calls


@pytest.fixture
def no_build(monkeypatch):
    """Fail loudly if the command gets as far as simulating subjects."""
    def build(*args, **kwargs):
        raise AssertionError("bad input must be refused before the phantom is built")

    monkeypatch.setattr(phantom, "build_phantom", build)


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("mrigan-tf phantom: ")
    return lines[0]


def _hidden_leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_existing_non_empty_out_is_refused_and_untouched(tmp_path, capsys, no_build):
    out = tmp_path / "mydata"
    out.mkdir()
    (out / "notes.txt").write_text("my own work")
    (out / "sub").mkdir()
    (out / "sub" / "a.npy").write_bytes(b"\x93NUMPY")
    before = _snapshot(out)

    assert cli.main(["phantom", "--out", str(out), "--quiet"]) == cli.EXIT_USER_ERROR == 2
    line = _one_line_error(capsys.readouterr().err)
    assert str(out) in line and "already exists" in line and "--overwrite" in line
    assert _snapshot(out) == before
    assert _hidden_leftovers(tmp_path) == []


@pytest.mark.parametrize("size", ["48", "0", "512"])
def test_bad_size_is_a_clear_error(tmp_path, capsys, no_build, size):
    out = tmp_path / "ds"
    assert cli.main(["phantom", "--out", str(out), "--size", size, "--quiet"]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "--size must be a power of two between 16 and 256" in line and size in line
    assert not out.exists()


def test_non_positive_subjects_is_a_usage_error(tmp_path, capsys, no_build):
    with pytest.raises(SystemExit) as info:
        cli.main(["phantom", "--out", str(tmp_path / "ds"), "--subjects", "0"])
    assert info.value.code == 2
    assert "positive integer" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_keyboard_interrupt_during_build_leaves_nothing(tmp_path, capsys, monkeypatch):
    def build(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(phantom, "build_phantom", build)
    out = tmp_path / "ds"
    assert cli.main(["phantom", "--out", str(out), "--quiet"]) == cli.EXIT_INTERRUPTED == 130
    err = capsys.readouterr().err
    assert "interrupted" in _one_line_error(err)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_keyboard_interrupt_while_writing_leaves_nothing(tmp_path, capsys, monkeypatch,
                                                         fake_build):
    real_write = contract.write_npz_deterministic

    def half_write(path, arrays):
        real_write(path, {"images": arrays["images"]})  # a partial file really is on disk
        assert path.exists()
        raise KeyboardInterrupt

    monkeypatch.setattr(contract, "write_npz_deterministic", half_write)
    out = tmp_path / "ds"
    assert cli.main(["phantom", "--out", str(out), "--quiet"]) == 130
    assert "interrupted" in _one_line_error(capsys.readouterr().err)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no hidden .ds.partial-* directory either


def test_success_writes_a_loadable_dataset(tmp_path, capsys, fake_build):
    out = tmp_path / "ds"
    assert cli.main(["phantom", "--out", str(out), "--subjects", "6", "--size", "16",
                     "--seed", "3", "--quiet"]) == 0
    config = fake_build[0]
    assert (config.subjects, config.size, config.seed) == (6, 16, 3)
    assert sorted(p.name for p in out.iterdir()) == [ARRAYS_FILE, META_FILE]
    assert len(load_dataset(out)) == 18
    assert f"wrote 18 slices of 6 simulated subjects to {out}" in capsys.readouterr().out
    assert _hidden_leftovers(tmp_path) == []


def test_overwrite_replaces_existing_dataset(tmp_path, fake_build):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    assert cli.main(["phantom", "--out", str(out), "--overwrite", "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [ARRAYS_FILE, META_FILE]


def test_overwrite_does_not_delete_a_file(tmp_path, capsys, fake_build):
    out = tmp_path / "ds"
    out.write_text("a file, not a dataset")
    assert cli.main(["phantom", "--out", str(out), "--overwrite", "--quiet"]) == 2
    assert "not a directory" in _one_line_error(capsys.readouterr().err)
    assert out.read_text() == "a file, not a dataset"


def _console_script() -> list[str]:
    script = Path(sys.executable).with_name("mrigan-tf")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mrigan_tf.cli"]


@pytest.mark.parametrize("case", ["existing", "size48"])
def test_console_script_exit_code_and_one_line_stderr(tmp_path, case):
    out = tmp_path / "ds"
    args = ["phantom", "--out", str(out), "--quiet"]
    if case == "existing":
        out.mkdir()
        (out / "keep.txt").write_text("keep")
        expect = "already exists"
    else:
        args += ["--size", "48"]
        expect = "--size must be a power of two"
    proc = subprocess.run(_console_script() + args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    line = _one_line_error(proc.stderr)
    assert expect in line
    assert proc.stdout == ""
    if case == "existing":
        assert [p.name for p in out.iterdir()] == ["keep.txt"]
    else:
        assert not out.exists()
