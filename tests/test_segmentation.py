"""U-Net training runs (run directory, resume) and the per-slice / per-subject evaluation."""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pytest
from conftest import build_squares_dataset

from mrigan_tf.data.contract import PreparedDataset
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.evaluation.segmentation import evaluate_segmentation, train_and_score_unet
from mrigan_tf.metrics.overlap import dice_iou, overlap_counts
from mrigan_tf.training.segmentation import (SegmentationConfig, build_segmenter,
                                             default_depth, fit_unet, fit_unet_to_convergence,
                                             load_unet_run, mixed_segmentation_batches,
                                             segmentation_batches, synthetic_rows_per_batch,
                                             train_unet)

TINY_UNET = {"width": 8}


def _config(data, **overrides) -> SegmentationConfig:
    settings = dict(data=str(data), epochs=5, steps_per_epoch=10, batch_size=8, seed=0,
                    learning_rate=3e-3, jit_compile=False, model_options=dict(TINY_UNET))
    settings.update(overrides)
    return SegmentationConfig(**settings)


@pytest.fixture(scope="session")
def unet_run(tmp_path_factory, squares_dir):
    run = tmp_path_factory.mktemp("runs") / "unet"
    model, history, _ = train_and_score_unet(_config(squares_dir), run, verbose=0)
    return run, model, history


def _csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ## The run directory

def test_train_unet_writes_a_complete_run(unet_run):
    run, model, history = unet_run
    for name in ("config.json", "history.csv", "model.keras", "training_summary.json",
                 "evaluation.json", "loss_curves.png", "backup"):
        assert (run / name).exists(), name
    saved = json.loads((run / "config.json").read_text())
    assert saved["train"]["model"] == "unet" and saved["image_shape"] == [16, 16, 1]
    assert saved["depth"] == 2 and saved["epochs"] == 5 and saved["steps_per_epoch"] == 10
    # 8 subjects x 8 slices: 6 train subjects, 1 val, 1 test.
    assert saved["train_slices"] == 48 and saved["val_slices"] == 8
    rows = _csv_rows(run / "history.csv")
    assert len(rows) == 5 and {"loss", "dice", "iou", "val_loss", "val_dice"} <= set(rows[0])
    summary = json.loads((run / "training_summary.json").read_text())
    assert summary["optimizer_steps"] == 50 and summary["epochs"] == 5
    assert len(history["loss"]) == 5


def test_trained_unet_segments_the_held_out_test_subject(unet_run):
    run, model, _ = unet_run
    scores = json.loads((run / "evaluation.json").read_text())
    # Measured (CPU, seed 0, 50 steps with flips): test slice Dice 0.976, subject Dice 0.976,
    # no false positive on the 4 healthy slices (30 steps: subject Dice only 0.75).
    assert scores["split"] == "test" and scores["subjects"] == 1
    assert scores["tumor_slices"] == 4 and scores["healthy_slices"] == 4
    assert scores["slice_dice_mean"] > 0.8 and scores["subject_dice_mean"] > 0.8
    assert scores["healthy_false_positive_rate"] <= 0.25


def test_load_unet_run_prefers_model_keras_then_falls_back_to_the_backup(unet_run, tmp_path):
    import shutil

    run, model, _ = unet_run
    x = build_squares_dataset().select("test").images
    loaded, saved, path = load_unet_run(run)
    assert path.name == "model.keras"
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "model.keras").unlink()
    from_backup, _, path = load_unet_run(copy)
    assert path.name == "latest.weights.h5"
    np.testing.assert_allclose(from_backup.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)


def test_resume_continues_to_the_requested_length(squares_dir, tmp_path):
    run = tmp_path / "run"
    short = _config(squares_dir, epochs=1, steps_per_epoch=3)
    train_unet(short, run, verbose=0)
    with pytest.raises(DataError, match="already exists"):
        train_unet(short, run, verbose=0)
    with pytest.raises(MriganError, match="batch_size"):
        train_unet(_config(squares_dir, epochs=2, steps_per_epoch=3, batch_size=4), run,
                   resume=True, verbose=0)
    model, _ = train_unet(_config(squares_dir, epochs=2, steps_per_epoch=3), run, resume=True,
                          verbose=0)
    # The backup restored the optimizer: 2 epochs x 3 steps in all, not 1 + 2 epochs.
    assert int(model.optimizer.iterations.numpy()) == 6
    assert [r["epoch"] for r in _csv_rows(run / "history.csv")] == ["0", "1"]
    with pytest.raises(DataError, match="nothing to resume"):
        train_unet(short, tmp_path / "empty", resume=True, verbose=0)


