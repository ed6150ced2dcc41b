"""Run directories: what training writes, and resuming after an interruption."""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pytest

from mrigan_tf.cli import main
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.models.base import latent_noise
from mrigan_tf.training.run_directory import check_run_dir
from mrigan_tf.training.runner import TrainConfig, load_run, train_gan
from conftest import TINY_CWGAN


def _config(data, **kwargs):
    base = dict(model="cwgan-gp", data=str(data), steps_per_epoch=3, batch_size=8,
                jit_compile=False, samples=4, model_options=dict(TINY_CWGAN))
    base.update(kwargs)
    return TrainConfig(**base)


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_a_run_directory_holds_everything(tiny_cwgan_run):
    run = tiny_cwgan_run
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["model"] == "cwgan-gp" and config["class_names"] == ["healthy", "tumor"]
    assert config["image_shape"] == [16, 16, 2]
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == [
        "samples_epoch0001.png", "samples_epoch0002.png"]
    rows = _rows(run / "history.csv")
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert all(np.isfinite(float(r["d_loss"])) and np.isfinite(float(r["gp"])) for r in rows)
    assert (run / "loss_curves.png").stat().st_size > 1000
    summary = json.loads((run / "training_summary.json").read_text())
    assert summary["generator_steps"] == 6 and summary["critic_steps"] == 12
    model, _, path = load_run(run)
    assert path.name == "model.keras" and model.n_critic == 2
    assert int(model.g_optimizer.iterations) == 6 and int(model.d_optimizer.iterations) == 12


