"""Exceptions of the recording store: one message line that names the file and the problem."""

from __future__ import annotations

import os


class RecordingError(Exception):
    """A recording cannot be opened or used.

    ``str(err)`` is one line: ``"<path>: <problem>"``; the CLI prints it and exits 2.
    A very long path is shortened in the message (``self.path`` keeps it whole);
    line breaks in the problem (from a message stored in a file) become spaces.
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = " ".join(str(problem).split())
        shown = self.path if len(self.path) <= 200 else f"{self.path[:100]}...{self.path[-60:]}"
        super().__init__(f"{shown}: {self.problem}")


class RecordingBusyError(RecordingError):
    """Another live writer holds the recording."""