def test_config_and_model_option_errors(squares_dir, tmp_path):
    with pytest.raises(MriganError, match="exactly one"):
        SegmentationConfig(data=str(squares_dir), epochs=1, steps=10)
    with pytest.raises(MriganError, match="batch-size"):
        SegmentationConfig(data=str(squares_dir), epochs=1, batch_size=0)
    with pytest.raises(MriganError, match="bad option for model 'unet'"):
        train_unet(_config(squares_dir, model_options={"colour": 3}), tmp_path / "r", verbose=0)
    with pytest.raises(DataError, match="not found"):
        train_unet(_config(tmp_path / "missing"), tmp_path / "r2", verbose=0)


@pytest.mark.parametrize("size, depth", [(16, 2), (24, 2), (32, 3), (64, 4), (128, 4), (10, 1)])
def test_default_depth_keeps_a_bottleneck_of_at_least_4_pixels(size, depth):
    assert default_depth(size) == depth


# ## Training to convergence

class SpoilFromEpoch(keras.callbacks.Callback):
    """From epoch ``start`` on, make the U-Net predict nothing and stop it learning: its val
    Dice drops to 0 for good, so the best weights are known to be earlier ones."""

    def __init__(self, start: int):
        super().__init__()
        self.start = start

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.start:
            last = [layer for layer in self.model.layers if layer.weights][-1]
            last.set_weights([np.zeros_like(w) if w.ndim > 1 else np.full_like(w, -20.0)
                              for w in last.get_weights()])
            self.model.optimizer.learning_rate.assign(0.0)


def _converge(data, **settings):
    model = build_segmenter(_config("unused", learning_rate=3e-3), 16)
    options = dict(max_steps=100, eval_every=10, patience=2, batch_size=8, seed=0, augment=True)
    options.update(settings)
    return model, fit_unet_to_convergence(model, data.select("train"), data.select("val"),
                                          **options)


def test_early_stopping_stops_before_the_cap_and_restores_the_best_weights():
    data = build_squares_dataset()
    model, report = _converge(data, callbacks=[SpoilFromEpoch(2)])
    # Val Dice: two evaluations of learning, then 0; patience 2 -> stop after 4 evaluations.
    assert report.val_dice[2:] == [0.0, 0.0]
    assert report.stopped_early and report.steps == 40 < 100
    assert int(model.optimizer.iterations.numpy()) == 40
    assert report.best_val_dice == max(report.val_dice) > 0.0
    assert report.best_step == 10 * (1 + int(np.argmax(report.val_dice))) <= 20
    # The model holds the best weights again: its val Dice is the best logged one, not 0.
    val = segmentation_batches(data.select("val"), 8, training=False)
    scores = model.evaluate(val, verbose=0, return_dict=True)
    assert scores["dice"] == pytest.approx(report.best_val_dice, abs=1e-6)


def test_scores_before_min_steps_neither_count_as_best_nor_use_up_patience():
    data = build_squares_dataset()
    model, report = _converge(data, callbacks=[SpoilFromEpoch(2)], min_steps=30)
    # The two learning evaluations (steps 10, 20) come before min_steps: the kept weights
    # are the first counted ones (step 30, spoiled), and patience counts from there.
    assert report.val_dice[0] > 0.0 and report.val_dice[2:] == [0.0, 0.0, 0.0]
    assert (report.best_step, report.best_val_dice, report.steps) == (30, 0.0, 50)
    assert report.stopped_early
    val = segmentation_batches(data.select("val"), 8, training=False)
    assert model.evaluate(val, verbose=0, return_dict=True)["dice"] == pytest.approx(0.0)


def test_the_step_cap_holds_when_val_dice_keeps_improving_or_patience_is_long():
    model, report = _converge(build_squares_dataset(), max_steps=8, eval_every=3, patience=50)
    # 8 steps at one evaluation per 3: two whole evaluations, never more than the cap.
    assert report.steps == 6 == int(model.optimizer.iterations.numpy())
    assert len(report.val_dice) == 2 and not report.stopped_early
    assert report.to_dict()["best_step"] in (3, 6)


def test_convergence_settings_are_refused_clearly():
    data = build_squares_dataset(n_subjects=3, slices=2)
    for bad, match in ((dict(patience=0), "--patience must be"),
                       (dict(eval_every=0), "--eval-every must be"),
                       (dict(max_steps=0), "--max-steps must be"),
                       (dict(eval_every=20, max_steps=10), "larger than --max-steps"),
                       (dict(min_steps=10), "leaves no val score"),
                       (dict(min_steps=-1), "--min-steps must be")):
        with pytest.raises(MriganError, match=match):
            fit_unet_to_convergence(None, data, data, **{**dict(max_steps=10, eval_every=5,
                                                                patience=1), **bad})
    with pytest.raises(DataError, match="needs a val split"):
        fit_unet_to_convergence(None, data, data.select("val", label=7), max_steps=10,
                                eval_every=5, patience=1)


