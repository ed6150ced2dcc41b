"""What a notebook's setup cell prints: versions, the device, and a helpful word when one is
too old or when no GPU is there.

``install_command`` is the one way to install the package, the same in the README, in every
notebook's setup cell and in the warnings below: from the git tag of this version (no package
index serves ``mrigan-tf``).
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

#: Where the package is published (the notebooks' Colab badges open it).
REPOSITORY = "https://github.com/mrigan-tf/mrigan-tf"

MINIMUM = {"tensorflow": (2, 19), "keras": (3, 10), "nibabel": (5, 2), "numpy": (1, 26)}


def _parse(v: str) -> tuple[int, ...]:
    parts = []
    for piece in v.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def install_command(version: str | None = None) -> str:
    """``pip install "mrigan-tf @ git+REPOSITORY@vVERSION"``: this version (or ``version``),
    pinned to its tag, so that a notebook installs the package it was written for."""
    if version is None:
        from mrigan_tf import __version__ as version
    return f'pip install "mrigan-tf @ git+{REPOSITORY}@v{version}"'


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
            problems.append(f"{name} is not installed: {install_command()}")
            continue
        if _parse(info[name]) < minimum:
            problems.append(f"{name} {info[name]} is older than {'.'.join(map(str, minimum))}: "
                            f"pip install -U {name}")
    from mrigan_tf import __version__
    info["mrigan-tf"] = __version__
    if check_gpu:
        import tensorflow as tf
        gpus = tf.config.list_physical_devices("GPU")
        info["gpu"] = ", ".join(g.name for g in gpus) if gpus else "none"
    print("  ".join(f"{k} {v}" for k, v in info.items()))
    if check_gpu and info["gpu"] == "none":
        print('No GPU: PROFILE = "auto" runs the "cpu" profile (smaller settings, sized for a '
              "2-core CPU). On Colab, Runtime > Change runtime type > T4 GPU, then run the "
              'notebook again for the "gpu" profile (the teaching settings).')
    for p in problems:
        print(f"WARNING: {p}")
    return info
