"""The append-only writer of a recording: :class:`RecordingWriter`.

The class is composed along its seams: the file lifecycle (create, validate, lock, resume, leave;
:class:`recorder.writefile.WriterFile`), the append buffer (:class:`recorder.writebuffer.AppendBuffer`)
and, here, the commit loop (``flush``, ``_write``, the background thread, ``close``).

Design
------
* Iterations are validated when they are appended (one bad value raises for
  that call only; the rows already buffered stay), buffered in memory and
  committed as columnar blocks at least every ``commit_interval`` seconds by a
  background thread, and on ``close``.  The newest block grows (is rewritten)
  until it holds ``block_rows`` rows, so a reader gets few large blocks however
  often the writer commits.
* Every commit goes through one method, :meth:`RecordingWriter._write`, in one
  ``IMMEDIATE`` transaction: blocks, events, :meth:`RecordingWriter._commit_step`
  (a hook for further per-commit tables, no-op here) and the heartbeat.  The
  writer's cached state (the tail block, the committed row count) changes only
  after ``COMMIT`` succeeded, so a failed commit (disk full) leaves the writer
  exactly as before and the next attempt rewrites the same rows.
* Full disk while training: after a failed commit, appends no longer retry (the
  background thread retries every ``commit_interval``), so training keeps its
  speed.  The buffer is bounded by ``max_buffer_rows`` and ``max_buffer_bytes`` (32 MiB by default,
  whichever is reached first): when it is full and
  commits keep failing the writer *stops recording* with one warning and drops
  the newest rows from then on (they are counted in ``rows_dropped``); the rows
  already buffered are committed as soon as space returns, and everything
  committed stays readable.
* WAL journal where the file system supports it (readers never block the writer
  and see only committed transactions); rollback journal (``DELETE``) on network
  file systems where WAL's shared memory is unsafe.  A process killed with
  ``kill -9`` loses at most what it had not committed yet.
* Never destroy a file: a new recording is built in a temporary file beside the
  target and put in place atomically (``link`` for a new name, ``rename`` to
  replace), under an advisory lock on the directory, so two writers started
  together get one winner and one clear error, and nobody unlinks a file another
  writer is creating.  Only a gda recording that no live writer holds is ever
  replaced (``overwrite=True``); any other file (a checkpoint, text, another
  application's SQLite database, a directory, a FIFO) is refused.
* Appending first opens the file read-only and checks that every schema object
  is exactly what :mod:`recorder.schema` declares, so no trigger, view, default
  or index expression stored in the file can run on an insert.  It writes the
  columns and pyramid fields the file has (a file from before an optional
  statistic keeps its layout; the statistic reads as its default there), and
  refuses a file with columns or pyramid fields this release does not know.
* One writer per file: the writer records pid, host, process start token and a
  heartbeat in ``meta.writer`` inside an ``IMMEDIATE`` transaction; a second
  writer finds a live holder and gets :class:`RecordingBusyError`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from . import schema
from .codec import as_grid, concat_parts, encode_block
from .errors import RecordingError
from .fsutil import sniff
from .lock import HEARTBEAT_S
from .lodstore import write_chunks
from .pyramid import BUCKET_FIELDS, PyramidBuilder
from .reader import sql_error
from .serieslog import SeriesLog
from .writebuffer import MAX_BUFFER_BYTES, AppendBuffer
from .writefile import WriterFile

log = logging.getLogger(__name__)

__all__ = ["RecordingWriter", "MAX_BUFFER_BYTES"]


class RecordingWriter(WriterFile, AppendBuffer):
    """Append iterations to a ``*.gda`` recording; commits in the background.

    Parameters
    ----------
    path : path of the recording
    alpha_grid : the probe's alphas (units of the step; 1 = the step taken); 1-D, finite, strictly increasing
    run : run metadata (JSON-serialisable dict), see :mod:`recorder.schema`
    overwrite : replace an existing *recording* (refused while a live writer holds it; any file that
        is not a gda recording is never replaced)
    append : continue an existing recording (same alpha grid) instead of creating one
    commit_interval : seconds between commits at most (default 1.0)
    block_rows : rows per block (default: about 2 MiB of phi per block, 256..8192 rows)
    journal : ``"auto"`` (WAL unless on a network file system), ``"wal"`` or ``"delete"``
    max_buffer_rows : rows kept in memory while commits fail (default ``max(8 * block_rows, 32768)``);
        beyond it the writer stops recording and drops the newest rows
    max_buffer_bytes : bytes of rows kept in memory while commits fail (default :data:`MAX_BUFFER_BYTES`,
        32 MiB); whichever bound is reached first stops recording
    row_alphas : every row stores its own alphas (an adaptive probe; ``alpha_grid`` is then the nominal
        grid, its length the per-row width K): :meth:`append` takes ``alphas=``; see
        :mod:`recorder.schema`, "Per-row alpha grids"

    Raises
    ------
    RecordingError, RecordingBusyError
        the path cannot be written, is not a recording, exists (without overwrite/append), is held by a
        live writer, or (append) differs in alpha grid or stores schema objects gda-gl did not create.
    ValueError
        a bad alpha grid or parameter.
    """

    def __init__(self, path: str | os.PathLike, alpha_grid: Sequence[float], run: Mapping | None = None, *,
                 overwrite: bool = False, append: bool = False, commit_interval: float = 1.0,
                 block_rows: int | None = None, journal: str = "auto", max_buffer_rows: int | None = None,
                 row_alphas: bool = False, max_buffer_bytes: int | None = None):
        self.path = Path(path)
        self.alpha_grid = as_grid(alpha_grid)
        self.commit_interval = float(commit_interval)
        if not (self.commit_interval > 0 and math.isfinite(self.commit_interval)):
            raise ValueError("commit_interval must be a positive number of seconds")
        if journal not in ("auto", "wal", "delete"):
            raise ValueError("journal must be 'auto', 'wal' or 'delete'")
        k = len(self.alpha_grid)
        self.block_rows = int(block_rows or max(256, min(8192, (2 << 20) // (4 * k))))
        if self.block_rows < 1:
            raise ValueError("block_rows must be positive")
        self.max_buffer_rows = int(max_buffer_rows or max(8 * self.block_rows, 32768))
        self.max_buffer_bytes = int(max_buffer_bytes or MAX_BUFFER_BYTES)
        if self.max_buffer_bytes < 1:
            raise ValueError("max_buffer_bytes must be positive")
        self._row_bytes = 4 * k + sum(dt.itemsize for dt in schema.ITER_DTYPES.values()) + 8 * k * bool(row_alphas)
        self._pending_bytes = 0
        self._lock = threading.RLock()
        self._pending: list[tuple[dict, np.ndarray, np.ndarray, dict]] = []
        self._pending_rows = 0
        self._rows: list[tuple[list, np.ndarray, dict | None]] = []
        self._events: list[tuple] = []
        self._tail: tuple[int, dict, np.ndarray, np.ndarray, dict] | None = None
        self._last_iteration: int | None = None
        self._closed = False
        self.error: BaseException | None = None
        self.stopped = False
        self.rows_dropped = 0
        self.events_dropped = 0
        self._last_heartbeat = 0.0
        self._last_failure = 0.0
        self.rows_committed = 0
        self._con: sqlite3.Connection | None = None
        self.journal_mode = ""
        self._pyramid = PyramidBuilder(self.alpha_grid)
        self._fields = schema.stored_fields()        # the file's per-iteration columns (appending: its own)
        self.row_alphas = bool(row_alphas)           # rows store their own alphas (schema: per-row alpha grids)
        self._columns = schema.block_columns(row_alphas=self.row_alphas)
        self._lod_fields = BUCKET_FIELDS             # the file's pyramid fields
        # logged scalars, committed with the blocks (recorder.series)
        self.series = SeriesLog(self.path, self._lock, lambda: self._con, lambda: self._closed,
                                lambda: self.error is not None, self._flush_quietly)

        try:
            kind = sniff(self.path)
            if kind == "missing" or not append:
                self._create(run, kind, overwrite, journal)
            else:
                self._open_append(kind, journal)
        except sqlite3.Error as exc:
            self._abandon()
            problem = sql_error(self.path, exc).problem if "UTF-8" in str(exc) else str(exc)
            raise RecordingError(self.path, f"cannot be opened for writing ({problem})") from None
        except OSError as exc:
            self._abandon()
            raise RecordingError(self.path, f"cannot be written ({exc.strerror or exc})") from None
        except BaseException:
            self._abandon()
            raise
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"gda-writer:{self.path.name}", daemon=True)
        self._thread.start()

    def flush(self) -> None:
        """Commit everything appended so far (also called every ``commit_interval`` s).

        Raises
        ------
        RecordingError
            the commit failed (logged once per failure streak); nothing buffered is lost.
        """
        with self._lock:
            if self._con is None:
                return
            self._rows_to_chunk()
            pending, events = self._pending, self._events
            if not pending and not events and not self.series.pending and \
                    time.time() - self._last_heartbeat < HEARTBEAT_S:
                return
            try:
                self._write(pending, events)
            except sqlite3.Error as exc:
                # the writer's state is unchanged (see _write); keep the data for the next attempt, report once
                err = RecordingError(self.path, f"cannot write ({exc})")
                if self.error is None:
                    log.error("%s", err)
                self.error = err
                self._last_failure = time.time()
                raise err from None
            self._pending, self._pending_rows, self._pending_bytes, self._events = [], 0, 0, []
            if self.error is not None:
                log.warning("%s: commits succeed again; nothing buffered was lost", self.path)
            self.error = None

    def _write(self, pending, events) -> None:
        """Commit ``pending`` chunks and ``events`` in one transaction; the only place blocks are written.

        The writer's cached tail and row count change only after ``COMMIT``, so a
        failure anywhere (disk full at the last page) leaves it as before.
        """
        con = self._con
        pyr = self._pyramid.copy() if pending else self._pyramid
        con.execute("BEGIN IMMEDIATE")
        try:
            new_tail, written = self._write_blocks(con, pending) if pending else (self._tail, [])
            if pending:
                new_cols, new_phi, new_tc, new_tr = concat_parts(list(pending))
                write_chunks(con, pyr.add(new_cols, new_phi, new_tc, new_tr["alpha"]), self._lod_fields)
            if events:
                con.executemany("INSERT INTO events(iteration, wall_time, kind, message) VALUES (?, ?, ?, ?)",
                                events)
            self._commit_step(con, written)
            adopt_series = self.series.stage(con)
            con.execute("UPDATE meta SET value = ? WHERE key = 'writer'",
                        (json.dumps(self._writer_info("open")),))
            con.execute("COMMIT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite already rolled back (e.g. SQLITE_FULL at COMMIT)
            raise
        self._tail = new_tail
        self._pyramid = pyr
        adopt_series()
        self.rows_committed += sum(len(p[1]) for p in pending)
        self._last_heartbeat = time.time()

    def _write_blocks(self, con: sqlite3.Connection, pending) -> tuple[tuple | None, list]:
        """Insert/update blocks for ``pending`` (inside the transaction); returns (new tail, written blocks).

        ``written`` lists ``(block_id, cols, phi, tcount, trials)`` of every block row
        inserted or rewritten, for :meth:`_commit_step`.
        """
        cols_sql = self._columns
        parts = list(pending)
        bid = None
        if self._tail is not None:
            bid, *tail = self._tail
            parts.insert(0, tuple(tail))
        cols, phi, tcount, trials = concat_parts(parts)
        n = len(phi)
        start = 0
        new_tail = None
        written: list = []
        csum = np.zeros(n + 1, np.int64)
        np.cumsum(tcount, out=csum[1:])
        while start < n:
            stop = min(n, start + self.block_rows)
            bcols = {k: v[start:stop] for k, v in cols.items()}
            btr = {k: v[int(csum[start]):int(csum[stop])] for k, v in trials.items()}
            bphi, btc = phi[start:stop], tcount[start:stop]
            blobs = encode_block(bcols, bphi, btc, btr, fields=self._fields)
            first, last = int(bcols["iteration"][0]), int(bcols["iteration"][-1])
            if bid is not None:
                sets = ", ".join(f"{c} = ?" for c in cols_sql)
                con.execute(f"UPDATE blocks SET first_iteration = ?, last_iteration = ?, n = ?, {sets} "
                            "WHERE id = ?", (first, last, stop - start, *blobs, bid))
                cur_id, bid = bid, None
            else:
                qs = ", ".join("?" for _ in range(len(cols_sql) + 3))
                cur = con.execute(f"INSERT INTO blocks(first_iteration, last_iteration, n, "
                                  f"{', '.join(cols_sql)}) VALUES ({qs})", (first, last, stop - start, *blobs))
                cur_id = cur.lastrowid
            written.append((cur_id, bcols, bphi, btc, btr))
            new_tail = None if (stop - start) >= self.block_rows else (cur_id, bcols, bphi, btc, btr)
            start = stop
        return new_tail, written

    def _commit_step(self, con: sqlite3.Connection, written: list) -> None:
        """Extra work in the commit's transaction (e.g. derived tables); ``written`` as from :meth:`_write_blocks`."""

    def _run(self) -> None:
        while not self._wake.wait(self.commit_interval):
            try:
                self.flush()
            except RecordingError:
                pass  # reported once in flush(); data kept for the next try
            except Exception:  # never let the commit thread die silently
                log.exception("%s: unexpected error in the commit thread", self.path)

    def close(self) -> None:
        """Commit what is pending, release the write lock and compact to one file where possible.

        Raises
        ------
        RecordingError
            the final commit failed (what was committed before stays readable).
        """
        if self._closed:
            return
        self._wake.set()
        self._thread.join(timeout=30)
        try:
            self.flush()
        finally:
            self._closed = True
            if self.rows_dropped:
                log.warning("%s: %d iterations were not recorded (writes kept failing)", self.path, self.rows_dropped)
            try:
                with self._lock:
                    self._con.execute("UPDATE meta SET value = ? WHERE key = 'writer'",
                                      (json.dumps(self._writer_info("closed")),))
                if self.journal_mode == "wal":
                    self._leave_wal()
            except sqlite3.Error as exc:
                log.error("%s: could not mark the recording closed (%s)", self.path, exc)
            finally:
                self._con.close()

    def __enter__(self) -> "RecordingWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