# ## Augmentation

def test_flips_move_image_and_mask_together_and_are_deterministic():
    data = build_squares_dataset(n_subjects=2, slices=8, size=16)

    def batches(seed):
        stream = segmentation_batches(data, batch_size=16, seed=seed, training=True, augment=True)
        return [(x.numpy(), y.numpy()) for x, y in stream.take(4)]

    first, again, other = batches(0), batches(0), batches(1)
    for (x, y), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
        # The squares are the only bright pixels: the mask must still cover exactly them.
        np.testing.assert_array_equal(y, (x > 0).astype(np.float32))
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other))
    # Some slices really were flipped (the squares are off-centre, so a flip shows).
    originals = {data.images[i].tobytes() for i in range(len(data))}
    flipped = [img for x, _ in first for img in x if img.tobytes() not in originals]
    assert flipped and all(img[:, ::-1].tobytes() in originals for img in flipped)


def _constant_dataset(n: int, value: float, name: str) -> PreparedDataset:
    """``n`` slices whose image is ``value`` everywhere (a source tag) and whose mask marks
    the left half (so a flip shows, and must show in image and mask alike)."""
    images = np.full((n, 8, 8, 1), value, np.float32)
    images[:, :, :4] += 0.25
    masks = np.zeros((n, 8, 8, 1), np.uint8)
    masks[:, :, :4] = 1
    return PreparedDataset(images, masks, np.ones(n, np.int32),
                           np.asarray([f"{name}-{i}" for i in range(n)]),
                           np.full(n, "train"), {"class_names": ["healthy", "tumor"]})


@pytest.mark.parametrize("share, batch, n_synthetic", [(0.5, 8, 4), (0.25, 8, 2), (0.9, 10, 9)])
def test_mixed_batches_hold_exactly_the_synthetic_share(share, batch, n_synthetic):
    real = _constant_dataset(3, -0.5, "real")          # fewer real slices than a batch
    synthetic = _constant_dataset(50, 0.5, "synthetic")
    stream = mixed_segmentation_batches(real, synthetic, share, batch, seed=0, augment=True)
    batches = [(x.numpy(), y.numpy()) for x, y in stream.take(12)]
    flipped = 0
    for x, y in batches:
        assert x.shape == (batch, 8, 8, 1) and y.shape == (batch, 8, 8, 1)
        base = x.min(axis=(1, 2, 3))
        assert int(np.sum(np.isclose(base, 0.5))) == n_synthetic
        assert int(np.sum(np.isclose(base, -0.5))) == batch - n_synthetic
        # Flipped or not, the mask still marks the brighter half of its own image.
        np.testing.assert_array_equal(y, (x > base[:, None, None, None] + 0.1).astype(np.float32))
        flipped += int(np.sum(y[:, 0, -1, 0] == 1))
    assert 0 < flipped < 12 * batch
    again = [(x.numpy(), y.numpy()) for x, y in
             mixed_segmentation_batches(real, synthetic, share, batch, seed=0,
                                        augment=True).take(12)]
    for (x, y), (x2, y2) in zip(batches, again):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)


def test_a_share_that_leaves_a_source_out_of_every_batch_is_refused():
    assert synthetic_rows_per_batch(32, 0.5) == 16
    assert synthetic_rows_per_batch(3, 0.5) == 2        # rounds half up, both sources kept
    for batch, share in ((8, 0.05), (8, 0.97), (1, 0.5)):
        with pytest.raises(MriganError, match="every batch must hold both sources"):
            synthetic_rows_per_batch(batch, share)
    for share in (0.0, 1.0, -0.2):
        with pytest.raises(MriganError, match="strictly between 0 and 1"):
            synthetic_rows_per_batch(8, share)
    data = _constant_dataset(4, 0.0, "real")
    with pytest.raises(MriganError, match="or neither"):
        fit_unet(None, data, 1, 1, synthetic=data)


def test_training_stream_accepts_fewer_slices_than_a_batch():
    data = build_squares_dataset(n_subjects=1, slices=4, size=16)
    x, y = next(iter(segmentation_batches(data, batch_size=10, training=True)))
    assert x.shape == (10, 16, 16, 1) and y.shape == (10, 16, 16, 1)


# ## Evaluation: known answers

