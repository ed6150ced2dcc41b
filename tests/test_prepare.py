"""The prepare driver: command-line options, --limit, --skip-bad, interruption, shards, sheets."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from mrigan_tf.data.contract import load_dataset
from mrigan_tf.data.readers import SOURCES, get_reader
from mrigan_tf.data.readers.brats import BratsReader
from mrigan_tf.data.readers.common import Subject, limit_subjects, read_table
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.data.prepare import add_prepare_arguments, list_shards, prepare_dataset
from test_readers_brats import write_brats_subject

SIZE = 16


def prepare_parser() -> argparse.ArgumentParser:
    """The wiring cli.py uses: a `prepare` sub-command filled by add_prepare_arguments."""
    parser = argparse.ArgumentParser(prog="mrigan-tf")
    sub = parser.add_subparsers(dest="command", required=True)
    add_prepare_arguments(sub.add_parser("prepare"))
    return parser


def run(argv: list[str]) -> int:
    args = prepare_parser().parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def brats(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("brats") / "data"
    for i in range(4):
        write_brats_subject(root, f"BraTS2021_{i:05d}", seed=i)
    return root


def test_every_source_has_a_subcommand_with_help(capsys):
    parser = prepare_parser()
    for source in SOURCES:
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(["prepare", source, "--help"])
        assert exit_.value.code == 0
        text = capsys.readouterr().out
        assert "--src" in text and "--skip-bad" in text and "--limit" in text
    args = parser.parse_args(["prepare", "brats", "--src", "a", "--out", "b",
                              "--modalities", "t1ce,flair", "--region", "tumor_core"])
    assert args.source == "brats" and args.modalities == "t1ce,flair"
    with pytest.raises(SystemExit):
        parser.parse_args(["prepare", "bids", "--src", "a", "--out", "b"])   # --class-column


def test_command_line_end_to_end(brats, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(["prepare", "brats", "--src", str(brats), "--out", str(out), "--size", str(SIZE),
                "--limit", "3", "--workers", "1", "--quiet", "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and "3 brats subjects" in printed
    ds = load_dataset(out)
    assert len(set(ds.subjects)) == 3 and ds.meta["seed"] == 5 and ds.meta["limit"] == 3
    with pytest.raises(DataError, match="output already exists"):
        run(["prepare", "brats", "--src", str(brats), "--out", str(out), "--quiet"])
    assert run(["prepare", "brats", "--src", str(brats), "--out", str(out), "--size", str(SIZE),
                "--overwrite", "--quiet", "--slice-step", "2", "--workers", "1"]) == 0
    again = load_dataset(out)
    assert again.meta["preprocessing"]["slice_step"] == 2 and len(set(again.subjects)) == 4


def test_cli_main_when_wired(brats, tmp_path, capsys):
    from mrigan_tf import cli

    try:
        cli.build_parser().parse_args(["prepare", "brats", "--src", "a", "--out", "b"])
    except SystemExit:
        pytest.skip("`mrigan-tf prepare` is not wired into cli.py yet")
    (tmp_path / "empty").mkdir()
    code = cli.main(["prepare", "brats", "--src", str(tmp_path / "empty"), "--out",
                     str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "empty directory" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_limit_takes_classes_in_turn():
    subjects = [Subject(id=f"s{i}", files={}, label=int(i >= 6)) for i in range(8)]
    picked = limit_subjects(subjects, 4)
    assert [s.id for s in picked] == ["s0", "s1", "s6", "s7"]
    assert [s.id for s in limit_subjects(subjects, None)] == [f"s{i}" for i in range(8)]
    per_slice = [Subject(id=f"b{i}", files={}) for i in (3, 1, 2)]
    assert [s.id for s in limit_subjects(per_slice, 2)] == ["b1", "b2"]


def test_options_are_checked():
    with pytest.raises(MriganError, match="unknown source 'adni'"):
        get_reader("adni")
    with pytest.raises(MriganError, match="brats has no option tissue"):
        get_reader("brats", tissue="gm")
    with pytest.raises(MriganError, match="--size must be a power of two"):
        prepare_dataset("brats", ".", "out", size=100)
    with pytest.raises(MriganError, match="--limit must be at least 1"):
        prepare_dataset("brats", ".", "out", limit=0)


def test_interruption_leaves_nothing(brats, tmp_path, monkeypatch):
    calls = []

    def interrupted(self, subject, params):
        calls.append(subject.id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, subject, params)

    original = BratsReader.read_subject
    monkeypatch.setattr(BratsReader, "read_subject", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("brats", brats, tmp_path / "out", size=SIZE, workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unexpected_errors_stop_or_are_skipped(brats, tmp_path, monkeypatch):
    def broken(self, subject, params):
        if subject.id == "BraTS2021_00001":
            raise ValueError("a bug in the reader")
        return original(self, subject, params)

    original = BratsReader.read_subject
    monkeypatch.setattr(BratsReader, "read_subject", broken)
    with pytest.raises(ValueError, match="a bug"):   # a bug keeps its traceback
        prepare_dataset("brats", brats, tmp_path / "out", size=SIZE, workers=1, progress=False)
    report = prepare_dataset("brats", brats, tmp_path / "out", size=SIZE, workers=1,
                             progress=False, skip_bad=True)
    assert [(b.subject, b.problem) for b in report.skipped] == [
        ("BraTS2021_00001", "unexpected ValueError: a bug in the reader")]


def test_every_subject_bad_is_an_error(brats, tmp_path, monkeypatch):
    def always(self, subject, params):
        raise DataError(subject.files["seg"], "broken")

    monkeypatch.setattr(BratsReader, "read_subject", always)
    with pytest.raises(DataError, match=r"no subject could be prepared \(4 skipped\)"):
        prepare_dataset("brats", brats, tmp_path / "out", size=SIZE, workers=1, progress=False,
                        skip_bad=True)
    assert list(tmp_path.iterdir()) == []


def test_shards_hold_whole_subjects(brats, tmp_path):
    report = prepare_dataset("brats", brats, tmp_path / "out", size=SIZE, workers=1,
                             progress=False, shard_slices=1)
    shards = list_shards(tmp_path / "out")
    assert len(shards) == 4 == len(report.shards)      # one subject per shard at this size
    parts = [load_dataset(p) for p in shards]
    assert [len(set(p.subjects)) for p in parts] == [1, 1, 1, 1]
    assert sum(len(p) for p in parts) == report.num_slices
    assert parts[0].meta["num_shards"] == 4 and parts[2].meta["shard"] == 2
    total = {s: sum(p.counts()[s]["tumor"] for p in parts) for s in ("train", "val", "test")}
    assert total == {s: report.counts[s]["tumor"] for s in total}
    assert not (tmp_path / "out" / "dataset.npz").exists()
    with pytest.raises(DataError, match="not a sharded dataset"):
        list_shards(shards[0])


def test_read_table_sniffs_delimiters_and_names_missing_columns(tmp_path):
    (tmp_path / "a.csv").write_text("ID;CDR\nx;0.5\n")
    assert read_table(tmp_path / "a.csv") == [{"ID": "x", "CDR": "0.5"}]
    (tmp_path / "b.tsv").write_text("participant_id\tgroup\nsub-01\tcontrol\n")
    assert read_table(tmp_path / "b.tsv")[0]["group"] == "control"
    with pytest.raises(DataError, match="missing column\\(s\\) CDR; the sheet has ID"):
        (tmp_path / "c.csv").write_text("ID\nx\n")
        read_table(tmp_path / "c.csv", required=["CDR"])
    (tmp_path / "d.csv").write_text("")
    with pytest.raises(DataError, match="empty sheet"):
        read_table(tmp_path / "d.csv")
    with pytest.raises(DataError, match="save the sheet as CSV"):
        (tmp_path / "e.xlsx").write_bytes(b"PK")
        read_table(tmp_path / "e.xlsx")


def test_parallel_run_is_deterministic(brats, tmp_path):
    a = prepare_dataset("brats", brats, tmp_path / "a", size=SIZE, workers=2, progress=False)
    b = prepare_dataset("brats", brats, tmp_path / "b", size=SIZE, workers=1, progress=False)
    assert a.counts == b.counts
    assert (tmp_path / "a" / "dataset.npz").read_bytes() == (tmp_path / "b" / "dataset.npz").read_bytes()
    assert np.all(np.isin(load_dataset(tmp_path / "a").split, ["train", "val", "test"]))
