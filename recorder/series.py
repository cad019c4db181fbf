"""Logged scalar series: ``rec.log``, ``rec.log_dict``, ``rec.log_config``; storage, pyramid, windowed reads.

A *series* is a scalar logged at iterations (validation loss every 1,000 steps, accuracy, anything).
The per-iteration statistics ``train_loss``, ``lr`` and ``grad_norm`` are *built-in* series: the
same read API answers them from the recording's blocks and stored pyramid.

Storage (frozen in :mod:`recorder.schema`, tables ``series``, ``series_blocks``, ``series_lod``)
-----------------------------------------------------------------------------------------------
* Points are buffered by :class:`SeriesLog` (one per :class:`recorder.writer.RecordingWriter`, its
  ``series`` attribute) and committed by the writer's commit, in the same transaction as the
  iteration blocks (:meth:`SeriesLog.stage`): per series, packed columnar blocks of up to
  :data:`recorder.schema.SERIES_BLOCK_POINTS` points (the newest grows until full) and the changed
  chunks of its pyramid.  The in-memory state (newest block, pyramid builder) is adopted only after
  ``COMMIT``, so a failed commit leaves everything to retry, as for the blocks.
* The pyramid (:class:`SeriesPyramid`) has the geometry of :mod:`recorder.pyramid` (16 points per
  level-0 bucket, 4 buckets per parent, 4096 buckets per chunk) over a series' points; a bucket
  holds :data:`recorder.schema.SERIES_LOD_FIELDS`: the point count, the count of finite values and
  their min, max and sum, the first and last value as recorded (NaN and +-Inf kept), the first and
  last iteration.  :func:`reference_buckets` is its brute-force twin (tests).

Reading
-------
:func:`series_names`, :func:`read_series` (a whole series, for small ones) and :func:`window`
(what :meth:`recorder.window.RunWindows.series` calls): the points of ``[x0, x1)`` when there are
fewer than 16 per pixel column, else the buckets of the coarsest level with at least one per
column, so the work per frame is bounded by pixels whatever the series' length.  Every block and
chunk read from a file is validated; a damaged one is one :class:`recorder.errors.RecordingError`.

Bad input (:meth:`SeriesLog.log` raises, :func:`log_value` turns it into one warning and one event
per series and problem, and training goes on): a value that is not a number or has more than one
element, a name that is empty, longer than :data:`recorder.schema.MAX_SERIES_NAME` characters or
not printable, a step smaller than the series' previous one.  NaN and +-Inf are recorded as such.
A name that is a per-iteration field (``lr``, ``train_loss``, ...) is refused with one line
(:class:`SeriesNameClash`), never stored.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
import sqlite3
import threading
import time
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
from cachetools import LRUCache

from . import schema
from .codec import json_safe, loads_bounded
from .colcodec import CodecError, pack_columns, unpack_columns
from .errors import RecordingError
from .pyramid import grow_levels

log = logging.getLogger(__name__)

__all__ = ["BUILTIN_SERIES", "SeriesNameClash", "SeriesPoints", "SeriesBuckets", "SeriesLog", "SeriesPyramid",
           "check_name", "as_value", "reference_buckets", "series_names", "series_summary", "read_series", "window",
           "copy_series",
           "log_value", "log_values", "log_config", "framework_name"]

BASE, FANOUT, CHUNK = schema.LOD_BASE_ROWS, schema.LOD_FANOUT, schema.LOD_CHUNK
BLOCK_POINTS = schema.SERIES_BLOCK_POINTS
#: the per-iteration statistics also read as series (from blocks and the stored pyramid)
BUILTIN_SERIES = ("train_loss", "lr", "grad_norm")
#: names a logged series may not take: every per-iteration field
RESERVED = frozenset(n for n, _ in schema.FIELDS_V2) | frozenset(schema.ITER_DTYPES) | \
    frozenset(n for n, _, _ in schema.OPTIONAL_V2)
#: distinct series one file may hold; points buffered while commits fail
MAX_SERIES, MAX_BUFFER_POINTS = 10000, 1 << 20
_FLUSH_POINTS = 1 << 16
POINT_DTYPES = [np.dtype(d) for _, d in schema.SERIES_POINT_FIELDS]
FIELDS = tuple((n, np.dtype(d), op) for n, d, op in schema.SERIES_LOD_FIELDS)
DTYPES = {n: d for n, d, _ in FIELDS}
_TABLES = {"series": ("id", "name"),
           "series_blocks": ("id", "series", "first_iteration", "last_iteration", "n", "data"),
           "series_lod": ("series", "level", "chunk", "n", "first_iteration", "last_iteration", "data")}


class SeriesNameClash(ValueError):
    """A logged series may not take the name of a per-iteration field (a built-in series)."""


# --------------------------------------------------------------------------- validation

def check_name(name) -> str:
    """``name`` if it may name a logged series.

    Raises
    ------
    SeriesNameClash : a per-iteration field's name
    ValueError : not text, empty, longer than :data:`recorder.schema.MAX_SERIES_NAME`, not printable
    """
    if not isinstance(name, str):
        raise ValueError(f"a series name must be text, got {type(name).__name__}")
    if not name.strip():
        raise ValueError("a series name must not be empty")
    if len(name) > schema.MAX_SERIES_NAME:
        raise ValueError(f"series name {name[:40]!r}... has {len(name)} characters (at most "
                         f"{schema.MAX_SERIES_NAME})")
    if not name.isprintable():
        raise ValueError(f"series name {name[:60]!r} holds control characters")
    if name in RESERVED:
        raise SeriesNameClash(f"series name {name!r} is a built-in per-iteration statistic; log it under "
                              "another name")
    return name


def as_value(value) -> float:
    """A logged value as a float (NaN and +-Inf kept): a number, a numpy scalar or a one-element array or tensor.

    Raises
    ------
    TypeError : text, None, or anything that is not one number
    """
    if isinstance(value, (bool, int, float, np.integer, np.floating, np.bool_)):
        return float(value)
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"a series value must be a number, got {type(value).__name__}")
    numel = getattr(value, "numel", None)
    size = numel() if callable(numel) else getattr(value, "size", None)
    if size is not None and not callable(size):
        if int(size) != 1:
            raise TypeError(f"a series value must be one number, got {type(value).__name__} of {int(size)} elements")
        item = value.item() if hasattr(value, "item") else value
        if isinstance(item, (bool, int, float)):
            return float(item)
        raise TypeError(f"a series value must be a real number, got {type(item).__name__}")
    raise TypeError(f"a series value must be a number, got {type(value).__name__}")


# --------------------------------------------------------------------------- pyramid

def point_records(it: np.ndarray, value: np.ndarray) -> dict[str, np.ndarray]:
    """Every point as a bucket of one (the input of :func:`merge`)."""
    v = np.asarray(value, np.float64)
    fin = np.isfinite(v)
    vn = np.where(fin, v, np.nan)
    it = np.asarray(it, np.int64)
    return {"rows": np.ones(len(v), np.int32), "finite": fin.astype(np.int32), "first_it": it, "last_it": it,
            "min": vn, "max": vn, "sum": np.where(fin, v, 0.0), "first": v, "last": v}


def merge(recs: Mapping[str, np.ndarray], factor: int) -> dict[str, np.ndarray]:
    """Reduce consecutive groups of ``factor`` buckets (the last may be short) into one each."""
    m = len(recs["rows"])
    nb = -(-m // factor)
    if m == 0:
        return {n: np.empty(0, d) for n, d, _ in FIELDS}
    pad = nb * factor - m
    last_idx = np.minimum(np.arange(nb) * factor + factor - 1, m - 1)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, dt, op in FIELDS:
            v = recs[name]
            if op == "first":
                out[name] = np.ascontiguousarray(v[::factor], dt)
            elif op == "last":
                out[name] = np.ascontiguousarray(v[last_idx], dt)
            else:
                if pad:
                    v = np.concatenate([v, np.full(pad, np.nan if op in ("min", "max") else 0, v.dtype)])
                g = v.reshape(nb, factor)
                r = np.fmin.reduce(g, axis=1) if op == "min" else np.fmax.reduce(g, axis=1) if op == "max" \
                    else g.sum(axis=1)
                out[name] = r.astype(dt, copy=False)
    return out


def _take(recs, a, b=None):
    return {k: v[a:b] for k, v in recs.items()}


def _cat(a, b):
    return {k: np.concatenate([a[k], b[k]]) for k in b}


def level_counts(n_points: int) -> list[int]:
    """Buckets per level of a series of ``n_points`` (finest first; the top level has one)."""
    counts = []
    c = -(-n_points // BASE)
    while c > 0:
        counts.append(c)
        if c == 1:
            break
        c = -(-c // FANOUT)
    return counts


def bucket_points(level: int) -> int:
    """Points per bucket at ``level``."""
    return BASE * FANOUT ** level


class SeriesPyramid:
    """Grows one series' pyramid as points arrive; says which chunks changed (memory O(levels x CHUNK)).

    The algorithm of :class:`recorder.pyramid.PyramidBuilder` over :data:`FIELDS`.
    """

    def __init__(self):
        self.n_points = 0
        self._tail: dict | None = None                       # point records of the partial level-0 bucket
        self._levels: list[tuple[int, dict]] = []            # per level: (base bucket, buckets from base)
        self._counts: list[int] = []

    @classmethod
    def resume(cls, n_points: int, last_chunks: list[tuple[int, dict]], tail_it, tail_value) -> "SeriesPyramid":
        """Continue a stored pyramid: per level (chunk index, its buckets), the points of the partial bucket."""
        b = cls()
        b.n_points = n_points
        for ci, recs in last_chunks:
            b._levels.append((ci * CHUNK, dict(recs)))
            b._counts.append(ci * CHUNK + len(recs["rows"]))
        if tail_it is not None and len(tail_it):
            b._tail = point_records(tail_it, tail_value)
        return b

    def copy(self) -> "SeriesPyramid":
        b = copy.copy(self)  # arrays are never modified in place: sharing them is safe
        b.__dict__.update(_levels=list(self._levels), _counts=list(self._counts))
        return b

    def counts(self) -> list[int]:
        return list(self._counts)

    def add(self, it: np.ndarray, value: np.ndarray) -> list[tuple[int, int, dict]]:
        """Add points; returns the changed chunks ``(level, chunk, buckets)``."""
        if len(it) == 0:
            return []
        recs = point_records(it, value)
        first_bucket = self.n_points // BASE
        if self._tail is not None:
            recs = _cat(self._tail, recs)
        self.n_points += len(it)
        rem = self.n_points % BASE
        self._tail = _take(recs, len(recs["rows"]) - rem) if rem else None
        return grow_levels(self._levels, self._counts, merge(recs, BASE), first_bucket,
                           lambda: {n: np.empty(0, d) for n, d, _ in FIELDS}, merge)


def reference_buckets(it: np.ndarray, value: np.ndarray, level: int) -> dict[str, np.ndarray]:
    """Plain twin of the pyramid: the buckets of ``level`` reduced directly from the points, one at a time."""
    size = bucket_points(level)
    v = np.asarray(value, np.float64)
    out = {n: [] for n, _, _ in FIELDS}
    for a in range(0, len(v), size):
        s = v[a:a + size]
        f = s[np.isfinite(s)]
        out["rows"].append(len(s))
        out["finite"].append(len(f))
        out["first_it"].append(it[a])
        out["last_it"].append(it[min(len(v), a + size) - 1])
        out["min"].append(f.min() if len(f) else np.nan)
        out["max"].append(f.max() if len(f) else np.nan)
        out["sum"].append(f.sum() if len(f) else 0.0)
        out["first"].append(s[0])
        out["last"].append(s[-1])
    return {n: np.asarray(out[n], d) for n, d, _ in FIELDS}


def validate_buckets(recs: Mapping[str, np.ndarray], level: int, where: str) -> None:
    """Check stored buckets (row counts, finite counts, ordered spans); ValueError naming ``where``."""
    rows = recs["rows"].astype(np.int64)
    size = bucket_points(level)
    if len(rows) and (rows.min() < 1 or rows.max() > size or np.any(rows[:-1] != size)):
        raise ValueError(f"{where}: bucket point counts are not full buckets of {size}")
    fin = recs["finite"].astype(np.int64)
    if np.any((fin < 0) | (fin > rows)):
        raise ValueError(f"{where}: finite count outside 0..points")
    f, last = recs["first_it"], recs["last_it"]
    if np.any(last < f) or (len(f) > 1 and np.any(f[1:] < last[:-1])):
        raise ValueError(f"{where}: bucket iteration spans out of order")


# --------------------------------------------------------------------------- writing

def encode_points(it: np.ndarray, wall: np.ndarray, value: np.ndarray) -> bytes:
    """One block's ``data``: the packed :data:`recorder.schema.SERIES_POINT_FIELDS` columns."""
    return pack_columns([np.ascontiguousarray(a, d) for a, d in zip((it, wall, value), POINT_DTYPES)])


