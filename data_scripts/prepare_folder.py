"""Image folders (Kaggle brain-tumor sets) -> a prepared dataset.

The same as `mrigan-tf prepare folder ...`; run with --help for the options, and see
data_scripts/README.md for where to register, what to download and the expected layout.

    python data_scripts/prepare_folder.py --src ~/data/brain-tumor-mri/Training --out data/kaggle64
"""

import sys

from mrigan_tf.cli import main

if __name__ == "__main__":
    sys.exit(main(["prepare", "folder", *sys.argv[1:]]))
