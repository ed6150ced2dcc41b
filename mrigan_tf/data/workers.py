"""How the data stage starts worker processes (the phantom's subjects, a reader's volumes)."""

from __future__ import annotations

import multiprocessing as mp
import sys


def process_context() -> mp.context.BaseContext:
    """``fork`` (fast: the workers inherit what the parent loaded, e.g. the template) unless
    TensorFlow has started its threads, after which fork is unsafe; ``spawn`` then, and on
    platforms without fork."""
    if "tensorflow" in sys.modules or sys.platform != "linux":
        return mp.get_context("spawn")
    return mp.get_context("fork")
