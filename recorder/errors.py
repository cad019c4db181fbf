"""Exceptions of the recording store: one message line that names the file and the problem."""

from __future__ import annotations

import os


class RecordingError(Exception):
    """A recording cannot be opened or used.

    ``str(err)`` is one line: ``"<path>: <problem>"``; the CLI prints it and exits 2.
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class RecordingBusyError(RecordingError):
    """Another live writer holds the recording."""
