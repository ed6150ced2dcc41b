"""BraTS 2020/2021/2023 -> a prepared dataset (tumor masks, class per slice).

The same as `mrigan-tf prepare brats ...`; run with --help for the options, and see
data_scripts/README.md for where to register, what to download and the expected layout.

    python data_scripts/prepare_brats.py --src ~/data/BraTS2021_Training_Data --out data/brats64 --modalities t1ce
"""

import sys

from mrigan_tf.cli import main

if __name__ == "__main__":
    sys.exit(main(["prepare", "brats", *sys.argv[1:]]))