def encode_chunk(recs: Mapping[str, np.ndarray]) -> bytes:
    return pack_columns([np.ascontiguousarray(recs[n], d) for n, d, _ in FIELDS])


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
        self._config: dict = {}
        self._tables: bool | None = None      # whether the file has the series tables
        self.pending_points = 0
        self.points_dropped = 0

    @property
    def pending(self) -> bool:
        """Whether points or configuration wait for a commit."""
        return bool(self.pending_points or self._config)

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
            st.n_buf += len(it)
            self.pending_points += len(it)
            big = self.pending_points >= _FLUSH_POINTS and not self._failing()
        if big:
            self._flush()

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
        if self.pending_points and not self._has_tables(con):
            for stmt in schema.series_statements():
                con.execute(stmt)
        adopt = []
        for name, st in self._states.items():
            if st.n_buf:
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
            for key in config:
                if self._config.get(key) is config[key]:
                    del self._config[key]
        return finish

    def _stage_one(self, con, name: str, st: _State):
        sid = st.sid
        if sid is None:
            sid = con.execute("INSERT INTO series(name) VALUES (?)", (name,)).lastrowid
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


# --------------------------------------------------------------------------- reading

@dataclass
class SeriesPoints:
    """Raw points of a series, in logging order (iterations never decrease)."""

    name: str
    iteration: np.ndarray   # int64
    value: np.ndarray       # float64; NaN and +-Inf as logged
    wall_time: np.ndarray   # float64 unix seconds

    level = None            # what tells points from buckets

    def __len__(self) -> int:
        return len(self.iteration)


