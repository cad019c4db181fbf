"""Where the pyramid lives: the ``lod`` table of a schema-2 file, or memory for a schema-1 file.

:func:`write_chunks` stores what :class:`recorder.pyramid.PyramidBuilder`
reports as changed (inside the writer's commit transaction).  Readers go
through a :class:`ChunkSource`: :class:`SqlChunks` reads chunks from the file
through an LRU cache bounded in bytes (``cachetools.LRUCache``; a chunk is at
most 4096 buckets, ~1.7 MB decoded),
:class:`MemoryChunks` holds a pyramid built in memory, for schema-1 files
(never modified on disk) and for runs that exist only in memory.  Both answer
the same questions, so everything above them has one code path.

A file's chunks hold the bucket fields its ``meta.lod`` lists
(:func:`recorder.schema.stored_lod_fields`): decoding gives the fields this
release knows, those of a statistic the file lacks computed from the
statistic's default (:func:`default_buckets`), fields it does not know
skipped.

Every chunk read from a file is validated (its BLOB against the declared
layout, its buckets with :func:`recorder.pyramid.validate_buckets`, its span
against the table's columns) before it is used; a damaged chunk raises
:class:`LodError` with one line saying which level and chunk.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from typing import Mapping, Sequence

import numpy as np
from cachetools import LRUCache

from . import pyramid, schema
from .colcodec import CodecError, pack_columns, unpack_columns

__all__ = ["LodError", "write_chunks", "ChunkSource", "SqlChunks", "MemoryChunks", "decode_chunk",
           "default_buckets", "LOD_CACHE_BYTES"]

_MAX_LEVELS = 40
#: decoded chunks kept by one file's pyramid cache (bytes; a full chunk is ~1.7 MB, an upper level's far less)
LOD_CACHE_BYTES = 80 << 20


def _recs_nbytes(recs: Mapping[str, np.ndarray]) -> int:
    return sum(v.nbytes for v in recs.values())


class LodError(ValueError):
    """Damaged pyramid data (message names the level and chunk)."""


def encode_chunk(recs: Mapping[str, np.ndarray], fields: Sequence | None = None) -> bytes:
    """One chunk's BLOB: the ``fields`` ((name, dtype, reduction); default all this release writes) packed."""
    return pack_columns([np.asarray(recs[n], d) for n, d, _ in (fields or pyramid.BUCKET_FIELDS)])


def write_chunks(con: sqlite3.Connection, changed, fields: Sequence | None = None) -> None:
    """Store changed chunks ``(level, chunk, buckets)`` (call inside the commit transaction) with the file's
    bucket ``fields`` (default: all this release writes to a new file)."""
    rows = []
    for level, chunk, recs in changed:
        n = len(recs["rows"])
        rows.append((level, chunk, n, int(recs["first_it"][0]), int(recs["last_it"][-1]),
                     encode_chunk(recs, fields)))
    con.executemany("INSERT OR REPLACE INTO lod(level, chunk, n, first_iteration, last_iteration, data) "
                    "VALUES (?, ?, ?, ?, ?, ?)", rows)


def default_buckets(name: str, rows: np.ndarray) -> np.ndarray:
    """Bucket field ``name`` (``"stat:part"``) of a statistic a file does not store: what aggregating its
    default (:func:`recorder.schema.field_default`) over each bucket's ``rows`` gives."""
    stat, _, part = name.partition(":")
    d = schema.field_default(stat)
    dt = pyramid.BUCKET_DTYPES[name]
    finite = not (isinstance(d, float) and math.isnan(d))
    if part in ("min", "max"):
        return np.full(len(rows), d, dt)
    if part == "sum":
        return (rows.astype(np.float64) * d if finite else np.zeros(len(rows))).astype(dt)
    if part == "count":
        return (rows if finite else np.zeros(len(rows))).astype(dt)
    return (rows if finite and int(part) == d else np.zeros(len(rows))).astype(dt)


def _known(cols, fields, n: int) -> dict[str, np.ndarray]:
    """The bucket fields this release knows, from a file's decoded ``cols`` of ``fields``."""
    got = {name: c for (name, _, _), c in zip(fields, cols)}
    recs = {}
    for name, dt, _ in pyramid.BUCKET_FIELDS:
        v = got.get(name)
        recs[name] = v if v is not None else default_buckets(name, got["rows"][:n])
    return recs


