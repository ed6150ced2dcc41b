"""tf.distribute: one step on two replicas is one step on one device; two workers agree.

TensorFlow fixes its devices when it starts, so everything distributed runs in fresh
processes (this file, run as a script: ``python tests/test_distribute.py MODE ...``): the
pytest process keeps its single CPU device. Every subprocess is bounded by a timeout, and
the two-worker cluster listens on free loopback ports only.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
TIMEOUT_S = 600   # generous: a loaded 2-core machine runs these several times slower

#: The families and options of the parity check: tiny, and each with its own way of
#: drawing noise, normalizing and clipping (the cWGAN-GP with every DiffAugment policy).
PARITY_CASES = {
    "cwgan-gp": ((16, 16, 2), {"latent_dim": 8, "width": 4, "n_critic": 2, "drift_weight": 1e-3,
                               "augment": "translation,cutout,brightness,contrast"}),
    "dcgan": ((16, 16, 1), {"latent_dim": 8, "width": 4}),
    "wgan": ((16, 16, 1), {"latent_dim": 8, "width": 4, "n_critic": 2}),
}
# (The vanilla GAN's train_step is the DCGAN's: its parity is checked with the DCGAN.)
BATCH = 8


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE.parent)]))
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _run_self(*args: str, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HERE), *args], capture_output=True, text=True,
                          timeout=timeout, env=_env(), cwd=ROOT)


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


# ## In the pytest process: no TensorFlow devices touched

def test_strategy_names_and_tf_config_errors(monkeypatch):
    from mrigan_tf.errors import MriganError
    from mrigan_tf.training.distribute import make_strategy, read_tf_config

    assert make_strategy("default").num_replicas_in_sync == 1
    with pytest.raises(MriganError, match="unknown strategy 'horovod'"):
        make_strategy("horovod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(MriganError, match="needs the TF_CONFIG"):
        make_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(MriganError, match="not valid JSON"):
        read_tf_config()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                                                "task": {"type": "worker", "index": 2}}))
    with pytest.raises(MriganError, match="index 2 is outside"):
        read_tf_config()


def test_train_config_checks_strategy_and_precision(squares_dir):
    from mrigan_tf.errors import MriganError
    from mrigan_tf.training.runner import TrainConfig

    with pytest.raises(MriganError, match="unknown strategy"):
        TrainConfig(model="dcgan", data=str(squares_dir), epochs=1, strategy="tpu-pod")
    with pytest.raises(MriganError, match="unknown precision"):
        TrainConfig(model="dcgan", data=str(squares_dir), epochs=1, precision="float8")


# ## MirroredStrategy on two logical CPU devices

@pytest.fixture(scope="module")
def mirrored_report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("mirrored") / "report.json"
    proc = _run_self("mirrored", str(out))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())


def test_each_replica_draws_its_own_rows_of_the_global_noise(mirrored_report):
    noise = mirrored_report["noise"]
    assert noise["replicas"] == 2
    # Replicas differ, and together they are exactly what one device draws.
    assert noise["replicas_differ"]
    assert noise["max_diff_to_single_device"] == 0.0


@pytest.mark.parametrize("family", [*sorted(PARITY_CASES), "unet"])
def test_one_mirrored_step_equals_one_single_device_step(mirrored_report, family):
    result = mirrored_report["families"][family]
    assert result["replicas"] == 2
    assert result["moved"] > 1e-4                    # the step did change the weights ...
    assert result["max_abs_diff"] < 1e-5, result     # ... identically on one and two devices
    assert all(np.isfinite(v) for v in result["logs"].values())


# ## MultiWorkerMirroredStrategy: two processes on localhost

def test_two_workers_train_to_identical_weights(squares_dir, tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    run_dir = tmp_path / "run"
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(subprocess.Popen(
            [sys.executable, str(HERE), "worker", str(squares_dir), str(run_dir),
             str(tmp_path / f"weights{index}.npz")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            env=_env(TF_CONFIG=tf_config)))
    try:
        outputs = [p.communicate(timeout=TIMEOUT_S) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-4000:]

    weights = [np.load(tmp_path / f"weights{i}.npz") for i in range(2)]
    assert weights[0].files == weights[1].files and len(weights[0].files) > 10
    for name in weights[0].files:
        np.testing.assert_array_equal(weights[0][name], weights[1][name], err_msg=name)

    # The chief wrote the run; the other worker only its backup.
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["distribution"] == {"strategy": "multiworker", "replicas": 2,
                                     "workers": 2, "task": "worker:0"}
    assert (run_dir / "model.keras").is_file()
    summary = json.loads((run_dir / "training_summary.json").read_text())
    assert summary["generator_steps"] == 4 and summary["critic_steps"] == 4
    assert (run_dir / "backup" / "worker-1" / "latest.weights.h5").is_file()


# ## The subprocess side

def _two_cpu_devices() -> None:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])


def _parity_step(family: str, strategy, initial_weights=None):
    """(weights before, weights after, logs) of one ``fit`` step of a tiny model."""
    import keras
    import tensorflow as tf

    from mrigan_tf.models import make_gan

    image_shape, options = PARITY_CASES[family]
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (BATCH, *image_shape)).astype(np.float32)
    labels = (np.arange(BATCH) % 2).astype(np.int32)
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(BATCH)
    with strategy.scope():
        model = make_gan(family, image_shape, seed=3, **options)
        if initial_weights is not None:
            model.set_weights(initial_weights)
        # SGD, not the papers' Adam: Adam's first step is lr * sign(gradient), which turns
        # float rounding in a near-zero gradient into a full-size difference. Eager: the
        # replicas' split, the per-replica noise and the cross-replica sums are the same
        # calls traced or not, and a one-step fit costs a third of the CPU untraced (62 vs
        # 22 s for this file's mirrored subprocess); the two-worker test below trains traced.
        model.compile(keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.05), jit_compile=False,
                      run_eagerly=True)
    before = model.get_weights()
    history = model.fit(data, epochs=1, verbose=0, shuffle=False)
    logs = {k: float(v[-1]) for k, v in history.history.items()}
    return before, model.get_weights(), logs


def _unet_parity_step(strategy, initial_weights=None):
    """The U-Net trains with Keras' own ``fit``: Keras divides its loss by the replicas."""
    import keras
    import tensorflow as tf

    from mrigan_tf.models.unet import build_unet, dice_bce_loss

    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (BATCH, 16, 16, 1)).astype(np.float32)
    masks = (images > 0.5).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices((images, masks)).batch(BATCH)
    with strategy.scope():
        keras.utils.set_random_seed(3)
        # Group norm is per sample, so two replicas see exactly what one device sees.
        model = build_unet(16, depth=2, width=4, norm="group")
        if initial_weights is not None:
            model.set_weights(initial_weights)
        model.compile(keras.optimizers.SGD(0.05), loss=dice_bce_loss, jit_compile=False,
                      run_eagerly=True)
    before = model.get_weights()
    history = model.fit(data, epochs=1, verbose=0, shuffle=False)
    return before, model.get_weights(), {k: float(v[-1]) for k, v in history.history.items()}


