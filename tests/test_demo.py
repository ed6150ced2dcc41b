"""The demo runs the whole pipeline and reports honestly what it did."""

from __future__ import annotations

import json

from mrigan_tf.cli import main
from mrigan_tf.data.contract import load_dataset


def test_demo_runs_end_to_end_and_says_what_ran(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--subjects", "6", "--size", "16", "--steps", "4",
                 "--n-synthetic", "30", "--no-jit", "--quiet"]) == 0
    for name in ("report.md", "phantom_grid.png", "real_vs_synthetic.png", "loss_curves.png",
                 "evaluation/report.json", "evaluation/report.md", "evaluation/evaluation.png"):
        assert (out / name).is_file(), name
    synthetic = load_dataset(out / "synthetic")
    assert len(synthetic) == 30 and synthetic.meta["model"] == "cwgan-gp"
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["generator_steps"] == 4 and summary["synthetic_pairs"] == 30
    report = (out / "report.md").read_text()
    assert "not patient data" in report
    assert "4 generator steps" in report and "rough" in report
    assert "mrigan-tf train --model cwgan-gp" in report      # the command for a full run
    assert "mrigan-tf tstr" in report
    # The quality figures sit next to the real-vs-real floor, and name the extractor.
    evaluation = json.loads((out / "evaluation" / "report.json").read_text())
    quality = summary["quality"]
    floor = evaluation["fidelity"]["overall"]["floor_heldout_vs_train"]["fid"]
    assert quality["fid_floor_real_vs_real"] == floor
    assert f"{floor:.3g}" in report and "real vs real (floor)" in report
    assert evaluation["extractor"]["name"] in report
    # Running it again replaces the previous demo instead of failing.
    assert main(["demo", "--out", str(out), "--subjects", "6", "--size", "16", "--steps", "2",
                 "--n-synthetic", "10", "--no-jit", "--quiet"]) == 0
    assert len(load_dataset(out / "synthetic")) == 10
