"""Logged series, the reader's side: the catalogue of names, whole reads, windowed reads, copying.

Reading
-------
:func:`series_names`, :func:`series_summary`, :func:`read_series` (a whole series or range, for
small ones) and :func:`window` (what :meth:`recorder.window.RunWindows.series` calls): the points of
``[x0, x1)`` when there are fewer than 16 per pixel column, else the buckets of the coarsest level
with at least one per column, so the work per frame is bounded by pixels whatever the series' length.

What is checked, and when
-------------------------
* *The catalogue* (name -> id), once per open recording and then only the rows added since (a live
  file gains series; reading each of 10,000 series is linear, not quadratic): the three tables are
  there together or not at all, with their declared columns; every stored name is one the writer
  accepts (:func:`recorder.seriesfmt.check_name`: text, 1..200 printable characters, not a built-in
  series) and appears once.  A name is never renamed or merged: a bad one is a damaged recording.
* *A series, at its first windowed read* (cheap: its block headers, its top bucket and its first and
  last block): the blocks' point count and iteration span equal the top bucket's, the top bucket's
  first and last values are those of the first and last point, and its min/max hold every finite
  value of those two blocks.  Every chunk a window reads is checked against its parent: the parent
  buckets whose four children are full must equal the children merged (a forged level that
  contradicts the level above it is refused, never drawn).
* *Budget*: :func:`read_series` refuses, from the block headers and before decoding, a read of more
  than :data:`recorder.codec.READ_BUDGET_BYTES` (a compressed file of 32 MB can declare 819 million
  points).
* *Everything* (``gda-gl check``, :func:`verify_series`): every block decoded, the pyramid rebuilt
  from the points with the writer's own :class:`recorder.seriesfmt.SeriesPyramid` and compared
  chunk by chunk, no chunk or block the series does not account for.

Every problem is one :class:`recorder.errors.RecordingError` line naming the file.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import weakref

import numpy as np
from cachetools import LRUCache

from .codec import READ_BUDGET_BYTES
from .errors import RecordingError, sql_error
from .seriesfmt import (BASE, BLOCK_POINTS, BUILTIN_SERIES, CHUNK, FANOUT, FIELDS, MAX_SERIES, POINT_BYTES,
                        SeriesBuckets, SeriesNameClash, SeriesPoints, SeriesPyramid, bucket_points, check_name,
                        decode_chunk, decode_points, level_counts, merge)

__all__ = ["series_names", "series_summary", "read_series", "window", "window_names", "copy_series",
           "verify_series"]

_TABLES = {"series": ("id", "name"),
           "series_blocks": ("id", "series", "first_iteration", "last_iteration", "n", "data"),
           "series_lod": ("series", "level", "chunk", "n", "first_iteration", "last_iteration", "data")}


def _damaged(rec, exc) -> RecordingError:
    if isinstance(exc, RecordingError):
        return exc
    if isinstance(exc, (sqlite3.Error, UnicodeDecodeError)):
        return sql_error(rec.path, exc)
    return RecordingError(rec.path, f"damaged series: {exc}")


# --------------------------------------------------------------------------- the catalogue

def stored_name(sid, name) -> str:
    """A name read from the ``series`` table, validated as the writer validates it (ValueError if refused)."""
    if not isinstance(sid, int) or isinstance(sid, bool):
        raise ValueError("the series table holds a row that is not (integer id, name)")
    try:
        return check_name(name)
    except SeriesNameClash:
        if name in BUILTIN_SERIES:  # it would hide the built-in series of that name
            raise ValueError(f"series {sid}: name {name!r} is a built-in series") from None
        return name  # a field's name released after this series was logged (e.g. "samples"): kept
    except ValueError as exc:
        raise ValueError(f"series {sid}: a stored name the writer refuses ({exc})") from None


class _Catalogue:
    """``name -> id`` of one open recording's logged series, grown by the rows added since the last call."""

    def __init__(self):
        self.tables: bool | None = None      # whether the file has the series tables (None: not looked yet)
        self.ids: dict[str, int] = {}
        self.last_id = -(1 << 63)
        self.lock = threading.Lock()

    def _check_tables(self, query) -> bool:
        tables = {r[0] for r in query("SELECT name FROM sqlite_master WHERE type = 'table'")}
        have = set(_TABLES) & tables
        if not have:
            return False
        if have != set(_TABLES):
            missing = ", ".join(sorted(set(_TABLES) - have))
            raise ValueError(f"the series tables are incomplete ({missing} missing)")
        for table, cols in _TABLES.items():
            info = query(f'PRAGMA table_xinfo("{table}")')
            if any(r[6] in (2, 3) for r in info) or not set(cols) <= {r[1] for r in info}:
                raise ValueError(f"table {table} is not the declared one")
        return True

    def load(self, query) -> dict[str, int]:
        with self.lock:
            if self.tables is None:
                self.tables = self._check_tables(query)
            if not self.tables:
                return {}
            rows = query("SELECT id, name FROM series WHERE id > ? ORDER BY id LIMIT ?",
                         (self.last_id, MAX_SERIES + 1 - len(self.ids)))
            for sid, name in rows:
                name = stored_name(sid, name)
                if name in self.ids:
                    raise ValueError(f"series name {name!r} appears twice (ids {self.ids[name]} and {sid})")
                self.ids[name] = sid
                self.last_id = sid
            if len(self.ids) > MAX_SERIES:
                raise ValueError(f"more than {MAX_SERIES:,} series")
            return dict(self.ids)


