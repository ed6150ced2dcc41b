"""The notebooks' experiment helpers: data reuse, model reuse, and the measured loops."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest

from mrigan_tf.data.phantom import PhantomConfig
from mrigan_tf.environment import REPOSITORY, install_command
from mrigan_tf.experiments import (FixedNoiseSnapshots, class_mix_fids, critic_gradient_norms,
                                   finished_run_matches, fid_sample_size_curves, generator_for,
                                   phantom_dir, ring_and_blob, train_or_load, _same_phantom)
from mrigan_tf.training.runner import TrainConfig
from mrigan_tf.visualization import format_quality_table


def _fake_run(run_dir, config: TrainConfig, finished: bool = True):
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"train": dataclasses.asdict(config)}))
    if finished:
        (run_dir / "training_summary.json").write_text(json.dumps({"seconds": 1.0}))


def test_phantom_dir_names_the_settings():
    default = PhantomConfig()
    assert str(phantom_dir(default.subjects, default.size, default.seed)) == "data/phantom"
    assert str(phantom_dir(6, 16, 0)) == "data/phantom_6subjects_16px_seed0"


def test_a_phantom_is_reused_only_with_the_same_settings(tmp_path):
    config = PhantomConfig(subjects=6, size=16, seed=0)
    assert not _same_phantom(tmp_path, config)           # nothing there
    (tmp_path / "dataset.npz").write_bytes(b"")
    settings = {"phantom": json.loads(json.dumps(dataclasses.asdict(config)))}
    (tmp_path / "meta.json").write_text(json.dumps(settings))
    assert not _same_phantom(tmp_path, config)           # written before layouts existed
    (tmp_path / "meta.json").write_text(json.dumps({**settings, "layout_classes": ["a", "b"]}))
    assert _same_phantom(tmp_path, config)
    assert not _same_phantom(tmp_path, dataclasses.replace(config, size=32))
    assert not _same_phantom(tmp_path, dataclasses.replace(config, seed=1))


def test_a_finished_run_of_the_same_configuration_matches(tmp_path):
    config = TrainConfig(model="gan", data="data/phantom", steps=10, batch_size=8,
                         model_options={"latent_dim": 8})
    _fake_run(tmp_path / "run", config)
    assert finished_run_matches(tmp_path / "run", config) == (True, "")
    # Speed settings do not change the model; everything else does.
    assert finished_run_matches(tmp_path / "run", dataclasses.replace(config, jit_compile=True))[0]
    ok, why = finished_run_matches(tmp_path / "run", dataclasses.replace(config, steps=20))
    assert not ok and "steps = 10" in why
    ok, why = finished_run_matches(
        tmp_path / "run", dataclasses.replace(config, model_options={"latent_dim": 16}))
    assert not ok and "model_options" in why
    _fake_run(tmp_path / "unfinished", config, finished=False)
    ok, why = finished_run_matches(tmp_path / "unfinished", config)
    assert not ok and "no finished run" in why


def test_train_or_load_reuses_a_matching_run_without_training(tmp_path, monkeypatch, capsys):
    config = TrainConfig(model="gan", data="data/phantom", steps=10, batch_size=8)
    _fake_run(tmp_path / "other_notebook", config)
    loaded = object()
    monkeypatch.setattr("mrigan_tf.experiments.load_run", lambda d: (loaded, {}, None))
    monkeypatch.setattr("mrigan_tf.experiments._history", lambda d: {"d_loss": [0.5]})
    monkeypatch.setattr("mrigan_tf.experiments.train_gan",
                        lambda *a, **k: pytest.fail("a matching run must not be retrained"))
    model, history, used = train_or_load(config, tmp_path / "here",
                                         reuse=[tmp_path / "missing", tmp_path / "other_notebook"])
    assert model is loaded and history == {"d_loss": [0.5]} and used == tmp_path / "other_notebook"
    out = capsys.readouterr().out
    assert "not reusing" in out and "not retrained" in out


def test_train_or_load_trains_a_fresh_run_when_nothing_matches(tmp_path, monkeypatch):
    config = TrainConfig(model="gan", data="data/phantom", steps=10, batch_size=8)
    stale = tmp_path / "here"
    stale.mkdir()
    (stale / "old.txt").write_text("from an earlier run")
    calls = []
    monkeypatch.setattr("mrigan_tf.experiments.train_gan",
                        lambda c, d, **k: calls.append((c, d, k)) or ("model", {"d_loss": []}))
    model, _, used = train_or_load(config, stale, verbose=2)
    assert model == "model" and used == stale and calls[0][2] == {"verbose": 2}
    assert not (stale / "old.txt").exists()   # fresh: the old run directory is gone


def test_generator_for_uses_the_reference_only_where_it_was_trained(tmp_path, monkeypatch):
    config = TrainConfig(model="gan", data="d", steps=2)
    trained = []
    monkeypatch.setattr("mrigan_tf.experiments.train_or_load",
                        lambda c, d, **k: trained.append(d))
    monkeypatch.setattr("mrigan_tf.experiments.matches_dataset", lambda ds: (True, ""))
    run, is_reference = generator_for(None, False, config, tmp_path / "own")
    assert is_reference and run.endswith("phantom64") and not trained
    run, is_reference = generator_for(None, True, config, tmp_path / "own")   # asked to train
    assert not is_reference and trained == [tmp_path / "own"]
    monkeypatch.setattr("mrigan_tf.experiments.matches_dataset", lambda ds: (False, "other data"))
    run, is_reference = generator_for(None, False, config, tmp_path / "own")
    assert not is_reference and run == str(tmp_path / "own")


def test_fixed_noise_snapshots_keep_one_frame_per_epoch():
    class Model:
        def sample(self, latent):
            return latent * 2

    latent = np.ones((3, 4), np.float32)
    callback = FixedNoiseSnapshots(latent)
    callback.set_model(Model())
    for epoch in range(2):
        callback.on_epoch_end(epoch)
    assert len(callback.frames) == 2 and np.array_equal(callback.frames[0], latent * 2)


def test_critic_gradient_norms_of_a_linear_critic_are_its_weight_norm():
    image = keras.Input((4, 4, 1))
    critic = keras.Model(image, keras.layers.Dense(1)(keras.layers.Flatten()(image)))
    rng = np.random.default_rng(0)
    real, fake = (rng.normal(size=(5, 4, 4, 1)).astype("float32") for _ in range(2))
    norms = critic_gradient_norms(critic, real, fake)
    assert np.allclose(norms, np.linalg.norm(critic.layers[-1].kernel.numpy()), rtol=1e-5)


def test_ring_and_blob():
    real, fake = ring_and_blob(n=512, seed=0)
    assert real.shape == fake.shape == (512, 1, 1, 2)
    radius = np.linalg.norm(real.reshape(-1, 2), axis=1)
    assert np.allclose(radius, 2, atol=0.3)                       # on the circle of radius 2
    assert np.linalg.norm(fake.reshape(-1, 2), axis=1).mean() < 1  # the blob in the middle


def test_fid_sample_size_curves_fall_with_n_for_real_features():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(400, 4))
    pool = rng.normal(size=(400, 4))
    sizes, curves = fid_sample_size_curves({"real": pool}, reference, [2, 8, 64, 128, 1000],
                                           repeats=3, kid_subsets=5)
    assert sizes == [2, 8, 64, 128]                      # N larger than the pool is left out
    fid = curves["real"]["fid"].mean(axis=1)
    assert curves["real"]["fid"].shape == (4, 3) and fid[1] > fid[-1]   # biased upwards at small N
    assert abs(curves["real"]["fid_inf"]) < fid[1]       # the 1/N fit removes most of the bias


def test_class_mix_fids_use_equal_sizes():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 3))
    labels = np.r_[np.zeros(45, int), np.ones(15, int)]
    n, fids = class_mix_fids(features, labels, rng.normal(size=(100, 3)), ["healthy", "tumor"],
                             repeats=2, rng=np.random.default_rng(1))
    assert n == 30
    assert set(fids) == {"natural proportions", "equal proportions", "healthy slices only"}
    assert all(len(v) == 2 for v in fids.values())


def test_format_quality_table():
    text = format_quality_table(
        {"real": {"ms_ssim": 0.1, "nn_corr": 1.0, "coverage": 0.5, "pixel_w1": 0.01},
         "DCGAN": {"ms_ssim": 0.25, "nn_corr": 0.8, "coverage": 0.3, "pixel_w1": 0.05}},
        {"DCGAN": {"params": 12345, "seconds": 12.34}})
    header, real, dcgan = text.splitlines()
    assert header.split() == ["MS-SSIM", "NN", "corr", "coverage", "pixel", "W1", "params", "seconds"]
    assert real.split() == ["real", "0.100", "1.00", "0.50", "0.010"]
    assert dcgan.split() == ["DCGAN", "0.250", "0.80", "0.30", "0.050", "12,345", "12.3"]


def test_install_command_is_pinned_to_a_tag():
    assert install_command("1.2.3") == f'pip install "mrigan-tf @ git+{REPOSITORY}@v1.2.3"'
