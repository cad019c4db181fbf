"""Read-only access to recordings: :class:`Recording` and :func:`open_recordings`.

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
from urllib.parse import quote as pathname2url  # urllib.request.pathname2url on POSIX, without its 60 ms import

import numpy as np

from . import schema
from .codec import (MAX_BLOCK_ROWS, READ_BUDGET_BYTES, TRIAL_BYTES, BlockError, Iterations, as_grid, decode_block,
                    declared_trials, interval_of, loads_bounded)
from .errors import RecordingError, sql_error
from .fsutil import check_recording_file, has_journal
from .lock import parse_lock_record, writer_alive

__all__ = ["Recording", "open_recordings", "sql_error", "READ_BUDGET_BYTES", "read_meta", "validate_identity",
           "connect_readonly", "stored_fields_of"]

#: bytes of one row's per-iteration fields and trial offset in memory
_ROW_BYTES = sum(np.dtype(d).itemsize for d in schema.ITER_DTYPES.values()) + 8

_META_KEYS = ("run", "alpha_grid", "created_by", "writer", "lod")
_LOD_COLUMNS = ("level", "chunk", "n", "first_iteration", "last_iteration", "data")
_REQUIRED_COLUMNS = {
    "meta": ("key", "value"),
    "blocks": ("id", "first_iteration", "last_iteration", "n"),  # + schema.block_columns(version)
    "events": ("id", "iteration", "wall_time", "kind", "message"),
}


def connect_readonly(path: Path, *, snapshot: bool = False, immutable: bool = False) -> sqlite3.Connection:
    """An SQLite connection that cannot change ``path`` and runs no SQL stored in it.

    ``snapshot=True`` is for a private copy: opened read-write so SQLite may roll
    back a hot journal in the copy, then made query-only.  ``immutable=True`` is for
    a finished file (:func:`finished_wal_file`): SQLite then reads the file alone,
    creates nothing beside it and needs no write access to its directory.
    """
    uri = "file:" + pathname2url(os.fsencode(path.resolve())) + ("" if snapshot else "?mode=ro")  # any bytes
    if immutable and not snapshot:
        uri += "&immutable=1"
    con = sqlite3.connect(uri, uri=True, timeout=10.0, isolation_level=None, check_same_thread=False)
    try:
        con.execute("PRAGMA trusted_schema = OFF")
        con.execute("PRAGMA query_only = ON")
    except sqlite3.Error:
        con.close()
        raise
    return con


def finished_wal_file(path: Path) -> bool:
    """Whether ``path`` is in WAL mode with no WAL content beside it (no ``-wal`` file, or an empty one).

    Such a file holds every committed transaction in itself: a writer that closed while a reader had
    the file open could not switch it back to the rollback journal.  Opening it the usual way would make
    SQLite create ``-wal`` and ``-shm`` files beside it (and fail on read-only media), so the reader opens
    it immutable, and falls back to the usual way when ``meta.writer`` says a writer may still be appending.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
        wal = os.stat(str(path) + "-wal").st_size if os.path.lexists(str(path) + "-wal") else 0
    except OSError:
        return False
    return len(head) == 20 and head[18] == 2 and head[19] == 2 and wal == 0


def _canonical(sql) -> str:
    return " ".join(str(sql).split()) if sql is not None else ""


