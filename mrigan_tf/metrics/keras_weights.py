"""
Title: Pretrained ImageNet weights, from the local Keras cache only
Description: Find the weight files that ``keras.applications`` would download, without ever
downloading them.

The metrics must run offline (CI, air-gapped hospital machines, tests). ``keras.applications``
fetches ImageNet weights from the network on first use and keeps them in
``$KERAS_HOME/models`` (default ``~/.keras/models``). We look there and nowhere else: when the
file is present we hand its path to the model constructor (which then loads it without any
network access); when it is absent the caller says so plainly and does without.

To make the weights available, download them once on a machine with network access, e.g.
``python -c "import keras; keras.applications.InceptionV3(include_top=False)"``, and copy
``~/.keras/models/`` across.
"""

from __future__ import annotations

import os
from pathlib import Path

from mrigan_tf.errors import MriganError

#: The file names keras.applications gives the "notop" ImageNet weights in its cache.
INCEPTION_V3_NOTOP = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG16_NOTOP = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


class WeightsUnavailable(MriganError):
    """Pretrained weights were asked for but are not in the local Keras cache."""


def keras_cache_dirs() -> list[Path]:
    """Where keras.applications keeps downloaded weights: $KERAS_HOME, ~/.keras, /tmp/.keras."""
    homes = []
    if os.environ.get("KERAS_HOME"):
        homes.append(Path(os.environ["KERAS_HOME"]))
    homes += [Path.home() / ".keras", Path("/tmp/.keras")]
    seen, out = set(), []
    for home in homes:
        models = (home / "models").expanduser()
        if models not in seen:
            seen.add(models)
            out.append(models)
    return out


def find_cached_weights(filename: str) -> Path | None:
    """The cached weight file ``filename``, or ``None`` when no cache directory holds it."""
    for directory in keras_cache_dirs():
        candidate = directory / filename
        if candidate.is_file() and candidate.stat().st_size > 0:
            return candidate
    return None


def require_cached_weights(filename: str, model_name: str) -> Path:
    """The cached weight file, or ``WeightsUnavailable`` saying where it was looked for."""
    path = find_cached_weights(filename)
    if path is None:
        where = ", ".join(str(d) for d in keras_cache_dirs())
        raise WeightsUnavailable(
            f"ImageNet weights for {model_name} ({filename}) are not in the local Keras cache "
            f"({where}); they are never downloaded at run time. Download them once with "
            f"network access (keras.applications.{model_name}(include_top=False)) and copy "
            "~/.keras/models/ here")
    return path