@dataclass
class SeriesBuckets:
    """Pyramid buckets of a series: each summarises consecutive points (``level``: 16 x 4**level points).

    ``min``/``max``/``sum`` are over the finite values (``finite`` of them; NaN/0 when none), ``first``/
    ``last`` the first and last value as logged.  Built-in series come from the iteration pyramid,
    which stores no first/last value: there they are NaN (use ``sum / finite``, the mean).
    """

    name: str
    level: int
    first_it: np.ndarray
    last_it: np.ndarray
    rows: np.ndarray
    finite: np.ndarray
    min: np.ndarray
    max: np.ndarray
    sum: np.ndarray
    first: np.ndarray
    last: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def of(cls, name: str, level: int, recs: Mapping[str, np.ndarray]) -> "SeriesBuckets":
        return cls(name, level, *(np.asarray(recs[n]) for n, _, _ in
                                  sorted(FIELDS, key=lambda f: _BUCKET_ORDER.index(f[0]))))


_BUCKET_ORDER = ("first_it", "last_it", "rows", "finite", "min", "max", "sum", "first", "last")


def decode_points(data, n, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate and decode one stored block: (iteration, wall_time, value)."""
    if not isinstance(n, int) or not 1 <= n <= BLOCK_POINTS:
        raise ValueError(f"{where}: point count {n!r} out of range")
    try:
        it, wall, val = unpack_columns(data, n, POINT_DTYPES, [f for f, _ in schema.SERIES_POINT_FIELDS])
    except CodecError as exc:
        raise ValueError(f"{where}: {exc}") from None
    if n > 1 and np.any(np.diff(it) < 0):
        raise ValueError(f"{where}: iterations go backwards")
    return it, wall, val


def decode_chunk(data, n, level: int, where: str) -> dict[str, np.ndarray]:
    """Validate and decode one stored pyramid chunk of ``n`` buckets."""
    where = f"{where} pyramid level {level}"
    if not isinstance(n, int) or not 1 <= n <= CHUNK:
        raise ValueError(f"{where}: bucket count {n!r} out of range")
    try:
        cols = unpack_columns(data, n, [d for _, d, _ in FIELDS], [f for f, _, _ in FIELDS])
    except CodecError as exc:
        raise ValueError(f"{where}: {exc}") from None
    recs = dict(zip((f for f, _, _ in FIELDS), cols))
    validate_buckets(recs, level, where)
    return recs


def _damaged(rec, exc) -> RecordingError:
    if isinstance(exc, RecordingError):
        return exc
    if isinstance(exc, sqlite3.Error):
        from .reader import sql_error

        return sql_error(rec.path, exc)
    return RecordingError(rec.path, f"damaged series: {exc}")


#: recordings whose series tables were found and checked (they never change shape once there)
_CHECKED: weakref.WeakSet = weakref.WeakSet()


def _logged(rec) -> dict[str, int]:
    """``name -> id`` of the logged series of an open recording; the tables' shape is checked once per
    recording (a frame and every layout ask), the list of series at every call (a live file gains series)."""
    def work(query):
        if rec not in _CHECKED:
            tables = {r[0] for r in query("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not set(_TABLES) <= tables:
                return {}
            for table, cols in _TABLES.items():
                info = query(f'PRAGMA table_xinfo("{table}")')
                if any(r[6] in (2, 3) for r in info) or not set(cols) <= {r[1] for r in info}:
                    raise ValueError(f"table {table} is not the declared one")
            _CHECKED.add(rec)
        out = {}
        for sid, name in query("SELECT id, name FROM series ORDER BY id LIMIT ?", (MAX_SERIES + 1,)):
            if not isinstance(sid, int) or not isinstance(name, str) or len(name) > schema.MAX_SERIES_NAME:
                raise ValueError("the series table holds a row that is not (integer id, name)")
            out["".join(ch if ch.isprintable() else "?" for ch in name)] = sid
        return out

    try:
        return rec.consistent_read(work)
    except (ValueError, sqlite3.Error, RecordingError) as exc:
        raise _damaged(rec, exc) from None


def series_names(rec, builtin: bool = True) -> list[str]:
    """The series of an open :class:`recorder.reader.Recording`: the built-in ones first (when
    ``builtin``), then the logged ones in the order they were first logged."""
    return (list(BUILTIN_SERIES) if builtin else []) + list(_logged(rec))


def series_summary(rec) -> list[tuple[str, int, int, int]]:
    """``(name, points, first iteration, last iteration)`` of every logged series, in first-logged order
    (one query over the block headers; what ``gda-gl info`` lists)."""
    names = _logged(rec)
    if not names:
        return []
    rows = rec.query("SELECT series, sum(n), min(first_iteration), max(last_iteration) FROM series_blocks "
                     "GROUP BY series")
    got = {r[0]: r[1:] for r in rows if all(isinstance(v, int) for v in r)}
    return [(name, *got[sid]) for name, sid in names.items() if sid in got]


def copy_series(rec, writer) -> int:
    """Copy every logged series of an open recording into ``writer`` (``gda-gl upgrade``), block by block,
    wall times kept; returns the points copied.  Memory is bounded by one block.

    Raises
    ------
    RecordingError : damaged series data in ``rec``, or a failed commit of ``writer``
    """
    total = 0
    for name, sid in _logged(rec).items():
        try:
            headers = rec.consistent_read(lambda query: _block_headers(query, sid))
            for j in range(len(headers)):
                it, wall, val = rec.consistent_read(lambda query: _points(query, sid, name, headers[j:j + 1]))
                writer.series.log_many(name, it, val, wall_time=wall)
                writer.flush()
                total += len(it)
        except (ValueError, sqlite3.Error) as exc:
            raise _damaged(rec, exc) from None
    return total


def _block_headers(query, sid: int, since: int = -1) -> np.ndarray:
    """Validated ``(id, first, last, n)`` of a series' blocks with id >= ``since``."""
    rows = query("SELECT id, first_iteration, last_iteration, n FROM series_blocks WHERE series = ? AND id >= ? "
                 "ORDER BY id", (sid, since))
    for r in rows:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in r) or not 1 <= r[3] <= BLOCK_POINTS:
            raise ValueError(f"block {r[0]!r}: header is not four integers with 1..{BLOCK_POINTS} points")
    h = np.array(rows, np.int64).reshape(-1, 4)
    if np.any(h[:, 2] < h[:, 1]) or (len(h) > 1 and np.any(h[1:, 1] < h[:-1, 2])):
        raise ValueError("block iteration spans out of order")
    return h


