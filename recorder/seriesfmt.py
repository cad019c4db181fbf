"""Logged series, the stored form: names, values, the per-series pyramid, block and chunk codecs.

The tables are frozen in :mod:`recorder.schema` (``series``, ``series_blocks``, ``series_lod``).  This
module is compute only (numpy, no SQL): what the writer (:mod:`recorder.serieslog`) encodes and the
reader (:mod:`recorder.seriesread`) decodes and validates, so both sides use one definition.

* A name is validated once (:func:`check_name`): the writer refuses what it refuses, and the reader
  reports a stored name it refuses as a damaged recording (never renames one).
* The pyramid (:class:`SeriesPyramid`) has the geometry of :mod:`recorder.pyramid` (16 points per
  level-0 bucket, 4 buckets per parent, 4096 buckets per chunk) over a series' points; a bucket
  holds :data:`recorder.schema.SERIES_LOD_FIELDS`: the point count, the count of finite values and
  their min, max and sum, the first and last value as recorded (NaN and +-Inf kept), the first and
  last iteration.  :func:`reference_buckets` is its brute-force twin (tests), :func:`merge` the one
  reduction (the writer's levels, and the reader's check of a chunk against its parent).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from . import schema
from .colcodec import CodecError, pack_columns, unpack_columns
from .pyramid import grow_levels

__all__ = ["BASE", "FANOUT", "CHUNK", "BLOCK_POINTS", "BUILTIN_SERIES", "RESERVED", "MAX_SERIES", "POINT_DTYPES",
           "POINT_BYTES", "FIELDS", "SeriesNameClash", "check_name", "as_value", "point_records", "merge",
           "level_counts", "bucket_points", "SeriesPyramid", "reference_buckets", "validate_buckets",
           "encode_points", "encode_chunk", "decode_points", "decode_chunk", "SeriesPoints", "SeriesBuckets"]

BASE, FANOUT, CHUNK = schema.LOD_BASE_ROWS, schema.LOD_FANOUT, schema.LOD_CHUNK
BLOCK_POINTS = schema.SERIES_BLOCK_POINTS
#: the per-iteration statistics also read as series (from blocks and the stored pyramid)
BUILTIN_SERIES = ("train_loss", "lr", "grad_norm")
#: names a logged series may not take: every per-iteration field
RESERVED = frozenset(n for n, _ in schema.FIELDS_V2) | frozenset(schema.ITER_DTYPES) | \
    frozenset(n for n, _, _ in schema.OPTIONAL_V2)
#: distinct series one file may hold
MAX_SERIES = 10000
POINT_DTYPES = [np.dtype(d) for _, d in schema.SERIES_POINT_FIELDS]
#: bytes of one decoded point (iteration, wall time, value)
POINT_BYTES = sum(d.itemsize for d in POINT_DTYPES)
FIELDS = tuple((n, np.dtype(d), op) for n, d, op in schema.SERIES_LOD_FIELDS)
DTYPES = {n: d for n, d, _ in FIELDS}


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
        """An independent copy (the lists are copied; arrays are never modified in place, so they are shared)."""
        b = SeriesPyramid()
        b.n_points, b._tail = self.n_points, self._tail
        b._levels, b._counts = list(self._levels), list(self._counts)
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


# --------------------------------------------------------------------------- codecs

def encode_points(it: np.ndarray, wall: np.ndarray, value: np.ndarray) -> bytes:
    """One block's ``data``: the packed :data:`recorder.schema.SERIES_POINT_FIELDS` columns."""
    return pack_columns([np.ascontiguousarray(a, d) for a, d in zip((it, wall, value), POINT_DTYPES)])


def encode_chunk(recs: Mapping[str, np.ndarray]) -> bytes:
    return pack_columns([np.ascontiguousarray(recs[n], d) for n, d, _ in FIELDS])


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


# --------------------------------------------------------------------------- what readers return

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

