"""Moved to ``mrigan_tf.models.diffaugment``; this name stays for old imports (TEMPORARY SHIM)."""
from mrigan_tf.models.diffaugment import *  # noqa: F401,F403
