"""Read-only access to recordings: :class:`Recording` and :func:`open_recordings`.

Split along its seams: what is checked before the file is trusted (:mod:`recorder.readcheck`), reading
blocks with the validated index and the memory budget (:class:`recorder.readblocks.BlockReads`, mixed
into :class:`Recording`), and here opening, snapshots of files SQLite could not read unchanged, events,
series and closing.

Design
------
* A reader never modifies the file.  It opens it read-only (``mode=ro``,
  ``query_only``, ``trusted_schema=OFF``) after :func:`recorder.fsutil.check_recording_file`
  has looked at the bytes.  When SQLite cannot read the file without changing
  it (a hot rollback journal left by a killed writer, a WAL without its shared
  memory in a read-only directory), the reader copies the file and its journal
  into a private temporary directory and reads the copy.
* No SQL stored in the file runs: before anything else is read,
  :func:`validate_identity` inspects ``sqlite_master`` and refuses views,
  triggers, virtual tables and generated columns; the reader then selects only
  the columns the schema declares.
* The reader reads the columns the file has (:func:`stored_fields_of`): the
  frozen ones of its schema version, the optional statistics it stores
  (those it lacks read as their default), never a column this release does
  not know; the stored pyramid is used when its layout is one this release
  can read (:func:`recorder.schema.stored_lod_fields`).
* Every value read is validated before use: metadata JSON (type, size, nesting
  depth), the alpha grid, the write-lock record, each block's row count, first
  and last iteration against the stored bytes (lengths are checked with
  ``length()``, which SQLite answers from the record header, before a BLOB is
  loaded), and the block BLOBs themselves through :func:`recorder.codec.decode_block`,
  the same decoder the writer uses.  Memory is therefore bounded by the bytes
  the file actually holds.  Every problem is one :class:`RecordingError` line
  naming the file, the block and the problem.
* :meth:`Recording.read` refuses, before decoding, to assemble more than
  :data:`READ_BUDGET_BYTES` (1 GiB, counted from the row counts the blocks
  declare; a compressed file of a few MB may declare gigabytes).
* A finished file left in WAL mode with an empty WAL (its writer closed while a
  reader held it) is opened ``immutable``: nothing is created beside it and it
  opens from read-only media (:func:`finished_wal_file`).
* ``read_new`` returns only rows committed since the previous call (the live
  tail used by ``gda-gl view --follow``); each read is one read transaction, so
  a writer committing meanwhile is seen either wholly or not at all.
"""

from __future__ import annotations

import functools
import os
import shutil
import sqlite3
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Iterable

from . import schema
from .codec import READ_BUDGET_BYTES, interval_of, loads_bounded
from .errors import RecordingError, sql_error
from .fsutil import check_recording_file, has_journal
from .lock import parse_lock_record, writer_alive
from .readblocks import BlockReads
from .readcheck import (_blocks_column_names, _event, connect_readonly, finished_wal_file, guarded, read_meta,
                        stored_fields_of, validate_identity)

__all__ = ["Recording", "open_recordings", "sql_error", "READ_BUDGET_BYTES", "read_meta", "validate_identity",
           "connect_readonly", "stored_fields_of"]


