"""Write outputs atomically: all of it appears, or none of it does.

A long job killed half-way (Ctrl-C, out of memory, a Colab disconnect) must not leave a
directory that looks like a finished dataset. We build everything in a hidden temporary
sibling and rename it into place at the end; ``os.replace`` is atomic on one filesystem.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from mrigan_tf.errors import DataError


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``target`` when the block succeeds.

    If the block raises (or the process is interrupted), the temporary directory is
    removed and ``target`` is left exactly as it was.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        if not target.is_dir() or any(target.iterdir()):
            raise DataError(target, "output already exists; choose another --out or remove it first")
    if target.exists() and not target.is_dir():
        raise DataError(target, "exists and is not a directory; choose another --out")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    except OSError as exc:
        raise DataError(target.parent, f"cannot create the output here ({exc.strerror or exc})") from None
    try:
        yield tmp
        if target.exists():
            # Move the old output aside first: until the new one is in place, one of the
            # two always exists under a name the user can find.
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.replaced-", dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the same directory; rename it to ``target`` on success.

    The temporary name ends with all of ``target``'s suffixes (``.weights.h5``, ``.tar.gz``),
    since writers such as Keras' ``save_weights`` choose the format by them.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.partial-", dir=target.parent,
                                    suffix="".join(target.suffixes))
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