def _noise_check() -> dict:
    import tensorflow as tf

    from mrigan_tf.models import make_gan

    image_shape, options = PARITY_CASES["dcgan"]
    single = make_gan("dcgan", image_shape, seed=5, **options)
    expected = single.draw_latent(BATCH).numpy()
    strategy = tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])
    with strategy.scope():
        model = make_gan("dcgan", image_shape, seed=5, **options)
    per_replica = strategy.run(tf.function(lambda: model.draw_latent(BATCH // 2)))
    rows = [t.numpy() for t in strategy.experimental_local_results(per_replica)]
    return {"replicas": len(rows),
            "replicas_differ": bool(np.abs(rows[0] - rows[1]).max() > 0.1),
            "max_diff_to_single_device": float(np.abs(np.concatenate(rows) - expected).max())}


def mirrored_main(out: str) -> None:
    _two_cpu_devices()
    import tensorflow as tf

    report: dict = {"noise": _noise_check(), "families": {}}
    mirrored = tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])
    for family in PARITY_CASES:
        before, single, _ = _parity_step(family, tf.distribute.get_strategy())
        _, distributed, logs = _parity_step(family, mirrored, initial_weights=before)
        report["families"][family] = {
            "replicas": mirrored.num_replicas_in_sync,
            "moved": max(float(np.abs(a - b).max()) for a, b in zip(single, before)),
            "max_abs_diff": max(float(np.abs(a - b).max()) for a, b in zip(single, distributed)),
            "logs": logs,
        }
    before, single, _ = _unet_parity_step(tf.distribute.get_strategy())
    _, distributed, logs = _unet_parity_step(mirrored, initial_weights=before)
    report["families"]["unet"] = {
        "replicas": mirrored.num_replicas_in_sync,
        "moved": max(float(np.abs(a - b).max()) for a, b in zip(single, before)),
        "max_abs_diff": max(float(np.abs(a - b).max()) for a, b in zip(single, distributed)),
        "logs": logs,
    }
    Path(out).write_text(json.dumps(report, indent=2))


def worker_main(data_dir: str, run_dir: str, out: str) -> None:
    from mrigan_tf.training.runner import TrainConfig, train_gan

    config = TrainConfig(model="cwgan-gp", data=data_dir, epochs=2, steps_per_epoch=2,
                         batch_size=8, jit_compile=False, samples=4, strategy="multiworker",
                         model_options={"latent_dim": 8, "width": 4, "n_critic": 1,
                                        "augment": "translation,cutout"})
    model, _ = train_gan(config, run_dir, verbose=0)
    names = [f"{i:03d}_{w.path.replace('/', '.')}" for i, w in enumerate(model.weights)]
    np.savez(out, **dict(zip(names, model.get_weights())))


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    {"mirrored": mirrored_main, "worker": worker_main}[mode](*rest)
