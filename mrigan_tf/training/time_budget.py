"""Stop training when a wall-clock budget is spent: for demos and classrooms with a timetable.

The check runs at the end of each epoch, so a run always ends on a finished epoch, with a
backup, and resumes cleanly. How far it got is in the logs, never silently assumed.
"""

from __future__ import annotations

import time

import keras


class TimeBudget(keras.callbacks.Callback):
    """Stop ``fit`` after the first epoch that ends past ``seconds`` of training."""

    def __init__(self, seconds: float):
        super().__init__()
        if seconds <= 0:
            raise ValueError(f"the time budget must be positive, got {seconds}")
        self.seconds = float(seconds)
        self.started = None
        self.stopped_early = False
        self.epochs_run = 0

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_run += 1
        if time.perf_counter() - self.started >= self.seconds:
            self.stopped_early = epoch + 1 < self.params.get("epochs", epoch + 1)
            self.model.stop_training = True