_CATALOGUES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Recording -> _Catalogue


def _logged(rec) -> dict[str, int]:
    """``name -> id`` of the logged series of an open recording, in first-logged order."""
    cat = _CATALOGUES.get(rec)
    if cat is None:
        cat = _CATALOGUES.setdefault(rec, _Catalogue())
    try:
        return rec.consistent_read(cat.load)
    except (ValueError, sqlite3.Error, UnicodeDecodeError, RecordingError) as exc:
        raise _damaged(rec, exc) from None


def series_names(rec, builtin: bool = True) -> list[str]:
    """The series of an open :class:`recorder.reader.Recording`: the built-in ones first (when
    ``builtin``), then the logged ones in the order they were first logged."""
    return (list(BUILTIN_SERIES) if builtin else []) + list(_logged(rec))


def series_summary(rec, empty: bool = False) -> list[tuple]:
    """``(name, points, first iteration, last iteration)`` of every logged series, in first-logged order
    (one query over the block headers; what ``gda-gl info`` lists).  ``empty``: list series without points
    too, as ``(name, 0, None, None)``."""
    names = _logged(rec)
    if not names:
        return []
    rows = rec.query("SELECT series, sum(n), min(first_iteration), max(last_iteration) FROM series_blocks "
                     "GROUP BY series")
    got = {r[0]: r[1:] for r in rows if all(isinstance(v, int) for v in r)}
    return [(name, *got.get(sid, (0, None, None))) for name, sid in names.items() if empty or sid in got]


# --------------------------------------------------------------------------- blocks

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


def _points(query, name: str, headers: np.ndarray) -> tuple:
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


def _check_budget(rec, name: str, headers: np.ndarray, max_bytes: int | None) -> None:
    budget = READ_BUDGET_BYTES if max_bytes is None else int(max_bytes)
    points = int(headers[:, 3].sum()) if len(headers) else 0
    if points * POINT_BYTES > budget:
        raise RecordingError(rec.path, f"reading series {name!r} at once means {points:,} points "
                                       f"({points * POINT_BYTES / 2 ** 20:,.0f} MiB), more than the read budget of "
                                       f"{budget / 2 ** 20:,.0f} MiB (read a range, or draw it through "
                                       "recorder.window.RunWindows.series)")


def read_series(rec, name: str, start: int | None = None, stop: int | None = None, *,
                max_bytes: int | None = None) -> SeriesPoints:
    """Every point of series ``name`` with ``start <= iteration < stop`` (all by default) of an open recording.

    Reads the whole range (a built-in series decodes the recording's blocks): for small series or
    ranges; draw long ones through :meth:`recorder.window.RunWindows.series`.

    Raises
    ------
    KeyError : no such series
    RecordingError : damaged series data; more points than ``max_bytes`` (default
        :data:`recorder.codec.READ_BUDGET_BYTES`) hold, refused from the block headers before decoding
    """
    if name in BUILTIN_SERIES:
        d = rec.read(start, stop, max_bytes=max_bytes)
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
        _check_budget(rec, name, h, max_bytes)
        return _points(query, name, h)

    try:
        it, wall, val = rec.consistent_read(work)
    except (ValueError, sqlite3.Error) as exc:
        raise _damaged(rec, exc) from None
    return _clip(name, it, wall, val, start, stop)


