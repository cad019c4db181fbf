"""Recordings opened as runs to draw: one colour and a unique name each, closed again if anything fails."""

from __future__ import annotations

import contextlib

from recorder.errors import RecordingError
from recorder.store import open_recordings

from gda_gl.compose.compare import unique_names
from gda_gl.compose.rundata import RunData
from gda_gl.compose.style import run_color

__all__ = ["closing_on_error", "run_of", "load_runs"]


@contextlib.contextmanager
def closing_on_error(recs: list):
    """Close every recording in ``recs`` (also those appended inside the block) if the block raises."""
    try:
        yield recs
    except BaseException:
        for rec in recs:
            rec.close()
        raise


def run_of(rec, color, name: str | None = None, empty_ok: bool = False):
    """An open recording as a run to draw, its ``path`` set; one without iterations is refused unless ``empty_ok``.

    The run holds windows onto the file: only what a frame needs is ever read (the recording stays open).
    Used by :func:`load_runs` and by the notebook's ``view``.
    """
    run = RunData.from_recording(rec, name=name, color=color)
    if len(run) == 0 and not empty_ok:
        raise RecordingError(rec.path, f"recording holds no iterations (writer {rec.writer_state()})")
    run.path = rec.path
    return run


def load_runs(paths: list[str]):
    """Open recordings and prepare them for drawing (one colour each)."""
    recs = open_recordings(paths)
    with closing_on_error(recs):
        names = unique_names([rec.name for rec in recs], [str(rec.path) for rec in recs])
        return [run_of(rec, run_color(i), name) for i, (rec, name) in enumerate(zip(recs, names))]
