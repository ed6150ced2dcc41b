"""OASIS-1 -> a prepared dataset (classes from CDR: healthy / dementia).

The same as `mrigan-tf prepare oasis ...`; run with --help for the options, and see
data_scripts/README.md for where to register, what to download and the expected layout.

    python data_scripts/prepare_oasis.py --src ~/data/oasis1 --out data/oasis64
"""

import sys

from mrigan_tf.cli import main

if __name__ == "__main__":
    sys.exit(main(["prepare", "oasis", *sys.argv[1:]]))