def _snapshot(path: Path) -> tuple[Path, str]:
    """Copy ``path`` and its journals into a private temporary directory; returns (copy, directory)."""
    tmp = tempfile.mkdtemp(prefix="gda-read-")
    try:
        dst = Path(tmp) / "snapshot.gda"
        for suffix in ("-journal", "-wal", ""):  # journals first: a live writer only ever adds to the WAL
            src = Path(str(path) + suffix)
            if src.exists():
                shutil.copyfile(src, str(dst) + suffix)
        return dst, tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class Recording(BlockReads):
    """A recording opened read-only.  Safe while a writer appends; never modifies the file.

    Parameters
    ----------
    path : path of a ``*.gda`` file

    Raises
    ------
    RecordingError
        the file is missing, unreadable, not a recording, truncated, damaged,
        of a newer schema, or stores SQL (views, triggers, generated columns).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = check_recording_file(path)
        self._lock = threading.Lock()
        self._cursor = (0, 0)  # (block id, rows of it already returned) for read_new
        self._tmpdir: str | None = None
        self._con: sqlite3.Connection | None = None
        try:
            self._open(snapshot=False)
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            self._close_con()
            if not (has_journal(self.path) and ("readonly" in str(exc) or "unable to open" in str(exc))):
                raise sql_error(self.path, exc) from None
            try:  # SQLite would have to change the file to read it: read a private copy instead
                self._open(snapshot=True)
            except (sqlite3.Error, UnicodeDecodeError) as exc2:
                self._close_con()
                raise sql_error(self.path, exc2) from None
            except BaseException:
                self._close_con()
                raise
        except BaseException:
            self._close_con()
            raise

    def _open(self, snapshot: bool) -> None:
        target = self.path
        if snapshot:
            try:
                target, self._tmpdir = _snapshot(self.path)
            except OSError as exc:
                raise RecordingError(self.path, f"cannot be read without changing it, and no private copy could "
                                                f"be made ({exc.strerror or exc})") from None
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._tmpdir, True)
        immutable = not snapshot and finished_wal_file(self.path)
        self._con = connect_readonly(target, snapshot=snapshot, immutable=immutable)
        validate_identity(self._con, self.path)
        if immutable and (read_meta(self._con, self.path).get("writer") or {}).get("state", "closed") != "closed":
            self._con.close()  # a writer may still append: read the file the usual way, committed state only
            self._con = connect_readonly(target)
            validate_identity(self._con, self.path)
        self.version = int(self._con.execute("PRAGMA user_version").fetchone()[0])
        #: (name, stored dtype) of the per-iteration columns the file has
        self.stored_fields = stored_fields_of(self._con, self.version)
        self._columns = [f"f_{n}" for n, _ in self.stored_fields] + list(schema.PHI_TRIAL_COLUMNS)
        self.meta = read_meta(self._con, self.path)
        self.alpha_grid = self.meta["alpha_grid"]
        #: whether rows store their own alphas (adaptive probes; schema.ROW_ALPHA_COLUMN)
        self.row_alphas = self._row_alpha_layout()
        self._index()  # every block header is checked once at open

    def _row_alpha_layout(self) -> bool:
        """Whether the file stores per-row alphas: its column and ``meta.alpha_grid`` must agree."""
        column = self.version >= 2 and schema.has_row_alphas(_blocks_column_names(self._con))
        if column != bool(self.meta.get("row_alphas")):
            raise RecordingError(self.path, "damaged recording (the per-row alpha column and meta.alpha_grid "
                                            "disagree)")
        if column:
            self._columns = self._columns + [schema.ROW_ALPHA_COLUMN]
        #: the interval every per-row alpha must lie in (None: a shared grid)
        self._interval = interval_of(self.alpha_grid) if column else None
        return column

    def _close_con(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    @property
    def run(self) -> dict:
        """Run metadata (model, optimizer, probe, ...)."""
        return self.meta.get("run", {})

    @property
    def name(self) -> str:
        """The run's name for display: printable characters only (no terminal escapes from the file)."""
        name = self.run.get("name")
        if not (isinstance(name, str) and name.strip()):
            return self.path.stem
        return "".join(ch if ch.isprintable() else "?" for ch in name[:200])

    def query(self, sql: str, args=()) -> list:
        """Rows of one read-only SQL query on the file (the connection cannot write; runs under the
        recording's lock; an SQLite error becomes one :class:`RecordingError` line)."""
        try:
            with self._lock:
                return self._con.execute(sql, args).fetchall()
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise sql_error(self.path, exc) from None

    def consistent_read(self, fn):
        """``fn(query)`` inside one read transaction: every ``query(sql, args=())`` it makes sees the same
        committed state of the file, whatever a writer commits meanwhile; returns what ``fn`` returns."""
        def work(con):
            return fn(lambda sql, args=(): con.execute(sql, args).fetchall())

        try:
            return self._read_tx(work)
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise sql_error(self.path, exc) from None

    def block_ids(self) -> list[int]:
        """Ids of the stored blocks, in order (for :meth:`read_block`)."""
        return [r[0] for r in self.query("SELECT id FROM blocks ORDER BY id")]

    # -- block headers -------------------------------------------------------
    @guarded
    def writer_info(self) -> dict:
        """The validated write-lock record (``{}`` when none)."""
        rows = self.query("SELECT value FROM meta WHERE key='writer'")
        if not rows:
            return {}
        try:
            return parse_lock_record(loads_bounded(rows[0][0]))
        except ValueError as exc:
            raise RecordingError(self.path, f"damaged metadata ({exc})") from None

    def writer_state(self) -> str:
        """``"closed"`` (finished cleanly), ``"live"`` (a writer is appending) or ``"died"``."""
        info = self.writer_info()
        if not info or info.get("state") == "closed":
            return "closed"
        return "live" if writer_alive(info) else "died"

    @guarded
    def events(self, kind: str | None = None, limit: int | None = None) -> list[tuple[int | None, float, str, str]]:
        """Events ``(iteration, wall_time, kind, message)`` in order, optionally of one kind and at most ``limit``."""
        sql = "SELECT id, iteration, wall_time, kind, message FROM events"
        sql += " WHERE kind = ? ORDER BY id" if kind else " ORDER BY id"
        args: tuple = (kind,) if kind else ()
        if limit is not None:
            sql += " LIMIT ?"
            args += (int(limit),)
        return [_event(self.path, *row) for row in self.query(sql, args)]

    def iter_events(self, batch: int = 4096):
        """Every event ``(iteration, wall_time, kind, message)`` in order, read ``batch`` at a time (memory
        bounded by one batch however many events the file holds)."""
        after = None
        while True:
            sql = "SELECT id FROM events" + (" WHERE id > ?" if after is not None else "") + " ORDER BY id LIMIT ?"
            ids = self.query(sql, ((after,) if after is not None else ()) + (int(batch),))
            if not ids:
                return
            lo, hi = ids[0][0], ids[-1][0]
            yield from self._events_between(lo, hi)
            after = hi

    @guarded
    def _events_between(self, lo, hi) -> list:
        out = []
        for eid, it, wt, k, msg in self.query("SELECT id, iteration, wall_time, kind, message FROM events "
                                              "WHERE id >= ? AND id <= ? ORDER BY id", (lo, hi)):
            out.append(_event(self.path, eid, it, wt, k, msg))
        return out

    # -- blocks --------------------------------------------------------------
    def _read_tx(self, fn):
        """Run ``fn(con)`` inside one read transaction (a consistent snapshot of the file)."""
        with self._lock:
            con = self._con
            con.execute("BEGIN")
            try:
                return fn(con)
            finally:
                try:
                    con.execute("COMMIT")
                except sqlite3.Error:
                    pass

    @functools.cached_property
    def pyramid_fields(self) -> tuple | None:
        """(name, dtype, reduction) of the bucket fields the stored pyramid holds, in storage order, or None
        when the file has no pyramid this release can read (:func:`recorder.schema.stored_lod_fields`)."""
        from .pyramid import BUCKET_FIELDS

        return schema.stored_lod_fields(self.meta.get("lod"), BUCKET_FIELDS) if self.version >= 2 else None

    def has_stored_pyramid(self) -> bool:
        """Whether the file stores a level-of-detail pyramid this release can read (schema 2 with the
        frozen layout, perhaps with more fields); other files are indexed in memory when opened."""
        return self.pyramid_fields is not None

    def series_names(self, builtin: bool = True) -> list[str]:
        """Names of the scalar series: the built-in ``train_loss``, ``lr``, ``grad_norm`` (when ``builtin``),
        then those logged with ``rec.log`` in first-logged order (:func:`recorder.series.series_names`)."""
        from . import seriesread

        return seriesread.series_names(self, builtin)

    def read_series(self, name: str, start: int | None = None, stop: int | None = None, *,
                    max_bytes: int | None = None):
        """Every point of series ``name`` in ``[start, stop)`` as :class:`recorder.series.SeriesPoints`
        (small series; long ones through :meth:`recorder.window.RunWindows.series`); KeyError if none."""
        from . import seriesread

        return seriesread.read_series(self, name, start, stop, max_bytes=max_bytes)

    def file_size(self) -> int:
        """Bytes of the file plus its WAL."""
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.stat(str(self.path) + suffix).st_size
            except OSError:
                pass
        return total

    def close(self) -> None:
        self._close_con()

    def __enter__(self) -> "Recording":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_recordings(paths: Iterable[str | os.PathLike]) -> list[Recording]:
    """Open several recordings together; closes those already opened if one fails."""
    out: list[Recording] = []
    try:
        for p in paths:
            out.append(Recording(p))
    except BaseException:
        for r in out:
            r.close()
        raise
    return out
