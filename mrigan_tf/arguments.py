"""Command-line building blocks shared by ``mrigan_tf.cli`` and ``mrigan_tf.data.prepare``.

Value types (an argparse ``type=`` that turns a bad value into a message naming it) and the
flags several subcommands share, each defined once and handed to a subcommand as a parent
parser: ``sub.add_parser("tstr", parents=[shared_flags("seed", "jit", "quiet")])``.
"""

from __future__ import annotations

import argparse
import json

#: The flags several subcommands share: name -> argparse keywords of ``--name``.
SHARED_FLAGS: dict[str, dict] = {
    "seed": dict(type=int, default=0, help="random seed (default 0)"),
    "jit": dict(action=argparse.BooleanOptionalAction, default=None,
                help="XLA-compile the train step (default: on with a GPU, off on CPU)"),
    "overwrite": dict(action="store_true", help="replace --out if it exists"),
    "quiet": dict(action="store_true", help="no progress bar"),
}

SHARED_TITLE = "common options"


def shared_flags(*names: str, **helps: str) -> argparse.ArgumentParser:
    """A parent parser (``parents=[...]``) holding the shared flags ``names``, in that order.

    ``helps`` rewords one flag's help for one command, e.g. ``seed="random seed; same seed,
    same data (default 0)"``; the flag itself (type, default) stays the same everywhere.
    """
    unknown = sorted(set(names) - set(SHARED_FLAGS)) + sorted(set(helps) - set(names))
    if unknown:
        raise ValueError(f"not a shared flag of this command: {unknown}; "
                         f"the shared flags are {sorted(SHARED_FLAGS)}")
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group(SHARED_TITLE)
    for name in names:
        options = dict(SHARED_FLAGS[name])
        if name in helps:
            options["help"] = helps[name]
        group.add_argument(f"--{name}", **options)
    return parent


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1, with a message that says so."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def key_value(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE read as JSON when it parses (numbers, true/false, lists)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    key = key.strip().replace("-", "_")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def comma_floats(text: str) -> list[float]:
    """``0.7,0.3`` -> ``[0.7, 0.3]``."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, "
                                         f"got {text!r}") from None


def synthetic_share(text: str) -> float | None:
    """A share strictly between 0 and 1, or ``proportional`` (``None``: pool the two sets)."""
    if text == "proportional":
        return None
    try:
        share = float(text)
    except ValueError:
        share = None
    if share is None or not 0.0 < share < 1.0:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1 (e.g. 0.5) or "
                                         f"'proportional', got {text!r}")
    return share
