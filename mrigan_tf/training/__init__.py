"""Training: what runs around ``fit()``.

* ``callbacks``: the fixed-noise sample grid (``SampleGridCallback``) and the loss curves
  (``LossHistoryPlot``, ``plot_history``). TensorBoard needs nothing of ours: add
  ``keras.callbacks.TensorBoard(log_dir)``; every model logs scalars only.
* ``diffaugment``: differentiable augmentation for the critic.
* ``runner``: run directories, checkpoints and resuming for ``mrigan-tf train``.
* ``segmentation``: the U-Net's training and scoring on the test subjects.
* ``distribute`` and ``mixed_precision``: several GPUs or machines (``tf.distribute``), and
  float16/bfloat16 compute with float32 weights.
* ``jax_cwgan_gp`` and ``jax_runner``: the cWGAN-GP's step in JAX, and ``mrigan-tf train``
  under ``KERAS_BACKEND=jax`` (no TensorFlow needed).
* ``time_budget``: stop training after a wall-clock budget (the demo's short run).

Submodules are imported on demand, so importing one does not pull in the others (the
callbacks bring matplotlib).
"""
