"""Notebook 10's package code: the generator-gradient curves, one run per loss, the table."""

from __future__ import annotations

import json
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

from mrigan_tf.data.contract import PreparedDataset
from mrigan_tf.experiments import (LOSS_TABLE_COLUMNS, generator_loss_gradients, generator_losses,
                                   loss_comparison, loss_model_options, minimax_generator_loss,
                                   train_each_loss)
from mrigan_tf.models.choices import LOSS_NAMES
from mrigan_tf.training.runner import TrainConfig
from mrigan_tf.visualization import format_rows, plot_loss_gradients

matplotlib.use("Agg")

OUTPUTS = np.array([-10.0, -3.0, 0.0, 1.0, 3.0], np.float32)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def test_generator_gradients_are_the_textbook_derivatives():
    gradients = generator_loss_gradients(generator_losses(), OUTPUTS)
    assert list(gradients) == ["minimax (saturating)", "ns", "lsgan", "hinge", "wasserstein"]
    np.testing.assert_allclose(gradients["minimax (saturating)"], -_sigmoid(OUTPUTS), atol=1e-6)
    np.testing.assert_allclose(gradients["ns"], -(1 - _sigmoid(OUTPUTS)), atol=1e-6)
    np.testing.assert_allclose(gradients["lsgan"], OUTPUTS - 1, atol=1e-5)
    np.testing.assert_allclose(gradients["hinge"], -1.0)
    np.testing.assert_allclose(gradients["wasserstein"], -1.0)
    # Minimax saturates where the critic is sure; ns does not. They agree at l = 0.
    assert abs(gradients["minimax (saturating)"][0]) < 1e-4 and gradients["ns"][0] < -0.999
    assert gradients["minimax (saturating)"][2] == pytest.approx(gradients["ns"][2]) == -0.5


def test_gradients_do_not_depend_on_the_batch_size():
    one = generator_loss_gradients(generator_losses(), OUTPUTS[:1])
    many = generator_loss_gradients(generator_losses(), OUTPUTS)
    for name in one:
        assert one[name][0] == pytest.approx(many[name][0], abs=1e-6), name


def test_minimax_loss_is_minus_the_discriminators_fake_term():
    # log(1 - sigmoid(0)) = -log 2
    assert float(minimax_generator_loss(np.zeros((3, 1), np.float32))) == pytest.approx(-np.log(2))


def test_loss_model_options_give_n_critic_to_the_wasserstein_losses_only():
    base = {"width": 8, "n_critic": 7}
    assert loss_model_options("wgan-gp", base, 3) == {"width": 8, "n_critic": 3, "loss": "wgan-gp"}
    assert loss_model_options("wgan-clip", base, 3)["n_critic"] == 3
    for loss in ("ns", "lsgan", "hinge"):
        assert loss_model_options(loss, base, 3) == {"width": 8, "loss": loss}
    assert base == {"width": 8, "n_critic": 7}   # not modified


def test_train_each_loss_trains_one_run_per_loss(tmp_path, monkeypatch):
    config = TrainConfig(model="cwgan-gp", data="d", steps=4, batch_size=8,
                         model_options={"width": 4})
    calls = []

    def fake_train_or_load(one, run_dir, reuse=(), **options):
        calls.append((one, run_dir, list(reuse), options))
        return "model", {"g_loss": [len(calls)]}, run_dir

    monkeypatch.setattr("mrigan_tf.experiments.train_or_load", fake_train_or_load)
    runs, histories = train_each_loss(config, LOSS_NAMES, tmp_path, n_critic=2, verbose=0)
    assert list(runs) == list(LOSS_NAMES) == list(histories)
    for (one, run_dir, reuse, options), loss in zip(calls, LOSS_NAMES):
        assert one.model_options["loss"] == loss and one.model_options["width"] == 4
        assert one.model_options.get("n_critic") == (2 if loss.startswith("wgan") else None)
        assert one.steps == 4 and run_dir == tmp_path / loss == runs[loss]
        assert reuse == [run_dir] and options == {"verbose": 0}   # a finished run is reused
    assert histories["ns"] == {"g_loss": [3]}


