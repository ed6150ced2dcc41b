"""mrigan_tf.training.run_directory: the files every runner writes, read back.

The runners' own tests (test_training_run, test_jax_run, test_segmentation) train into run
directories; these check the module's pieces directly, on tiny stand-ins, in a second or two.
"""

from __future__ import annotations

import dataclasses
import json
import types

import keras
import numpy as np
import pytest

from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.training.run_directory import (BACKUP_DIR, BACKUP_WEIGHTS_FILE, CONFIG_FILE,
                                              HISTORY_FILE, MODEL_FILE, SUMMARY_FILE,
                                              backup_path, check_run_dir, history_columns,
                                              load_run_model, plan_epochs, read_history,
                                              read_run_config, save_backup, save_run_model,
                                              write_history, write_run_config, write_summary)


@dataclasses.dataclass
class Config:
    data: str = "data/phantom"
    epochs: int | None = None
    steps: int | None = None
    steps_per_epoch: int | None = None
    batch_size: int = 8
    seed: int = 0

    RESUMABLE_CHANGES = ("epochs", "steps")


def _dataset(channels=("t1",)):
    return types.SimpleNamespace(class_names=["healthy", "tumor"],
                                 meta={"source": "phantom", "modality": "T1",
                                       "channels": list(channels)})


def _model(seed=0):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, kernel_initializer=keras.initializers
                                                    .GlorotUniform(seed))(inputs))
    model.compile(optimizer="sgd", loss="mse")
    return model


def _files(directory):
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


# ## Steps and epochs

def test_plan_epochs_counts_one_pass_per_epoch_and_enough_epochs_for_the_steps():
    assert plan_epochs(Config(epochs=3), 50) == (6, 3)              # 50 // 8
    assert plan_epochs(Config(steps=20), 50) == (6, 4)              # ceil(20 / 6)
    assert plan_epochs(Config(steps=20, steps_per_epoch=5), 50) == (5, 4)
    assert plan_epochs(Config(steps=7, steps_per_epoch=3), 8) == (3, 3)


def test_a_gan_split_must_hold_a_batch_but_a_repeating_stream_needs_one_slice():
    with pytest.raises(DataError, match=r"data/phantom: the train split holds 7 slices, fewer "
                                        r"than the batch size 8; lower --batch-size"):
        plan_epochs(Config(epochs=1), 7)
    # The U-Net repeats its split before batching: 3 slices make a (repeated) batch of 8.
    assert plan_epochs(Config(epochs=2), 3, repeats_before_batching=True) == (1, 2)
    with pytest.raises(DataError, match="data/phantom: the train split holds no slices"):
        plan_epochs(Config(epochs=1), 0, repeats_before_batching=True)


# ## config.json and the checks before a run

def test_write_run_config_then_read_run_config(tmp_path):
    write_run_config(tmp_path, Config(epochs=2), (16, 16, 2), _dataset(), 6, 2,
                     backend={"backend": "jax", "jax_version": "0.0"},
                     distribution={"strategy": "default", "replicas": 1},
                     details={"train_slices": 50})
    saved = read_run_config(tmp_path)
    assert list(saved) == ["train", "image_shape", "class_names", "steps_per_epoch", "epochs",
                           "data_source", "data_modality", "data_channels", "package_version",
                           "keras_version", "backend", "jax_version", "distribution",
                           "train_slices"]
    assert saved["train"] == dataclasses.asdict(Config(epochs=2))
    assert saved["image_shape"] == [16, 16, 2] and saved["data_channels"] == ["t1"]
    assert saved["keras_version"] == keras.__version__ and saved["backend"] == "jax"
    assert _files(tmp_path) == [CONFIG_FILE]
    with pytest.raises(DataError, match="not a run directory.*`mrigan-tf train --model unet"):
        read_run_config(tmp_path / "elsewhere", "mrigan-tf train --model unet --out DIR ...")


