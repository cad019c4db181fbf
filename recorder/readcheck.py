"""What a reader checks before it trusts a file: identity, schema objects, metadata, event rows.

:func:`validate_identity` inspects ``sqlite_master`` before anything else is read (views, triggers,
virtual tables and generated columns are refused; with ``exact=True``, the writer's check before it
appends, every object must be what :mod:`recorder.schema` declares); :func:`read_meta` validates the
metadata values; :func:`connect_readonly` opens a connection that cannot change the file and runs no SQL
stored in it; :func:`guarded` turns any error of a read method into one :class:`RecordingError` line.
Used by :mod:`recorder.reader` and the writer (:mod:`recorder.writefile`).
"""

from __future__ import annotations

import functools
import os
import sqlite3
from pathlib import Path
from urllib.parse import quote as pathname2url  # urllib.request.pathname2url on POSIX, without its 60 ms import

import numpy as np

from . import schema
from .codec import BlockError, as_grid, loads_bounded
from .errors import RecordingError, sql_error
from .lock import parse_lock_record


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


def guarded(method):
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