def _points(query, sid: int, name: str, headers: np.ndarray) -> tuple:
    """Decode the blocks of ``headers`` (checked against them)."""
    parts = []
    for bid, first, last, n in headers:
        r = query("SELECT n, data FROM series_blocks WHERE id = ?", (int(bid),))
        if not r:
            raise ValueError(f"series {name!r} block {bid} vanished")
        it, wall, val = decode_points(r[0][1], r[0][0], f"series {name!r} block {bid}")
        if r[0][0] < n or it[0] != first or it[n - 1] != last:
            raise ValueError(f"series {name!r} block {bid}: its points disagree with its header")
        parts.append((it[:n], wall[:n], val[:n]))
    if not parts:
        return np.empty(0, np.int64), np.empty(0), np.empty(0)
    return tuple(np.concatenate(c) for c in zip(*parts))


def _clip(name, it, wall, val, start, stop) -> SeriesPoints:
    a = 0 if start is None else int(np.searchsorted(it, start, "left"))
    b = len(it) if stop is None else int(np.searchsorted(it, stop, "left"))
    return SeriesPoints(name, it[a:b], val[a:b], wall[a:b])


def read_series(rec, name: str, start: int | None = None, stop: int | None = None) -> SeriesPoints:
    """Every point of series ``name`` with ``start <= iteration < stop`` (all by default) of an open recording.

    Reads the whole range (a built-in series decodes the recording's blocks): for small series or
    ranges; draw long ones through :meth:`recorder.window.RunWindows.series`.

    Raises
    ------
    KeyError : no such series
    RecordingError : damaged series data
    """
    if name in BUILTIN_SERIES:
        d = rec.read(start, stop)
        return SeriesPoints(name, np.asarray(d["iteration"], np.int64), np.asarray(d[name], np.float64),
                            np.asarray(d["wall_time"], np.float64))
    sid = _logged(rec).get(name)
    if sid is None:
        raise KeyError(f"{rec.path}: no series {name!r}")

    def work(query):
        h = _block_headers(query, sid)
        if start is not None:
            h = h[h[:, 2] >= start]
        if stop is not None:
            h = h[h[:, 1] < stop]
        return _points(query, sid, name, h)

    try:
        it, wall, val = rec.consistent_read(work)
    except (ValueError, sqlite3.Error) as exc:
        raise _damaged(rec, exc) from None
    return _clip(name, it, wall, val, start, stop)


