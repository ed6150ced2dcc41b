"""One progress bar for every long job: a terminal bar in a shell, a widget-free bar in notebooks."""

from __future__ import annotations

from tqdm.auto import tqdm


def progress_bar(total: int | None = None, desc: str = "", unit: str = "it",
                 disable: bool = False) -> tqdm:
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True,
                leave=False)
