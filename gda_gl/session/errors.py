"""The one-line wording of errors a user can cause, shared by the CLI, the window and the notebook.

Bad input is one line, ``gda-gl: error: <file>: <problem>``, never a traceback: the CLI prints it and
exits with :data:`EXIT_BAD_INPUT`, the notebook shows it as the cell's output.
"""

from __future__ import annotations

import os

from recorder.errors import RecordingError

from gda_gl.gl.backend import BackendError

__all__ = ["EXIT_BAD_INPUT", "UsageError", "short", "expected", "error_line"]

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad input that is not about a recording file (an option, an output path, a view-state file)."""


def short(path) -> str:
    """A path shortened for one line (at most about 120 characters)."""
    text = os.fspath(path)
    return text if len(text) <= 120 else text[:60] + "..." + text[-40:]


#: modules of the ``notebook`` extra: importing one of them failing means the extra is not installed
EXTRA_MODULES = ("jupyter_rfb", "ipywidgets", "anywidget", "simplejpeg", "IPython", "traitlets")


def _damaged(exc: BaseException) -> bool:
    """A damaged recording found by a recorder module below the reader (codec, pyramid)."""
    return isinstance(exc, ValueError) and type(exc).__module__.startswith("recorder.")


def _no_gl(exc: BaseException, msg: str) -> bool:
    return "egl" in msg.lower() or "opengl" in msg.lower() or type(exc).__module__.startswith(("vispy", "OpenGL"))


def _missing_extra(exc: BaseException) -> bool:
    return isinstance(exc, ImportError) and (getattr(exc, "name", None) or "").split(".")[0] in EXTRA_MODULES


def expected(exc: BaseException) -> bool:
    """Whether ``exc`` is bad input or a missing resource (exit status 2), not a bug of gda-gl (status 1)."""
    return isinstance(exc, (RecordingError, BackendError, UsageError, OSError, MemoryError)) or _damaged(exc)


def error_line(exc: BaseException, paths=()) -> str:
    """The one line (``gda-gl: error: ...``) for ``exc``, met while working on the recordings ``paths``."""
    msg = " ".join(str(exc).split())[:300]
    if isinstance(exc, (RecordingError, BackendError, UsageError)):
        return f"gda-gl: error: {msg}"
    if _missing_extra(exc):
        return f"gda-gl: error: the notebook widget needs the notebook extra: pip install 'gda-gl[notebook]' ({msg})"
    if isinstance(exc, OSError):
        name = f"{short(exc.filename)}: " if getattr(exc, "filename", None) else ""
        return f"gda-gl: error: {name}{exc.strerror or exc}"
    if isinstance(exc, MemoryError):
        return "gda-gl: error: out of memory"
    if _damaged(exc):
        return f"gda-gl: error: {', '.join(short(p) for p in paths) or 'recording'}: damaged recording ({msg})"
    if _no_gl(exc, msg):
        return f"gda-gl: error: no OpenGL on this machine ({type(exc).__name__}: {msg})"
    return f"gda-gl: error: unexpected {type(exc).__name__}: {msg}"
