"""Logged series, the writer's side: :class:`SeriesLog` buffers points and stages them in the writer's commit.

One :class:`SeriesLog` belongs to each :class:`recorder.writer.RecordingWriter` (its ``series``
attribute).  :meth:`SeriesLog.log` validates and buffers; the writer's commit calls
:meth:`SeriesLog.stage` inside its transaction, which writes, per series with buffered points,
packed columnar blocks of up to :data:`recorder.schema.SERIES_BLOCK_POINTS` points (the newest grows
until full) and the changed chunks of its pyramid (:class:`recorder.seriesfmt.SeriesPyramid`).  The
in-memory state (newest block, pyramid builder) is adopted only after ``COMMIT``, so a failed commit
leaves everything to retry, as for the blocks.

Work per commit is proportional to the series that received points since the previous one (a dirty
set), never to the number of series the file holds: copying 10,000 series is linear.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from . import schema
from .codec import json_safe, loads_bounded
from .errors import RecordingError
from .seriesfmt import (BASE, BLOCK_POINTS, CHUNK, MAX_SERIES, SeriesPyramid, as_value, check_name, decode_chunk,
                        decode_points, encode_chunk, encode_points, level_counts)

__all__ = ["SeriesLog", "MAX_BUFFER_POINTS"]

#: points buffered while commits fail
MAX_BUFFER_POINTS = 1 << 20
_FLUSH_POINTS = 1 << 16


@dataclass
class _State:
    """What the writer keeps of one series between commits."""

    sid: int | None                      # its id in the file (None: inserted at the next commit)
    pyramid: SeriesPyramid
    tail: tuple | None = None            # (block id, it, wall, value) of the newest block while not full
    last_step: int | None = None         # the newest iteration logged (buffered or committed)
    buf: list = field(default_factory=list)    # (iteration, wall_time, value) not committed yet
    parts: list = field(default_factory=list)  # (iterations, wall times, values) arrays from log_many, before buf
    n_buf: int = 0                              # points in parts and buf


class SeriesLog:
    """The logged series of one :class:`recorder.writer.RecordingWriter` (its ``series`` attribute).

    :meth:`log` validates and buffers; the writer's commit calls :meth:`stage` inside its transaction
    and the returned callable after ``COMMIT``.  Every method runs under the writer's lock.

    Parameters
    ----------
    path : the recording (for messages)
    lock : the writer's lock (its commits hold it from :meth:`stage` to the adoption)
    connection, closed, failing : callables giving the writer's connection, whether it is closed, whether
        its commits are failing now
    flush : commits now (the writer reports failures)
    """

    def __init__(self, path, lock, connection, closed, failing, flush):
        self.path = path
        self._lock = lock                # the writer's lock
        self._connection = connection    # () -> the writer's connection (None until opened)
        self._closed = closed            # () -> whether the writer is closed
        self._failing = failing          # () -> whether commits are failing now
        self._flush = flush              # commit now; failures are the writer's to report
        self._states: dict[str, _State] = {}
        self._dirty: dict[str, None] = {}     # series with points (or a row) to stage, in arrival order
        self._config: dict = {}
        self._tables: bool | None = None      # whether the file has the series tables
        self.pending_points = 0
        self.points_dropped = 0

    @property
    def pending(self) -> bool:
        """Whether points or configuration wait for a commit."""
        return bool(self.pending_points or self._config or self._dirty)

    def log(self, name: str, value, step: int, wall_time: float | None = None) -> None:
        """Buffer one point of series ``name`` at iteration ``step`` (committed with the next commit).

        Raises
        ------
        SeriesNameClash, ValueError, TypeError : see :func:`check_name`, :func:`as_value`; a step that is
            not an integer or smaller than the series' previous one; more than :data:`MAX_SERIES` series
        RecordingError : the writer is closed
        """
        name = check_name(name)
        v = as_value(value)
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise ValueError(f"series {name!r}: step must be an integer, got {type(step).__name__}")
        step = int(step)
        if not -(1 << 62) < step < (1 << 62):
            raise ValueError(f"series {name!r}: step {step} out of range")
        wt = time.time() if wall_time is None else float(wall_time)
        if self._closed():
            raise RecordingError(self.path, "writer is closed")
        with self._lock:
            st = self._state(name)
            if st.last_step is not None and step < st.last_step:
                raise ValueError(f"series {name!r}: step {step} goes backwards (the previous value was at "
                                 f"{st.last_step})")
            if self.pending_points >= MAX_BUFFER_POINTS and self._failing():
                self.points_dropped += 1
                return
            if st.parts and st.buf:  # keep arrival order: parts first, then the single points
                st.parts.append(self._buf_arrays(st))
                st.buf = []
            st.buf.append((step, wt, v))
            st.last_step = step
            self._dirty[name] = None
            st.n_buf += 1
            self.pending_points += 1
            big = self.pending_points >= _FLUSH_POINTS and not self._failing()
        if big:
            self._flush()

    @staticmethod
    def _buf_arrays(st: _State) -> tuple:
        return (np.array([p[0] for p in st.buf], np.int64), np.array([p[1] for p in st.buf], np.float64),
                np.array([p[2] for p in st.buf], np.float64))

    def log_many(self, name: str, steps, values, wall_time=None) -> None:
        """Buffer many points of one series at once (importers, benchmarks), validated as a whole.

        Parameters
        ----------
        steps : 1-D integers, never decreasing (nor below the series' previous step)
        values : 1-D numbers, as many (NaN and +-Inf kept)
        wall_time : one number or 1-D numbers (default: now)

        Raises
        ------
        SeriesNameClash, ValueError, TypeError : as :meth:`log`; nothing is buffered then
        """
        name = check_name(name)
        it, v = np.asarray(steps), np.asarray(values)
        if it.ndim != 1 or v.shape != it.shape or it.dtype.kind not in "iu" or v.dtype.kind not in "biuf":
            raise TypeError(f"series {name!r}: steps must be 1-D integers and values as many numbers")
        if not len(it):
            return
        if np.any(np.diff(it) < 0):
            raise ValueError(f"series {name!r}: steps go backwards")
        wt = np.broadcast_to(np.asarray(time.time() if wall_time is None else wall_time, np.float64), it.shape)
        if self._closed():
            raise RecordingError(self.path, "writer is closed")
        with self._lock:
            st = self._state(name)
            if st.last_step is not None and int(it[0]) < st.last_step:
                raise ValueError(f"series {name!r}: step {int(it[0])} goes backwards (the previous value was at "
                                 f"{st.last_step})")
            if self.pending_points >= MAX_BUFFER_POINTS and self._failing():
                self.points_dropped += len(it)
                return
            if st.buf:
                st.parts.append(self._buf_arrays(st))
                st.buf = []
            st.parts.append((it.astype(np.int64), np.array(wt), v.astype(np.float64)))
            st.last_step = int(it[-1])
            self._dirty[name] = None
            st.n_buf += len(it)
            self.pending_points += len(it)
            big = self.pending_points >= _FLUSH_POINTS and not self._failing()
        if big:
            self._flush()

    def declare(self, name: str) -> None:
        """Create series ``name`` at the next commit even if it gets no point (``gda-gl upgrade`` copies a
        series without points as one).

        Raises
        ------
        SeriesNameClash, ValueError : as :meth:`log`
        """
        name = check_name(name)
        if self._closed():
            raise RecordingError(self.path, "writer is closed")
        with self._lock:
            if self._state(name).sid is None:
                self._dirty[name] = None

    def config(self, values: Mapping) -> None:
        """Merge ``values`` (JSON-able; others stored as text) into ``meta.run["config"]`` at the next commit."""
        safe = json_safe({str(k): v for k, v in values.items()})
        text = json.dumps(safe, allow_nan=False, default=str)
        if len(text) > 1 << 20:
            raise ValueError(f"config values of {len(text)} characters (at most {1 << 20})")
        with self._lock:
            self._config.update(json.loads(text))
        self._flush()

    # -- state ---------------------------------------------------------------
    def _has_tables(self, con) -> bool:
        if self._tables is None:
            have = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            self._tables = {"series", "series_blocks", "series_lod"} <= have
        return self._tables

    def _state(self, name: str) -> _State:
        st = self._states.get(name)
        if st is None:
            if len(self._states) >= MAX_SERIES:
                raise ValueError(f"series {name!r}: a recording holds at most {MAX_SERIES} series")
            st = self._resume(name)
            self._states[name] = st
        return st

    def _resume(self, name: str) -> _State:
        """The state of a series already in the file (appending), else a new one."""
        con = self._connection()
        row = con.execute("SELECT id FROM series WHERE name = ?", (name,)).fetchone() \
            if con is not None and self._has_tables(con) else None
        if row is None:
            return _State(None, SeriesPyramid())
        sid = int(row[0])
        blocks = con.execute("SELECT id, n, data FROM series_blocks WHERE series = ? ORDER BY id DESC LIMIT 1",
                             (sid,)).fetchone()
        total = con.execute("SELECT coalesce(sum(n), 0) FROM series_blocks WHERE series = ?", (sid,)).fetchone()[0]
        if blocks is None:
            return _State(sid, SeriesPyramid())
        bid, n, data = blocks
        it, wall, val = decode_points(data, n, f"series {name!r} block {bid}")
        chunks = []
        for level, c in enumerate(level_counts(total)):
            ci = (c - 1) // CHUNK
            r = con.execute("SELECT n, data FROM series_lod WHERE series = ? AND level = ? AND chunk = ?",
                            (sid, level, ci)).fetchone()
            if r is None:
                raise RecordingError(self.path, f"cannot append to series {name!r}: its pyramid is damaged")
            chunks.append((ci, decode_chunk(r[1], r[0], level, f"series {name!r}")))
        rem = total % BASE
        pyr = SeriesPyramid.resume(total, chunks, it[n - rem:] if rem else None, val[n - rem:] if rem else None)
        tail = (bid, it, wall, val) if n < BLOCK_POINTS else None
        return _State(sid, pyr, tail, int(it[-1]))

    # -- committing ----------------------------------------------------------
    def stage(self, con: sqlite3.Connection):
        """Write the buffered points and configuration inside the writer's open transaction.

        Returns a callable that adopts the new state; the writer calls it after ``COMMIT`` only.
        """
        if not self.pending:
            return lambda: None
        dirty = list(self._dirty)
        if dirty and not self._has_tables(con):
            for stmt in schema.series_statements():
                con.execute(stmt)
        adopt = []
        for name in dirty:  # only the series that changed: a commit's work does not grow with the file
            st = self._states[name]
            adopt.append((st, st.n_buf, *self._stage_one(con, name, st)))
        config = dict(self._config)
        if config:
            self._stage_config(con, config)

        def finish():
            if adopt:
                self._tables = True
            for st, k, sid, tail, pyr in adopt:
                st.sid, st.tail, st.pyramid = sid, tail, pyr
                st.buf, st.parts, st.n_buf = [], [], 0  # the writer's lock is held from stage to here
                self.pending_points -= k
            for name in dirty:
                self._dirty.pop(name, None)
            for key in config:
                if self._config.get(key) is config[key]:
                    del self._config[key]
        return finish

    def _stage_one(self, con, name: str, st: _State):
        sid = st.sid
        if sid is None:
            sid = con.execute("INSERT INTO series(name) VALUES (?)", (name,)).lastrowid
        if not st.n_buf:
            return sid, st.tail, st.pyramid
        parts = st.parts + ([self._buf_arrays(st)] if st.buf else [])
        pts = tuple(np.concatenate(c) for c in zip(*parts)) if len(parts) > 1 else parts[0]
        it, wall, val = pts
        bid = None
        if st.tail is not None:
            bid = st.tail[0]
            it, wall, val = (np.concatenate([a, b]) for a, b in zip(st.tail[1:], pts))
        tail = None
        for a in range(0, len(it), BLOCK_POINTS):
            b = min(len(it), a + BLOCK_POINTS)
            args = (int(it[a]), int(it[b - 1]), b - a, encode_points(it[a:b], wall[a:b], val[a:b]))
            if bid is not None:
                con.execute("UPDATE series_blocks SET first_iteration = ?, last_iteration = ?, n = ?, data = ? "
                            "WHERE id = ?", (*args, bid))
                cur, bid = bid, None
            else:
                cur = con.execute("INSERT INTO series_blocks(series, first_iteration, last_iteration, n, data) "
                                  "VALUES (?, ?, ?, ?, ?)", (sid, *args)).lastrowid
            tail = (cur, it[a:b], wall[a:b], val[a:b]) if b - a < BLOCK_POINTS else None
        pyr = st.pyramid.copy()
        rows = [(sid, level, c, len(r["rows"]), int(r["first_it"][0]), int(r["last_it"][-1]), encode_chunk(r))
                for level, c, r in pyr.add(*pts[::2])]
        con.executemany("INSERT OR REPLACE INTO series_lod(series, level, chunk, n, first_iteration, "
                        "last_iteration, data) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        return sid, tail, pyr

    @staticmethod
    def _stage_config(con, config: dict) -> None:
        row = con.execute("SELECT value FROM meta WHERE key = 'run'").fetchone()
        run = loads_bounded(row[0]) if row else {}
        if not isinstance(run, dict):
            run = {}
        merged = dict(run.get("config") or {}) if isinstance(run.get("config"), dict) else {}
        merged.update(config)
        run["config"] = merged
        con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('run', ?)",
                    (json.dumps(run, allow_nan=False, default=str),))

