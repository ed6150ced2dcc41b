"""One progress bar for every long job: a terminal bar in a shell, a light bar in notebooks."""

from __future__ import annotations

import sys

from tqdm import tqdm as terminal_tqdm


def _notebook_tqdm():
    if "ipykernel" not in sys.modules:
        return None
    try:
        import ipywidgets  # noqa: F401  (tqdm's notebook bar needs it)
        from tqdm.notebook import tqdm as notebook_tqdm
    except ImportError:
        return None
    return notebook_tqdm


def progress_bar(total: int | None = None, desc: str = "", unit: str = "it",
                 disable: bool = False):
    bar = _notebook_tqdm()
    if bar is not None:
        return bar(total=total, desc=desc, unit=unit, disable=disable, leave=False)
    # Without widgets (papermill, plain Jupyter) every refresh becomes a printed line:
    # refresh rarely there.
    return terminal_tqdm(total=total, desc=desc, unit=unit, disable=disable, leave=False,
                         dynamic_ncols=True, mininterval=5.0 if "ipykernel" in sys.modules else 0.1)
