"""`mrigan-tf train --model MODEL` under KERAS_BACKEND=jax (mrigan_tf.training.jax_runner).

One subprocess runs the command line on the JAX backend with TensorFlow hidden (as on a
JAX-only GPU machine): for the cwgan-gp an uninterrupted run, a run killed in its second
epoch and resumed, and the refusals (changed settings, TensorFlow-only options); for every
other family a one-epoch run continued by --resume for a second epoch. Its run directories are then
checked here, in this TensorFlow process: the files, the resumed run against the
uninterrupted one, and `mrigan-tf generate --run` reading the JAX run on TensorFlow.

Tiny on purpose (16 px, width 4, 3 epochs of 2 steps): the persistent XLA compilation cache
of tests/conftest.py lets the second and third runs skip recompiling the step.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from test_jax_backend import WITHOUT_TENSORFLOW, _h5_arrays, needs_jax, run_in_backend

# Both JAX files run on one xdist worker, one after the other: they share its XLA cache.
pytestmark = pytest.mark.xdist_group("jax")

# With a generator EMA, so that the resumed run's comparison covers the weight average too.
TRAIN = ["train", "--model", "cwgan-gp", "--steps-per-epoch", "2", "--batch-size", "8",
         "--latent-dim", "8", "--width", "4", "--n-critic", "2",
         "--augment", "translation,cutout,brightness", "--ema-decay", "0.9", "--quiet"]
EPOCHS = 3
STEPS_PER_EPOCH = 2
N_CRITIC = 2
#: The other families, tiny: (model, its own options). Each trains 1 epoch, then resumes a 2nd.
FAMILY_TRAIN = {
    "gan": ["--set", "generator_units=[16]", "--set", "discriminator_units=[16]"],
    "dcgan": ["--width", "4"],
    "wgan": ["--width", "4", "--n-critic", "2"],
}

CLI_RUNS = WITHOUT_TENSORFLOW + """
import contextlib, io, json, os
import keras, numpy as np
from mrigan_tf.cli import main
from mrigan_tf.training.jax_trainer import JaxGANTrainer

TRAIN, DATA, WORK, FAMILY_TRAIN = {train!r}, {data!r}, {work!r}, {families!r}
results = {{}}

def cli(name, *args, base=TRAIN):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(base + ["--data", DATA, *args])
    results[name] = {{"code": code, "stderr": err.getvalue().strip().splitlines()[-1:]}}

cli("full", "--out", f"{{WORK}}/full", "--epochs", "3")

