"""The append-only writer of a recording: :class:`RecordingWriter`.

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

import contextlib
import functools
import json
import logging
import math
import operator
import os
import re
import secrets
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from . import schema
from .lodstore import LodError, SqlChunks, write_chunks
from .pyramid import BASE_ROWS, BUCKET_FIELDS, CHUNK, PyramidBuilder
from .pyramid import layout as pyramid_layout
from .codec import (MAX_BLOCK_ROWS, BlockError, as_grid, as_row_alphas, concat_parts, decode_block, encode_block,
                    interval_of, json_safe, trials_arrays)
from .errors import RecordingBusyError, RecordingError
from .fsutil import NETWORK_FS, check_recording_file, fs_type, has_journal, sniff
from .lock import HEARTBEAT_S, describe_writer, pid_alive, process_token, writer_alive
from .reader import connect_readonly, read_meta, sql_error, stored_fields_of, validate_identity
from .serieslog import SeriesLog

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None

log = logging.getLogger(__name__)

__all__ = ["RecordingWriter"]

_ROW_FIELDS = tuple(name for name, _, _ in schema.ITER_FIELDS if name != "iteration")
_ROW_DEFAULTS = {name: (math.nan if dt.kind == "f" else 0) for name, dt in schema.ITER_DTYPES.items()}
_ROW_TEMPLATE = [0] + [_ROW_DEFAULTS[name] for name in _ROW_FIELDS]   # a row of defaults, iteration first
_ROW_INDEX = {name: i + 1 for i, name in enumerate(_ROW_FIELDS)}
_INT_RANGE = {name: (int(np.iinfo(dt).min), int(np.iinfo(dt).max))
              for name, dt in schema.ITER_DTYPES.items() if dt.kind in "iu"}
_NAN_ROWS: dict[int, np.ndarray] = {}
_MAX_EVENTS = 10000
#: Default bound on the bytes of rows a writer buffers while commits fail (a full disk): then it stops
#: recording (see :class:`RecordingWriter`, ``max_buffer_bytes``).
MAX_BUFFER_BYTES = 32 << 20


def _as_int(name: str, v) -> int:
    """``v`` as an integer that fits field ``name``'s dtype (``TypeError``/``ValueError`` otherwise)."""
    if isinstance(v, (int, np.integer)):
        iv = int(v)
    elif isinstance(v, (float, np.floating)):
        if not (math.isfinite(v) and float(v).is_integer()):
            raise ValueError(f"{name} must be an integer, got {v!r}")
        iv = int(v)
    else:
        try:
            iv = operator.index(v)
        except TypeError:
            raise TypeError(f"{name} must be an integer, got {type(v).__name__} {str(v)[:40]!r}") from None
    lo, hi = _INT_RANGE[name]
    if not lo <= iv <= hi:
        raise ValueError(f"{name} = {iv} is out of range ({lo}..{hi})")
    return iv


def _as_float(name: str, v) -> float:
    if isinstance(v, (str, bytes)):
        raise TypeError(f"{name} must be a number, got {type(v).__name__} {str(v)[:40]!r}")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {type(v).__name__} {str(v)[:40]!r}") from None
    except OverflowError:
        raise ValueError(f"{name} = {str(v)[:40]} does not fit a float64") from None


_CONVERT = {name: functools.partial(_as_float if dt.kind == "f" else _as_int, name)
            for name, dt in schema.ITER_DTYPES.items()}


def _column(name: str, v, n: int) -> np.ndarray:
    """A whole column for ``append_arrays``, with the same checks as a single value."""
    dt = schema.ITER_DTYPES[name]
    a = np.asarray(v)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"column {name} must be numbers, got dtype {a.dtype}")
    a = np.broadcast_to(a, (n,)) if a.ndim == 0 else a
    if a.shape != (n,):
        raise ValueError(f"column {name} has shape {a.shape}, expected ({n},)")
    if dt.kind in "iu":
        lo, hi = _INT_RANGE[name]
        if a.dtype.kind == "f" and not (np.all(np.isfinite(a)) and np.all(a == np.round(a))):
            raise ValueError(f"column {name} must hold integers")
        if a.size and (a.min() < lo or a.max() > hi):
            raise ValueError(f"column {name} has values out of range ({lo}..{hi})")
    return np.ascontiguousarray(a, dt)