def copy_series(rec, writer) -> int:
    """Copy every logged series of an open recording into ``writer`` (``gda-gl upgrade``) exactly: every
    series (one without points too) under its own name, every point with its wall time, in order.
    Work is linear in the points and series; memory is bounded by the writer's flush threshold.

    Raises
    ------
    RecordingError : damaged series data in ``rec`` (a name the writer would refuse, ...), or a failed
        commit of ``writer``
    """
    total = 0
    for name, sid in _logged(rec).items():
        try:
            writer.series.declare(name)
            headers = rec.consistent_read(lambda query: _block_headers(query, sid))
            for j in range(len(headers)):
                it, wall, val = rec.consistent_read(lambda query: _points(query, name, headers[j:j + 1]))
                writer.series.log_many(name, it, val, wall_time=wall)  # the writer commits every 65,536 points
                total += len(it)
        except (ValueError, TypeError, sqlite3.Error) as exc:
            raise _damaged(rec, exc) from None
    writer.flush()
    return total


# --------------------------------------------------------------------------- checks

def agree(stored: dict, built: dict, where: str) -> None:
    """Raise ValueError naming the first field of the buckets ``stored`` that ``built`` contradicts
    (integers exactly, floats to a relative 1e-9, NaN equal to NaN)."""
    if len(stored["rows"]) != len(built["rows"]):
        raise ValueError(f"{where}: {len(stored['rows'])} buckets, the points give {len(built['rows'])}")
    for name, dt, _ in FIELDS:
        a, b = np.asarray(stored[name]), np.asarray(built[name])
        if dt.kind == "f":
            with np.errstate(all="ignore"):
                bad = ~np.isclose(a, b, rtol=1e-9, atol=0.0, equal_nan=True)
        else:
            bad = a != b
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{where} bucket {i}: {name} is {a[i].item()!r}, the points give {b[i].item()!r}")


def full_parents(children: dict, level: int) -> tuple[np.ndarray, dict]:
    """(indexes of the parents, merged buckets) of the complete groups of ``FANOUT`` full children
    (only those are final while a writer appends)."""
    full = np.asarray(children["rows"]) == bucket_points(level)
    k = len(full) // FANOUT
    ok = full[:k * FANOUT].reshape(k, FANOUT).all(axis=1) if k else np.zeros(0, bool)
    merged = merge({n: v[:k * FANOUT] for n, v in children.items()}, FANOUT)
    idx = np.flatnonzero(ok)
    return idx, {n: v[idx] for n, v in merged.items()}


def check_edges(top: dict, first: tuple, last: tuple, where: str) -> None:
    """The whole-series bucket against the first and last block's points (``(it, value)`` each)."""
    v = np.concatenate([first[1], last[1]])
    fin = v[np.isfinite(v)]
    checks = (
        ("first iteration", top["first_it"][0], first[0][0]), ("last iteration", top["last_it"][0], last[0][-1]),
        ("first value", top["first"][0], first[1][0]), ("last value", top["last"][0], last[1][-1]),
    )
    for what, got, want in checks:
        if not (got == want or (np.isnan(got) and np.isnan(want))):
            raise ValueError(f"{where}: the whole-series bucket's {what} is {got.item()!r}, its points give "
                             f"{want.item()!r}")
    if len(fin) and not (top["min"][0] <= fin.min() and top["max"][0] >= fin.max()):
        raise ValueError(f"{where}: the whole-series bucket's range {top['min'][0].item()!r}.."
                         f"{top['max'][0].item()!r} does not hold its points' "
                         f"{fin.min().item()!r}..{fin.max().item()!r}")


def verify_series(rec) -> tuple[int, int, int]:
    """``gda-gl check`` for the logged series: every block decoded, every pyramid chunk compared with the one
    the writer's own :class:`SeriesPyramid` builds from the points; returns (series, points, buckets).

    Raises
    ------
    RecordingError : one line naming the series and the first disagreement
    """
    names = _logged(rec)
    try:
        orphans = rec.consistent_read(lambda q: (
            q("SELECT count(*) FROM series_blocks WHERE series NOT IN (SELECT id FROM series)")[0][0],
            q("SELECT count(*) FROM series_lod WHERE series NOT IN (SELECT id FROM series)")[0][0])) \
            if names else (0, 0)
        if any(orphans):
            raise ValueError(f"{orphans[0]} blocks and {orphans[1]} pyramid chunks belong to no series")
        points = buckets = 0
        for name, sid in names.items():
            p, b = _verify_one(rec, name, sid)
            points, buckets = points + p, buckets + b
    except (ValueError, sqlite3.Error) as exc:
        raise _damaged(rec, exc) from None
    return len(names), points, buckets