# A kill (Ctrl-C) at the 2nd step of the 2nd epoch.
train_step, calls = JaxGANTrainer.train_step, []
def killed_step(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == 4:
        raise KeyboardInterrupt
    return train_step(self, *args, **kwargs)
JaxGANTrainer.train_step = killed_step
cli("killed", "--out", f"{{WORK}}/killed", "--epochs", "3")
JaxGANTrainer.train_step = train_step
results["after_kill"] = sorted(os.listdir(f"{{WORK}}/killed"))
with open(f"{{WORK}}/killed/history.csv") as f:
    results["history_after_kill"] = f.read()
    # As if killed after writing epoch 2's row but before its backup: resume must drop it.
with open(f"{{WORK}}/killed/history.csv", "a") as f:
    f.write("1,99.0,99.0,99.0,99.0\\n")
cli("resumed", "--out", f"{{WORK}}/killed", "--epochs", "3", "--resume")

cli("changed", "--out", f"{{WORK}}/full", "--epochs", "3", "--resume", "--n-critic", "3")
cli("lazy", "--out", f"{{WORK}}/lazy", "--epochs", "1", "--gp-every", "2")
cli("lazy_refused", "--out", f"{{WORK}}/lazy_refused", "--epochs", "1", "--gp-every", "3")
results["lazy_refused_dir_exists"] = os.path.exists(f"{{WORK}}/lazy_refused")
for option in (["--strategy", "mirrored"], ["--mixed-precision"], ["--steps-per-execution", "2"],
               ["--no-jit"]):
    cli(option[0], "--out", f"{{WORK}}/refused", "--epochs", "1", *option)
results["refused_dir_exists"] = os.path.exists(f"{{WORK}}/refused")

# Every other family: one epoch, then a second one by --resume.
for family, options in FAMILY_TRAIN.items():
    base = ["train", "--model", family, "--steps-per-epoch", "2", "--batch-size", "8",
            "--latent-dim", "8", "--quiet", *options]
    cli(family, "--out", f"{{WORK}}/{{family}}", "--epochs", "1", base=base)
    cli(family + "_resumed", "--out", f"{{WORK}}/{{family}}", "--epochs", "2", "--resume", base=base)

# The finished run's model.keras loads on JAX too, and samples.
model = keras.models.load_model(f"{{WORK}}/full/model.keras")
results["jax_samples"] = model.sample(4, seed=0).tolist()
results["tensorflow_imported"] = "tensorflow" in sys.modules
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def jax_runs(squares_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("jax_runs")
    code = CLI_RUNS.format(train=TRAIN, data=str(squares_dir), work=str(work),
                           families=FAMILY_TRAIN)
    # The persistent XLA cache that tests/conftest.py sets up lets the second and third runs
    # skip recompiling the step.
    return work, run_in_backend("jax", code, work)


def _history(run):
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


def test_epoch_batches_are_full_permutations_fixed_by_seed_and_epoch():
    from mrigan_tf.training.jax_runner import epoch_batches

    batches = epoch_batches(10, 4, 5, seed=0, epoch=1)        # 20 rows: two passes
    assert batches.shape == (5, 4)
    assert sorted(batches.ravel()[:10]) == list(range(10))
    np.testing.assert_array_equal(batches, epoch_batches(10, 4, 5, seed=0, epoch=1))
    assert not np.array_equal(batches, epoch_batches(10, 4, 5, seed=0, epoch=2))


@needs_jax
def test_cli_trains_cwgan_gp_on_jax_into_a_run_directory(jax_runs):
    work, results = jax_runs
    assert results["full"]["code"] == 0, results["full"]
    assert results["tensorflow_imported"] is False
    run = work / "full"
    saved = json.loads((run / "config.json").read_text())
    assert saved["backend"] == "jax" and saved["image_shape"] == [16, 16, 2]
    assert saved["train"]["model"] == "cwgan-gp" and saved["train"]["model_options"]["width"] == 4
    assert saved["epochs"] == EPOCHS and saved["steps_per_epoch"] == STEPS_PER_EPOCH
    rows = _history(run)
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert all(np.isfinite(float(r[name])) for r in rows for name in ("d_loss", "g_loss", "gp"))
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == [
        f"samples_epoch000{e}.png" for e in (1, 2, 3)]
    assert (run / "loss_curves.png").stat().st_size > 1000
    assert (run / "model.keras").is_file() and (run / "backup" / "latest.weights.h5").is_file()
    summary = json.loads((run / "training_summary.json").read_text())
    assert summary["generator_steps"] == EPOCHS * STEPS_PER_EPOCH
    assert summary["critic_steps"] == EPOCHS * STEPS_PER_EPOCH * N_CRITIC
    assert not list(run.rglob(".*partial*"))          # no temporary file left behind


@needs_jax
def test_resume_after_a_kill_ends_where_an_uninterrupted_run_ends(jax_runs):
    work, results = jax_runs
    assert results["killed"]["code"] == 130             # the CLI's "interrupted"
    assert "model.keras" not in results["after_kill"]
    epochs_written = [line.split(",")[0] for line in results["history_after_kill"].splitlines()]
    assert epochs_written == ["epoch", "0"]
    assert results["resumed"]["code"] == 0, results["resumed"]

    full = _h5_arrays(work / "full" / "backup" / "latest.weights.h5")
    resumed = _h5_arrays(work / "killed" / "backup" / "latest.weights.h5")
    assert set(full) == set(resumed) and len(full) > 20
    # The backup holds the generator EMA, which lags behind the generator.
    averaged = [k for k in full if k.startswith("ema_generator/")]
    assert len(averaged) == len([k for k in full if k.startswith("generator/")]) > 0
    assert any(not np.allclose(full[k], full[k.replace("ema_generator/", "generator/", 1)])
               for k in averaged)
    # The same batches, noise and augmentation: the same weights and optimizer slots.
    for name, value in full.items():
        np.testing.assert_allclose(resumed[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    assert int(resumed["g_optimizer/vars/0"]) == EPOCHS * STEPS_PER_EPOCH
    assert int(resumed["d_optimizer/vars/0"]) == EPOCHS * STEPS_PER_EPOCH * N_CRITIC
    # The stale row was dropped; epochs 1 and 2 were trained again, as the full run did.
    full_rows, resumed_rows = _history(work / "full"), _history(work / "killed")
    assert [r["epoch"] for r in resumed_rows] == ["0", "1", "2"]
    for a, b in zip(full_rows, resumed_rows):
        np.testing.assert_allclose(float(b["d_loss"]), float(a["d_loss"]), rtol=1e-5)
        np.testing.assert_allclose(float(b["g_loss"]), float(a["g_loss"]), rtol=1e-5, atol=1e-6)


@needs_jax
def test_changed_settings_and_tensorflow_only_options_are_refused(jax_runs):
    work, results = jax_runs
    assert results["changed"]["code"] == 2
    assert "cannot resume with different settings" in results["changed"]["stderr"][0]
    assert "n_critic" in results["changed"]["stderr"][0]
    for option in ("--strategy", "--mixed-precision", "--steps-per-execution", "--no-jit"):
        outcome = results[option]
        assert outcome["code"] == 2, (option, outcome)
        [message] = outcome["stderr"]
        assert message.startswith("mrigan-tf train: error: ") and option in message, message
    assert results["refused_dir_exists"] is False


@needs_jax
def test_lazy_regularization_reaches_the_jax_step_from_the_command_line(jax_runs):
    work, results = jax_runs
    assert results["lazy"]["code"] == 0, results["lazy"]
    saved = json.loads((work / "lazy" / "config.json").read_text())
    assert saved["backend"] == "jax" and saved["train"]["model_options"]["gp_every"] == 2
    # The penalty is still logged every step (the latest one) and is a real, finite value.
    rows = _history(work / "lazy")
    assert len(rows) == 1 and float(rows[0]["gp"]) > 0 and np.isfinite(float(rows[0]["d_loss"]))
    # 3 does not divide n_critic = 2: one line, exit 2, no run directory.
    assert results["lazy_refused"]["code"] == 2
    [message] = results["lazy_refused"]["stderr"]
    assert "gp_every must divide n_critic (2)" in message, message
    assert results["lazy_refused_dir_exists"] is False


@needs_jax
def test_generate_reads_the_jax_run_on_tensorflow(jax_runs, tmp_path, capsys):
    import keras

    from mrigan_tf.cli import main
    from mrigan_tf.data.contract import load_dataset
    from mrigan_tf.training.runner import load_run

    work, results = jax_runs
    assert keras.backend.backend() == "tensorflow"
    model, saved, path = load_run(work / "full")
    assert path.name == "model.keras" and saved["backend"] == "jax"
    assert int(model.g_optimizer.iterations) == EPOCHS * STEPS_PER_EPOCH
    assert int(model.d_optimizer.iterations) == EPOCHS * STEPS_PER_EPOCH * N_CRITIC
    # The same weights on both backends: the same samples, to float32 round-off.
    np.testing.assert_allclose(model.sample(4, seed=0), results["jax_samples"],
                               rtol=1e-5, atol=1e-5)

    out = tmp_path / "synthetic"
    assert main(["generate", "--run", str(work / "full"), "--n", "8", "--out", str(out),
                 "--quiet"]) == 0
    synthetic = load_dataset(out)
    assert synthetic.images.shape == (8, 16, 16, 1) and synthetic.meta["model"] == "cwgan-gp"
    assert "wrote 8 synthetic" in capsys.readouterr().out


@needs_jax
@pytest.mark.parametrize("family", sorted(FAMILY_TRAIN))
def test_every_family_trains_and_resumes_on_jax_from_the_command_line(jax_runs, family):
    from mrigan_tf.models import FAMILIES

    work, results = jax_runs
    assert results[family]["code"] == 0, results[family]
    assert results[family + "_resumed"]["code"] == 0, results[family + "_resumed"]
    run = work / family
    saved = json.loads((run / "config.json").read_text())
    assert saved["backend"] == "jax" and saved["train"]["model"] == family
    assert saved["image_shape"] == [16, 16, 1]          # unconditional: the image alone
    rows = _history(run)
    assert [r["epoch"] for r in rows] == ["0", "1"]     # the first epoch kept, the second added
    assert set(rows[0]) == {"epoch", *FAMILIES[family][1].METRIC_NAMES}
    assert all(np.isfinite(float(r[name])) for r in rows for name in rows[0] if name != "epoch")
    summary = json.loads((run / "training_summary.json").read_text())
    n_critic = 2 if family == "wgan" else 1
    assert summary["generator_steps"] == 2 * STEPS_PER_EPOCH
    assert summary["critic_steps"] == 2 * STEPS_PER_EPOCH * n_critic
    backup = _h5_arrays(run / "backup" / "latest.weights.h5")
    assert int(backup["g_optimizer/vars/0"]) == 2 * STEPS_PER_EPOCH
    if family == "wgan":   # the clipping held on the JAX path (convolutions and dense layer)
        critic = [v for k, v in backup.items() if k.startswith("critic/")
                  and ("conv2d" in k or "dense" in k)]
        assert len(critic) >= 4 and max(np.abs(v).max() for v in critic) <= 0.01 + 1e-7