def _pairs(labels, mask_areas, size=4):
    n = len(labels)
    masks = np.zeros((n, size, size, 1), np.uint8)
    for i, area in enumerate(mask_areas):
        masks[i].reshape(-1)[:area] = 1
    return PreparedDataset(np.zeros((n, size, size, 1), np.float32), masks,
                           np.asarray(labels, np.int32), np.array(["s"] * n),
                           np.array(["train"] * n), {"class_names": ["healthy", "tumor"]})


def test_loss_comparison_rows(tmp_path, monkeypatch):
    runs = {}
    for name, seconds in (("wgan-gp", 30.0), ("hinge", 10.0)):
        runs[name] = tmp_path / name
        runs[name].mkdir()
        (runs[name] / "training_summary.json").write_text(json.dumps(
            {"seconds": seconds, "critic_steps": 6 if name == "wgan-gp" else 2}))
    # Tumor pairs (label 1): one of three without a mask.
    synthetic = _pairs([0, 1, 1, 1], [0, 3, 0, 5])
    generated = []
    scores = {"wgan-gp": 0.9, "hinge": 0.8}

    class FakeJudge:
        def __init__(self, real, evaluation):
            assert evaluation["classifier_steps"] == 7

        def score(self, snapshot):
            name = snapshot.meta["snapshot"]["model"]
            return {"c2st_image": scores[name], "c2st_image_ci_low": scores[name] - 0.1,
                    "c2st_image_ci_high": scores[name] + 0.05, "fid_over_floor": 3.0}

    def fake_build(model, class_names, n, seed, progress, meta):
        generated.append((model, n, seed))
        return PreparedDataset(synthetic.images, synthetic.masks, synthetic.labels,
                               synthetic.subjects, synthetic.split, {**synthetic.meta, **meta})

    monkeypatch.setattr("mrigan_tf.experiments.LightJudge", FakeJudge)
    monkeypatch.setattr("mrigan_tf.experiments.build_synthetic_dataset", fake_build)
    monkeypatch.setattr("mrigan_tf.experiments.real_vs_real_floor", lambda real, seed, channels:
                        SimpleNamespace(accuracy=0.5, ci_low=0.4, ci_high=0.6))
    monkeypatch.setattr("mrigan_tf.experiments.load_run", lambda run: (f"loaded {run.name}", {}, None))
    real = _pairs([0, 1], [0, 2])
    rows = loss_comparison(runs, real, n=4, seed=3, classifier_steps=7,
                           models={"hinge": "already loaded"})
    assert list(rows) == ["real (floor)", "wgan-gp", "hinge"]
    assert rows["real (floor)"] == {"c2st": 0.5, "c2st_ci_low": 0.4, "c2st_ci_high": 0.6,
                                    "fid_over_floor": 1.0}
    assert rows["wgan-gp"]["c2st"] == 0.9 and rows["hinge"]["c2st_ci_high"] == pytest.approx(0.85)
    assert rows["hinge"]["empty_tumor_masks"] == pytest.approx(1 / 3)
    assert rows["wgan-gp"]["seconds"] == 30.0 and rows["hinge"]["critic_steps"] == 2
    # Models given are used as they are; the others are loaded from their runs.
    assert generated == [("loaded wgan-gp", 4, 3), ("already loaded", 4, 3)]
    table = format_rows(rows, LOSS_TABLE_COLUMNS, "loss")
    assert "33.3%" in table and table.splitlines()[1].startswith("real (floor)")


def test_plot_loss_gradients_draws_one_line_per_loss():
    gradients = generator_loss_gradients(generator_losses(), OUTPUTS)
    fig = plot_loss_gradients(OUTPUTS, gradients, confident=-3)
    ax = fig.axes[0]
    labelled = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert [line.get_label() for line in labelled] == list(gradients)
    np.testing.assert_allclose(labelled[2].get_ydata(), gradients["lsgan"])