def decode_chunk(level, chunk, n, first, last, blob, fields: Sequence | None = None) -> dict[str, np.ndarray]:
    """Validate and decode one stored chunk of bucket ``fields`` (the file's, default all this release writes)."""
    where = f"pyramid level {level} chunk {chunk}"
    for name, v in (("level", level), ("chunk", chunk), ("n", n), ("first_iteration", first),
                    ("last_iteration", last)):
        if not isinstance(v, int):
            raise LodError(f"{where}: {name} is {type(v).__name__}, not an integer")
    if not 0 <= level < _MAX_LEVELS or chunk < 0 or not 1 <= n <= pyramid.CHUNK:
        raise LodError(f"{where}: level, chunk or bucket count out of range (n = {n})")
    fields = fields or pyramid.BUCKET_FIELDS
    try:
        cols = unpack_columns(blob, n, [d for _, d, _ in fields], [f for f, _, _ in fields])
    except CodecError as exc:
        raise LodError(f"{where}: {exc}") from None
    recs = _known(cols, fields, n)
    try:
        pyramid.validate_buckets(recs, level, where)
    except ValueError as exc:
        raise LodError(str(exc)) from None
    if int(recs["first_it"][0]) != first or int(recs["last_it"][-1]) != last:
        raise LodError(f"{where}: span does not match its table row")
    return recs


