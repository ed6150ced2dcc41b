"""Errors that speak to the user.

Anything raised as a ``MriganError`` is a problem with the user's input, not a bug: the
command line prints its message on one line and exits with status 2, without a traceback.
Messages name the file and say what is wrong and, where possible, what to do.
"""

from __future__ import annotations

import os


class MriganError(Exception):
    """Base class for errors caused by the user's input or environment."""


class DataError(MriganError):
    """A data file or dataset directory is missing, unreadable or violates the contract."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(problem if self.path is None else f"{self.path}: {problem}")
