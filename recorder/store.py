"""Crash-safe recording store: an append-only writer and a read-only reader over SQLite.

Design
------
* One ``*.gda`` file is one SQLite database (schema in :mod:`recorder.schema`).
  Iterations are buffered in memory and committed as columnar blocks at least
  every ``commit_interval`` seconds by a background thread, and on ``close``.
  The newest block grows (is rewritten) until it holds ``block_rows`` rows, so
  a reader gets few large blocks however often the writer commits.
* WAL journal where the file system supports it (readers never block the
  writer and see only committed transactions); rollback journal (``DELETE``)
  on network file systems where WAL's shared memory is unsafe.  A process
  killed with ``kill -9`` loses at most what it had not committed yet.
* One writer per file: the writer records pid, host, process start token and a
  heartbeat in ``meta.writer`` inside an ``IMMEDIATE`` transaction; a second
  writer finds a live holder and gets :class:`RecordingBusyError`.
* Readers open the file read-only (``mode=ro``), validate it before SQLite
  touches it (size, header, application id, schema version) and never modify
  it.  ``read_new`` returns only rows committed since the previous call: the
  live tail used by ``gda-gl view --follow``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from . import schema
from .errors import RecordingBusyError, RecordingError

log = logging.getLogger(__name__)

__all__ = ["Iterations", "Recording", "RecordingWriter", "open_recordings", "check_recording_file"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_NETWORK_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs", "afs", "ceph", "glusterfs",
               "fuse.glusterfs", "lustre", "gpfs", "beegfs", "fuse.s3fs", "fuse.rclone", "fuse.gcsfuse"}
_HEARTBEAT_S = 5.0
_REMOTE_STALE_S = 30.0


# --------------------------------------------------------------------------- in-memory table

@dataclass
class Iterations:
    """A run's iterations as numpy columns (what :meth:`Recording.read` returns).

    Attributes
    ----------
    alpha_grid : (K,) float64
    columns : dict of name -> (n,) array, one per :data:`recorder.schema.ITER_FIELDS`
    phi : (n, K) float32, phi_k at the alpha grid
    trial_offsets : (n + 1,) int64, trials of row i are ``trials[name][off[i]:off[i+1]]``
    trials : dict of name -> concatenated trial arrays (:data:`recorder.schema.TRIAL_FIELDS`)
    """

    alpha_grid: np.ndarray
    columns: dict[str, np.ndarray]
    phi: np.ndarray
    trial_offsets: np.ndarray
    trials: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.phi.shape[0])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    @property
    def iteration(self) -> np.ndarray:
        return self.columns["iteration"]

    def trials_of(self, row: int) -> dict[str, np.ndarray]:
        """Trial points of row ``row`` (not iteration number), in storage order."""
        a, b = int(self.trial_offsets[row]), int(self.trial_offsets[row + 1])
        return {k: v[a:b] for k, v in self.trials.items()}

    def row_of(self, iteration: int) -> int:
        """Row index of an iteration number; ``KeyError`` if absent."""
        it = self.columns["iteration"]
        i = int(np.searchsorted(it, iteration))
        if i >= len(it) or it[i] != iteration:
            raise KeyError(iteration)
        return i

    def slice_rows(self, a: int, b: int) -> "Iterations":
        ta, tb = int(self.trial_offsets[a]), int(self.trial_offsets[b])
        return Iterations(self.alpha_grid, {k: v[a:b] for k, v in self.columns.items()}, self.phi[a:b],
                          self.trial_offsets[a:b + 1] - ta, {k: v[ta:tb] for k, v in self.trials.items()})

    @staticmethod
    def empty(alpha_grid: np.ndarray) -> "Iterations":
        k = len(alpha_grid)
        return Iterations(np.asarray(alpha_grid, np.float64),
                          {n: np.empty(0, d) for n, d in schema.ITER_DTYPES.items()},
                          np.empty((0, k), schema.PHI_DTYPE), np.zeros(1, np.int64),
                          {n: np.empty(0, d) for n, d in schema.TRIAL_DTYPES.items()})

    @staticmethod
    def concat(parts: Sequence["Iterations"]) -> "Iterations":
        parts = list(parts)
        if len(parts) == 1:
            return parts[0]
        grid = parts[0].alpha_grid
        counts = np.concatenate([np.diff(p.trial_offsets) for p in parts])
        off = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=off[1:])
        return Iterations(grid, {k: np.concatenate([p.columns[k] for p in parts]) for k in parts[0].columns},
                          np.concatenate([p.phi for p in parts]), off,
                          {k: np.concatenate([p.trials[k] for p in parts]) for k in parts[0].trials})


# --------------------------------------------------------------------------- file checks

def _fs_type(path: Path) -> str:
    """File system type of ``path``'s directory from /proc/mounts ('' if unknown)."""
    try:
        target = os.path.realpath(path.parent if not path.is_dir() else path)
        best, fstype = "", ""
        with open("/proc/mounts", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, fstype = mnt, parts[2]
        return fstype
    except OSError:
        return ""


def check_recording_file(path: str | os.PathLike) -> Path:
    """Check that ``path`` looks like a readable, complete SQLite file, without opening it in SQLite.

    Raises
    ------
    RecordingError
        one line naming the file and the problem.
    """
    p = Path(path)
    if not p.exists():
        raise RecordingError(p, "no such file")
    if p.is_dir():
        raise RecordingError(p, "is a directory, not a recording")
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            header = fh.read(100)
    except PermissionError:
        raise RecordingError(p, "permission denied (cannot read the file)") from None
    except OSError as exc:
        raise RecordingError(p, f"cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise RecordingError(p, "empty file (0 bytes), not a recording")
    if not header.startswith(_SQLITE_MAGIC):
        raise RecordingError(p, "not a gda recording (not an SQLite database)")
    if len(header) < 100:
        raise RecordingError(p, f"truncated SQLite file ({size} bytes)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    n_pages = int.from_bytes(header[28:32], "big")
    valid_for = int.from_bytes(header[92:96], "big")
    change = int.from_bytes(header[24:28], "big")
    if page_size < 512 or page_size & (page_size - 1):
        raise RecordingError(p, "corrupt SQLite header (bad page size)")
    if size % page_size:
        raise RecordingError(p, f"truncated or corrupt ({size} bytes is not a whole number of "
                                f"{page_size}-byte pages)")
    if valid_for == change and n_pages and size < n_pages * page_size:
        raise RecordingError(p, f"truncated ({size} bytes, the header says {n_pages * page_size})")
    return p


def _sql_error(path: Path, exc: sqlite3.Error) -> RecordingError:
    msg = str(exc)
    if "malformed" in msg or "not a database" in msg or "disk image" in msg:
        return RecordingError(path, f"corrupt or truncated recording ({msg})")
    if "unable to open" in msg:
        return RecordingError(path, f"cannot be opened ({msg})")
    return RecordingError(path, f"SQLite error: {msg}")


def _read_meta(con: sqlite3.Connection) -> dict:
    return {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta")}


def _validate_identity(con: sqlite3.Connection, path: Path) -> None:
    app_id = con.execute("PRAGMA application_id").fetchone()[0]
    version = con.execute("PRAGMA user_version").fetchone()[0]
    if app_id != schema.APPLICATION_ID:
        raise RecordingError(path, "not a gda recording (an SQLite database of another application)")
    if version > schema.SCHEMA_VERSION:
        raise RecordingError(path, f"recording schema version {version} is newer than this gda-gl supports "
                                   f"({schema.SCHEMA_VERSION}); upgrade gda-gl")
    if version < 1:
        raise RecordingError(path, f"unknown recording schema version {version}")
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    missing = {"meta", "blocks", "events"} - tables
    if missing:
        raise RecordingError(path, f"damaged recording (missing tables: {', '.join(sorted(missing))})")


# --------------------------------------------------------------------------- process liveness

def _process_token(pid: int) -> str | None:
    """Start time of process ``pid`` (Linux), to tell a live writer from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read().decode("ascii", "replace")
        return data.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def writer_alive(info: Mapping | None) -> bool:
    """Whether the writer described by ``meta.writer`` is still running."""
    if not info or info.get("state") != "open":
        return False
    if info.get("host") == socket.gethostname():
        pid = int(info.get("pid", -1))
        if pid <= 0 or not _pid_alive(pid):
            return False
        token = info.get("token")
        return token is None or _process_token(pid) in (None, token)
    return (time.time() - float(info.get("heartbeat", 0))) < _REMOTE_STALE_S


def _describe_writer(info: Mapping) -> str:
    return f"pid {info.get('pid')} on {info.get('host')}"


# --------------------------------------------------------------------------- block encoding

def _encode_block(cols: Mapping[str, np.ndarray], phi: np.ndarray, tcount: np.ndarray,
                  trials: Mapping[str, np.ndarray]) -> list[bytes]:
    out = [np.ascontiguousarray(cols[n], schema.ITER_DTYPES[n]).tobytes() for n, _, _ in schema.ITER_FIELDS]
    out.append(np.ascontiguousarray(phi, schema.PHI_DTYPE).tobytes())
    out.append(np.ascontiguousarray(tcount, schema.TRIAL_COUNT_DTYPE).tobytes())
    out += [np.ascontiguousarray(trials[n], schema.TRIAL_DTYPES[n]).tobytes() for n, _, _ in schema.TRIAL_FIELDS]
    return out


def _as_grid(alpha_grid) -> np.ndarray:
    g = np.asarray(alpha_grid, dtype=np.float64).ravel()
    if g.size == 0 or not np.all(np.isfinite(g)):
        raise ValueError("alpha grid must be a non-empty list of finite numbers")
    return g


# --------------------------------------------------------------------------- writer

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
        self.alpha_grid = _as_grid(alpha_grid)
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
                _validate_identity(self._con, self.path)
            except RecordingError:
                self._con.close()
                raise
            meta = _read_meta(self._con)
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
                                      [(k, json.dumps(_json_safe(v), allow_nan=False, default=str))
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
            fstype = _fs_type(self.path)
            journal = "delete" if fstype in _NETWORK_FS else "wal"
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
        return {"pid": pid, "host": socket.gethostname(), "token": _process_token(pid), "heartbeat": time.time(),
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
            raise RecordingBusyError(self.path, f"is being written by another writer ({_describe_writer(info)})")

    def _acquire(self) -> None:
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            row = con.execute("SELECT value FROM meta WHERE key='writer'").fetchone()
            if row:
                info = json.loads(row[0])
                if writer_alive(info):
                    raise RecordingBusyError(self.path,
                                             f"is being written by another writer ({_describe_writer(info)})")
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
        cols, phi, tcount, trials = _decode_block(row[2:], n, len(self.alpha_grid))
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
        tr = _trials_arrays(trials) if trials is not None else None
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
        tr = _trials_arrays(trials, total=int(tcount.sum()))
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
            if not pending and not events and time.time() - self._last_heartbeat < _HEARTBEAT_S:
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
                cols, phi, tcount, trials = _concat_parts(parts)
                n = len(phi)
                start = 0
                while start < n:
                    stop = min(n, start + self.block_rows)
                    blk = ({k: v[start:stop] for k, v in cols.items()}, phi[start:stop], tcount[start:stop])
                    t0, t1 = int(tcount[:start].sum()), int(tcount[:stop].sum())
                    btr = {k: v[t0:t1] for k, v in trials.items()}
                    blobs = _encode_block(blk[0], blk[1], blk[2], btr)
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


def _json_safe(v):
    """Metadata as strict JSON: non-finite floats become strings ("nan", "inf")."""
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if isinstance(v, np.generic):
        return _json_safe(v.item())
    return v


def _trials_arrays(trials: Mapping[str, Sequence] | None, total: int | None = None) -> dict[str, np.ndarray]:
    if trials is None:
        m = total or 0
        if m:
            raise ValueError("trial_count given without trials")
        return {n: np.empty(0, d) for n, d in schema.TRIAL_DTYPES.items()}
    alpha = np.asarray(trials["alpha"], schema.TRIAL_DTYPES["alpha"]).ravel()
    m = len(alpha)
    if total is not None and total != m:
        raise ValueError(f"trial_count sums to {total} but {m} trials were given")
    out = {"alpha": alpha}
    for name, dt in schema.TRIAL_DTYPES.items():
        if name == "alpha":
            continue
        v = trials.get(name)
        if v is None:
            v = np.arange(m) if name == "order" else np.full(m, np.nan)
        out[name] = np.asarray(v, dt).ravel()
        if len(out[name]) != m:
            raise ValueError(f"trial field {name!r} has {len(out[name])} values, expected {m}")
    return out


def _concat_parts(parts):
    if len(parts) == 1:
        return parts[0]
    cols = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    phi = np.concatenate([p[1] for p in parts])
    tcount = np.concatenate([p[2] for p in parts])
    trials = {k: np.concatenate([p[3][k] for p in parts]) for k in parts[0][3]}
    return cols, phi, tcount, trials


def _decode_block(blobs: Sequence[bytes], n: int, k: int):
    it = iter(blobs)
    cols = {name: np.frombuffer(next(it), dt).copy() for name, dt in schema.ITER_DTYPES.items()}
    phi = np.frombuffer(next(it), schema.PHI_DTYPE).reshape(n, k).copy()
    tcount = np.frombuffer(next(it), schema.TRIAL_COUNT_DTYPE).copy()
    trials = {name: np.frombuffer(next(it), dt).copy() for name, dt in schema.TRIAL_DTYPES.items()}
    return cols, phi, tcount, trials


# --------------------------------------------------------------------------- reader

class Recording:
    """A recording opened read-only.  Safe while a writer appends; never modifies the file.

    Parameters
    ----------
    path : path of a ``*.gda`` file

    Raises
    ------
    RecordingError
        the file is missing, unreadable, not a recording, truncated, or of a newer schema.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = check_recording_file(path)
        try:
            self._con = sqlite3.connect(f"file:{self.path.resolve()}?mode=ro", uri=True, timeout=10.0,
                                        check_same_thread=False)
        except sqlite3.Error as exc:
            raise _sql_error(self.path, exc) from None
        try:
            _validate_identity(self._con, self.path)
            self.meta = _read_meta(self._con)
            self.alpha_grid = np.asarray(self.meta["alpha_grid"], np.float64)
        except RecordingError:
            self._con.close()
            raise
        except sqlite3.Error as exc:
            self._con.close()
            raise _sql_error(self.path, exc) from None
        except (KeyError, ValueError) as exc:
            self._con.close()
            raise RecordingError(self.path, f"damaged recording metadata ({exc})") from None
        self._cursor = (0, 0)  # (block id, rows of it already returned) for read_new
        self._lock = threading.Lock()

    @property
    def run(self) -> dict:
        """Run metadata (model, optimizer, probe, ...)."""
        return self.meta.get("run", {})

    @property
    def name(self) -> str:
        return self.run.get("name") or self.path.stem

    def _query(self, sql: str, args=()) -> list:
        try:
            with self._lock:
                return self._con.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise _sql_error(self.path, exc) from None

    def n_iterations(self) -> int:
        """Number of committed iterations."""
        return int(self._query("SELECT COALESCE(SUM(n), 0) FROM blocks")[0][0])

    def iteration_span(self) -> tuple[int, int] | None:
        r = self._query("SELECT MIN(first_iteration), MAX(last_iteration) FROM blocks")[0]
        return None if r[0] is None else (int(r[0]), int(r[1]))

    def writer_info(self) -> dict:
        rows = self._query("SELECT value FROM meta WHERE key='writer'")
        return json.loads(rows[0][0]) if rows else {}

    def writer_state(self) -> str:
        """``"closed"`` (finished cleanly), ``"live"`` (a writer is appending) or ``"died"``."""
        info = self.writer_info()
        if not info or info.get("state") == "closed":
            return "closed"
        return "live" if writer_alive(info) else "died"

    def events(self, kind: str | None = None) -> list[tuple[int | None, float, str, str]]:
        sql = "SELECT iteration, wall_time, kind, message FROM events"
        return self._query(sql + (" WHERE kind = ? ORDER BY id" if kind else " ORDER BY id"),
                           (kind,) if kind else ())

    def _assemble(self, rows: list, skip_first: int = 0) -> Iterations:
        k = len(self.alpha_grid)
        if not rows:
            return Iterations.empty(self.alpha_grid)
        ncols = len(schema.block_columns())
        total = sum(r[1] for r in rows) - skip_first
        cols = {n: np.empty(total, dt) for n, dt in schema.ITER_DTYPES.items()}
        phi = np.empty((total, k), schema.PHI_DTYPE)
        tcounts = np.empty(total, np.int64)
        tparts: dict[str, list] = {n: [] for n in schema.TRIAL_DTYPES}
        pos = 0
        for j, r in enumerate(rows):
            n = r[1]
            blobs = r[2:2 + ncols]
            s = skip_first if j == 0 else 0
            m = n - s
            bi = iter(blobs)
            for name, dt in schema.ITER_DTYPES.items():
                cols[name][pos:pos + m] = np.frombuffer(next(bi), dt)[s:]
            phi[pos:pos + m] = np.frombuffer(next(bi), schema.PHI_DTYPE).reshape(n, k)[s:]
            tc = np.frombuffer(next(bi), schema.TRIAL_COUNT_DTYPE)
            t0 = int(tc[:s].sum())
            tcounts[pos:pos + m] = tc[s:]
            for name, dt in schema.TRIAL_DTYPES.items():
                tparts[name].append(np.frombuffer(next(bi), dt)[t0:])
            pos += m
        off = np.zeros(total + 1, np.int64)
        np.cumsum(tcounts, out=off[1:])
        trials = {n: (np.concatenate(v) if v else np.empty(0, schema.TRIAL_DTYPES[n])) for n, v in tparts.items()}
        return Iterations(self.alpha_grid, cols, phi, off, trials)

    def read(self, start: int | None = None, stop: int | None = None) -> Iterations:
        """Committed iterations with ``start <= iteration < stop`` (all by default) as numpy columns."""
        cond, args = [], []
        if start is not None:
            cond.append("last_iteration >= ?")
            args.append(int(start))
        if stop is not None:
            cond.append("first_iteration < ?")
            args.append(int(stop))
        where = (" WHERE " + " AND ".join(cond)) if cond else ""
        rows = self._query(f"SELECT id, n, {', '.join(schema.block_columns())} FROM blocks{where} ORDER BY id", args)
        data = self._assemble(rows)
        if rows:
            self._cursor = (rows[-1][0], rows[-1][1]) if start is None and stop is None else self._cursor
        if start is not None or stop is not None:
            it = data.iteration
            a = 0 if start is None else int(np.searchsorted(it, start))
            b = len(it) if stop is None else int(np.searchsorted(it, stop))
            data = data.slice_rows(a, b)
        return data

    def read_new(self) -> Iterations:
        """Iterations committed since the previous ``read()``/``read_new()`` (the live tail)."""
        bid, seen = self._cursor
        rows = self._query(f"SELECT id, n, {', '.join(schema.block_columns())} FROM blocks WHERE id >= ? "
                           "ORDER BY id", (bid,))
        skip = seen if rows and rows[0][0] == bid else 0
        data = self._assemble(rows, skip_first=skip)
        if rows:
            self._cursor = (rows[-1][0], rows[-1][1])
        return data

    def file_size(self) -> int:
        size = self.path.stat().st_size
        wal = Path(str(self.path) + "-wal")
        return size + (wal.stat().st_size if wal.exists() else 0)

    def close(self) -> None:
        self._con.close()

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
