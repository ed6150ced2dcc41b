"""``python -m mrigan_tf.reference --run RUN --data DATA --out DIR``: publish a reference model.

The step between ``mrigan-tf train`` and ``mrigan-tf generate/evaluate/tstr`` in
``make reference`` (see the reference model's README.md): it keeps the generator's weights
and the training log of a finished run, and records the commands and the training subjects.
"""

from __future__ import annotations

import argparse
import sys

from mrigan_tf.data.contract import load_dataset
from mrigan_tf.errors import MriganError
from mrigan_tf.reference import publish_reference


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mrigan_tf.reference", description=__doc__)
    parser.add_argument("--run", required=True, help="finished cwgan-gp run directory")
    parser.add_argument("--data", required=True, help="the dataset directory it was trained on")
    parser.add_argument("--out", required=True, help="reference directory to write")
    parser.add_argument("--command", action="append", default=[],
                        help="a command that made it, in order (repeat)")
    parser.add_argument("--note", action="append", default=[], metavar="KEY=VALUE",
                        help="a fact to record, e.g. wall_minutes=95 (repeat)")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    notes = dict(note.split("=", 1) for note in args.note)
    try:
        out = publish_reference(args.run, load_dataset(args.data), args.out, args.command,
                                notes=notes, overwrite=args.overwrite)
    except MriganError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"reference model written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
