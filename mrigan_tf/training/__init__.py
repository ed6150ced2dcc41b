"""Stage 2, dataset -> trained model: what runs around the models' losses.

* ``runner``: ``mrigan-tf train`` for the GANs on TensorFlow (``fit()``, ``tf.data``,
  ``tf.distribute``, mixed precision), resumable.
* ``jax_trainer`` and ``jax_runner``: any GAN family's step in JAX (the family's own loss
  methods under ``jax.value_and_grad``), and ``mrigan-tf train`` under ``KERAS_BACKEND=jax``
  (no TensorFlow needed).
* ``segmentation``: the U-Net's training (its scoring is ``mrigan_tf.evaluation``).
* ``run_directory``: the one owner of a run directory's files (config, backup, history,
  summary, the model), for every runner.
* ``callbacks``: the fixed-noise sample grid (``SampleGridCallback``) and the loss curves
  (``LossHistoryPlot``, ``plot_history``). TensorBoard needs nothing of ours: add
  ``keras.callbacks.TensorBoard(log_dir)``; every model logs scalars only.
* ``distribute``: several GPUs or machines (``tf.distribute``).
* ``time_budget``: stop training after a wall-clock budget (the demo's short run).

Submodules are imported on demand, so importing one does not pull in the others (the
callbacks bring matplotlib).
"""
