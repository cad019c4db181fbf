"""The append-only writer of a recording: :class:`RecordingWriter`.

Design
------
Iterations are buffered in memory and committed as columnar blocks at least
every ``commit_interval`` seconds by a background thread, and on ``close``.
The newest block grows (is rewritten) until it holds ``block_rows`` rows, so a
reader gets few large blocks however often the writer commits.  Every commit
goes through one method, :meth:`RecordingWriter._write`, in one transaction.

WAL journal where the file system supports it (readers never block the writer
and see only committed transactions); rollback journal (``DELETE``) on network
file systems where WAL's shared memory is unsafe.  A process killed with
``kill -9`` loses at most what it had not committed yet.

One writer per file: the writer records pid, host, process start token and a
heartbeat in ``meta.writer`` inside an ``IMMEDIATE`` transaction; a second
writer finds a live holder and gets :class:`RecordingBusyError`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from . import schema
from .codec import as_grid, concat_parts, decode_block, encode_block, json_safe, trials_arrays
from .errors import RecordingBusyError, RecordingError
from .fsutil import NETWORK_FS, check_recording_file, fs_type
from .lock import HEARTBEAT_S, describe_writer, process_token, writer_alive
from .reader import read_meta, validate_identity

log = logging.getLogger(__name__)

__all__ = ["RecordingWriter"]


class RecordingWriter:
    """Append iterations to a ``*.gda`` recording; commits in the background.

    Parameters
    ----------
    path : path of the recording
    alpha_grid : the probe's alphas (units of the step; 1 = the step taken)
    run : run metadata (JSON-serialisable dict), see :mod:`recorder.schema`
    overwrite : replace an existing recording (refused while a live writer holds it)
    append : continue an existing recording (same alpha grid) instead of creating one
    commit_interval : seconds between commits at most (default 1.0)
    block_rows : rows per block (default: about 2 MiB of phi per block, 256..8192 rows)
    journal : ``"auto"`` (WAL unless on a network file system), ``"wal"`` or ``"delete"``

    Raises
    ------
    RecordingError, RecordingBusyError
    """

    def __init__(self, path: str | os.PathLike, alpha_grid: Sequence[float], run: Mapping | None = None, *,
                 overwrite: bool = False, append: bool = False, commit_interval: float = 1.0,
                 block_rows: int | None = None, journal: str = "auto"):
        self.path = Path(path)
        self.alpha_grid = as_grid(alpha_grid)
        self.commit_interval = float(commit_interval)
        k = len(self.alpha_grid)
        self.block_rows = int(block_rows or max(256, min(8192, (2 << 20) // (4 * k))))
        self._lock = threading.RLock()
        self._pending: list[tuple[dict, np.ndarray, np.ndarray, dict]] = []
        self._pending_rows = 0
        self._rows: list[tuple[list, np.ndarray, dict | None]] = []
        self._events: list[tuple] = []
        self._tail: tuple[int, dict, np.ndarray, np.ndarray, dict] | None = None
        self._last_iteration: int | None = None
        self._closed = False
        self.error: BaseException | None = None
        self._last_heartbeat = 0.0
        self.rows_committed = 0

        if self.path.exists() and append:
            check_recording_file(self.path)
            self._con = self._connect(journal)
            try:
                validate_identity(self._con, self.path)
            except RecordingError:
                self._con.close()
                raise
            meta = read_meta(self._con)
            if not np.array_equal(np.asarray(meta.get("alpha_grid", []), np.float64), self.alpha_grid):
                self._con.close()
                raise RecordingError(self.path, "cannot append: the alpha grid differs from the recording's")
            self._acquire()
            self._load_tail()
        else:
            if self.path.exists() or Path(str(self.path) + "-wal").exists():
                if not overwrite:
                    raise RecordingError(self.path, "already exists (pass overwrite=True or append=True)")
                self._refuse_if_live()
                for suffix in ("", "-wal", "-shm", "-journal"):
                    try:
                        os.unlink(str(self.path) + suffix)
                    except FileNotFoundError:
                        pass
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RecordingError(self.path, f"cannot be created ({exc.strerror or exc})") from None
            self._con = self._connect(journal)
            with self._con:
                for stmt in schema.create_statements():
                    self._con.execute(stmt)
                from ._version import __version__
                meta = {"run": dict(run or {}), "alpha_grid": self.alpha_grid.tolist(),
                        "created_by": f"gda_gl {__version__}"}
                self._con.executemany("INSERT INTO meta(key, value) VALUES (?, ?)",
                                      [(k, json.dumps(json_safe(v), allow_nan=False, default=str))
                                       for k, v in meta.items()])
            self._acquire()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"gda-writer:{self.path.name}", daemon=True)
        self._thread.start()

    # -- connection and lock -------------------------------------------------
    def _connect(self, journal: str) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise RecordingError(self.path, f"cannot be created or opened for writing ({exc})") from None
        if journal == "auto":
            fstype = fs_type(self.path)
            journal = "delete" if fstype in NETWORK_FS else "wal"
            if journal == "delete":
                log.info("%s is on %s: using the rollback journal instead of WAL", self.path, fstype)
        mode = con.execute(f"PRAGMA journal_mode={'WAL' if journal == 'wal' else 'DELETE'}").fetchone()[0]
        if journal == "wal" and mode.lower() != "wal":
            log.warning("%s: WAL not available (journal_mode=%s); using the rollback journal", self.path, mode)
            con.execute("PRAGMA journal_mode=DELETE")
        self.journal_mode = con.execute("PRAGMA journal_mode").fetchone()[0].lower()
        # NORMAL is crash-safe against process death in WAL mode; FULL for the rollback journal.
        con.execute(f"PRAGMA synchronous={'NORMAL' if self.journal_mode == 'wal' else 'FULL'}")
        return con

    def _writer_info(self, state: str) -> dict:
        pid = os.getpid()
        return {"pid": pid, "host": socket.gethostname(), "token": process_token(pid), "heartbeat": time.time(),
                "state": state}

    def _refuse_if_live(self) -> None:
        try:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5.0)
            try:
                row = con.execute("SELECT value FROM meta WHERE key='writer'").fetchone()
            finally:
                con.close()
        except sqlite3.Error:
            return
        if row and writer_alive(json.loads(row[0])):
            info = json.loads(row[0])
            raise RecordingBusyError(self.path, f"is being written by another writer ({describe_writer(info)})")

    def _acquire(self) -> None:
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            row = con.execute("SELECT value FROM meta WHERE key='writer'").fetchone()
            if row:
                info = json.loads(row[0])
                if writer_alive(info):
                    raise RecordingBusyError(self.path,
                                             f"is being written by another writer ({describe_writer(info)})")
            con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('writer', ?)",
                        (json.dumps(self._writer_info("open")),))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            con.close()
            raise

    def _load_tail(self) -> None:
        row = self._con.execute(f"SELECT id, n, {', '.join(schema.block_columns())} FROM blocks "
                                "ORDER BY id DESC LIMIT 1").fetchone()
        total = self._con.execute("SELECT COALESCE(SUM(n), 0), MAX(last_iteration) FROM blocks").fetchone()
        self.rows_committed = int(total[0])
        self._last_iteration = None if total[1] is None else int(total[1])
        if row is None:
            return
        bid, n = row[0], row[1]
        cols, phi, tcount, trials = decode_block(row[2:], n, len(self.alpha_grid))
        if n < self.block_rows:
            self._tail = (bid, cols, phi, tcount, trials)

    # -- appending -----------------------------------------------------------
    def append(self, iteration: int, phi: Sequence[float] | np.ndarray | None = None, *,
               trials: Mapping[str, Sequence] | None = None, **fields) -> None:
        """Append one iteration.

        Parameters
        ----------
        iteration : strictly larger than the previous one
        phi : (K,) values at the alpha grid (NaN where not measured); all NaN when None
        trials : optional dict with ``alpha``, ``loss`` and optionally ``slope``, ``order`` sequences
        **fields : any of :data:`recorder.schema.ITER_FIELDS`; missing floats are NaN, ints 0
        """
        if self._closed:
            raise RecordingError(self.path, "writer is closed")
        row = [iteration]
        for name in _ROW_FIELDS:
            row.append(fields.pop(name, _ROW_DEFAULTS[name]))
        if fields:
            raise TypeError(f"unknown iteration fields: {', '.join(sorted(fields))}")
        k = len(self.alpha_grid)
        phi_arr = _NAN_ROWS.get(k) if phi is None else np.array(phi, schema.PHI_DTYPE).reshape(k)
        if phi_arr is None:
            phi_arr = _NAN_ROWS.setdefault(k, np.full(k, np.nan, schema.PHI_DTYPE))
        tr = trials_arrays(trials) if trials is not None else None
        with self._lock:
            if self._last_iteration is not None and iteration <= self._last_iteration:
                raise ValueError("iterations must be strictly increasing (the recording is append-only)")
            self._rows.append((row, phi_arr, tr))
            self._pending_rows += 1
            self._last_iteration = int(iteration)
            big = self._pending_rows >= self.block_rows
        if big:
            self.flush()

    def _rows_to_chunk(self) -> None:
        """Turn the per-iteration rows collected by append() into one columnar chunk (lock held)."""
        rows, self._rows = self._rows, []
        if not rows:
            return
        table = list(zip(*(r[0] for r in rows)))
        cols = {name: np.array(table[i], dtype=schema.ITER_DTYPES[name]) for i, name in
                enumerate(("iteration",) + _ROW_FIELDS)}
        phi = np.stack([r[1] for r in rows]).astype(schema.PHI_DTYPE, copy=False)
        trs = [r[2] for r in rows]
        tcount = np.array([0 if t is None else len(t["alpha"]) for t in trs], schema.TRIAL_COUNT_DTYPE)
        present = [t for t in trs if t is not None]
        trials = {name: (np.concatenate([t[name] for t in present]) if present else np.empty(0, dt))
                  for name, dt in schema.TRIAL_DTYPES.items()}
        self._pending.append((cols, phi, tcount, trials))

    def append_arrays(self, columns: Mapping[str, np.ndarray], phi: np.ndarray,
                      trial_count: np.ndarray | None = None, trials: Mapping[str, np.ndarray] | None = None) -> None:
        """Append many iterations at once (columnar); used by bulk importers and benchmarks."""
        if self._closed:
            raise RecordingError(self.path, "writer is closed")
        it = np.asarray(columns["iteration"], np.int64)
        n = len(it)
        if n == 0:
            return
        phi = np.asarray(phi, schema.PHI_DTYPE).reshape(n, len(self.alpha_grid))
        if np.any(np.diff(it) <= 0) or (self._last_iteration is not None and it[0] <= self._last_iteration):
            raise ValueError("iterations must be strictly increasing (the recording is append-only)")
        cols = {}
        for name, dt in schema.ITER_DTYPES.items():
            v = columns.get(name)
            cols[name] = (np.full(n, np.nan if dt.kind == "f" else 0, dt) if v is None
                          else np.ascontiguousarray(np.broadcast_to(np.asarray(v, dt), (n,))))
        tcount = np.zeros(n, schema.TRIAL_COUNT_DTYPE) if trial_count is None else \
            np.asarray(trial_count, schema.TRIAL_COUNT_DTYPE)
        tr = trials_arrays(trials, total=int(tcount.sum()))
        with self._lock:
            self._rows_to_chunk()
            self._pending.append((cols, phi, tcount, tr))
            self._pending_rows += n
            self._last_iteration = int(it[-1])
            big = self._pending_rows >= self.block_rows
        if big:
            self.flush()

    def add_event(self, kind: str, message: str, iteration: int | None = None) -> None:
        """Record an event (probe failure, note); committed with the next flush."""
        with self._lock:
            self._events.append((iteration, time.time(), kind, message))

    # -- committing ----------------------------------------------------------
    def flush(self) -> None:
        """Commit everything appended so far (also called every ``commit_interval`` s)."""
        with self._lock:
            self._rows_to_chunk()
            pending, self._pending, self._pending_rows = self._pending, [], 0
            events, self._events = self._events, []
            if not pending and not events and time.time() - self._last_heartbeat < HEARTBEAT_S:
                return
            try:
                self._write(pending, events)
            except sqlite3.Error as exc:
                # keep the data for the next attempt; report once
                self._pending = pending + self._pending
                self._pending_rows = sum(len(p[1]) for p in self._pending)
                self._events = events + self._events
                err = RecordingError(self.path, f"cannot write ({exc})")
                if self.error is None:
                    log.error("%s", err)
                self.error = err
                raise err from None
            self.error = None

    def _write(self, pending, events) -> None:
        con = self._con
        cols_sql = schema.block_columns()
        con.execute("BEGIN IMMEDIATE")
        try:
            if pending:
                parts = [p for p in pending]
                if self._tail is not None:
                    bid, *tail = self._tail
                    parts.insert(0, tuple(tail))
                else:
                    bid = None
                cols, phi, tcount, trials = concat_parts(parts)
                n = len(phi)
                start = 0
                while start < n:
                    stop = min(n, start + self.block_rows)
                    blk = ({k: v[start:stop] for k, v in cols.items()}, phi[start:stop], tcount[start:stop])
                    t0, t1 = int(tcount[:start].sum()), int(tcount[:stop].sum())
                    btr = {k: v[t0:t1] for k, v in trials.items()}
                    blobs = encode_block(blk[0], blk[1], blk[2], btr)
                    first, last = int(blk[0]["iteration"][0]), int(blk[0]["iteration"][-1])
                    if bid is not None:
                        sets = ", ".join(f"{c} = ?" for c in cols_sql)
                        con.execute(f"UPDATE blocks SET first_iteration = ?, last_iteration = ?, n = ?, {sets} "
                                    "WHERE id = ?", (first, last, stop - start, *blobs, bid))
                        cur_id = bid
                        bid = None
                    else:
                        qs = ", ".join("?" for _ in range(len(cols_sql) + 3))
                        cur = con.execute(f"INSERT INTO blocks(first_iteration, last_iteration, n, "
                                          f"{', '.join(cols_sql)}) VALUES ({qs})",
                                          (first, last, stop - start, *blobs))
                        cur_id = cur.lastrowid
                    full = (stop - start) >= self.block_rows
                    new_tail = None if full else (cur_id, blk[0], blk[1], blk[2], btr)
                    start = stop
                self._tail = new_tail
                self.rows_committed += sum(len(p[1]) for p in pending)
            if events:
                con.executemany("INSERT INTO events(iteration, wall_time, kind, message) VALUES (?, ?, ?, ?)",
                                events)
            con.execute("UPDATE meta SET value = ? WHERE key = 'writer'",
                        (json.dumps(self._writer_info("open")),))
            con.execute("COMMIT")
            self._last_heartbeat = time.time()
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise

    def _run(self) -> None:
        while not self._wake.wait(self.commit_interval):
            try:
                self.flush()
            except RecordingError:
                pass  # reported once in flush(); data kept for the next try
            except Exception:  # never let the commit thread die silently
                log.exception("%s: unexpected error in the commit thread", self.path)

    def close(self) -> None:
        """Commit what is pending, release the write lock and compact to one file where possible."""
        if self._closed:
            return
        self._wake.set()
        self._thread.join(timeout=30)
        try:
            self.flush()
        finally:
            self._closed = True
            try:
                with self._lock:
                    self._con.execute("UPDATE meta SET value = ? WHERE key = 'writer'",
                                      (json.dumps(self._writer_info("closed")),))
                if self.journal_mode == "wal":
                    try:  # fold the WAL back so the recording is one self-contained file
                        self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                        self._con.execute("PRAGMA journal_mode=DELETE")
                    except sqlite3.Error:
                        pass  # a reader holds it open; the WAL stays beside the file
            except sqlite3.Error as exc:
                log.error("%s: could not mark the recording closed (%s)", self.path, exc)
            finally:
                self._con.close()

    def __enter__(self) -> "RecordingWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()



_ROW_FIELDS = tuple(name for name, _, _ in schema.ITER_FIELDS if name != "iteration")
_ROW_DEFAULTS = {name: (np.nan if dt.kind == "f" else 0) for name, dt in schema.ITER_DTYPES.items()}
_NAN_ROWS: dict[int, np.ndarray] = {}