@functools.lru_cache(maxsize=4)
def _declared_objects(statements: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """``name -> (type, canonical sql)`` of what :func:`recorder.schema.create_statements` creates."""
    con = sqlite3.connect(":memory:")
    try:
        for stmt in statements:
            con.execute(stmt)
        return {name: (typ, _canonical(sql)) for typ, name, sql in
                con.execute("SELECT type, name, sql FROM sqlite_master")}
    finally:
        con.close()


def _blocks_column_names(con: sqlite3.Connection) -> list[str]:
    return [str(r[1]) for r in con.execute('PRAGMA table_xinfo("blocks")').fetchall()]


def stored_fields_of(con: sqlite3.Connection, version: int) -> tuple[tuple[str, np.dtype], ...]:
    """(name, stored dtype) of the per-iteration columns a validated file has, in column order
    (:func:`recorder.schema.stored_fields` for the optional statistics it stores)."""
    if version < 2:
        return schema.stored_fields(version)
    return schema.stored_fields(version, schema.optional_in(_blocks_column_names(con)))


def _check_objects(objects, path: Path) -> set:
    """Refuse views, triggers, virtual tables and unknown object types; returns the table names."""
    tables = set()
    for typ, name, _tbl, sql in objects:
        label = str(name)[:60]
        if typ in ("view", "trigger"):
            raise RecordingError(path, f"refused: the file stores SQL that would run when it is read or "
                                       f"written ({typ} {label!r}); a recording holds only its tables")
        if typ == "table":
            if _canonical(sql).upper().startswith("CREATE VIRTUAL"):
                raise RecordingError(path, f"refused: virtual table {label!r} (a recording holds only plain tables)")
            tables.add(name)
        elif typ != "index":
            raise RecordingError(path, f"refused: unexpected schema object {typ!r} {label!r}")
    return tables


def _check_exact(con: sqlite3.Connection, objects, path: Path) -> None:
    """Every table and index exactly as this release would create a file with the same optional columns."""
    names = _blocks_column_names(con)
    unknown = schema.unknown_in(names)
    if unknown:
        raise RecordingError(path, "cannot append: the recording stores statistics this gda-gl does not know "
                                   f"({', '.join(c[2:][:40] for c in unknown[:3])}); append with the newer "
                                   "gda-gl that wrote it")
    declared = _declared_objects(tuple(schema.create_statements(schema.optional_in(names),
                                                                schema.has_row_alphas(names))))
    for typ, name, _tbl, sql in objects:
        if not str(name).startswith("sqlite_autoindex_") and declared.get(name) != (typ, _canonical(sql)):
            raise RecordingError(path, f"refused for writing: {typ} {str(name)[:60]!r} is not what the recording "
                                       f"schema declares (the file was changed outside gda-gl)")


def _check_columns(con: sqlite3.Connection, path: Path, version: int, tables: set) -> None:
    """Required tables and columns present, no generated columns."""
    required_tables = dict(_REQUIRED_COLUMNS)
    required_tables["blocks"] = required_tables["blocks"] + schema.required_block_columns(version)
    if version >= 2:
        required_tables["lod"] = _LOD_COLUMNS
    missing = set(required_tables) - tables
    if missing:
        raise RecordingError(path, f"damaged recording (missing tables: {', '.join(sorted(missing))})")
    for table, required in required_tables.items():
        info = con.execute(f'PRAGMA table_xinfo("{table}")').fetchall()
        generated = [r[1] for r in info if r[6] in (2, 3)]
        if generated:
            raise RecordingError(path, f"refused: table {table} has generated column {str(generated[0])[:60]!r} "
                                       "(SQL stored in the file would run on every read)")
        lacking = [c for c in required if c not in {r[1] for r in info}]
        if lacking:
            raise RecordingError(path, f"damaged recording (table {table} lacks column {lacking[0]})")


def validate_identity(con: sqlite3.Connection, path: Path, *, exact: bool = False) -> None:
    """Check application id, schema version and every object in ``sqlite_master``.

    Parameters
    ----------
    con : a connection to the file (nothing read from it yet)
    path : for messages
    exact : also require every table and index to be exactly what this version's
        schema declares for a file with the same optional statistic columns (the
        writer, before it appends, so no trigger, default, CHECK or index
        expression stored in the file can run on an insert); a file with columns
        this release does not know is refused

    Raises
    ------
    RecordingError
        another application's database, a newer or unknown schema version,
        views, triggers, virtual tables or generated columns, missing tables or columns.
    """
    app_id = con.execute("PRAGMA application_id").fetchone()[0]
    version = con.execute("PRAGMA user_version").fetchone()[0]
    if app_id != schema.APPLICATION_ID:
        raise RecordingError(path, "not a gda recording (an SQLite database of another application)")
    if version > schema.SCHEMA_VERSION:
        raise RecordingError(path, f"recording schema version {version} is newer than this gda-gl supports "
                                   f"({schema.SCHEMA_VERSION}); upgrade gda-gl")
    if version < 1:
        raise RecordingError(path, f"unknown recording schema version {version}")
    if exact and version != schema.SCHEMA_VERSION:
        raise RecordingError(path, f"cannot append to a schema-{version} recording (this gda-gl writes "
                                   f"schema {schema.SCHEMA_VERSION}); run 'gda-gl upgrade' to make a copy to append to")
    try:
        objects = con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    except UnicodeDecodeError:
        raise RecordingError(path, "damaged recording (schema text that is not valid UTF-8)") from None
    tables = _check_objects(objects, path)
    if exact and "blocks" in tables:
        _check_exact(con, objects, path)
    _check_columns(con, path, version, tables)


def read_meta(con: sqlite3.Connection, path: Path) -> dict:
    """The validated ``meta`` values this version knows (``run``, ``alpha_grid``, ``created_by``, ``writer``).

    Raises
    ------
    RecordingError
        a value that is not bounded JSON of the expected type; no alpha grid.
    """
    qs = ", ".join("?" for _ in _META_KEYS)
    meta: dict = {}
    for key, value in con.execute(f"SELECT key, value FROM meta WHERE key IN ({qs})", _META_KEYS):
        if key in meta:
            raise RecordingError(path, f"damaged metadata (key {key!r} appears twice)")
        try:
            meta[key] = loads_bounded(value)
        except ValueError as exc:
            raise RecordingError(path, f"damaged metadata ({key}: {exc})") from None
    if "alpha_grid" not in meta:
        raise RecordingError(path, "damaged metadata (no alpha grid)")
    try:
        grid, meta["row_alphas"] = schema.parse_grid_meta(meta["alpha_grid"])
        meta["alpha_grid"] = as_grid(grid)
    except ValueError as exc:
        raise RecordingError(path, f"damaged metadata ({exc})") from None
    run = meta.setdefault("run", {})
    if not isinstance(run, dict):
        raise RecordingError(path, f"damaged metadata (run is {type(run).__name__}, expected an object)")
    if "created_by" in meta and not isinstance(meta["created_by"], str):
        raise RecordingError(path, "damaged metadata (created_by is not text)")
    if "writer" in meta:
        try:
            meta["writer"] = parse_lock_record(meta["writer"])
        except ValueError as exc:
            raise RecordingError(path, f"damaged metadata ({exc})") from None
    return meta


def _event(path: Path, eid, it, wt, k, msg) -> tuple:
    """One validated event row as ``(iteration, wall_time, kind, message)``."""
    if it is not None and (isinstance(it, bool) or not isinstance(it, int)):
        raise RecordingError(path, f"damaged event {eid}: iteration is not an integer")
    if wt is not None and not isinstance(wt, (int, float)):
        raise RecordingError(path, f"damaged event {eid}: wall_time is not a number")
    if not isinstance(k, str) or not isinstance(msg, str):
        raise RecordingError(path, f"damaged event {eid}: kind and message must be text")
    return it, None if wt is None else float(wt), k, msg


def _guarded(method):
    """Turn any error of a read method into one :class:`RecordingError` line naming the file."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except RecordingError:
            raise
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise sql_error(self.path, exc) from None
        except BlockError as exc:
            raise RecordingError(self.path, f"damaged block: {exc}") from None
        except MemoryError:
            raise RecordingError(self.path, "too large to read into memory") from None
        except (ValueError, TypeError, OverflowError, IndexError, KeyError) as exc:
            raise RecordingError(self.path, f"damaged recording ({type(exc).__name__}: {exc})") from None

    return wrapper


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


class Recording:
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
    def _index(self, where: str = "", args=(), con: sqlite3.Connection | None = None
               ) -> list[tuple[int, int, int, int]]:
        """Validated ``(id, n, first_iteration, last_iteration)`` of the blocks matching ``where``, by id.

        The stored row count is checked against the byte length of the
        iteration column (``length()`` reads the record header, not the BLOB),
        so every later allocation is bounded by bytes the file holds.
        """
        # typeof() of every BLOB column, like length(), is answered from the record header
        kinds = " || ',' || ".join(f"typeof({c})" for c in self._columns)
        sql = ("SELECT id, n, first_iteration, last_iteration, length(f_iteration), typeof(f_iteration), "
               f"{kinds} FROM blocks{where} ORDER BY id")
        if con is None:
            rows = self.query(sql, args)
        else:
            rows = con.execute(sql, args).fetchall()
        out = []
        prev_last = None
        item = schema.ITER_DTYPES["iteration"].itemsize
        names = self._columns
        all_blobs = ",".join("blob" for _ in names)
        for bid, n, first, last, nbytes, typ, kinds in rows:
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (bid, n, first, last)):
                raise RecordingError(self.path, f"damaged block {bid}: id, n, first_iteration and last_iteration "
                                                "must be integers")
            if kinds != all_blobs:
                bad = next((c, k) for c, k in zip(names, str(kinds).split(",")) if k != "blob")
                raise RecordingError(self.path, f"damaged block {bid}: column {bad[0]} is {bad[1]}, expected a BLOB")
            if n <= 0 or (self.version < 2 and n * item != nbytes) or (self.version >= 2 and n > MAX_BLOCK_ROWS):
                raise RecordingError(self.path, f"damaged block {bid}: row count n = {n} does not match its "
                                                f"{nbytes}-byte iteration column")
            if first > last or (prev_last is not None and first <= prev_last):
                raise RecordingError(self.path, f"damaged block {bid}: iterations {first}..{last} out of order")
            prev_last = last
            out.append((bid, n, first, last))
        return out

    @_guarded
    def n_iterations(self) -> int:
        """Number of committed iterations."""
        return sum(r[1] for r in self._index())

    @_guarded
    def iteration_span(self) -> tuple[int, int] | None:
        idx = self._index()
        return None if not idx else (idx[0][2], idx[-1][3])

    @_guarded
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

    @_guarded
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

    @_guarded
    def _events_between(self, lo, hi) -> list:
        out = []
        for eid, it, wt, k, msg in self.query("SELECT id, iteration, wall_time, kind, message FROM events "
                                              "WHERE id >= ? AND id <= ? ORDER BY id", (lo, hi)):
            out.append(_event(self.path, eid, it, wt, k, msg))
        return out

    # -- blocks --------------------------------------------------------------
    def _assemble(self, index: list, con: sqlite3.Connection, skip_first: int = 0,
                  budget: tuple[int, int] | None = None) -> Iterations:
        """Decode the blocks of ``index`` (inside the caller's read transaction) into one table; ``budget``:
        (bytes allowed, bytes the rows take), checked again with each block's trial points as it is decoded
        (memory stays within the budget plus one block)."""
        k = len(self.alpha_grid)
        if not index:
            out = Iterations.empty(self.alpha_grid)
            out.row_alphas = np.empty((0, k), schema.ROW_ALPHA_DTYPE) if self.row_alphas else None
            return out
        total = sum(r[1] for r in index) - skip_first
        cols = {n: np.empty(total, dt) for n, dt in schema.ITER_DTYPES.items()}
        phi = np.empty((total, k), schema.PHI_DTYPE)
        ra = np.empty((total, k), schema.ROW_ALPHA_DTYPE) if self.row_alphas else None
        tcounts = np.empty(total, np.int64)
        tparts: dict[str, list] = {n: [] for n in schema.TRIAL_DTYPES}
        pos = n_trials = 0
        lo, hi = index[0][0], index[-1][0]
        cur = con.execute(f"SELECT id, n, {', '.join(self._columns)} FROM blocks "
                          "WHERE id >= ? AND id <= ? "
                          "ORDER BY id", (lo, hi))
        expected = iter(index)
        for j, r in enumerate(cur):
            bid, n, first, last = next(expected, (None, None, None, None))
            if r[0] != bid or r[1] != n:
                raise RecordingError(self.path, f"damaged block {r[0]}: changed while being read")
            try:
                bcols, bphi, tc, btr = decode_block(r[2:], n, k, self.version, self.stored_fields, self.row_alphas,
                                                    self._interval)
            except BlockError as exc:
                raise RecordingError(self.path, f"damaged block {bid}: {exc}") from None
            its = bcols["iteration"]
            if its[0] != first or its[-1] != last:
                raise RecordingError(self.path, f"damaged block {bid}: first/last_iteration {first}..{last} "
                                                f"disagree with its iterations {its[0]}..{its[-1]}")
            s = skip_first if j == 0 else 0
            m = n - s
            if budget is not None:
                n_trials += len(btr["alpha"])
                if budget[1] + n_trials * TRIAL_BYTES > budget[0]:
                    self._over_budget(total, n_trials, budget[1] + n_trials * TRIAL_BYTES, budget[0])
            for name in schema.ITER_DTYPES:
                cols[name][pos:pos + m] = bcols[name][s:]
            phi[pos:pos + m] = bphi[s:]
            if ra is not None:
                ra[pos:pos + m] = bcols[schema.ROW_ALPHA_COLUMN][s:]
            t0 = int(tc[:s].sum())
            tcounts[pos:pos + m] = tc[s:]
            for name in schema.TRIAL_DTYPES:
                tparts[name].append(btr[name][t0:])
            pos += m
        if pos != total:
            raise RecordingError(self.path, "damaged recording: blocks changed while being read")
        off = np.zeros(total + 1, np.int64)
        np.cumsum(tcounts, out=off[1:])
        trials = {n: (np.concatenate(v) if v else np.empty(0, schema.TRIAL_DTYPES[n])) for n, v in tparts.items()}
        return Iterations(self.alpha_grid, cols, phi, off, trials, ra)

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

    def _budget(self, index: list, max_bytes: int | None) -> tuple[int, int]:
        """(budget, bytes the rows of ``index`` need); refuses when the rows alone pass the budget (default
        :data:`READ_BUDGET_BYTES`), counted from the row counts the blocks declare, before decoding.  Trial
        points are counted as each block is decoded (:meth:`_assemble`)."""
        budget = READ_BUDGET_BYTES if max_bytes is None else int(max_bytes)
        rows = sum(r[1] for r in index)
        k = len(self.alpha_grid)
        need = rows * (4 * k + 8 * k * bool(getattr(self, "row_alphas", False)) + _ROW_BYTES)
        if need > budget:
            self._over_budget(rows, 0, need, budget)
        return budget, need

    def _over_budget(self, rows: int, trials: int, need: int, budget: int):
        k = len(self.alpha_grid)
        raise RecordingError(self.path, f"reading {rows:,} iterations x {k} alphas"
                                        f"{f' and {trials:,} trial points' if trials else ''} at once needs "
                                        f"{'more than ' if trials else 'about '}{need / 2 ** 20:,.0f} MiB, more "
                                        f"than the read budget of {budget / 2 ** 20:,.0f} MiB (read(start, stop) "
                                        "reads a range; recorder.window.RunWindows reads windows)")

    @_guarded
    def declared_bytes(self, stop_above: int | None = None) -> tuple[int, int, int]:
        """(rows, decoded bytes, trial points) the whole file's blocks declare: the rows from the block headers,
        the trial points from each block's ``trial_count`` column decoded alone (a pass over the file: for the
        in-memory index of a file without a stored pyramid); counting stops once the bytes pass ``stop_above``."""
        def work(con):
            index = self._index(con=con)
            rows = sum(r[1] for r in index)
            k = len(self.alpha_grid)
            need = rows * (4 * k + 8 * k * bool(self.row_alphas) + _ROW_BYTES)
            trials = 0
            if stop_above is not None and need > stop_above:
                return rows, need, trials
            for bid, n, tc in con.execute("SELECT id, n, trial_count FROM blocks ORDER BY id"):
                try:
                    trials += declared_trials(tc, n, self.version)
                except BlockError as exc:
                    raise RecordingError(self.path, f"damaged block {bid}: {exc}") from None
                if stop_above is not None and need + trials * TRIAL_BYTES > stop_above:
                    break
            return rows, need + trials * TRIAL_BYTES, trials

        return self._read_tx(work)

    @_guarded
    def read(self, start: int | None = None, stop: int | None = None, *, max_bytes: int | None = None) -> Iterations:
        """Committed iterations with ``start <= iteration < stop`` (all by default) as numpy columns.

        Refused (:class:`RecordingError`) when the blocks holding them declare more rows than fit in
        ``max_bytes`` (default :data:`READ_BUDGET_BYTES`, 1 GiB), before anything is decoded.
        """
        cond, args = [], []
        if start is not None:
            cond.append("last_iteration >= ?")
            args.append(int(start))
        if stop is not None:
            cond.append("first_iteration < ?")
            args.append(int(stop))
        where = (" WHERE " + " AND ".join(cond)) if cond else ""

        def work(con):
            index = self._index(where, args, con=con)
            return index, self._assemble(index, con, budget=self._budget(index, max_bytes))

        index, data = self._read_tx(work)
        if index and start is None and stop is None:
            self._cursor = (index[-1][0], index[-1][1])
        if start is not None or stop is not None:
            it = data.iteration
            a = 0 if start is None else int(np.searchsorted(it, start))
            b = len(it) if stop is None else int(np.searchsorted(it, stop))
            data = data.slice_rows(a, b)
        return data

    @_guarded
    def read_new(self) -> Iterations:
        """Iterations committed since the previous ``read()``/``read_new()`` (the live tail)."""
        bid, seen = self._cursor

        def work(con):
            index = self._index(" WHERE id >= ?", (bid,), con=con)
            skip = seen if index and index[0][0] == bid else 0
            if index and skip > index[0][1]:
                raise RecordingError(self.path, f"damaged block {bid}: it lost rows already read")
            return index, self._assemble(index, con, skip_first=skip, budget=self._budget(index, None))

        index, data = self._read_tx(work)
        if index:
            self._cursor = (index[-1][0], index[-1][1])
        return data

    @_guarded
    def read_block(self, block_id: int) -> Iterations:
        """The rows of one block (validated); what windowed readers decode through their cache."""
        def work(con):
            index = self._index(" WHERE id = ?", (int(block_id),), con=con)
            return self._assemble(index, con)

        return self._read_tx(work)

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
