"""Windows onto a run of any length: buckets at the right level, rows of a range, a whole-run summary.

:class:`RunWindows` is what a viewer reads instead of the whole run.  Its
answers are bounded by the request, never by the run:

* :meth:`RunWindows.envelope` returns the pyramid buckets covering
  ``[x0, x1)`` at the coarsest level that still gives at least one bucket per
  pixel column (or ``None`` when the window holds so few rows that drawing
  them one by one is cheaper), reading only the chunks that overlap.
* :meth:`RunWindows.rows` returns the rows of a range, decoding only the
  blocks that overlap through an LRU cache bounded in bytes.
* :meth:`RunWindows.summary` is the top bucket: counts, sums, extremes of the
  whole run, in O(1).

Three backings share this code: a schema-2 file (blocks and the stored
``lod`` table), a schema-1 file (blocks; the pyramid is built in memory by
one streaming pass when opened, the file is never modified), and an
in-memory :class:`~recorder.codec.Iterations` (tests, runs made in Python).
:meth:`RunWindows.refresh` picks up rows committed since the last call (live
runs): it reads only new blocks and the pyramid chunks that changed.
"""

from __future__ import annotations

import logging
import math
import threading

import numpy as np
from cachetools import LRUCache

from . import pyramid
from .codec import Iterations
from .errors import RecordingError
from .lodstore import ChunkSource, LodError, MemoryChunks, SqlChunks, check_edges, edge_records

log = logging.getLogger(__name__)

__all__ = ["RunWindows", "Envelope"]

#: decoded rows kept by the block cache of one run (bytes)
BLOCK_CACHE_BYTES = 96 << 20
#: A file without a usable stored pyramid (schema 1, or a schema-2 file whose ``meta.lod`` is missing or
#: foreign) is indexed in memory at every open by decoding every block.  Refused when its blocks declare more
#: decoded bytes than this, unless that is within :data:`MEMORY_INDEX_RATIO` times the file's own size
#: (schema-1 blocks are raw, so any schema-1 file passes; only compressed blocks can declare far more).
MEMORY_INDEX_BYTES = 64 << 20
#: most buckets per pixel column :meth:`RunWindows.envelope` reads (a finer level asked for is coarsened)
MAX_BUCKETS_PER_COLUMN = 16
MEMORY_INDEX_RATIO = 8


class Envelope:
    """Pyramid buckets covering a window (``level`` >= 0), with their iteration spans."""

    def __init__(self, level: int, recs: dict[str, np.ndarray]):
        self.level = level
        self.recs = recs

    def __len__(self) -> int:
        return len(self.recs["rows"])



def _nbytes(data: Iterations) -> int:
    return int(data.phi.nbytes + sum(v.nbytes for v in data.columns.values()) +
               sum(v.nbytes for v in data.trials.values()) + data.trial_offsets.nbytes)


def _check_edges(rec, chunks) -> None:
    """The whole-run bucket of ``chunks`` against the run's first row and, once the writer closed it, its last
    row (:func:`recorder.lodstore.check_edges`; two blocks decoded: cheap at open)."""
    first_id, last_id = rec.query("SELECT min(id), max(id) FROM blocks")[0]
    if first_id is None:
        return
    first = edge_records(rec.read_block(first_id).slice_rows(0, 1))
    last = None  # a live run's last row moves on: checked once the writer closed the file
    if rec.writer_state() == "closed":
        data = rec.read_block(last_id)
        last = edge_records(data.slice_rows(max(0, len(data) - 2), len(data)))
    try:
        check_edges(chunks.top(), first, last)
    except LodError as exc:
        raise RecordingError(rec.path, f"damaged pyramid: {exc}") from None


