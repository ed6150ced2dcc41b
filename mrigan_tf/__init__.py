"""mrigan-tf: synthesize labelled brain-MRI datasets (image + mask) with GANs.

The package is split the way data flows: ``mrigan_tf.data`` (raw volumes -> prepared
dataset), ``mrigan_tf.models`` and ``mrigan_tf.training`` (dataset -> trained GAN),
``mrigan_tf.synth`` (GAN -> synthetic dataset) and ``mrigan_tf.metrics`` (report).
Importing the package is cheap: TensorFlow is imported only by the modules that need it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mrigan-tf")
except PackageNotFoundError:  # running from a source tree that was not pip-installed
    __version__ = "0.0.0+unknown"

from mrigan_tf.errors import DataError, MriganError

__all__ = ["DataError", "MriganError", "__version__"]
