"""End to end: evaluate_synthetic on toy squares (16 px) against good, noised and copied sets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import build_squares_dataset
from mrigan_tf.data.contract import PreparedDataset, save_dataset
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.evaluation.report import (C2ST_FIGURE, FIGURE, REPORT_JSON, REPORT_MD,
                                         evaluate_synthetic, mask_statistics)
from mrigan_tf.metrics import c2st

FAST = dict(max_images=200, classifier_steps=60, kid_subsets=10, diversity_pairs=40,
            lpips_pairs=10, progress=False)


def _as_synthetic(ds: PreparedDataset, images=None, masks=None) -> PreparedDataset:
    n = len(ds)
    meta = dict(ds.meta, source="synthetic")
    return PreparedDataset(ds.images if images is None else images,
                           ds.masks if masks is None else masks, ds.labels,
                           np.asarray([f"synthetic-{i:04d}" for i in range(n)]),
                           np.full(n, "train"), meta)


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluation")
    real = build_squares_dataset(n_subjects=10, slices=8, size=16, seed=0)
    # Three held-out subjects (24 slices) instead of one: the audit's yardstick needs some.
    real.split[np.isin(real.subjects, ["toy-2", "toy-3"])] = "test"
    fresh = build_squares_dataset(n_subjects=6, slices=8, size=16, seed=1)   # same distribution
    rng = np.random.default_rng(2)
    noised = np.clip(fresh.images + rng.normal(0, 0.6, fresh.images.shape), -1, 1)
    train = real.select("train")
    pick = rng.choice(len(train), 40, replace=False)
    copies = PreparedDataset(
        np.clip(train.images[pick] + rng.normal(0, 0.02, train.images[pick].shape), -1, 1)
        .astype(np.float32), train.masks[pick], train.labels[pick], train.subjects[pick],
        train.split[pick], dict(train.meta))
    dirs = {"real": save_dataset(real, root / "real"),
            "good": save_dataset(_as_synthetic(fresh), root / "good"),
            "noised": save_dataset(_as_synthetic(fresh, noised.astype(np.float32)), root / "noised"),
            "copies": save_dataset(_as_synthetic(copies), root / "copies")}
    # LPIPS with random VGG weights on one set only (the plumbing); elsewhere it is
    # unavailable, as on any machine without the ImageNet weights cached.
    # The two-sample classifier's fixed budget, shortened for 16 px toys (the report records
    # the settings it ran with).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(c2st, "C2ST_STEPS", 40)
        reports = {name: evaluate_synthetic(dirs["real"], dirs[name], root / f"eval-{name}",
                                            **dict(FAST, lpips_weights=None if name == "good"
                                                   else "imagenet"))
                   for name in ("good", "noised", "copies")}
    return root, dirs, reports


def test_report_files_and_content(sets):
    root, _, reports = sets
    out = root / "eval-good"
    assert {p.name for p in out.iterdir()} == {REPORT_JSON, REPORT_MD, FIGURE, C2ST_FIGURE}
    on_disk = json.loads((out / REPORT_JSON).read_text())
    assert on_disk == reports["good"]
    report = on_disk
    assert report["extractor"]["requested"] == "domain"
    assert report["extractor"]["name"].startswith("domain CNN")
    assert "trained here on the toy train split" in report["extractor"]["weights"]
    assert report["domain_classifier"]["test_accuracy"] >= 0.9
    assert report["sample_sizes"]["real_heldout"] == {"total": 24, "healthy": 12, "tumor": 12}
    assert report["sample_sizes"]["real_train"]["total"] == 48
    assert report["sample_sizes"]["synthetic"]["total"] == 48
    assert set(report["fidelity"]["per_class"]) == {"healthy", "tumor"}
    md = (out / REPORT_MD).read_text()
    for needle in ("domain CNN", "FID floor", "Inception Score", "MS-SSIM", "Memorization audit",
                   "LPIPS-VGG (unweighted)", "FID is biased upwards at small N", "N=24"):
        assert needle in md
    assert (out / FIGURE).stat().st_size > 10_000
    # LPIPS ran with random weights here, and the report says so instead of hiding it.
    assert "random" in report["diversity"]["lpips"]["weights"]


def test_fidelity_orders_good_floor_and_noised(sets):
    _, _, reports = sets
    good, noised = reports["good"]["fidelity"]["overall"], reports["noised"]["fidelity"]["overall"]
    floor = good["floor_heldout_vs_train"]["fid"]
    assert floor == pytest.approx(noised["floor_heldout_vs_train"]["fid"])   # same real data
    assert noised["synthetic_vs_train"]["fid"] > 3 * max(floor, good["synthetic_vs_train"]["fid"])
    assert noised["synthetic_vs_train_matched_n"]["fid"] > floor
    assert noised["synthetic_vs_train"]["kid_mean"] > good["synthetic_vs_train"]["kid_mean"]
    # A fresh draw of the same toy distribution: confident and balanced, labels as given.
    cls = reports["good"]["classification"]["synthetic"]
    assert cls["inception_score"] > 1.5
    assert min(cls["label_agreement"].values()) >= 0.9


def test_memorization_flags_copies_only(sets):
    _, _, reports = sets
    assert reports["copies"]["memorization"]["suspected"]
    assert not reports["good"]["memorization"]["suspected"]
    pair = reports["copies"]["memorization"]["closest_pairs"][0]
    assert pair["ssim"] > 0.95 and pair["mask_dice"] == pytest.approx(1.0)


def test_membership_inference_flags_copies_only(sets):
    """Copies of training slices put their sources nearest to synthetic slices: the attack
    tells members from held-out subjects, far better than on a fresh draw of the toy
    distribution (whose clean negative control is in test_metrics_privacy.py: the toy's
    subjects share their layout by index, so a fresh draw is no independent sample here)."""
    _, _, reports = sets
    copies, good = reports["copies"]["privacy"], reports["good"]["privacy"]
    assert copies["flagged"] and copies["membership_inference"]["auc"] > 0.7
    assert copies["membership_inference"]["auc"] > good["membership_inference"]["auc"] + 0.1
    assert copies["membership_inference"]["resampled_by"] != "slices"   # whole subjects
    share = "synthetic_share_below_heldout_dcr_percentile"
    assert copies["closest_record"][share] > 0.5 > good["closest_record"][share]


def test_precision_recall_sit_beside_their_floor_and_see_noise(sets):
    _, _, reports = sets
    good, noised = reports["good"]["precision_recall"], reports["noised"]["precision_recall"]
    assert good["nearest_k"] == 5
    assert good["floor_heldout_vs_train"] == noised["floor_heldout_vs_train"]   # same real data
    assert noised["synthetic_vs_train"]["precision"] < good["synthetic_vs_train"]["precision"]
    assert noised["synthetic_vs_train"]["density"] < good["synthetic_vs_train"]["density"]
    # The verdict's figure is at the floor's N: a subsample of the 48 synthetic slices as large
    # as the 24 held-out ones. Coverage can only shrink with fewer synthetic points (each real
    # point's ball is fixed by the real set; fewer synthetic points fall in fewer balls).
    for report in (good, noised):
        matched, full = report["synthetic_vs_train_matched_n"], report["synthetic_vs_train"]
        assert matched["n"] == 24
        assert matched["coverage"] <= full["coverage"]
    md = (sets[0] / "eval-good" / "report.md").read_text()
    assert "precision / recall (k=5, matched N)" in md


def test_two_sample_test_sees_noise_and_reports_its_floor(sets):
    _, _, reports = sets
    good, noised = reports["good"]["c2st"], reports["noised"]["c2st"]
    assert good["settings"]["steps"] == 40
    for tag in ("image", "image_and_mask"):
        assert noised[tag]["accuracy"] > 0.9 and noised[tag]["ci_low"] > 0.5
        assert noised[tag]["accuracy"] > good[tag]["accuracy"]
        assert good["floor_" + tag] == noised["floor_" + tag]          # the same real data
        assert good["floor_" + tag]["accuracy"] < noised[tag]["accuracy"]
        for block in (good[tag], good["floor_" + tag]):
            assert block["subject_ci_low"] <= block["accuracy"] <= block["subject_ci_high"]
            assert block["heldout_subjects"] >= 2


def test_report_opens_with_the_verdict_table(sets):
    root, _, reports = sets
    md = (root / "eval-copies" / REPORT_MD).read_text()
    verdict = md[md.index("## Verdict"):md.index("## Feature extractor")]
    for needle in ("C2ST accuracy, image", "C2ST accuracy, image + mask",
                   "FID, matched N", "precision / recall", "density / coverage",
                   "membership-inference AUC", "**flagged**", "label agreement, tumor",
                   "real vs real (floor)"):
        assert needle in verdict, needle
    assert "## Privacy" in md and "## Precision, recall, density, coverage" in md


def test_mask_statistics_known_answers():
    ds = build_squares_dataset(n_subjects=2, slices=4, size=16)
    stats = mask_statistics(ds)
    assert stats["healthy"]["fraction_empty"] == 1.0 and "area_mean" not in stats["healthy"]
    assert stats["tumor"]["fraction_empty"] == 0.0
    assert stats["tumor"]["area_median"] == pytest.approx(25 / 256)


def test_bad_inputs_are_clear_errors_and_leave_nothing(sets, tmp_path):
    root, dirs, _ = sets
    with pytest.raises(MriganError, match="unknown extractor"):
        evaluate_synthetic(dirs["real"], dirs["good"], tmp_path / "x", extractor="vgg")
    with pytest.raises(DataError, match="already exists"):
        evaluate_synthetic(dirs["real"], dirs["good"], root / "eval-good", **FAST)
    bigger = build_squares_dataset(n_subjects=4, slices=4, size=24)
    other = save_dataset(_as_synthetic(bigger), tmp_path / "bigger")
    with pytest.raises(DataError, match="image size 24 differs"):
        evaluate_synthetic(dirs["real"], other, tmp_path / "out", **FAST)
    with pytest.raises(DataError, match="not found"):
        evaluate_synthetic(tmp_path / "missing", dirs["good"], tmp_path / "out", **FAST)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.partial-*"))


def test_inception_request_without_cached_weights_falls_back(sets, tmp_path, monkeypatch):
    _, dirs, _ = sets
    monkeypatch.setattr("mrigan_tf.metrics.keras_weights.find_cached_weights", lambda name: None)
    monkeypatch.setattr(c2st, "C2ST_STEPS", 40)     # as in the fixture: 16 px toys
    with pytest.warns(UserWarning, match="not in the local Keras cache"):
        report = evaluate_synthetic(dirs["real"], dirs["good"], tmp_path / "eval",
                                    extractor="inception", **FAST)
    assert report["extractor"]["requested"] == "inception"
    assert report["extractor"]["name"].startswith("domain CNN")
    assert "Falling back to the domain extractor" in report["extractor"]["fallback_reason"]
    assert report["diversity"]["lpips"]["available"] is False
    md = (tmp_path / "eval" / REPORT_MD).read_text()
    assert "requested `inception`, unavailable" in md and "LPIPS-VGG (unweighted): unavailable" in md
