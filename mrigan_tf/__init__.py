"""mrigan-tf: synthesize labelled brain-MRI datasets (image + mask) with GANs.

The package is split the way data flows, and imports run one way (import-linter checks it):

    data/        raw volumes -> prepared dataset (readers, phantom, contract, pipeline)
    models/      the GAN families and the U-Net, their losses (keras.ops, both backends)
    training/    dataset -> trained model (TensorFlow fit, the JAX trainer, run directories)
    synth        trained GAN -> synthetic dataset (the product)
    metrics/     pure metric functions
    evaluation/  synthetic vs real: the evaluate report, TSTR, segmentation scoring
    reference/   the shipped trained model
    demo, cli    the main job end to end, the `mrigan-tf` command

Importing the package is cheap: TensorFlow is imported only by the modules that need it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mrigan-tf")
except PackageNotFoundError:  # running from a source tree that was not pip-installed
    __version__ = "0.0.0+unknown"

from mrigan_tf.errors import DataError, MriganError

__all__ = ["DataError", "MriganError", "__version__"]
