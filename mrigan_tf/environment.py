"""What a notebook's setup cell prints: versions, and a helpful word when one is too old."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

MINIMUM = {"tensorflow": (2, 19), "keras": (3, 10), "nibabel": (5, 2), "numpy": (1, 26)}


def _parse(v: str) -> tuple[int, ...]:
    parts = []
    for piece in v.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def describe_environment(check_gpu: bool = False) -> dict[str, str]:
    """Print and return the versions that matter; warn (do not fail) on old ones.

    ``check_gpu`` imports TensorFlow to list GPUs (a few seconds); leave it off in
    notebooks that do not train.
    """
    info = {"python": sys.version.split()[0]}
    problems = []
    if sys.version_info < (3, 11):
        problems.append("Python >= 3.11 is needed")
    for name, minimum in MINIMUM.items():
        try:
            info[name] = version(name)
        except PackageNotFoundError:
            info[name] = "not installed"
            problems.append(f"{name} is not installed: pip install 'mrigan-tf'")
            continue
        if _parse(info[name]) < minimum:
            problems.append(f"{name} {info[name]} is older than {'.'.join(map(str, minimum))}: "
                            f"pip install -U {name}")
    from mrigan_tf import __version__
    info["mrigan-tf"] = __version__
    if check_gpu:
        import tensorflow as tf
        gpus = tf.config.list_physical_devices("GPU")
        info["gpu"] = ", ".join(g.name for g in gpus) if gpus else "none (CPU only: use the smaller settings)"
    print("  ".join(f"{k} {v}" for k, v in info.items()))
    for p in problems:
        print(f"WARNING: {p}")
    return info
