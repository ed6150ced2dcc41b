"""Moved to ``mrigan_tf.models.mixed_precision``; this name stays for old imports (TEMPORARY SHIM)."""
from mrigan_tf.models.mixed_precision import *  # noqa: F401,F403