class StopAfterEpoch(keras.callbacks.Callback):
    """Simulates a kill (Ctrl-C) in the middle of the epoch after ``epoch``."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._current_epoch == self.epoch and batch == 1:
            raise KeyboardInterrupt

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch


def test_resume_after_a_kill_ends_where_an_uninterrupted_run_ends(squares_dir, tmp_path):
    full, _ = train_gan(_config(squares_dir, epochs=3), tmp_path / "full", verbose=0)

    with pytest.raises(KeyboardInterrupt):
        train_gan(_config(squares_dir, epochs=3), tmp_path / "killed", verbose=0,
                  callbacks=[StopAfterEpoch(1)])      # dies in the 2nd epoch
    assert not (tmp_path / "killed" / "model.keras").exists()
    # A stopped run can still be sampled: from its last finished epoch's backup.
    partial, _, source = load_run(tmp_path / "killed")
    assert source.name == "latest.weights.h5" and int(partial.g_optimizer.iterations) == 3

    resumed, history = train_gan(_config(squares_dir, epochs=3), tmp_path / "killed",
                                 resume=True, verbose=0)
    assert int(resumed.g_optimizer.iterations) == int(full.g_optimizer.iterations) == 9
    assert int(resumed.d_optimizer.iterations) == int(full.d_optimizer.iterations) == 18
    # The epoch counter was restored: only epochs 2 and 3 ran again.
    assert len(history["d_loss"]) == 2
    assert [r["epoch"] for r in _rows(tmp_path / "killed" / "history.csv")] == ["0", "1", "2"]


def test_resume_can_extend_but_not_change_a_run(tiny_cwgan_run, squares_dir, tmp_path):
    with pytest.raises(MriganError, match="cannot resume with different settings"):
        train_gan(_config(squares_dir, epochs=2, batch_size=4), tiny_cwgan_run, resume=True)
    with pytest.raises(DataError, match="already exists"):
        train_gan(_config(squares_dir, epochs=2), tiny_cwgan_run)
    with pytest.raises(DataError, match="nothing to resume"):
        train_gan(_config(squares_dir, epochs=2), tmp_path / "new", resume=True)


@pytest.mark.parametrize("family,options", [
    ("gan", {"latent_dim": 8, "generator_units": [32], "discriminator_units": [32]}),
    ("dcgan", {"latent_dim": 8, "width": 8}),
    ("wgan", {"latent_dim": 8, "width": 8, "n_critic": 2}),
])
def test_every_gan_of_the_walk_trains_through_the_runner(family, options, squares_dir, tmp_path):
    config = _config(squares_dir, model=family, epochs=1, model_options=options)
    model, history = train_gan(config, tmp_path / family, verbose=0)
    assert model.image_shape == (16, 16, 1)          # unconditional: the image alone
    assert all(np.isfinite(v[-1]) for v in history.values())
    assert (tmp_path / family / "model.keras").is_file()


def test_cli_train_and_its_errors(squares_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["train", "--model", "cwgan-gp", "--data", str(squares_dir), "--out", str(out),
                 "--steps", "4", "--steps-per-epoch", "2", "--batch-size", "8", "--no-jit",
                 "--latent-dim", "8", "--width", "8", "--n-critic", "2", "--gp-every", "2",
                 "--augment", "translation,cutout", "--quiet"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["epochs"] == 2 and saved["train"]["model_options"]["augment"] == "translation,cutout"
    assert saved["train"]["model_options"]["gp_every"] == 2
    assert keras.models.load_model(out / "model.keras").gp_every == 2
    capsys.readouterr()
    assert main(["train", "--model", "cwgan-gp", "--data", str(squares_dir), "--out",
                 str(tmp_path / "lazy"), "--steps", "2", "--batch-size", "8", "--n-critic", "3",
                 "--gp-every", "2"]) == 2
    err = capsys.readouterr().err
    assert "gp_every must divide n_critic (3): one of [1, 3], got 2" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "lazy").exists()
    assert main(["train", "--model", "nope", "--data", str(squares_dir), "--out",
                 str(tmp_path / "x"), "--epochs", "1"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main(["train", "--model", "dcgan", "--data", str(tmp_path / "missing"), "--out",
                 str(tmp_path / "y"), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and "not found" in err and not (tmp_path / "y").exists()
    assert main(["train", "--model", "dcgan", "--data", str(squares_dir), "--out",
                 str(tmp_path / "z"), "--epochs", "1", "--batch-size", "8",
                 "--set", "nonsense=3"]) == 2
    assert "bad option" in capsys.readouterr().err


def test_cli_trains_the_small_data_options_and_refuses_bad_combinations(squares_dir, tmp_path,
                                                                        capsys):
    out = tmp_path / "hinge"
    assert main(["train", "--model", "cwgan-gp", "--data", str(squares_dir), "--out", str(out),
                 "--steps", "2", "--steps-per-epoch", "2", "--batch-size", "8", "--no-jit",
                 "--latent-dim", "8", "--width", "4", "--loss", "hinge", "--r1-weight", "1",
                 "--spectral-norm", "--minibatch-std", "4", "--ema-decay", "0.9",
                 "--conditioning", "acgan", "--quiet"]) == 0
    saved = json.loads((out / "config.json").read_text())["train"]["model_options"]
    assert saved == {"latent_dim": 8, "width": 4, "loss": "hinge", "conditioning": "acgan",
                     "ema_decay": 0.9, "r1_weight": 1.0, "spectral_norm": True,
                     "minibatch_std": 4}
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    assert {"r1", "aux_real", "aux_fake", "aux_accuracy", "g_aux", "d_real"} <= set(header)
    model, _, _ = load_run(out)
    assert model.loss == "hinge" and model.conditioning == "acgan" and model.ema_decay == 0.9
    # The grids and generate sample the weight average.
    np.testing.assert_allclose(model.sample(4, seed=0), model.sampling_generator(
        [latent_noise(4, 8, 0), model.balanced_labels(4)], training=False).numpy(), atol=1e-6)
    assert model.sampling_generator is model.ema_generator
    capsys.readouterr()
    for flags, message in [(["--model", "cwgan-gp", "--r1-weight", "1"], "R1"),
                           (["--model", "dcgan", "--loss", "hinge"],
                            "--loss is an option of --model cwgan-gp"),
                           (["--model", "cwgan-gp", "--ema-decay", "1.5"], "--ema-decay"),
                           (["--model", "cwgan-gp", "--acgan-weight", "2"], "conditioning")]:
        assert main(["train", *flags, "--data", str(squares_dir), "--out",
                     str(tmp_path / "bad"), "--steps", "1", "--batch-size", "8"]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "bad").exists()


def test_a_run_resumes_only_on_the_backend_that_trained_it(tiny_cwgan_run, tmp_path):
    """A JAX run's backup holds the JAX runner's state (step counter, noise streams): the
    TensorFlow runner must refuse to resume it rather than restart its epochs silently."""
    run = tmp_path / "jax_run"
    run.mkdir()
    saved = json.loads((tiny_cwgan_run / "config.json").read_text())
    config = TrainConfig(**saved["train"])
    (run / "config.json").write_text(json.dumps({**saved, "backend": "jax"}))
    with pytest.raises(MriganError, match="trained on jax; resume it with KERAS_BACKEND=jax"):
        check_run_dir(run, config, resume=True)
    (run / "config.json").write_text(json.dumps(saved))   # no "backend": TensorFlow's
    check_run_dir(run, config, resume=True)
