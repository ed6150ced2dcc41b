"""
Title: Training on several GPUs or machines with tf.distribute
Description: choosing a strategy by name, and what a hand-written train step owes it.

## Data parallelism in one paragraph

Every replica (a GPU, or a CPU device) holds a full copy of the weights and gets its own
slice of the global batch. Each computes gradients on its slice; an all-reduce *sums* them;
every replica applies the same sum, so the copies stay identical. Three strategies cover
the cases this project meets:

* ``default``: no distribution, one device (what runs when nothing is said);
* ``mirrored`` (``tf.distribute.MirroredStrategy``): every GPU of *one* machine;
* ``multiworker`` (``tf.distribute.MultiWorkerMirroredStrategy``): every GPU of *several*
  machines. Each machine runs the same command with its own ``TF_CONFIG``, a JSON
  environment variable naming all workers and this one's place among them::

      TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
                  "task": {"type": "worker", "index": 0}}'

  Worker 0 is the *chief*: it writes the run directory; the others write theirs to a
  temporary directory that is deleted at the end.

## What a hand-written ``train_step`` owes the strategy

``fit()`` runs ``train_step`` once per replica on its slice. Keras handles the dataset
split and the all-reduce; our GAN steps, which compute their own losses, must do three
things themselves (``mrigan_tf.models.base`` does them for every GAN):

1. divide each mean loss by ``num_replicas_in_sync`` before taking gradients (the
   all-reduce sums: ``per_replica``);
2. draw random numbers for the *global* batch and keep this replica's rows
   (``replica_rows``): drawing per replica from a shared, mirrored seed would give every
   replica the same noise;
3. compute batch-norm statistics over the global batch (``synchronized=True``), so the
   result does not depend on how many replicas split it.

With the three, one step on two replicas equals one step on one device up to float
rounding (``tests/test_distribute.py`` checks it to 1e-5).

The model and its optimizers must be created inside ``strategy.scope()``, and a
``MultiWorkerMirroredStrategy`` must be created before TensorFlow runs anything else.
"""

from __future__ import annotations

import json
import os
from typing import Any

from mrigan_tf.errors import MriganError
from mrigan_tf.lazy_tensorflow import tf

STRATEGIES = ("default", "mirrored", "multiworker")


def read_tf_config() -> dict[str, Any] | None:
    """The parsed ``TF_CONFIG`` environment variable, ``None`` when unset or empty."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise MriganError(f"TF_CONFIG is not valid JSON ({exc.msg} at character {exc.pos}); "
                          'expected {"cluster": {"worker": ["host:port", ...]}, '
                          '"task": {"type": "worker", "index": N}}') from None
    workers = config.get("cluster", {}).get("worker") if isinstance(config, dict) else None
    task = config.get("task", {}) if isinstance(config, dict) else {}
    if not workers or not isinstance(workers, list):
        raise MriganError('TF_CONFIG names no workers: it needs "cluster": {"worker": '
                          '["host0:port", "host1:port", ...]}')
    index = task.get("index")
    if task.get("type") not in ("worker", "chief") or not isinstance(index, int):
        raise MriganError('TF_CONFIG needs "task": {"type": "worker", "index": N}, N this '
                          "machine's position in the worker list")
    if task["type"] == "worker" and not 0 <= index < len(workers):
        raise MriganError(f"TF_CONFIG task index {index} is outside the worker list "
                          f"(0 .. {len(workers) - 1})")
    return config


def make_strategy(name: str = "default", devices: list[str] | None = None) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy called ``name`` (one of ``STRATEGIES``).

    ``devices`` (``mirrored`` only): the devices to mirror over, e.g. ``["GPU:0", "GPU:1"]``;
    default every GPU of this machine, or the CPU when it has none. ``multiworker`` reads
    the cluster from ``TF_CONFIG`` and must be called before TensorFlow runs any operation.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        if devices is not None:
            raise MriganError("--strategy multiworker uses every GPU of each worker; "
                              "devices cannot be chosen")
        if read_tf_config() is None:
            raise MriganError("--strategy multiworker needs the TF_CONFIG environment variable "
                              "on every worker (see the README section 'Training on more "
                              "than one GPU or machine')")
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as exc:
            raise MriganError(f"cannot start the multi-worker strategy ({exc}); it must be "
                              "created before TensorFlow runs anything else") from None
    raise MriganError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process writes the run's outputs: always, except a non-chief worker."""
    strategy = strategy or tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type == "chief":
        return True
    # Without a "chief" task, worker 0 is the chief (the TensorFlow convention).
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def describe(strategy: tf.distribute.Strategy) -> dict[str, Any]:
    """What a run's ``config.json`` records about the strategy it trained under."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        name = "multiworker"
    elif isinstance(strategy, tf.distribute.MirroredStrategy):
        name = "mirrored"
    else:
        name = "default"
    info: dict[str, Any] = {"strategy": name, "replicas": int(strategy.num_replicas_in_sync)}
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        resolver = strategy.cluster_resolver
        info["workers"] = len(resolver.cluster_spec().as_dict().get("worker", []))
        info["task"] = f"{resolver.task_type}:{resolver.task_id}"
    return info