def check_totals(counts: Sequence[int], spans: Sequence[tuple[int, int]], rows: int, first: int | None,
                 last: int | None, top_chunk, fields=None) -> None:
    """The invariants of :meth:`SqlChunks.check_blocks`; ``top_chunk()`` returns the decoded top chunk.

    Raises
    ------
    LodError
    """
    if not counts:
        if rows:
            raise LodError(f"the pyramid is empty but the blocks hold {rows:,} iterations")
        return
    if not rows:
        raise LodError(f"the pyramid has {counts[0]:,} buckets at level 0 but the recording has no blocks")
    need = -(-rows // pyramid.BASE_ROWS)
    if counts[0] != need:
        raise LodError(f"pyramid level 0 has {counts[0]:,} buckets, the blocks' {rows:,} iterations need {need:,}")
    for level, (f, la) in enumerate(spans):
        if (f, la) != (first, last):
            raise LodError(f"pyramid level {level} spans iterations {f}..{la}, the blocks {first}..{last}")
    top = top_chunk()
    got = (int(top["rows"][0]), int(top["first_it"][0]), int(top["last_it"][0]))
    if len(top["rows"]) != 1 or got != (rows, first, last):
        raise LodError(f"the whole-run bucket counts {got[0]:,} iterations ({got[1]}..{got[2]}) but the blocks "
                       f"hold {rows:,} ({first}..{last})")


def edge_records(data) -> dict[str, np.ndarray]:
    """Row records (:func:`recorder.pyramid.row_records`, the writer's code) of the rows of ``data`` (an
    :class:`recorder.codec.Iterations`): what the first and last row of a run add to its whole-run bucket."""
    alphas = data.row_alphas if data.row_alphas is not None else data.alpha_grid
    return pyramid.row_records(alphas, data.columns, data.phi, None, np.diff(data.trial_offsets),
                               data.trials.get("alpha"))


def _show(v) -> str:
    return repr(v.item() if hasattr(v, "item") else v)


def _same(a, b) -> bool:
    return bool(a == b or (np.isnan(a) and np.isnan(b))) if np.asarray(a).dtype.kind == "f" else bool(a == b)


def check_edges(top: Mapping[str, np.ndarray], first: Mapping[str, np.ndarray],
                last: Mapping[str, np.ndarray] | None = None) -> None:
    """The whole-run bucket ``top`` against the row records of the run's first row (``first[..][0]``) and
    last row (``last[..][-1]``; None: a live run, not checked): its first/last fields equal theirs, its
    min/max hold theirs (a NaN minimum holds nothing), its integer sums are at least theirs.  Cheap (two
    rows), and it refuses a pyramid copied from another run or one whose every level was made NaN.

    Raises
    ------
    LodError : one line naming the field
    """
    for name, dt, op in pyramid.BUCKET_FIELDS:
        if name not in first:
            continue
        t, a = top[name][0], first[name][0]
        b = last[name][-1] if last is not None else a
        with np.errstate(invalid="ignore"):
            if op == "first":
                ok = _same(t, a)
            elif op == "last":
                ok = last is None or _same(t, b)
            elif op in ("min", "max"):
                vals = [v for v in (a, b) if not np.isnan(v)]
                ok = all((t <= v) if op == "min" else (t >= v) for v in vals)
            else:
                ok = dt.kind != "i" or t >= max(a, b)
        if not ok:
            raise LodError(f"the whole-run bucket's {name} is {_show(t)}, but the run's first and last rows "
                           f"give {_show(a)} and {_show(b)}")


def check_parent(children: Mapping[str, np.ndarray], level: int, parent: Mapping[str, np.ndarray], at: int,
                 where: str, stop: int | None = None) -> None:
    """Buckets ``children`` (one chunk of a level) merged by :data:`recorder.pyramid.FANOUT` against the
    ``parent`` buckets from index ``at`` on: the parents whose children are all full (final while a writer
    appends) must equal the merge (integers exactly, floats to a relative 1e-6, NaN equal to NaN); parents
    from index ``stop`` on are not compared (the level's last bucket, which a live writer may still be
    filling between the reads of the two chunks).

    Raises
    ------
    LodError : one line naming the level and field
    """
    full = np.asarray(children["rows"]) == pyramid.bucket_rows(level)
    k = min(len(full) // pyramid.FANOUT, len(parent["rows"]) - at)
    if k <= 0:
        return
    ok = full[:k * pyramid.FANOUT].reshape(k, pyramid.FANOUT).all(axis=1)
    if stop is not None:
        ok &= at + np.arange(k) < stop
    idx = np.flatnonzero(ok)
    if not len(idx):
        return
    merged = pyramid.merge({n: v[:k * pyramid.FANOUT] for n, v in children.items()}, pyramid.FANOUT)
    for name, dt, _ in pyramid.BUCKET_FIELDS:
        a, b = np.asarray(parent[name])[at + idx], merged[name][idx]
        with np.errstate(all="ignore"):
            bad = ~np.isclose(a.astype(np.float64), b.astype(np.float64), rtol=1e-6, atol=0.0, equal_nan=True) \
                if dt.kind == "f" else a != b
        if bad.any():
            j = int(np.argmax(bad))
            raise LodError(f"{where}: bucket {at + int(idx[j])} has {name} {_show(a[j])}, its children give "
                           f"{_show(b[j])}")


class ChunkSource:
    """Read access to a pyramid: bucket counts per level and chunks by index."""

    def counts(self) -> list[int]:
        """Buckets per level (finest first); empty for an empty run."""
        raise NotImplementedError

    def chunk(self, level: int, chunk: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def refresh(self) -> None:
        """Notice chunks written since the last call (live runs)."""

    # -- derived ---------------------------------------------------------------
    def buckets(self, level: int, first: int, stop: int) -> dict[str, np.ndarray]:
        """Buckets ``[first, stop)`` of ``level`` (clipped to what exists)."""
        counts = self.counts()
        if level >= len(counts):
            raise LodError(f"pyramid level {level} missing (the pyramid has {len(counts)})")
        stop = min(stop, counts[level])
        first = max(0, first)
        if stop <= first:
            return {n: np.empty(0, d) for n, d, _ in pyramid.BUCKET_FIELDS}
        parts = []
        for c in range(first // pyramid.CHUNK, (stop - 1) // pyramid.CHUNK + 1):
            recs = self.chunk(level, c)
            base = c * pyramid.CHUNK
            a, b = max(first, base) - base, min(stop, base + len(recs["rows"])) - base
            parts.append({k: v[a:b] for k, v in recs.items()})
        if len(parts) == 1:
            return parts[0]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def top(self) -> dict[str, np.ndarray] | None:
        """The single bucket of the top level (whole-run summary), or None for an empty run."""
        counts = self.counts()
        if not counts:
            return None
        recs = self.buckets(len(counts) - 1, 0, 1)
        if len(recs["rows"]) != 1:
            raise LodError(f"pyramid top level {len(counts) - 1} has {counts[-1]} buckets, expected 1")
        return recs


class MemoryChunks(ChunkSource):
    """A pyramid held in memory (schema-1 files, in-memory runs); grows with :meth:`add`."""

    def __init__(self, alphas: np.ndarray):
        self.builder = pyramid.PyramidBuilder(alphas)
        self._chunks: dict[tuple[int, int], dict[str, np.ndarray]] = {}

    def add(self, cols: Mapping[str, np.ndarray], phi: np.ndarray, tcount: np.ndarray | None = None,
            trial_alpha: np.ndarray | None = None, step: int = 1 << 16) -> None:
        """Add rows, ``step`` at a time (bounded temporary memory however many rows are given)."""
        n = len(cols["iteration"])
        off = None
        if tcount is not None:
            off = np.zeros(n + 1, np.int64)
            np.cumsum(tcount, out=off[1:])
        for a in range(0, n, step):
            b = min(n, a + step)
            part = {k: v[a:b] for k, v in cols.items()}
            tc = None if off is None else tcount[a:b]
            ta = None if off is None or trial_alpha is None else trial_alpha[off[a]:off[b]]
            for level, c, recs in self.builder.add(part, phi[a:b], tc, ta):
                self._chunks[(level, c)] = recs
        for key in [k for k in self._chunks if k[0] >= self.builder.levels]:
            del self._chunks[key]

    def counts(self) -> list[int]:
        return self.builder.counts()

    def chunk(self, level: int, chunk: int) -> dict[str, np.ndarray]:
        try:
            return self._chunks[(level, chunk)]
        except KeyError:
            raise LodError(f"pyramid level {level} chunk {chunk} missing") from None


class SqlChunks(ChunkSource):
    """The ``lod`` table of a schema-2 file, read through an LRU cache of decoded chunks.

    Parameters
    ----------
    query : callable(sql, args) -> rows (the reader's locked, error-mapping query)
    path : the file, for messages
    fields : the bucket fields the file stores (:attr:`recorder.reader.Recording.pyramid_fields`; default:
        all this release writes)
    cache_bytes : decoded bytes kept (default :data:`LOD_CACHE_BYTES`)
    """

    def __init__(self, query, path=None, fields: Sequence | None = None, cache_bytes: int | None = None):
        self._query = query
        self._path = path
        self._fields = tuple(fields) if fields else pyramid.BUCKET_FIELDS
        self._cache: LRUCache = LRUCache(maxsize=cache_bytes or LOD_CACHE_BYTES, getsizeof=_recs_nbytes)
        self._lock = threading.Lock()
        self._counts: list[int] = []
        self._spans: list[tuple[int, int]] = []   # per level: first_iteration of chunk 0, last of the newest

    def _fail(self, exc: LodError):
        """A damaged pyramid as the reader's one-line error (when the file is known)."""
        if self._path is None:
            return exc
        from .errors import RecordingError

        return RecordingError(self._path, f"damaged pyramid: {exc}")

    def refresh(self, query=None) -> None:
        """Re-read the pyramid's shape (``query``: run it on this connection, e.g. inside a read transaction)."""
        try:
            self._refresh(query or self._query)
        except LodError as exc:
            raise self._fail(exc) from None

    def chunk(self, level: int, chunk: int) -> dict[str, np.ndarray]:
        try:
            return self._chunk(level, chunk)
        except LodError as exc:
            raise self._fail(exc) from None

    def _refresh(self, query) -> None:
        # the (level, chunk) keys alone, then one key lookup per level for the newest chunk's size:
        # aggregate queries over this WITHOUT ROWID table walk every chunk's payload (0.6 s at 3e7 rows)
        keys = query("SELECT level, chunk FROM lod")
        per_level: dict = {}
        for level, chunk in keys:
            if not (isinstance(level, int) and isinstance(chunk, int)) or not 0 <= level < _MAX_LEVELS:
                raise LodError("pyramid index has non-integer or out-of-range entries")
            cnt, mx = per_level.get(level, (0, -1))
            per_level[level] = (cnt + 1, max(mx, chunk))
        rows, spans = [], []
        for level in sorted(per_level):
            cnt, mx = per_level[level]
            got = query("SELECT n, last_iteration FROM lod WHERE level = ? AND chunk = ?", (level, mx))
            head = query("SELECT first_iteration FROM lod WHERE level = ? AND chunk = 0", (level,))
            rows.append((level, mx, cnt, got[0][0] if got else None))
            spans.append((head[0][0] if head else None, got[0][1] if got else None))
        counts = []
        for i, (level, max_chunk, n_chunks, last_n) in enumerate(rows):
            if not all(isinstance(v, int) for v in (level, max_chunk, n_chunks, last_n)):
                raise LodError("pyramid index has non-integer entries")
            if level != i:
                raise LodError(f"pyramid level {i} missing")
            if n_chunks != max_chunk + 1:
                raise LodError(f"pyramid level {level}: chunks missing ({n_chunks} of {max_chunk + 1})")
            if not all(isinstance(v, int) for v in spans[i]):
                raise LodError(f"pyramid level {level}: first or last iteration is not an integer")
            counts.append(max_chunk * pyramid.CHUNK + last_n)
        for i in range(1, len(counts)):
            if counts[i] != -(-counts[i - 1] // pyramid.FANOUT):
                raise LodError(f"pyramid level {i} has {counts[i]} buckets, level {i - 1} needs "
                               f"{-(-counts[i - 1] // pyramid.FANOUT)}")
        if counts and counts[-1] != 1:
            raise LodError(f"pyramid top level {len(counts) - 1} has {counts[-1]} buckets, expected 1")
        with self._lock:
            # the newest chunk of every level may have grown (a partial bucket fills in place): forget it
            for key in [k for k in self._cache if k[0] >= len(counts) or
                        k[1] >= (counts[k[0]] - 1) // pyramid.CHUNK]:
                self._cache.pop(key, None)
            self._counts = counts
            self._spans = spans

    def counts(self) -> list[int]:
        return list(self._counts)

    def check_blocks(self, query, rows: int, first: int | None, last: int | None) -> None:
        """The cheap invariants between the pyramid and the block index (call right after :meth:`refresh`,
        with the same ``query``, inside the read transaction that read the block index).

        ``rows`` is the number of rows the blocks hold, ``first``/``last`` the first and last iteration.
        Checked: the pyramid is empty exactly when the blocks are, level 0 has one bucket per
        :data:`recorder.pyramid.BASE_ROWS` rows, every level spans ``first..last`` (the table columns of
        its first and newest chunk), and the whole-run bucket counts ``rows`` rows from ``first`` to ``last``.
        (Bucket counts adding up from level to level are checked by :meth:`refresh`.)

        Raises
        ------
        RecordingError (or LodError without a path): one line saying what disagrees.
        """
        try:
            check_totals(self._counts, self._spans, rows, first, last,
                         lambda: self._top_row(query or self._query), self._fields)
        except LodError as exc:
            raise self._fail(exc) from None

    def _top_row(self, query) -> dict[str, np.ndarray]:
        top = len(self._counts) - 1
        got = query("SELECT level, chunk, n, first_iteration, last_iteration, data FROM lod "
                    "WHERE level = ? AND chunk = 0", (top,))
        if not got:
            raise LodError(f"pyramid level {top} chunk 0 missing")
        return decode_chunk(*got[0], fields=self._fields)

    def _chunk(self, level: int, chunk: int) -> dict[str, np.ndarray]:
        key = (level, chunk)
        with self._lock:
            hit = self._cache.get(key)  # a hit becomes the most recently used
        if hit is not None:
            return hit
        rows = self._query("SELECT level, chunk, n, first_iteration, last_iteration, data FROM lod "
                           "WHERE level = ? AND chunk = ?", (level, chunk))
        if not rows:
            raise LodError(f"pyramid level {level} chunk {chunk} missing")
        recs = decode_chunk(*rows[0], fields=self._fields)
        expect = min(pyramid.CHUNK, self._counts[level] - chunk * pyramid.CHUNK) if level < len(self._counts) \
            else len(recs["rows"])
        if len(recs["rows"]) > expect and (chunk + 1) * pyramid.CHUNK >= self._counts[level]:
            # the newest chunk of a live run grew since refresh(): keep the buckets the refresh knew
            recs = {k: v[:expect] for k, v in recs.items()}
        if len(recs["rows"]) != expect:
            raise LodError(f"pyramid level {level} chunk {chunk}: {len(recs['rows'])} buckets, expected {expect}")
        if level + 1 < len(self._counts):  # never hand out buckets the level above contradicts
            per = pyramid.CHUNK // pyramid.FANOUT
            pc = chunk * per // pyramid.CHUNK
            parent = self._chunk(level + 1, pc)
            check_parent(recs, level, parent, chunk * per % pyramid.CHUNK,
                         f"pyramid level {level + 1} (against level {level} chunk {chunk})",
                         stop=self._counts[level + 1] - 1 - pc * pyramid.CHUNK)
        with self._lock:
            if _recs_nbytes(recs) <= self._cache.maxsize:
                self._cache[key] = recs  # evicts the least recently used chunks past the byte budget
        return recs
