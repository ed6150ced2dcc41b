"""The ``mrigan-tf`` command line: thin subcommands over the package.

Every subcommand explains itself with ``--help``, shows a progress bar on long work, turns
bad input into a one-line error with exit status 2, and writes its output atomically.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mrigan_tf import __version__
from mrigan_tf.errors import MriganError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def cmd_phantom(args: argparse.Namespace) -> int:
    from mrigan_tf.data.phantom import PhantomConfig, write_phantom

    config = PhantomConfig(subjects=args.subjects, size=args.size, seed=args.seed)
    ds = write_phantom(args.out, config, workers=args.workers, progress=not args.quiet,
                       overwrite=args.overwrite)
    counts = ds.counts()
    summary = ", ".join(f"{s}: " + "/".join(str(v) for v in c.values()) for s, c in counts.items())
    print(f"wrote {len(ds)} slices of {args.subjects} simulated subjects to {args.out} "
          f"({'/'.join(ds.class_names)} per split: {summary})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from mrigan_tf.demo import STAGES_NOT_YET_AVAILABLE, run_demo

    out = run_demo(args.out, subjects=args.subjects, size=args.size, seed=args.seed,
                   progress=not args.quiet)
    print(f"demo written to {out}: phantom/, phantom_grid.png, report.md")
    print("not in this version yet: " + "; ".join(STAGES_NOT_YET_AVAILABLE))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mrigan-tf",
        description="Synthesize labelled brain-MRI datasets (image + tumor mask) with GANs.",
        epilog="Run `mrigan-tf COMMAND --help` for the options of one command.")
    parser.add_argument("--version", action="version", version=f"mrigan-tf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "phantom", help="simulate the embedded brain-MRI dataset from the MNI152 template",
        description="Simulate brain MRI subjects from the MNI152 template (random deformation, "
                    "bias field, noise; about half with a tumor) and write axial slices with "
                    "tumor masks as a dataset directory (dataset.npz + meta.json), split by "
                    "subject. Simulated, not patient data.")
    p.add_argument("--out", required=True, help="dataset directory to create")
    p.add_argument("--subjects", type=_positive_int, default=40, help="number of subjects (default 40)")
    p.add_argument("--size", type=int, default=64, help="slice size in pixels: 64 (default) or 128")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same data (default 0)")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="worker processes (default: one per CPU core)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_phantom)

    p = sub.add_parser(
        "demo", help="run the main job end to end on the embedded dataset",
        description="The pipeline on the embedded phantom dataset: build the data, and write "
                    "pictures and a report under --out.")
    p.add_argument("--out", default=os.path.join("runs", "demo"), help="output directory (default runs/demo)")
    p.add_argument("--subjects", type=_positive_int, default=40, help="phantom subjects (default 40)")
    p.add_argument("--size", type=int, default=64, help="slice size in pixels (default 64)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MriganError as exc:
        print(f"mrigan-tf {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"mrigan-tf {args.command}: interrupted; no partial output was left", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
