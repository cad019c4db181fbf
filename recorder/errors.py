"""Exceptions of the recording store: one message line that names the file and the problem."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


class RecordingError(Exception):
    """A recording cannot be opened or used.

    ``str(err)`` is one line: ``"<path>: <problem>"``; the CLI prints it and exits 2.
    A very long path is shortened in the message (``self.path`` keeps it whole);
    line breaks in the problem (from a message stored in a file) become spaces.
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = " ".join(str(problem).split())
        shown = printable_path(self.path)
        shown = shown if len(shown) <= 200 else f"{shown[:100]}...{shown[-60:]}"
        super().__init__(f"{shown}: {self.problem}")


def printable_path(path) -> str:
    """``path`` as text that prints on any terminal: bytes that are not UTF-8 (a file name is any bytes on
    POSIX) as ``\\xff`` escapes, instead of the lone surrogates that make ``print`` fail."""
    raw = os.fsencode(path)
    return raw.decode("utf-8", "backslashreplace")


class RecordingBusyError(RecordingError):
    """Another live writer holds the recording."""


def sql_error(path: Path, exc: sqlite3.Error | UnicodeDecodeError) -> RecordingError:
    """One line for an SQLite error (or text SQLite returned that is not UTF-8) while reading ``path``."""
    if isinstance(exc, UnicodeDecodeError):
        return RecordingError(path, "damaged recording (text that is not valid UTF-8)")
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "malformed" in msg or "not a database" in msg or "disk image" in msg or "corrupt" in msg:
        return RecordingError(path, f"corrupt or truncated recording ({msg})")
    if "decode to UTF-8" in msg:
        col = msg.split("column ", 1)[1].split(" ", 1)[0] if "column " in msg else "?"
        return RecordingError(path, f"damaged recording (text that is not valid UTF-8 in column {col[:40]})")
    if "unable to open" in msg:
        return RecordingError(path, f"cannot be opened ({msg})")
    if "readonly" in msg:
        return RecordingError(path, f"cannot be read without changing it ({msg})")
    if "too big" in msg or isinstance(exc, sqlite3.DataError):
        return RecordingError(path, f"holds a value too large for a recording ({msg})")
    return RecordingError(path, f"SQLite error: {msg}")
