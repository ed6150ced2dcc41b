"""The `train --model unet`, `tstr` and `evaluate` subcommands, end to end through `cli.main`.

The functions behind them are tested in depth elsewhere; here: the wiring (options reach the
functions, outputs land where the command says), and the one-line error with exit status 2.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import build_squares_dataset
from mrigan_tf.cli import main
from mrigan_tf.data.contract import PreparedDataset, load_dataset, save_dataset


def _synthetic_twin(tmp_path, seed: int = 1):
    """A 'synthetic' set from the same toy distribution: all train, own subject ids."""
    ds = build_squares_dataset(n_subjects=4, slices=8, size=16, seed=seed)
    n = len(ds)
    synthetic = PreparedDataset(ds.images, ds.masks, ds.labels,
                                np.asarray([f"synthetic-{i:04d}" for i in range(n)]),
                                np.full(n, "train"), dict(ds.meta, source="synthetic"))
    return save_dataset(synthetic, tmp_path / "synthetic")


def test_train_unet_writes_a_run_scored_on_the_test_subjects(squares_dir, tmp_path, capsys):
    run = tmp_path / "unet"
    code = main(["train", "--model", "unet", "--data", str(squares_dir), "--out", str(run),
                 "--steps", "4", "--steps-per-epoch", "2", "--batch-size", "8", "--width", "4",
                 "--depth", "2", "--no-augment", "--quiet"])
    assert code == 0
    config = json.loads((run / "config.json").read_text())["train"]
    assert config["model_options"] == {"width": 4, "depth": 2}
    assert config["augment"] is False and config["batch_size"] == 8
    evaluation = json.loads((run / "evaluation.json").read_text())
    test_subjects = load_dataset(squares_dir).subjects_per_split()["test"]
    assert evaluation["split"] == "test"
    assert sorted(evaluation["per_subject"]) == test_subjects
    assert (run / "model.keras").exists()
    assert "trained unet" in capsys.readouterr().out


def test_tstr_command_writes_the_table(squares_dir, tmp_path, capsys):
    out = tmp_path / "tstr"
    code = main(["tstr", "--real", str(squares_dir), "--synthetic", str(_synthetic_twin(tmp_path)),
                 "--out", str(out), "--fractions", "0.5,1", "--steps", "2", "--seeds", "0",
                 "--batch-size", "8", "--width", "4", "--quiet"])
    assert code == 0
    results = json.loads((out / "tstr.json").read_text())
    arms = {(row["arm"], row["fraction"]) for row in results["rows"]}
    assert {("real", 0.5), ("real", 1.0), ("real+synthetic", 0.5), ("real+synthetic", 1.0)} <= arms
    assert any(arm == "synthetic" for arm, _ in arms)
    assert (out / "report.md").exists() and (out / "tstr.png").exists()
    assert "report.md" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["evaluate", "tstr"])
def test_missing_real_directory_is_one_line_exit_2(tmp_path, capsys, command):
    synthetic = _synthetic_twin(tmp_path)
    code = main([command, "--real", str(tmp_path / "nowhere"), "--synthetic", str(synthetic),
                 "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "nowhere" in err
    assert not (tmp_path / "out").exists()