def test_check_run_dir_refuses_to_overwrite_or_resume_something_else(tmp_path):
    run = tmp_path / "run"
    check_run_dir(run, Config(epochs=1), resume=False)                  # missing: fine
    with pytest.raises(DataError, match="nothing to resume"):
        check_run_dir(run, Config(epochs=1), resume=True)
    run.mkdir()
    write_run_config(run, Config(epochs=1), (8, 8, 1), _dataset(), 2, 1,
                     backend={"tensorflow_version": "x"})
    with pytest.raises(DataError, match="already exists; pass --resume"):
        check_run_dir(run, Config(epochs=1), resume=False)
    check_run_dir(run, Config(steps=40), resume=True)                   # a resumable change
    with pytest.raises(MriganError, match=r"cannot resume with different settings "
                                          r"\(batch_size: 8 -> 16, seed: 0 -> 1\)"):
        check_run_dir(run, Config(epochs=1, batch_size=16, seed=1), resume=True)
    saved = json.loads((run / CONFIG_FILE).read_text())
    (run / CONFIG_FILE).write_text(json.dumps({**saved, "backend": "jax"}))
    with pytest.raises(MriganError, match="trained on jax; resume it with KERAS_BACKEND=jax"):
        check_run_dir(run, Config(epochs=1), resume=True)


# ## history.csv and training_summary.json

def test_history_round_trip_and_the_rows_a_backup_keeps(tmp_path):
    assert read_history(tmp_path) == [] and history_columns([]) == {}
    rows = [{"epoch": e, "g_loss": 1.5 - e, "d_loss": -0.5 * e} for e in range(3)]
    write_history(tmp_path, rows)
    assert (tmp_path / HISTORY_FILE).read_text().splitlines() == [
        "epoch,d_loss,g_loss", "0,-0.0,1.5", "1,-0.5,0.5", "2,-1.0,-0.5"]
    assert [r["epoch"] for r in read_history(tmp_path)] == ["0", "1", "2"]
    kept = read_history(tmp_path, epochs_kept=2)
    assert kept == [{"epoch": "0", "d_loss": "-0.0", "g_loss": "1.5"},
                    {"epoch": "1", "d_loss": "-0.5", "g_loss": "0.5"}]
    assert history_columns(kept) == {"d_loss": [-0.0, -0.5], "g_loss": [1.5, 0.5]}
    assert _files(tmp_path) == [HISTORY_FILE]


def test_write_summary(tmp_path):
    write_summary(tmp_path, {"seconds": 1.5, "epochs": 2})
    assert (tmp_path / SUMMARY_FILE).read_text() == '{\n  "seconds": 1.5,\n  "epochs": 2\n}\n'
    assert _files(tmp_path) == [SUMMARY_FILE]


# ## Weights and the model

def test_backup_and_model_save_then_load_run_model_prefers_the_model(tmp_path):
    with pytest.raises(DataError, match="neither model.keras nor a backup"):
        load_run_model(tmp_path, _model)
    trained = _model(seed=1)
    x = np.arange(6, dtype="float32").reshape(2, 3)
    assert save_backup(tmp_path, trained) == backup_path(tmp_path) == \
        tmp_path / BACKUP_DIR / BACKUP_WEIGHTS_FILE
    assert _files(tmp_path) == [BACKUP_DIR, f"{BACKUP_DIR}/{BACKUP_WEIGHTS_FILE}"]
    # No model.keras yet: the backup's weights, loaded into rebuild()'s fresh model.
    from_backup, path = load_run_model(tmp_path, lambda: _model(seed=2))
    assert path == backup_path(tmp_path)
    np.testing.assert_allclose(from_backup.predict(x, verbose=0), trained.predict(x, verbose=0))

    assert save_run_model(tmp_path, trained) == tmp_path / MODEL_FILE
    loaded, path = load_run_model(tmp_path, lambda: pytest.fail("model.keras needs no rebuild"))
    assert path == tmp_path / MODEL_FILE
    np.testing.assert_allclose(loaded.predict(x, verbose=0), trained.predict(x, verbose=0))
    assert MODEL_FILE in _files(tmp_path) and not any(".partial-" in f for f in _files(tmp_path))


def test_history_columns_skip_the_csv_loggers_na():
    # Keras' CSVLogger adds val_ columns to a run without validation and fills them with NA.
    rows = [{"epoch": "0", "d_loss": "0.5", "val_d_loss": "NA"},
            {"epoch": "1", "d_loss": "0.25", "val_d_loss": "NA"}]
    assert history_columns(rows) == {"d_loss": [0.5, 0.25]}