# --------------------------------------------------------------------------- windows

def _span_key(x: float, default: int) -> int:
    """The first iteration a window boundary ``x`` admits (``it >= ceil(x)``), clamped."""
    return int(max(min(math.ceil(x), 1 << 62), -(1 << 62))) if math.isfinite(x) else default


def _recs_bytes(recs) -> int:
    return sum(v.nbytes for v in (recs.values() if isinstance(recs, dict) else recs))


class _LoggedView:
    """One logged series as a windowed reader sees it: block headers (grown as the file grows) and
    LRU caches of decoded blocks and pyramid chunks, bounded in bytes."""

    def __init__(self, sid: int, name: str):
        self.sid, self.name = sid, name
        self.headers = np.empty((0, 4), np.int64)     # block id, first, last, n
        self.row0 = np.zeros(1, np.int64)              # first point of each block, then the total
        self.counts: list[int] = []
        self.blocks: LRUCache = LRUCache(maxsize=16 << 20, getsizeof=_recs_bytes)
        self.chunks: LRUCache = LRUCache(maxsize=32 << 20, getsizeof=_recs_bytes)
        self.lock = threading.Lock()

    def refresh(self, query) -> None:
        """Read the headers of blocks written since the last call (the newest known block may have grown)."""
        since = int(self.headers[-1, 0]) if len(self.headers) else -1
        new = _block_headers(query, self.sid, since)
        known = self.headers
        if len(known):
            if not len(new) or new[0, 0] != since or new[0, 1] != known[-1, 1] or new[0, 3] < known[-1, 3]:
                raise ValueError(f"series {self.name!r} block {since} changed or vanished")
            self.blocks.pop(since, None)
            known = known[:-1]
            if len(new) and len(known) and new[0, 1] < known[-1, 2]:
                raise ValueError(f"series {self.name!r}: block iteration spans out of order")
        old = self.counts
        self.headers = np.concatenate([known, new])
        self.row0 = np.concatenate([[0], np.cumsum(self.headers[:, 3])]).astype(np.int64)
        self.counts = level_counts(int(self.row0[-1]))
        for key in [k for k in self.chunks if k[0] >= len(old) or k[1] >= (old[k[0]] - 1) // CHUNK]:
            self.chunks.pop(key, None)

    def count(self, lo: int, hi: int) -> int:
        """Points with ``lo <= iteration < hi`` (exact for whole blocks, interpolated inside the edge ones)."""
        h = self.headers
        if not len(h):
            return 0
        first, last, n = h[:, 1].astype(float), h[:, 2].astype(float), h[:, 3].astype(float)
        a = np.clip((lo - first) / (last - first + 1.0), 0.0, 1.0)
        b = np.clip((hi - first) / (last - first + 1.0), 0.0, 1.0)
        return int(round(float(np.sum((b - a) * n))))

    def _blocks_between(self, lo: int, hi: int) -> tuple[int, int]:
        h = self.headers
        return int(np.searchsorted(h[:, 2], lo, "left")), int(np.searchsorted(h[:, 1], hi, "left"))

    def points(self, query, lo: int, hi: int) -> SeriesPoints:
        j0, j1 = self._blocks_between(lo, hi)
        parts = []
        for j in range(j0, j1):
            bid = int(self.headers[j, 0])
            got = self.blocks.get(bid)
            if got is None:
                got = _points(query, self.sid, self.name, self.headers[j:j + 1])
                self.blocks[bid] = got
            parts.append(got)
        if not parts:
            return SeriesPoints(self.name, np.empty(0, np.int64), np.empty(0), np.empty(0))
        it, wall, val = (np.concatenate(c) for c in zip(*parts))
        return _clip(self.name, it, wall, val, lo, hi)

    def _chunk(self, query, level: int, c: int) -> dict:
        key = (level, c)
        recs = self.chunks.get(key)
        if recs is not None:
            return recs
        expect = min(CHUNK, self.counts[level] - c * CHUNK)
        r = query("SELECT n, data FROM series_lod WHERE series = ? AND level = ? AND chunk = ?", (self.sid, level, c))
        if not r:
            raise ValueError(f"series {self.name!r} pyramid level {level} chunk {c} missing")
        recs = decode_chunk(r[0][1], r[0][0], level, f"series {self.name!r} chunk {c}")
        if len(recs["rows"]) < expect:
            raise ValueError(f"series {self.name!r} pyramid level {level} chunk {c}: {len(recs['rows'])} "
                             f"buckets, expected {expect}")
        recs = {k: v[:expect] for k, v in recs.items()}  # a live writer may have added buckets since refresh
        self.chunks[key] = recs
        return recs

    def buckets(self, query, level: int, lo: int, hi: int) -> SeriesBuckets:
        j0, j1 = self._blocks_between(lo, hi)
        size = bucket_points(level)
        b0, b1 = int(self.row0[j0]) // size, min(self.counts[level], -(-int(self.row0[j1]) // size))
        parts = []
        for c in range(b0 // CHUNK, (b1 - 1) // CHUNK + 1) if b1 > b0 else ():
            recs = self._chunk(query, level, c)
            a, b = max(b0, c * CHUNK) - c * CHUNK, min(b1, c * CHUNK + len(recs["rows"])) - c * CHUNK
            parts.append(_take(recs, a, b))
        recs = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else \
            {n: np.empty(0, d) for n, d, _ in FIELDS}
        keep = (recs["last_it"] >= lo) & (recs["first_it"] < hi)
        return SeriesBuckets.of(self.name, level, {k: v[keep] for k, v in recs.items()})

    def window(self, query, lo: int, hi: int, width: int):
        with self.lock:
            self.refresh(query)
            per_col = self.count(lo, hi) / max(1, width)
            if per_col < BASE or not self.counts:
                return self.points(query, lo, hi)
            level = min(int(math.floor(math.log(per_col / BASE, FANOUT) + 1e-9)), len(self.counts) - 1)
            return self.buckets(query, level, lo, hi)


def _builtin_window(w, name: str, x0: float, x1: float, width: int):
    """A built-in series from the run's rows or its iteration pyramid (``lr:min`` ... ``lr:count``)."""
    level = w.choose_level(x0, x1, width)
    if level is None:
        d = w.rows(x0, x1)
        return SeriesPoints(name, np.asarray(d["iteration"], np.int64), np.asarray(d[name], np.float64),
                            np.asarray(d["wall_time"], np.float64))
    recs = w.buckets_between(level, x0, x1)
    lo, hi = _span_key(x0, -(1 << 62)), _span_key(x1, 1 << 62)
    keep = (recs["last_it"] >= lo) & (recs["first_it"] < hi)
    nan = np.full(int(keep.sum()), np.nan)
    return SeriesBuckets(name, level, recs["first_it"][keep], recs["last_it"][keep], recs["rows"][keep],
                         recs[f"{name}:count"][keep], recs[f"{name}:min"][keep], recs[f"{name}:max"][keep],
                         recs[f"{name}:sum"][keep], nan, nan.copy())


_VIEWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # RunWindows -> {name: _LoggedView}


def window(w, name: str, x0: float, x1: float, width_px: int):
    """Series ``name`` of run ``w`` (a :class:`recorder.window.RunWindows`) over iterations ``[x0, x1)``.

    Returns :class:`SeriesPoints` when the window holds fewer than 16 points per pixel column (so at
    most ``16 * width_px`` points), else :class:`SeriesBuckets` of the coarsest pyramid level with at
    least one bucket per column (at most about ``4 * width_px`` buckets, plus one block's worth at the
    edges).  Work and memory are bounded by ``width_px``, not by the series' length; a live file is
    followed (blocks committed since the previous call are read).

    Raises
    ------
    KeyError : no such series
    RecordingError : damaged series data
    """
    if name in BUILTIN_SERIES:
        return _builtin_window(w, name, x0, x1, width_px)
    rec = w.recording
    if rec is None:
        raise KeyError(f"run {w.name!r} has no series {name!r} (an in-memory run has built-in series only)")
    views = _VIEWS.setdefault(w, {})
    view = views.get(name)
    if view is None:
        sid = _logged(rec).get(name)
        if sid is None:
            raise KeyError(f"{rec.path}: no series {name!r}")
        view = views.setdefault(name, _LoggedView(sid, name))
    lo, hi = _span_key(x0, -(1 << 62)), _span_key(x1, 1 << 62)
    try:
        return rec.consistent_read(lambda query: view.window(query, lo, hi, int(width_px)))
    except (ValueError, sqlite3.Error) as exc:
        raise _damaged(rec, exc) from None


def window_names(w) -> list[str]:
    """The series of run ``w``: built-in ones, then those logged in its recording."""
    return series_names(w.recording) if w.recording is not None else list(BUILTIN_SERIES)


# --------------------------------------------------------------------------- the Recorder's side

def framework_name(name, framework: str):
    """The series name of a metric a framework callback forwards: ``<framework>/<name>`` when ``name`` is a
    built-in statistic's (Lightning's ``train_loss``, the HF Trainer's ``grad_norm``), else ``name``."""
    return f"{framework}/{name}" if isinstance(name, str) and name in RESERVED else name


def _warn_once(rec, key, message: str) -> None:
    seen = rec.__dict__.setdefault("_series_warned", set())
    if key not in seen:
        seen.add(key)
        log.warning("%s", message)


def _reject(rec, key: tuple, step, message: str) -> None:
    """One warning and one event per series and problem; later ones are dropped silently."""
    seen = rec.__dict__.setdefault("_series_rejected", set())
    if key in seen:
        return
    seen.add(key)
    log.warning("gda_gl recorder: %s (not recorded; training goes on)", message)
    if rec.writer is not None:
        try:
            rec.writer.add_event("series-rejected", message, iteration=step if isinstance(step, int) else None)
        except Exception:  # never break training
            pass


def log_value(rec, name, value, step=None) -> None:
    """:meth:`recorder.hooks.Recorder.log`: record ``value`` of series ``name`` at ``step`` (default: the
    current iteration, i.e. the number of optimizer steps taken, where the next ``train_loss`` lands).

    Bad input never stops training (``strict=True`` raises instead): see the module docstring.
    """
    if rec.writer is None or getattr(rec, "rank", 0) != 0:
        return
    step = rec.iteration if step is None else step
    try:
        rec.writer.series.log(name, value, step)
    except SeriesNameClash as exc:
        if rec.strict:
            raise
        seen = rec.__dict__.setdefault("_series_rejected", set())
        if ("clash", name) not in seen:
            seen.add(("clash", name))
            log.warning("gda_gl recorder: %s", exc)
    except (TypeError, ValueError) as exc:
        if rec.strict:
            raise
        kind = "step" if "backwards" in str(exc) else re.sub(r"\d+", "#", str(exc))  # one per problem
        text = str(exc)
        _reject(rec, (kind, name if isinstance(name, str) else repr(type(name))), step,
                text if text.startswith("series") else f"series {str(name)[:60]!r}: {text}")
    except RecordingError as exc:
        if rec.strict:
            raise
        _warn_once(rec, "write", f"gda_gl recorder: {exc}")


def log_values(rec, values: Mapping, step=None) -> None:
    """:meth:`recorder.hooks.Recorder.log_dict`: :func:`log_value` for every item."""
    step = rec.iteration if step is None else step
    for name, value in dict(values).items():
        log_value(rec, name, value, step)


def log_config(rec, values: Mapping) -> None:
    """:meth:`recorder.hooks.Recorder.log_config`: hyperparameters into ``meta.run["config"]``."""
    if rec.writer is None or getattr(rec, "rank", 0) != 0:
        return
    try:
        rec.writer.series.config(values)
    except (TypeError, ValueError, RecordingError) as exc:
        if rec.strict:
            raise
        _warn_once(rec, "config", f"gda_gl recorder: config not recorded ({exc})")