def test_overlap_counts_and_dice_iou_known_answers():
    y = np.zeros((3, 4, 4, 1), np.uint8)
    p = np.zeros((3, 4, 4, 1), np.uint8)
    y[0, :2, :2] = 1                       # 4 px
    p[0, :2, 1:3] = 1                      # 4 px, 2 shared
    p[1, 0, 0] = 1                         # a false positive on an empty truth
    inter, true, pred = overlap_counts(y, p)
    assert inter.tolist() == [2, 0, 0] and true.tolist() == [4, 0, 0] and pred.tolist() == [4, 1, 0]
    dice, iou = dice_iou(inter, true, pred)
    np.testing.assert_allclose(dice, [0.5, 0.0, 1.0])
    np.testing.assert_allclose(iou, [1 / 3, 0.0, 1.0])


class FixedPredictor:
    """Stands in for a U-Net: returns fixed probabilities, in order (evaluation needs no more)."""

    def __init__(self, probabilities):
        self.probabilities = probabilities
        self.input_shape = (None, *probabilities.shape[1:])

    def predict(self, images, batch_size=None, verbose=0):
        assert len(images) == len(self.probabilities)
        return self.probabilities


def _evaluation_case():
    """Test subjects A (tumor) and B (healthy), plus a train subject that must be ignored."""
    size = 8
    masks = np.zeros((6, size, size, 1), np.uint8)
    probs = np.zeros((4, size, size, 1), np.float32)
    masks[0, 0:2, 0:2] = 1; probs[0, 0:2, 1:3] = 0.9        # A: 4 px, 2 found: Dice 1/2
    masks[1, 4:6, 4:6] = 1; probs[1, 4:6, 4:6] = 0.8        # A: exact: Dice 1
    probs[2, 0, 0:3] = 0.7                                  # B: 3 false-positive pixels
    probs[3] = 0.4                                          # B: below threshold: nothing
    masks[4:6] = 1                                          # train subject C
    data = PreparedDataset(
        images=np.zeros((6, size, size, 1), np.float32), masks=masks,
        labels=np.array([1, 1, 0, 0, 1, 1], np.int32),
        subjects=np.array(["A", "A", "B", "B", "C", "C"]),
        split=np.array(["test"] * 4 + ["train"] * 2),
        meta={"class_names": ["healthy", "tumor"], "image_size": size, "source": "test",
              "modality": "test"})
    return data, FixedPredictor(probs)


def test_evaluate_segmentation_per_slice_and_per_subject_known_answers():
    data, model = _evaluation_case()
    s = evaluate_segmentation(model, data, split="test")
    assert (s["slices"], s["tumor_slices"], s["healthy_slices"], s["subjects"]) == (4, 2, 2, 2)
    assert s["slice_dice_mean"] == pytest.approx(0.75)
    assert s["slice_iou_mean"] == pytest.approx((1 / 3 + 1) / 2)
    assert s["healthy_false_positive_rate"] == pytest.approx(0.5)
    assert s["healthy_false_positive_pixels_mean"] == pytest.approx(1.5)
    # A in 3-D: |Y ^ P| = 2 + 4, |Y| = 8, |P| = 8.
    assert s["per_subject"]["A"]["dice"] == pytest.approx(12 / 16)
    assert s["per_subject"]["A"]["iou"] == pytest.approx(6 / 10)
    assert s["subject_dice_mean"] == pytest.approx(0.75) and s["tumor_subjects"] == 1
    assert s["per_subject"]["B"] == {"dice": 0.0, "iou": 0.0, "slices": 2, "tumor_slices": 0,
                                     "tumor_pixels": 0, "predicted_pixels": 3}
    assert s["healthy_subject_false_positive_rate"] == 1.0
    assert s["pooled_dice"] == pytest.approx(12 / 19)
    assert "C" not in s["per_subject"]
    json.dumps(s, allow_nan=False)   # JSON-ready


def test_evaluate_segmentation_without_tumors_reports_none_and_checks_its_input():
    data, model = _evaluation_case()
    healthy = data.select("test", label=0)
    s = evaluate_segmentation(FixedPredictor(model.probabilities[2:]), healthy, split=None)
    assert s["slice_dice_mean"] is None and s["subject_dice_mean"] is None
    assert s["healthy_false_positive_rate"] == 0.5
    with pytest.raises(DataError, match="'val' holds no slices"):
        evaluate_segmentation(model, data, split="val")
    with pytest.raises(MriganError, match="shape"):
        evaluate_segmentation(FixedPredictor(np.zeros((4, 16, 16, 1), np.float32)), data)
