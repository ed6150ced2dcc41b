"""PPMI T1 MRI (NIfTI) -> a prepared dataset (classes Control / PD).

The same as `mrigan-tf prepare ppmi ...`; run with --help for the options, and see
data_scripts/README.md for where to register, what to download and the expected layout.

    python data_scripts/prepare_ppmi.py --src ~/data/PPMI --csv ~/data/PPMI/idaSearch.csv --out data/ppmi64 --series MPRAGE
"""

import sys

from mrigan_tf.cli import main

if __name__ == "__main__":
    sys.exit(main(["prepare", "ppmi", *sys.argv[1:]]))
