"""Stage 4, synthetic vs real: what a generator's data is worth.

* ``report``: ``mrigan-tf evaluate``: FID/KID (domain CNN and Inception), IS, MS-SSIM
  diversity, LPIPS, mask/label agreement, the memorization audit, beside real-vs-real floors;
* ``tstr``: ``mrigan-tf tstr``: U-Nets trained on real, synthetic and mixed data, scored on the
  real test subjects;
* ``segmentation``: scoring a U-Net on a split (Dice/IoU per slice and per subject, the
  healthy-slice false-positive rate), and ``evaluation.json`` of a U-Net run;
* ``turing``: ``mrigan-tf turing``: the visual Turing test page and the scoring of its readers.

The metric functions themselves are ``mrigan_tf.metrics``. The names below are imported on
first use, so importing the package does not load Keras.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "evaluate_synthetic": "report",
    "run_tstr": "tstr",
    "evaluate_segmentation": "segmentation",
    "predict_masks": "segmentation",
    "train_and_score_unet": "segmentation",
    "write_turing_page": "turing",
    "score_turing_answers": "turing",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mrigan_tf.evaluation' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mrigan_tf.evaluation.{_EXPORTS[name]}"), name)