def _verify_one(rec, name: str, sid: int) -> tuple[int, int]:
    headers = rec.consistent_read(lambda q: _block_headers(q, sid))
    stored_keys = {tuple(r) for r in rec.query("SELECT level, chunk FROM series_lod WHERE series = ?", (sid,))}
    pyr, pending, seen, buckets = SeriesPyramid(), {}, set(), 0

    def settle(keys):
        nonlocal buckets
        for key in sorted(keys):
            built = pending.pop(key)
            r = rec.query("SELECT n, data FROM series_lod WHERE series = ? AND level = ? AND chunk = ?",
                          (sid, *key))
            if not r:
                raise ValueError(f"series {name!r} pyramid level {key[0]} chunk {key[1]} missing")
            where = f"series {name!r} pyramid level {key[0]} chunk {key[1]}"
            agree(decode_chunk(r[0][1], r[0][0], key[0], f"series {name!r} chunk {key[1]}"), built, where)
            buckets += len(built["rows"])

    prev = None
    for j in range(len(headers)):
        it, _, val = rec.consistent_read(lambda q: _points(q, name, headers[j:j + 1]))
        if prev is not None and it[0] < prev:
            raise ValueError(f"series {name!r} block {headers[j, 0]}: iterations go backwards")
        prev = int(it[-1])
        for level, c, recs in pyr.add(it, val):
            settle([k for k in pending if k[0] == level and k[1] < c])
            pending[(level, c)] = recs
            seen.add((level, c))
    settle(list(pending))
    if stored_keys != seen:
        extra = sorted(stored_keys - seen)[:1] or sorted(seen - stored_keys)[:1]
        raise ValueError(f"series {name!r}: pyramid chunk (level, chunk) {extra[0]} is "
                         f"{'not accounted for by its points' if extra[0] in stored_keys else 'missing'}")
    return pyr.n_points, buckets


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
        self.edges_checked = False

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
        if not self.edges_checked and len(self.headers):
            self._check_edges(query)

    def _check_edges(self, query) -> None:
        """The cheap check at first use: the top bucket against the block headers and the edge blocks."""
        top = self._chunk(query, len(self.counts) - 1, 0)
        if int(top["rows"][0]) != int(self.row0[-1]):
            raise ValueError(f"series {self.name!r}: the whole-series bucket counts {int(top['rows'][0]):,} points, "
                             f"its blocks hold {int(self.row0[-1]):,}")
        first = self._block(query, 0)
        last = self._block(query, len(self.headers) - 1)
        check_edges(top, first[::2], last[::2], f"series {self.name!r}")
        self.edges_checked = True

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

    def _block(self, query, j: int) -> tuple:
        bid = int(self.headers[j, 0])
        got = self.blocks.get(bid)
        if got is None:
            got = _points(query, self.name, self.headers[j:j + 1])
            self.blocks[bid] = got
        return got

    def points(self, query, lo: int, hi: int) -> SeriesPoints:
        j0, j1 = self._blocks_between(lo, hi)
        parts = [self._block(query, j) for j in range(j0, j1)]
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
        if level + 1 < len(self.counts):
            self._check_parent(query, level, c, recs)
        self.chunks[key] = recs
        return recs

    def _check_parent(self, query, level: int, c: int, recs: dict) -> None:
        """The chunk's complete groups of children merged must be the parent buckets (read, and checked
        against theirs, up to the top): a level that contradicts the one above is never drawn."""
        idx, merged = full_parents(recs, level)
        if not len(idx):
            return
        per = CHUNK // FANOUT
        pc = c * per // CHUNK
        parent = self._chunk(query, level + 1, pc)
        at = c * per - pc * CHUNK + idx
        agree({n: v[at] for n, v in parent.items()}, merged,
              f"series {self.name!r} pyramid level {level + 1} (against level {level} chunk {c})")

    def buckets(self, query, level: int, lo: int, hi: int) -> SeriesBuckets:
        j0, j1 = self._blocks_between(lo, hi)
        size = bucket_points(level)
        b0, b1 = int(self.row0[j0]) // size, min(self.counts[level], -(-int(self.row0[j1]) // size))
        parts = []
        for c in range(b0 // CHUNK, (b1 - 1) // CHUNK + 1) if b1 > b0 else ():
            recs = self._chunk(query, level, c)
            a, b = max(b0, c * CHUNK) - c * CHUNK, min(b1, c * CHUNK + len(recs["rows"])) - c * CHUNK
            parts.append({k: v[a:b] for k, v in recs.items()})
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
