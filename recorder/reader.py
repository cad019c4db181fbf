"""Read-only access to recordings: :class:`Recording` and :func:`open_recordings`.

Readers open the file read-only (``mode=ro``), validate it before SQLite touches
it (size, header, application id, schema version) and never modify it.
``read_new`` returns only rows committed since the previous call: the live tail
used by ``gda-gl view --follow``.  Blocks are decoded by
:func:`recorder.codec.decode_block`, the same decoder the writer uses.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterable

import numpy as np

from . import schema
from .codec import Iterations, decode_block
from .errors import RecordingError
from .fsutil import check_recording_file
from .lock import writer_alive

__all__ = ["Recording", "open_recordings", "sql_error", "read_meta", "validate_identity"]


def sql_error(path: Path, exc: sqlite3.Error) -> RecordingError:
    msg = str(exc)
    if "malformed" in msg or "not a database" in msg or "disk image" in msg:
        return RecordingError(path, f"corrupt or truncated recording ({msg})")
    if "unable to open" in msg:
        return RecordingError(path, f"cannot be opened ({msg})")
    return RecordingError(path, f"SQLite error: {msg}")


def read_meta(con: sqlite3.Connection) -> dict:
    return {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta")}


def validate_identity(con: sqlite3.Connection, path: Path) -> None:
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
            raise sql_error(self.path, exc) from None
        try:
            validate_identity(self._con, self.path)
            self.meta = read_meta(self._con)
            self.alpha_grid = np.asarray(self.meta["alpha_grid"], np.float64)
        except RecordingError:
            self._con.close()
            raise
        except sqlite3.Error as exc:
            self._con.close()
            raise sql_error(self.path, exc) from None
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
            raise sql_error(self.path, exc) from None

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
            s = skip_first if j == 0 else 0
            m = n - s
            bcols, bphi, tc, btr = decode_block(r[2:2 + ncols], n, k)
            for name in schema.ITER_DTYPES:
                cols[name][pos:pos + m] = bcols[name][s:]
            phi[pos:pos + m] = bphi[s:]
            t0 = int(tc[:s].sum())
            tcounts[pos:pos + m] = tc[s:]
            for name in schema.TRIAL_DTYPES:
                tparts[name].append(btr[name][t0:])
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

