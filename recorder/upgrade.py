"""``gda-gl upgrade OLD.gda NEW.gda``: a schema-2 copy of a recording, the source left untouched.

Schema-1 files (gda_gl 0.1) have no stored pyramid: every open indexes them in
memory with one streaming pass.  Upgrading writes a new file through the normal
writer, block by block (memory bounded by one block), so the copy gets
compressed blocks and the stored pyramid; every event and the run metadata are
copied.  The source is opened read-only and never modified.

The copy is built under a temporary name beside the target (rollback journal,
so no WAL is left beside it), checked (every row and event is there, nothing
was dropped by a failing disk) and only then linked to the target name, which
must not exist: a damaged source, a full disk or a kill leaves no target at all,
never a partial copy that reads as complete.  Target names SQLite uses for a
database's side files (``-wal``, ``-shm``, ``-journal``) are refused: a later
writer of the database beside it would take the copy for its journal.

The temporary name is fixed per target (``.NEW.gda.upgrading``) and held with an
advisory lock (``.NEW.gda.upgrading.lock``): what an upgrade killed with ``kill -9``
left behind (the copy and its ``-journal``) is removed by the next upgrade to the
same target, and a second upgrade to a target being written is refused in one line.
Errors while writing the copy name the target, never the temporary file.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

import numpy as np

from .errors import RecordingError
from .reader import Recording
from .seriesread import copy_series, series_summary
from .writer import RecordingWriter

__all__ = ["upgrade", "SIDE_FILE_SUFFIXES", "temporary_name"]

log = logging.getLogger(__name__)

#: name endings SQLite gives the side files of a database (``DB-wal`` belongs to ``DB``)
SIDE_FILE_SUFFIXES = ("-wal", "-shm", "-journal")
#: events copied per commit (the writer buffers a bounded number of events between commits)
_EVENT_BATCH = 4096


def _check_target(dst: Path, src: Path) -> None:
    """Refuse a target that exists, is the source, or carries an SQLite side-file name."""
    if os.path.lexists(dst):
        raise RecordingError(dst, "already exists (upgrade writes a new file and never replaces one)")
    if dst.name.endswith(SIDE_FILE_SUFFIXES):
        raise RecordingError(dst, "is named like an SQLite side file (-wal, -shm, -journal): a writer of the "
                                  "database beside it would take the copy for its journal; choose another name")
    try:
        if os.path.samefile(dst.parent, src.parent) and dst.name == src.name:
            raise RecordingError(dst, "is the source recording")
    except OSError:
        pass


def _copy(rec: Recording, tmp: Path) -> tuple[int, int]:
    """Write every block, event and logged series of ``rec`` into a new recording at ``tmp``; returns (rows,
    events)."""
    rows = events = 0
    with RecordingWriter(tmp, rec.alpha_grid, rec.run, commit_interval=3600.0, journal="delete",
                         row_alphas=rec.row_alphas) as w:
        for bid in rec.block_ids():
            d = rec.read_block(bid)
            w.append_arrays(d.columns, d.phi, np.diff(d.trial_offsets), d.trials, alphas=d.row_alphas)
            rows += len(d)
            w.flush()  # raises on a failed commit: nothing is dropped silently
        for it, wt, kind, msg in rec.iter_events():
            w.add_event(kind, msg, it)
            events += 1
            if events % _EVENT_BATCH == 0:
                w.flush()
        copy_series(rec, w)  # logged scalars (validation loss, ...): block by block, wall times kept
        if w.rows_dropped or w.events_dropped:
            raise RecordingError(tmp, f"the copy lost {w.rows_dropped:,} rows and {w.events_dropped:,} events")
    return rows, events


def _verify(tmp: Path, rows: int, events: int, source: Recording) -> None:
    """The finished copy holds exactly ``rows`` rows, ``events`` events and ``source``'s series (names, points,
    iteration spans), and stands alone."""
    with Recording(tmp) as copy:
        got_rows = copy.n_iterations()
        got_events = copy.query("SELECT count(*) FROM events")[0][0]
        got_series, want_series = series_summary(copy, empty=True), series_summary(source, empty=True)
    if (got_rows, got_events) != (rows, events) or got_series != want_series:
        raise RecordingError(tmp, f"the copy holds {got_rows:,} rows, {got_events:,} events and "
                                  f"{len(got_series)} series, expected {rows:,}, {events:,} and {len(want_series)}")
    for suffix in SIDE_FILE_SUFFIXES:
        if os.path.lexists(str(tmp) + suffix):
            raise RecordingError(tmp, f"the copy still has a {suffix} file beside it")


def _remove(tmp: Path) -> None:
    for suffix in ("",) + SIDE_FILE_SUFFIXES:
        try:
            os.unlink(str(tmp) + suffix)
        except FileNotFoundError:
            pass


def temporary_name(dst: Path) -> Path:
    """The name the copy is built under beside ``dst`` (fixed, so a killed upgrade's leftovers are found)."""
    return dst.parent / f".{dst.name}.upgrading"


def _take_lock(dst: Path, tmp: Path):
    """Hold the advisory lock of ``tmp`` (refused in one line while another upgrade writes ``dst``) and remove
    what a killed upgrade left there; returns the open lock file (closing it releases the lock)."""
    try:
        fh = open(f"{tmp}.lock", "a+b")
    except OSError as exc:
        raise RecordingError(dst, f"cannot be written ({exc.strerror or exc})") from None
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise RecordingError(dst, "another 'gda-gl upgrade' is writing this target now") from None
    left = [str(tmp) + s for s in ("",) + SIDE_FILE_SUFFIXES if os.path.lexists(str(tmp) + s)]
    if left:
        log.info("removing what an interrupted upgrade left: %s", ", ".join(left))
        _remove(tmp)
    return fh


def upgrade(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Copy ``src`` into a new schema-2 recording at ``dst``; returns the rows copied.

    Raises
    ------
    RecordingError
        ``src`` is not a readable recording (or is damaged anywhere), ``dst`` exists, carries an SQLite
        side-file name, is being written by another upgrade or cannot be written (a full disk); then no
        ``dst`` is created.  Errors of the copy name ``dst``.
    """
    dst = Path(dst)
    with Recording(src) as rec:
        _check_target(dst, rec.path)
        tmp = temporary_name(dst)
        lock = _take_lock(dst, tmp)
        try:
            rows, events = _copy(rec, tmp)
            _verify(tmp, rows, events, rec)
            _publish(tmp, dst)
        except RecordingError as exc:
            if os.path.basename(exc.path) != tmp.name:
                raise
            raise RecordingError(dst, exc.problem) from None
        finally:
            _remove(tmp)
            _release(lock, tmp)
    return rows


def _publish(tmp: Path, dst: Path) -> None:
    try:
        os.link(tmp, dst)  # fails if the name appeared meanwhile: nothing is replaced
    except FileExistsError:
        raise RecordingError(dst, "already exists (created while upgrading; nothing was replaced)") from None
    except OSError as exc:
        if os.path.lexists(dst):
            raise RecordingError(dst, f"cannot be written ({exc.strerror or exc})") from None
        os.rename(tmp, dst)  # no hard links on this file system


def _release(lock, tmp: Path) -> None:
    try:
        os.unlink(f"{tmp}.lock")
    except OSError:
        pass
    lock.close()
