"""The demo runs the whole pipeline and reports honestly what it did."""

from __future__ import annotations

import json

import pytest

from mrigan_tf.cli import main
from mrigan_tf.data.contract import load_dataset
from mrigan_tf.metrics import c2st
from mrigan_tf.reference import is_available, reference_config


@pytest.fixture(autouse=True)
def short_two_sample_test(monkeypatch):
    """The two-sample classifier's fixed budget, shortened for tiny demos (the evaluation
    report records the settings it ran with)."""
    monkeypatch.setattr(c2st, "C2ST_STEPS", 10)


@pytest.mark.spread          # minutes each: let the two demos run on different workers
def test_demo_runs_end_to_end_and_says_what_ran(tmp_path):
    out = tmp_path / "demo"
    # A previous demo's outputs are replaced, not appended to nor refused.
    (out / "synthetic").mkdir(parents=True)
    (out / "synthetic" / "stale.txt").write_text("from an earlier demo")
    (out / "report.md").write_text("an earlier report")
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
    # It opens with the verdict table: each figure beside its real-vs-real floor.
    verdict = report[report.index("## Verdict"):report.index("## What ran")]
    for needle in ("C2ST accuracy, image", "FID, matched N", "precision / recall",
                   "membership-inference AUC", "label agreement", "real vs real (floor)"):
        assert needle in verdict, needle
    # A 16 px phantom is not what the reference model was trained on: the short run
    # generates, and the report says why.
    assert summary["generator"]["reference_used"] is False
    why = summary["generator"]["why_not_reference"]
    assert f"reference model not used: {why}" in report
    if is_available():
        assert why.startswith("it was trained on another dataset (image_size 64, here 16)")
    assert not (out / "evaluation_short_run").exists()
    assert "mrigan-tf train --model cwgan-gp" in report      # the command for a full run
    assert "mrigan-tf tstr" in report
    # The quality figures sit next to the real-vs-real floor, and name the extractor.
    evaluation = json.loads((out / "evaluation" / "report.json").read_text())
    quality = summary["quality"]
    floor = evaluation["fidelity"]["overall"]["floor_heldout_vs_train"]["fid"]
    assert quality["fid_floor_real_vs_real"] == floor
    assert f"{floor:.3g}" in report and "real vs real (floor)" in report
    assert evaluation["extractor"]["name"] in report
    assert not (out / "synthetic" / "stale.txt").exists()


SMALL_EVALUATION = {"max_images": 48, "classifier_steps": 40, "kid_subsets": 4,
                    "diversity_pairs": 16, "lpips_pairs": 8}


@pytest.mark.spread
@pytest.mark.skipif(not is_available(), reason="the shipped reference model is not installed")
def test_demo_generates_with_the_reference_model_when_it_matches(tmp_path, monkeypatch):
    from mrigan_tf import demo

    # The reference's own phantom is 40 subjects (1.5 CPU minutes to simulate); this runs on
    # 6 subjects of the same 64 px phantom and lets the match through. Matching itself (same
    # source, size, seed, subjects and train split) is tested in test_reference.py.
    checked = []
    monkeypatch.setattr(demo, "matches_dataset",
                        lambda real: checked.append(len(real.subjects_per_split()["train"]))
                        or (True, ""))
    out = demo.run_demo(tmp_path / "demo", subjects=6, max_steps=2, n_synthetic=48,
                        jit_compile=False, progress=False, evaluation_options=SMALL_EVALUATION)
    assert checked and checked[0] > 0                          # asked about this dataset
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["generator"]["reference_used"] is True
    assert summary["generator_steps"] == 2                     # the short run still ran
    steps = reference_config()["reference"]["generator_steps"]
    assert summary["generator"]["reference_steps"] == steps > 1000
    synthetic = load_dataset(out / "synthetic")
    assert synthetic.meta["run"].endswith("phantom64")          # made by the reference
    # Both evaluated, side by side: the reference scores a lower FID than two steps of
    # training (a property of the shipped weights that the demo relies on).
    quality, short = summary["quality"], summary["quality_short_run"]
    assert quality["fid_synthetic_matched_n"] < short["fid_synthetic_matched_n"]
    for name in ("evaluation/report.json", "evaluation_short_run/report.json",
                 "real_vs_short_run.png", "real_vs_synthetic.png"):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    assert "reference model" in report and f"{steps} generator" in report
    assert "short run" in report
