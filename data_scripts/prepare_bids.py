"""An OpenNeuro / BIDS dataset -> a prepared dataset (class from participants.tsv).

The same as `mrigan-tf prepare bids ...`; run with --help for the options, and see
data_scripts/README.md for where to register, what to download and the expected layout.

    python data_scripts/prepare_bids.py --src ~/data/ds000xxx --class-column group --out data/bids64
"""

import sys

from mrigan_tf.cli import main

if __name__ == "__main__":
    sys.exit(main(["prepare", "bids", *sys.argv[1:]]))
