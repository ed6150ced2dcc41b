"""Training: what runs around ``fit()``.

* ``callbacks``: the fixed-noise sample grid (``SampleGridCallback``) and the loss curves
  (``LossHistoryPlot``, ``plot_history``). TensorBoard needs nothing of ours: add
  ``keras.callbacks.TensorBoard(log_dir)``; every model logs scalars only.
* ``diffaugment``: differentiable augmentation for the critic.
* ``runner``: run directories, checkpoints and resuming for ``mrigan-tf train``.

Submodules are imported on demand, so importing one does not pull in the others (the
callbacks bring matplotlib).
"""