class RunWindows:
    """Windowed access to one run (see the module docstring).

    Use :meth:`from_recording` or :meth:`from_iterations`.
    """

    def __init__(self, alpha_grid: np.ndarray, name: str):
        self.alpha_grid = np.asarray(alpha_grid, np.float64)
        self.name = name
        self.recording = None
        self.chunks: ChunkSource = MemoryChunks(self.alpha_grid)
        self._mem: Iterations | None = None
        self._index = np.empty((0, 4), np.int64)   # block id, first, last, n
        self._row0 = np.zeros(1, np.int64)          # first row of each block, then the total
        # decoded blocks by id, least recently used dropped past BLOCK_CACHE_BYTES
        self._cache: LRUCache = LRUCache(maxsize=BLOCK_CACHE_BYTES, getsizeof=_nbytes)
        self._lock = threading.RLock()
        self._memory_index = True                   # pyramid built here (schema 1 / memory)
        self.decoded_blocks = 0                     # for tests: how many blocks were decoded

    # -- construction --------------------------------------------------------------
    @classmethod
    def from_iterations(cls, data: Iterations, name: str = "run") -> "RunWindows":
        w = cls(data.alpha_grid, name)
        w._mem = data
        if len(data):
            w.chunks.add(data.columns_with_alphas(), data.phi, np.diff(data.trial_offsets), data.trials["alpha"])
        return w

    @classmethod
    def from_recording(cls, rec, rows: bool = True) -> "RunWindows":
        """Windows onto an open :class:`~recorder.reader.Recording` (kept open; closed by the caller).

        ``rows=False``: only the stored pyramid is read (``info``: the whole-run summary), not the block
        index; schema-1 files are indexed in memory either way.
        """
        w = cls(rec.alpha_grid, rec.name)
        w.recording = rec
        w._memory_index = not rec.has_stored_pyramid()
        if not w._memory_index:
            w.chunks = SqlChunks(rec.query, path=rec.path, fields=rec.pyramid_fields)
            if not rows:
                w._check_pyramid_alone()
                _check_edges(w.recording, w.chunks)
                return w
        else:
            _check_index_budget(rec)
        w.refresh()
        if not w._memory_index:
            _check_edges(w.recording, w.chunks)
        return w

    def _check_pyramid_alone(self) -> None:
        """Read the stored pyramid's shape and check it against the block totals (no block index kept)."""
        rec = self.recording

        def snapshot(query):
            self.chunks.refresh(query)
            n, total, first, last = query("SELECT count(*), total(n), min(first_iteration), "
                                          "max(last_iteration) FROM blocks")[0]
            if not (isinstance(total, float) and total.is_integer() and 0 <= total < 2 ** 62):
                raise RecordingError(rec.path, "damaged block index (row counts are not integers)")
            self.chunks.check_blocks(query, int(total), first if n else None, last if n else None)

        rec.consistent_read(snapshot)

    # -- live growth -------------------------------------------------------------------
    def refresh(self) -> int:
        """Notice rows committed since the last call; returns how many arrived."""
        if self.recording is None:
            return 0
        rec = self.recording
        with self._lock:
            old_total = int(self._row0[-1])

            known = self._index[:-1] if len(self._index) else self._index  # the newest block may grow
            since = int(self._index[-1, 0]) if len(self._index) else -(2 ** 62)

            def snapshot(query):
                # new block headers and the pyramid's shape from one read transaction: they agree
                rows = query("SELECT id, first_iteration, last_iteration, n FROM blocks WHERE id >= ? "
                             "ORDER BY id", (since,))
                if not self._memory_index:
                    self.chunks.refresh(query)
                    check = self._totals(known, rows)
                    self.chunks.check_blocks(query, *check)
                return rows

            rows = rec.consistent_read(snapshot)  # O(new blocks): a follower never rereads the whole index
            for r in rows:
                if not all(isinstance(v, int) and not isinstance(v, bool) for v in r) or r[3] <= 0 or r[3] > 1 << 26:
                    raise RecordingError(rec.path, f"damaged block index (block {r[0]!r})")
            new = np.array(rows, np.int64).reshape(-1, 4)
            if len(self._index) and (not len(new) or new[0, 0] != since or new[0, 1] != self._index[-1, 1]):
                raise RecordingError(rec.path, f"damaged block index (block {since} changed or vanished)")
            idx = np.concatenate([known, new])
            seam = max(0, len(known) - 1)  # spans are checked from the last unchanged block on
            part = idx[seam:]
            if np.any(part[:, 2] < part[:, 1]) or (len(part) > 1 and np.any(part[1:, 1] <= part[:-1, 2])):
                raise RecordingError(rec.path, "damaged block index (iteration spans overlap)")
            row0 = np.concatenate([self._row0[:len(known) + 1],
                                   self._row0[len(known)] + np.cumsum(new[:, 3], dtype=np.int64)])
            # the newest block may have grown: forget its decoded copy
            if len(self._index):
                last_id = int(self._index[-1, 0])
                self._drop(last_id)
            self._index, self._row0 = idx, row0
            total = int(row0[-1])
            if self._memory_index and total > self.chunks.builder.n_rows:
                self._ingest(self.chunks.builder.n_rows)
            return total - old_total

    def _totals(self, known: np.ndarray, rows: list) -> tuple[int, int | None, int | None]:
        """(rows, first iteration, last iteration) of the blocks ``known`` followed by the new ``rows``."""
        if not all(isinstance(v, int) and not isinstance(v, bool) for r in rows for v in r):
            raise RecordingError(self.recording.path, "damaged block index (non-integer entries)")
        total = int(self._row0[len(known)]) + sum(r[3] for r in rows)
        first = int(known[0, 1]) if len(known) else (rows[0][1] if rows else None)
        last = rows[-1][2] if rows else (int(known[-1, 2]) if len(known) else None)
        return total, first, last

    def _ingest(self, from_row: int) -> None:
        """Feed rows from ``from_row`` on into the in-memory pyramid, block by block (streaming)."""
        b = int(np.searchsorted(self._row0, from_row, side="right")) - 1
        for j in range(max(0, b), len(self._index)):
            data = self._block(j, cache=False)
            skip = max(0, from_row - int(self._row0[j]))
            if skip >= len(data):
                continue
            part = data.slice_rows(skip, len(data)) if skip else data
            self.chunks.add(part.columns_with_alphas(), part.phi, np.diff(part.trial_offsets), part.trials["alpha"])

    # -- rows --------------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        if self._mem is not None:
            return len(self._mem)
        return int(self._row0[-1])

    def span(self) -> tuple[float, float] | None:
        """(first iteration, last iteration + 1), or None for an empty run."""
        if self._mem is not None:
            it = self._mem.iteration
            return (float(it[0]), float(it[-1]) + 1.0) if len(it) else None
        if not len(self._index):
            return None
        return float(self._index[0, 1]), float(self._index[-1, 2]) + 1.0

    @property
    def rows_in_memory(self) -> Iterations | None:
        """The whole table of an in-memory run (None for a run read from a recording)."""
        return self._mem

    def grow_in_memory(self, data: Iterations, new: Iterations) -> None:
        """An in-memory run grew by ``new`` rows: ``data`` is its whole table now, ending with ``new``.

        Raises
        ------
        TypeError
            the run is read from a recording (it grows with :meth:`refresh`).
        ValueError
            ``data`` is not the old table followed by ``new``.
        """
        if self._mem is None:
            raise TypeError("a recording-backed run grows with refresh()")
        if len(data) != len(self._mem) + len(new):
            raise ValueError(f"{len(data)} rows are not the {len(self._mem)} held plus {len(new)} new")
        with self._lock:
            self._mem = data
            if len(new):
                self.chunks.add(new.columns_with_alphas(), new.phi, np.diff(new.trial_offsets), new.trials["alpha"])

    def _drop(self, block_id: int) -> None:
        self._cache.pop(block_id, None)

    def _block(self, j: int, cache: bool = True) -> Iterations:
        bid, first, last, n = (int(v) for v in self._index[j])
        with self._lock:
            hit = self._cache.get(bid)  # a hit becomes the most recently used
            if hit is not None:
                return hit
        data = self.recording.read_block(bid)
        self.decoded_blocks += 1
        if j == len(self._index) - 1 and len(data) > n and int(data.iteration[n - 1]) == last:
            data = data.slice_rows(0, n)  # the newest block grew since refresh(): keep what the index knows
        if len(data) != n or (n and (int(data.iteration[0]) != first or int(data.iteration[-1]) != last)):
            raise RecordingError(self.recording.path, f"damaged block {bid} (its rows do not match the index)")
        if cache and _nbytes(data) <= self._cache.maxsize:  # a block larger than the budget is not kept
            with self._lock:
                self._cache[bid] = data  # evicts the least recently used blocks past the byte budget
        return data

    def rows(self, x0: float, x1: float, max_rows: int | None = None) -> Iterations:
        """Rows whose iteration lies in ``[x0, x1)``; at most ``max_rows`` (the first ones) when given."""
        lo = _ikey(math.ceil(x0)) if math.isfinite(x0) else -(2 ** 62)
        hi = _ikey(math.ceil(x1)) if math.isfinite(x1) else 2 ** 62
        if self._mem is not None:
            it = self._mem.iteration
            a, b = int(np.searchsorted(it, lo)), int(np.searchsorted(it, hi))
            if max_rows is not None:
                b = min(b, a + max_rows)
            return self._mem.slice_rows(a, b)
        with self._lock:
            idx = self._index
            j0 = int(np.searchsorted(idx[:, 2], lo))          # first block whose last >= lo
            j1 = int(np.searchsorted(idx[:, 1], hi))          # blocks with first < hi
            parts, got = [], 0
            for j in range(j0, j1):
                d = self._block(j)
                it = d.iteration
                a, b = int(np.searchsorted(it, lo)), int(np.searchsorted(it, hi))
                if max_rows is not None:
                    b = min(b, a + max_rows - got)
                if b > a:
                    parts.append(d.slice_rows(a, b))
                    got += b - a
                if max_rows is not None and got >= max_rows:
                    break
        if not parts:
            return Iterations.empty(self.alpha_grid)
        return Iterations.concat(parts)

    def rows_in_range(self, x0: float, x1: float) -> int:
        """Number of rows with iteration in ``[x0, x1)`` (exact for memory runs, block-interpolated for files)."""
        if self._mem is not None:
            it = self._mem.iteration
            return int(np.searchsorted(it, _ikey(math.ceil(x1))) - np.searchsorted(it, _ikey(math.ceil(x0))))
        idx = self._index
        if not len(idx):
            return 0
        first, last, n = idx[:, 1].astype(np.float64), idx[:, 2].astype(np.float64), idx[:, 3].astype(np.float64)
        lo = np.clip((x0 - first) / (last - first + 1.0), 0.0, 1.0)
        hi = np.clip((x1 - first) / (last - first + 1.0), 0.0, 1.0)
        return int(round(float(np.sum((hi - lo) * n))))

    def row_of(self, iteration: int) -> Iterations | None:
        """The one row of ``iteration``, or None."""
        d = self.rows(iteration, iteration + 1)
        return d if len(d) == 1 and int(d.iteration[0]) == int(iteration) else None

    # -- buckets -----------------------------------------------------------------------
    def choose_level(self, x0: float, x1: float, columns: int, rows: int | None = None) -> int | None:
        """Coarsest level with at least one bucket per pixel column, or None to draw rows.

        ``rows``: the rows in ``[x0, x1)`` when the caller has counted them already.
        """
        counts = self.chunks.counts()
        if not counts or columns <= 0:
            return None
        per_col = (self.rows_in_range(x0, x1) if rows is None else rows) / columns
        if per_col < pyramid.BASE_ROWS:
            return None
        level = int(math.floor(math.log(per_col / pyramid.BASE_ROWS, pyramid.FANOUT) + 1e-9))
        return max(0, min(level, len(counts) - 1))

    def envelope(self, x0: float, x1: float, columns: int, level: int | None = -1,
                 rows: int | None = None) -> Envelope | None:
        """Buckets overlapping ``[x0, x1)`` at ``level`` (chosen for ``columns`` when -1, from ``rows`` rows in
        the window when given); None: draw rows.

        A level given explicitly is coarsened, when needed, to the finest one with at most
        :data:`MAX_BUCKETS_PER_COLUMN` buckets per pixel column, so the work is bounded by the pixels drawn,
        not by the run's length (``Envelope.level`` says which level was read).
        """
        if level == -1:
            level = self.choose_level(x0, x1, columns, rows)
        if level is None:
            return None
        level = self._bounded_level(level, x0, x1, columns, rows)
        return Envelope(level, self.buckets_between(level, x0, x1))

    def _bounded_level(self, level: int, x0: float, x1: float, columns: int, rows: int | None) -> int:
        """``level``, or a coarser one whose buckets in ``[x0, x1)`` number at most
        :data:`MAX_BUCKETS_PER_COLUMN` per column."""
        counts = self.chunks.counts()
        n = self.rows_in_range(x0, x1) if rows is None else rows
        cap = MAX_BUCKETS_PER_COLUMN * max(1, int(columns))
        while level + 1 < len(counts) and n / pyramid.bucket_rows(level) > cap:
            level += 1
        return level

    def buckets_between(self, level: int, x0: float, x1: float) -> dict[str, np.ndarray]:
        """Buckets of ``level`` whose iteration span overlaps ``[x0, x1)``."""
        counts = self.chunks.counts()
        if level >= len(counts):
            raise LodError(f"pyramid level {level} missing")
        size = pyramid.bucket_rows(level)
        r0 = self._row_estimate(x0)
        r1 = self._row_estimate(x1)
        b0 = max(0, r0 // size - 1)
        b1 = min(counts[level], r1 // size + 2)
        recs = self.chunks.buckets(level, b0, b1)
        # widen until the fetched buckets cover the window (the estimate is exact for memory runs)
        while b0 > 0 and len(recs["rows"]) and recs["first_it"][0] > x0:
            b0 = max(0, b0 - max(1, (b1 - b0)))
            recs = self.chunks.buckets(level, b0, b1)
        while b1 < counts[level] and len(recs["rows"]) and recs["last_it"][-1] + 1 < x1:
            b1 = min(counts[level], b1 + max(1, (b1 - b0)))
            recs = self.chunks.buckets(level, b0, b1)
        keep = (recs["last_it"] + 1 > x0) & (recs["first_it"] < x1)
        a, b = (int(np.argmax(keep)), len(keep) - int(np.argmax(keep[::-1]))) if keep.any() else (0, 0)
        return {k: v[a:b] for k, v in recs.items()}

    def _row_estimate(self, x: float) -> int:
        """Row index of the first row with iteration >= x (exact in memory; interpolated in a block for files)."""
        if self._mem is not None:
            return int(np.searchsorted(self._mem.iteration, _ikey(math.ceil(x)) if math.isfinite(x) else
                                       (2 ** 62 if x > 0 else -(2 ** 62))))
        idx = self._index
        if not len(idx) or not math.isfinite(x):
            return 0 if (not math.isfinite(x) and x < 0) or not len(idx) else int(self._row0[-1])
        j = int(np.searchsorted(idx[:, 2], _ikey(math.ceil(x))))
        if j >= len(idx):
            return int(self._row0[-1])
        first, last, n = (float(v) for v in idx[j, 1:4])
        frac = min(1.0, max(0.0, (x - first) / (last - first + 1.0)))
        return int(self._row0[j]) + int(frac * n)

    # -- scalar series -----------------------------------------------------------------
    def series_names(self) -> list[str]:
        """Built-in series (``train_loss``, ``lr``, ``grad_norm``), then those logged into the recording."""
        from . import seriesread

        return seriesread.window_names(self)

    def series(self, name: str, x0: float, x1: float, width_px: int):
        """Series ``name`` over iterations ``[x0, x1)`` for ``width_px`` pixel columns: raw
        :class:`recorder.series.SeriesPoints` (fewer than 16 per column) or :class:`recorder.series.SeriesBuckets`
        (min, max, last, count ... per bucket), bounded by pixels (:func:`recorder.series.window`)."""
        from . import seriesread

        return seriesread.window(self, name, x0, x1, width_px)

    def summary(self) -> dict[str, np.ndarray] | None:
        """The whole run as one bucket (see :data:`recorder.pyramid.BUCKET_FIELDS`), or None when empty."""
        return self.chunks.top()


def _check_index_budget(rec) -> None:
    """Refuse to index a file in memory when its blocks declare more decoded bytes (rows and trial points)
    than :data:`MEMORY_INDEX_BYTES` or :data:`MEMORY_INDEX_RATIO` times the file's size allow (a run without a
    usable stored pyramid is decoded whole at every open; compressed blocks could declare any amount)."""
    size = rec.file_size()
    allowed = max(MEMORY_INDEX_BYTES, MEMORY_INDEX_RATIO * size)
    n, need, trials = rec.declared_bytes(stop_above=allowed)
    if need > allowed:
        what = f" and {trials:,} trial points" if trials else ""
        raise RecordingError(rec.path, f"has no stored pyramid this gda-gl can use, and its blocks declare "
                                       f"{n:,} iterations x {len(rec.alpha_grid)} alphas{what} "
                                       f"({'more than ' if trials else ''}{need / 2 ** 20:,.0f} MiB "
                                       f"decoded) in a {size / 2 ** 20:,.1f} MiB file: refusing to index that in "
                                       f"memory at every open ('gda-gl upgrade' writes a copy with a stored "
                                       f"pyramid; 'gda-gl check' verifies the blocks)")


def _ikey(v: float) -> int:
    return int(max(min(v, 2 ** 62), -(2 ** 62)))