@contextlib.contextmanager
def _dir_lock(directory: Path):
    """Advisory exclusive lock on a directory (serialises writers installing files there); best effort."""
    fd = None
    if fcntl is not None:
        try:
            fd = os.open(directory, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            log.debug("%s: no directory lock (%s)", directory, exc)
            if fd is not None:
                os.close(fd)
                fd = None
    try:
        yield
    finally:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


_TEMP_NAME = re.compile(r"^\.gda-(\d+)-[0-9a-f]{12}\.tmp(-journal)?$")


def _remove_stale_temps(directory: Path, min_age_s: float = 60.0) -> None:
    """Remove the temporary files of writers that died while creating a recording here.

    Only names this module makes (``.gda-<pid>-<12 hex>.tmp``), only when that process is gone and the
    file is older than ``min_age_s`` (so a reused pid cannot make us remove a live writer's file).
    """
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    now = time.time()
    for e in entries:
        m = _TEMP_NAME.match(e.name)
        if not m:
            continue
        try:
            if now - e.stat(follow_symlinks=False).st_mtime < min_age_s or pid_alive(int(m.group(1))):
                continue
            os.unlink(e.path)
            log.info("removed %s, left by a writer that died while creating a recording", e.path)
        except OSError:
            pass


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class RecordingWriter:
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

    def _abandon(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    # -- creating and opening ------------------------------------------------
    def _refuse_existing(self, kind: str, overwrite: bool) -> None:
        """Refuse to replace anything but a gda recording that no live writer holds (``overwrite`` given)."""
        if kind == "dir":
            raise RecordingError(self.path, "is a directory; refusing to replace it")
        if kind == "special":
            raise RecordingError(self.path, "is not a regular file (a FIFO, device or socket); refusing to replace it")
        if kind == "other":
            raise RecordingError(self.path, "exists and is not a gda recording; refusing to replace it")
        try:
            con = connect_readonly(self.path)
        except sqlite3.Error as exc:
            raise RecordingError(self.path, f"exists and cannot be checked ({exc}); refusing to replace it") from None
        try:
            try:
                app_id = con.execute("PRAGMA application_id").fetchone()[0]
            except sqlite3.Error as exc:
                raise RecordingError(self.path, f"exists and is not a readable gda recording ({exc}); "
                                                "refusing to replace it") from None
            if app_id != schema.APPLICATION_ID:
                raise RecordingError(self.path, "is an SQLite database of another application; refusing to replace it")
            if not overwrite:
                raise RecordingError(self.path, "already exists (pass overwrite=True or append=True)")
            try:  # object types first: reading a view or a table with generated columns would run stored SQL
                validate_identity(con, self.path)
            except sqlite3.Error as exc:
                raise RecordingError(self.path, f"exists and cannot be checked ({sql_error(self.path, exc).problem});"
                                                " refusing to replace it") from None
            except RecordingError as exc:
                raise RecordingError(self.path, f"exists and is not a recording gda-gl can check "
                                                f"({exc.problem}); refusing to replace it") from None
            try:
                row = con.execute("SELECT value FROM meta WHERE key='writer'").fetchone()
                info = json.loads(row[0]) if row and isinstance(row[0], str) and len(row[0]) < 65536 else None
            except (sqlite3.Error, ValueError, RecursionError):
                info = None
        finally:
            con.close()
        if info is not None and writer_alive(info):
            raise RecordingBusyError(self.path, f"is being written by another writer ({describe_writer(info)})")

    def _create(self, run: Mapping | None, kind: str, overwrite: bool, journal: str) -> None:
        if kind != "missing":
            self._refuse_existing(kind, overwrite)  # early, clear refusal; re-checked under the lock
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordingError(self.path, f"cannot be created ({exc.strerror or exc})") from None
        tmp = parent / f".gda-{os.getpid()}-{secrets.token_hex(6)}.tmp"
        try:
            self._build(tmp, run)
            with _dir_lock(parent):
                _remove_stale_temps(parent)
                kind = sniff(self.path)
                leftovers = [str(self.path) + s for s in ("-journal", "-wal", "-shm")
                             if os.path.lexists(str(self.path) + s)]
                if kind != "missing":
                    self._refuse_existing(kind, overwrite)
                elif leftovers and not overwrite:
                    raise RecordingError(self.path, f"a leftover {Path(leftovers[0]).name} exists beside it "
                                                    "(pass overwrite=True to start afresh)")
                for extra in leftovers:  # a stale journal would be applied to the new file
                    _unlink(extra)
                if kind == "missing":
                    try:
                        os.link(tmp, self.path)  # fails if someone created the name meanwhile
                    except FileExistsError:
                        kind = sniff(self.path)
                        self._refuse_existing(kind, overwrite)
                        os.replace(tmp, self.path)
                    except OSError:  # no hard links here: the directory lock serialises writers
                        os.replace(tmp, self.path)
                else:
                    os.replace(tmp, self.path)
        finally:
            _unlink(str(tmp))
            _unlink(str(tmp) + "-journal")
        self._con = self._connect(journal)

    def _build(self, tmp: Path, run: Mapping | None) -> None:
        """Write an empty recording holding our write lock to ``tmp`` (rollback journal, closed after)."""
        from ._version import __version__

        meta = {"run": dict(run or {}), "alpha_grid": schema.grid_meta(self.alpha_grid, self.row_alphas),
                "created_by": f"gda_gl {__version__}", "writer": self._writer_info("open"),
                "lod": pyramid_layout()}
        rows = [(k, json.dumps(json_safe(v), allow_nan=False, default=str)) for k, v in meta.items()]
        con = sqlite3.connect(tmp, isolation_level=None)
        try:
            con.execute("BEGIN")
            for stmt in schema.create_statements(row_alphas=self.row_alphas):
                con.execute(stmt)
            con.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", rows)
            con.execute("COMMIT")
        finally:
            con.close()

    def _open_append(self, kind: str, journal: str) -> None:
        if kind in ("dir", "special", "other"):
            self._refuse_existing(kind, False)
        check_recording_file(self.path)
        meta = None
        try:
            ro = connect_readonly(self.path)  # validate before anything can write to the file
            try:
                validate_identity(ro, self.path, exact=True)
                meta = read_meta(ro, self.path)
            finally:
                ro.close()
        except sqlite3.Error as exc:
            # a hot journal left by a writer killed mid-commit cannot be read read-only: validate on the
            # read-write connection below, after SQLite's own crash recovery (a rollback runs no stored SQL)
            if not (has_journal(self.path) and "readonly" in str(exc)):
                raise
        if meta is not None and not np.array_equal(meta["alpha_grid"], self.alpha_grid):
            raise RecordingError(self.path, "cannot append: the alpha grid differs from the recording's")
        self._con = self._connect(None, validate=True)  # the journal mode changes the file: only once checked
        if meta is None:
            meta = read_meta(self._con, self.path)
            if not np.array_equal(meta["alpha_grid"], self.alpha_grid):
                raise RecordingError(self.path, "cannot append: the alpha grid differs from the recording's")
        self._adopt_layout(meta)
        self._acquire()  # checks the blocks and the pyramid before it writes anything
        self._set_journal(self._con, journal)

    def _adopt_layout(self, meta: dict) -> None:
        """Write the columns and pyramid fields the (validated) file has, not necessarily all this release knows."""
        self._fields = stored_fields_of(self._con, schema.SCHEMA_VERSION)
        self._columns = [f"f_{n}" for n, _ in self._fields] + list(schema.PHI_TRIAL_COLUMNS)
        if bool(meta.get("row_alphas")) != self.row_alphas:
            raise RecordingError(self.path, "cannot append: the recording " + (
                "stores per-row alphas (an adaptive probe's); open it with row_alphas=True" if meta.get("row_alphas")
                else "has one shared alpha grid; an adaptive probe cannot append to it"))
        if self.row_alphas:
            self._columns.append(schema.ROW_ALPHA_COLUMN)
        lod = schema.stored_lod_fields(meta.get("lod"), BUCKET_FIELDS)
        known = {n for n, _, _ in BUCKET_FIELDS}
        if lod is None or any(n not in known for n, _, _ in lod):
            raise RecordingError(self.path, "cannot append: its pyramid layout (meta.lod) is not one this gda-gl "
                                            "writes; run 'gda-gl upgrade' to make a copy to append to")
        self._lod_fields = lod
        lacking = [n for n in schema.ITER_DTYPES if n not in {f for f, _ in self._fields}]
        if lacking:
            log.info("%s: written by an earlier gda-gl without %s; the appended rows do not store it either (it "
                     "reads as its default)", self.path, ", ".join(lacking))

    # -- connection and lock -------------------------------------------------
    def _connect(self, journal: str, validate: bool = False) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise RecordingError(self.path, f"cannot be created or opened for writing ({exc})") from None
        try:
            con.execute("PRAGMA trusted_schema = OFF")
            if validate:  # the same checks again on this connection, before any write
                validate_identity(con, self.path, exact=True)
            if journal is not None:
                self._set_journal(con, journal)
        except BaseException:
            con.close()
            raise
        return con

    def _set_journal(self, con: sqlite3.Connection, journal: str) -> None:
        """WAL or the rollback journal (``journal`` as for the constructor), and the matching ``synchronous``."""
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

    def _writer_info(self, state: str) -> dict:
        pid = os.getpid()
        return {"pid": pid, "host": socket.gethostname(), "token": process_token(pid), "heartbeat": time.time(),
                "state": state}

    def _acquire(self) -> None:
        """Take the write lock, in one transaction with the checks of the tail block and the pyramid
        (:meth:`_load_tail`, :meth:`_resume_pyramid`): a file they refuse is left unchanged."""
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            row = con.execute("SELECT value FROM meta WHERE key='writer'").fetchone()
            if row:
                try:
                    info = json.loads(row[0]) if isinstance(row[0], str) and len(row[0]) < 65536 else None
                except (ValueError, RecursionError):
                    info = None
                if not isinstance(info, dict):
                    raise RecordingError(self.path, "cannot append: the write-lock record is damaged")
                if writer_alive(info):
                    raise RecordingBusyError(self.path,
                                             f"is being written by another writer ({describe_writer(info)})")
            self._load_tail()
            self._resume_pyramid()
            con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('writer', ?)",
                        (json.dumps(self._writer_info("open")),))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _load_tail(self) -> None:
        con = self._con
        k = len(self.alpha_grid)
        total, first_it, last_it = 0, None, None
        for bid, n, first, last, nbytes in con.execute(
                "SELECT id, n, first_iteration, last_iteration, length(f_iteration) FROM blocks ORDER BY id"):
            ints = all(isinstance(v, int) for v in (bid, n, first, last))
            if not ints or n <= 0 or n > MAX_BLOCK_ROWS or nbytes is None \
                    or first > last or (last_it is not None and first <= last_it):
                raise RecordingError(self.path, f"cannot append: damaged block {bid}")
            total += n
            first_it = first if first_it is None else first_it
            last_it = last
        self.rows_committed = total
        self._last_iteration = last_it
        self._first_iteration = first_it
        row = con.execute(f"SELECT id, n, {', '.join(self._columns)} FROM blocks "
                          "ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return
        bid, n = row[0], row[1]
        try:
            cols, phi, tcount, trials = decode_block(row[2:], n, k, fields=self._fields, row_alphas=self.row_alphas)
        except BlockError as exc:
            raise RecordingError(self.path, f"cannot append: damaged block {bid}: {exc}") from None
        if n < self.block_rows:
            self._tail = (bid, cols, phi, tcount, trials)

    def _resume_pyramid(self) -> None:
        """Continue the stored pyramid: the newest chunk of every level, the rows of the partial bucket."""
        con = self._con
        total = self.rows_committed
        # the reader's validator, on this connection: a pyramid a reader would refuse is never continued
        chunks = SqlChunks(lambda sql, args=(): con.execute(sql, args).fetchall(), fields=self._lod_fields)
        try:
            chunks.refresh()
            chunks.check_blocks(None, total, self._first_iteration, self._last_iteration)
            last_chunks = [((cnt - 1) // CHUNK, chunks.chunk(level, (cnt - 1) // CHUNK))
                           for level, cnt in enumerate(chunks.counts())]
        except LodError as exc:
            raise RecordingError(self.path, f"cannot append: damaged pyramid ({exc})") from None
        rem = total % BASE_ROWS
        tail_cols = tail_phi = None
        prev_batch = None
        if total:
            k = len(self.alpha_grid)
            need = rem + 1
            parts = []
            for row in con.execute(f"SELECT id, n, {', '.join(self._columns)} FROM blocks "
                                   "ORDER BY id DESC LIMIT 2"):
                try:
                    cols, phi, tc, tr = decode_block(row[2:], row[1], k, fields=self._fields,
                                                     row_alphas=self.row_alphas)
                except BlockError as exc:
                    raise RecordingError(self.path, f"cannot append: damaged block {row[0]}: {exc}") from None
                parts.insert(0, (cols, phi, tc, tr["alpha"]))
                if sum(len(p[1]) for p in parts) >= need:
                    break
            cols = {name: np.concatenate([p[0][name] for p in parts]) for name in parts[0][0]}
            phi = np.concatenate([p[1] for p in parts])
            tc = np.concatenate([p[2] for p in parts]).astype(np.int64)
            ta = np.concatenate([p[3] for p in parts])
            m = len(phi)
            prev_batch = int(cols["batch"][m - rem - 1]) if m > rem else None
            tail_tc = tail_ta = None
            if rem:
                tail_cols = {name: v[m - rem:] for name, v in cols.items()}
                tail_phi = phi[m - rem:]
                tail_tc = tc[m - rem:]
                tail_ta = ta[int(tc[:m - rem].sum()):]
        counts_ok = (not last_chunks and total == 0) or (
            last_chunks and last_chunks[0][0] * CHUNK + len(last_chunks[0][1]["rows"]) == -(-total // BASE_ROWS))
        if not counts_ok:
            raise RecordingError(self.path, "cannot append: the stored pyramid does not match the rows")
        self._pyramid = PyramidBuilder.resume(self.alpha_grid, total, last_chunks, tail_cols, tail_phi, prev_batch,
                                              tail_tc if total else None, tail_ta if total else None)

    # -- appending -----------------------------------------------------------
    def append(self, iteration: int, phi: Sequence[float] | np.ndarray | None = None, *,
               trials: Mapping[str, Sequence] | None = None, alphas: Sequence[float] | None = None,
               **fields) -> None:
        """Append one iteration.

        Every value is checked here: a bad one raises for this call only, and the
        rows appended before stay buffered.  Commit failures (a full disk) do not
        raise here: they are logged once and retried in the background.

        Parameters
        ----------
        iteration : an integer strictly larger than the previous one
        phi : (K,) values at the alpha grid (NaN where not measured); all NaN when None
        trials : optional dict with ``alpha``, ``loss`` and optionally ``slope``, ``order`` sequences
        alphas : (K,) this row's alphas (a writer made with ``row_alphas=True`` only): the measured ones
            strictly increasing, then NaN, phi NaN where alpha is; None: no alphas (phi must be all NaN)
        **fields : any of :data:`recorder.schema.ITER_FIELDS`; missing floats are NaN, ints 0

        Raises
        ------
        RecordingError : the writer is closed
        TypeError, ValueError : a value of the wrong type or out of range, an unknown field,
            a non-increasing iteration
        """
        if self._closed:
            raise RecordingError(self.path, "writer is closed")
        iteration = _as_int("iteration", iteration)
        row = _ROW_TEMPLATE.copy()  # only the fields given are converted (a probe gives a dozen of 20)
        row[0] = iteration
        for name, v in fields.items():
            i = _ROW_INDEX.get(name)
            if i is None:
                unknown = sorted(f for f in fields if f not in _ROW_INDEX)
                raise TypeError(f"unknown iteration fields: {', '.join(unknown)}")
            if v is not None:
                row[i] = _CONVERT[name](v)
        k = len(self.alpha_grid)
        if phi is None:
            phi_arr = _NAN_ROWS.get(k)
            if phi_arr is None:
                phi_arr = _NAN_ROWS.setdefault(k, np.full(k, np.nan, schema.PHI_DTYPE))
        else:
            phi_arr = np.array(phi, schema.PHI_DTYPE)
            if phi_arr.size != k:
                raise ValueError(f"phi has {phi_arr.size} values, expected {k} (one per alpha)")
            phi_arr = phi_arr.reshape(k)
        tr = trials_arrays(trials) if trials is not None else None
        ra = self._row_alphas_of(alphas, phi_arr, 1)
        with self._lock:
            if self._last_iteration is not None and iteration <= self._last_iteration:
                raise ValueError("iterations must be strictly increasing (the recording is append-only)")
            if self._full():
                return
            self._rows.append((row, phi_arr, tr, ra))
            self._pending_rows += 1
            self._pending_bytes += self._row_bytes + (0 if tr is None else 28 * len(tr["alpha"]))
            self._last_iteration = iteration
            big = self._pending_rows >= self.block_rows and self.error is None
        if big:
            self._flush_quietly()

    def _row_alphas_of(self, alphas, phi: np.ndarray, n: int) -> np.ndarray | None:
        """Checked (n, K) per-row alphas for a per-row writer (None otherwise; giving alphas to it raises)."""
        if not self.row_alphas:
            if alphas is not None:
                raise ValueError("alphas given, but this recording has one shared alpha grid (create the "
                                 "writer with row_alphas=True for per-row alphas)")
            return None
        return as_row_alphas(alphas, phi, n, len(self.alpha_grid), interval_of(self.alpha_grid))

    def _full(self) -> bool:
        """Whether the buffer is full while commits fail: then stop recording (lock held)."""
        if (self._pending_rows < self.max_buffer_rows and self._pending_bytes < self.max_buffer_bytes) \
                or self.error is None:
            return False
        if not self.stopped:
            self.stopped = True
            log.warning("%s: recording stopped: commits keep failing (%s) and %d rows are buffered; they are "
                        "committed when space returns, later iterations are not recorded", self.path,
                        getattr(self.error, "problem", self.error), self._pending_rows)
            self._events.append((self._last_iteration, time.time(), "recording-stopped",
                                 f"commits failed ({getattr(self.error, 'problem', self.error)}); iterations "
                                 f"after {self._last_iteration} were not recorded"))
        self.rows_dropped += 1
        return True

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except RecordingError:
            pass  # logged once in flush(); the background thread retries

    def _rows_to_chunk(self) -> None:
        """Turn the per-iteration rows collected by append() into one columnar chunk (lock held).

        The values were validated by append(), so the conversion cannot fail half-way.
        """
        rows, self._rows = self._rows, []
        if not rows:
            return
        table = list(zip(*(r[0] for r in rows)))
        cols = {name: np.array(table[i], dtype=schema.ITER_DTYPES[name]) for i, name in
                enumerate(("iteration",) + _ROW_FIELDS)}
        phi = np.stack([r[1] for r in rows]).astype(schema.PHI_DTYPE, copy=False)
        if self.row_alphas:
            cols[schema.ROW_ALPHA_COLUMN] = np.concatenate([r[3] for r in rows])
        trs = [r[2] for r in rows]
        tcount = np.array([0 if t is None else len(t["alpha"]) for t in trs], schema.TRIAL_COUNT_DTYPE)
        present = [t for t in trs if t is not None]
        trials = {name: (np.concatenate([t[name] for t in present]) if present else np.empty(0, dt))
                  for name, dt in schema.TRIAL_DTYPES.items()}
        self._pending.append((cols, phi, tcount, trials))

    def append_arrays(self, columns: Mapping[str, np.ndarray], phi: np.ndarray,
                      trial_count: np.ndarray | None = None, trials: Mapping[str, np.ndarray] | None = None,
                      alphas: np.ndarray | None = None) -> None:
        """Append many iterations at once (columnar); used by bulk importers and benchmarks.

        ``alphas``: (n, K) per-row alphas, for a writer made with ``row_alphas=True`` (see :meth:`append`).

        Everything is validated before anything is buffered (all or nothing).
        """
        if self._closed:
            raise RecordingError(self.path, "writer is closed")
        unknown = set(columns) - set(schema.ITER_DTYPES)
        if unknown:
            raise TypeError(f"unknown iteration fields: {', '.join(sorted(unknown))}")
        it = _column("iteration", columns["iteration"], np.asarray(columns["iteration"]).size)
        n = len(it)
        if n == 0:
            return
        phi = np.asarray(phi, schema.PHI_DTYPE)
        if phi.size != n * len(self.alpha_grid):
            raise ValueError(f"phi has {phi.size} values, expected {n} x {len(self.alpha_grid)}")
        phi = phi.reshape(n, len(self.alpha_grid))
        ra = self._row_alphas_of(alphas, phi, n)
        cols = {}
        for name, dt in schema.ITER_DTYPES.items():
            v = columns.get(name)
            cols[name] = (np.full(n, np.nan if dt.kind == "f" else 0, dt) if v is None else _column(name, v, n))
        if trial_count is None:
            tcount = np.zeros(n, schema.TRIAL_COUNT_DTYPE)
        else:
            tc = np.asarray(trial_count)
            if tc.shape != (n,) or tc.dtype.kind not in "iu" or (n and tc.min() < 0):
                raise ValueError(f"trial_count must be {n} non-negative integers")
            tcount = tc.astype(schema.TRIAL_COUNT_DTYPE)
        tr = trials_arrays(trials, total=int(tcount.sum(dtype=np.int64)))
        with self._lock:
            if np.any(np.diff(it) <= 0) or (self._last_iteration is not None and it[0] <= self._last_iteration):
                raise ValueError("iterations must be strictly increasing (the recording is append-only)")
            if self._full():
                self.rows_dropped += n - 1
                return
            self._rows_to_chunk()
            if ra is not None:
                cols[schema.ROW_ALPHA_COLUMN] = ra
            self._pending.append((cols, phi, tcount, tr))
            self._pending_rows += n
            self._pending_bytes += n * self._row_bytes + sum(v.nbytes for v in tr.values())
            self._last_iteration = int(it[-1])
            big = self._pending_rows >= self.block_rows and self.error is None
        if big:
            self._flush_quietly()

    def add_event(self, kind: str, message: str, iteration: int | None = None) -> None:
        """Record an event (probe failure, note); committed with the next flush."""
        it = None if iteration is None else _as_int("iteration", iteration)
        with self._lock:
            if len(self._events) < _MAX_EVENTS:
                self._events.append((it, time.time(), str(kind), str(message)))
            else:
                if not self.events_dropped:
                    log.warning("%s: %d events wait for a commit; later ones are not recorded until one "
                                "succeeds", self.path, _MAX_EVENTS)
                self.events_dropped += 1

    # -- committing ----------------------------------------------------------
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

    def _leave_wal(self, tries: int = 10, pause_s: float = 0.05) -> None:
        """Fold the WAL back and switch to the rollback journal, so the finished recording is one
        self-contained file (readable alone, also from read-only media).  A reader holding the file open
        prevents the switch: retried for about half a second, then the file stays in WAL mode with an empty WAL
        (readers open such a finished file immutable: :func:`recorder.reader.finished_wal_file`)."""
        for i in range(tries):
            try:
                self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                if self._con.execute("PRAGMA journal_mode=DELETE").fetchone()[0].lower() == "delete":
                    return
            except sqlite3.Error:
                pass
            time.sleep(pause_s)
        log.info("%s: a reader holds the file open; it stays in WAL mode (its WAL is empty)", self.path)

    def __enter__(self) -> "RecordingWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
