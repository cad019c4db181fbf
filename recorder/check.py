"""``gda-gl check FILE``: verify a whole recording, every pyramid bucket against the blocks.

Opening a recording checks only cheap invariants (the block headers, the
pyramid's shape, its whole-run bucket against the block index:
:meth:`recorder.lodstore.SqlChunks.check_blocks`), so that ``info``, ``render``
and ``compare`` stay bounded by what they print or draw.  :func:`check_recording`
reads everything: every block is decoded (content checksums, lengths, order),
the pyramid is rebuilt from the rows with the writer's own builder
(:class:`recorder.pyramid.PyramidBuilder`), and every stored bucket of every
level is compared with the rebuilt one, field by field (integers exactly,
floats to a relative 1e-6, NaN equal to NaN); every event is read; every logged series is decoded
and its pyramid compared the same way (:func:`recorder.seriesread.verify_series`).  Memory
stays bounded by one block plus the newest two chunks of each level: a chunk
is compared and dropped as soon as the builder has moved past it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from . import pyramid
from .errors import RecordingError
from .reader import Recording
from .seriesread import verify_series
from .window import RunWindows

__all__ = ["check_recording", "CheckResult"]


@dataclass
class CheckResult:
    """What :func:`check_recording` verified."""

    path: str
    rows: int
    blocks: int
    buckets: int
    levels: int
    events: int
    stored_pyramid: bool
    series: tuple[int, int, int] = (0, 0, 0)  # logged series: (series, points, pyramid buckets) verified

    def line(self) -> str:
        """One line for the command line."""
        if not self.stored_pyramid:
            what = "no stored pyramid (it is indexed in memory when opened)"
        else:
            what = f"{self.buckets:,} pyramid buckets on {self.levels} levels agree with the blocks"
        n, points, buckets = self.series
        logged = f"; {n:,} series of {points:,} points decode, {buckets:,} series buckets agree" if n else ""
        return (f"{self.path}: ok: {self.rows:,} iterations in {self.blocks:,} blocks decode; {what}; "
                f"{self.events:,} events{logged}")


def _describe(recs, i: int) -> str:
    return f"iterations {int(recs['first_it'][i])}..{int(recs['last_it'][i])}"


def _compare(path, level: int, chunk: int, stored: dict, built: dict) -> None:
    """Raise one line naming the first bucket field of ``stored`` that ``built`` (from the blocks) contradicts."""
    if len(stored["rows"]) != len(built["rows"]):
        raise RecordingError(path, f"damaged pyramid: level {level} chunk {chunk} holds {len(stored['rows'])} "
                                   f"buckets, the blocks give {len(built['rows'])}")
    for name, dt, _ in pyramid.BUCKET_FIELDS:
        a, b = np.asarray(stored[name]), np.asarray(built[name])
        if np.dtype(dt).kind == "f":
            with np.errstate(all="ignore"):
                a64, b64 = a.astype(np.float64), b.astype(np.float64)
                bad = ~np.isclose(a64, b64, rtol=1e-6, atol=0.0, equal_nan=True)
        else:
            bad = a.astype(np.int64) != b.astype(np.int64)
        if bad.any():
            i = int(np.argmax(bad))
            raise RecordingError(path, f"damaged pyramid: level {level} bucket {chunk * pyramid.CHUNK + i} "
                                       f"({_describe(built, i)}): {name} is {a[i]!r} in the file, the blocks "
                                       f"give {b[i]!r}")


#: rows fed to the pyramid builder at once (several blocks: fewer, larger numpy reductions)
_BATCH_ROWS = 1 << 16


def _batches(rec: Recording, progress):
    """The decoded rows of the recording in order, several blocks at a time; the next batch is decoded in a
    second thread while the caller builds the pyramid from this one (decompression releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    from .codec import Iterations

    ids = rec.block_ids()

    def load(start: int) -> tuple[Iterations, int, int]:
        parts, rows, j = [], 0, start
        while j < len(ids) and rows < _BATCH_ROWS:
            parts.append(rec.read_block(ids[j]))
            rows += len(parts[-1])
            j += 1
        return (Iterations.concat(parts) if len(parts) > 1 else parts[0]), j - start, j

    with ThreadPoolExecutor(max_workers=1) as pool:
        nxt = pool.submit(load, 0) if ids else None
        while nxt is not None:
            data, n_blocks, j = nxt.result()
            nxt = pool.submit(load, j) if j < len(ids) else None
            yield data, n_blocks
            if progress is not None:
                progress(len(data))


def _rebuild_and_compare(rec: Recording, windows: RunWindows, progress=None) -> tuple[int, int]:
    """Stream the blocks through a fresh builder, comparing chunks as they become final; (blocks, buckets)."""
    builder = pyramid.PyramidBuilder(rec.alpha_grid)
    pending: dict[tuple[int, int], dict] = {}
    checked = blocks = 0

    def settle(keys) -> int:
        done = 0
        for key in sorted(keys):
            built = pending.pop(key)
            _compare(rec.path, key[0], key[1], windows.chunks.chunk(*key), built)
            done += len(built["rows"])
        return done

    for d, n_blocks in _batches(rec, progress):
        blocks += n_blocks
        for level, c, recs in builder.add(d.columns_with_alphas(), d.phi, np.diff(d.trial_offsets), d.trials["alpha"]):
            checked += settle([k for k in pending if k[0] == level and k[1] < c])
            pending[(level, c)] = recs
    stored, built = windows.chunks.counts(), builder.counts()
    if stored != built:
        raise RecordingError(rec.path, f"damaged pyramid: {len(stored)} levels of {stored[:3]}... buckets, the "
                                       f"blocks give {len(built)} levels of {built[:3]}...")
    checked += settle(list(pending))
    return blocks, checked


def check_recording(path: str | os.PathLike, progress=None) -> CheckResult:
    """Verify every block, every pyramid bucket, every event and every logged series of a recording.

    Parameters
    ----------
    progress : called with the number of rows just verified (a progress bar's ``update``); the total is
        :meth:`recorder.reader.Recording.n_iterations`

    Raises
    ------
    RecordingError
        one line naming the file and the first problem found (a damaged block, a bucket the blocks contradict).
    """
    with Recording(path) as rec:
        windows = RunWindows.from_recording(rec, rows=False) if rec.has_stored_pyramid() else None
        if windows is not None:
            blocks, buckets = _rebuild_and_compare(rec, windows, progress)
            levels = len(windows.chunks.counts())
        else:
            blocks, buckets, levels = 0, 0, 0
            for _, n_blocks in _batches(rec, progress):
                blocks += n_blocks
        events = sum(1 for _ in rec.iter_events())
        series = verify_series(rec)
        return CheckResult(str(rec.path), rec.n_iterations(), blocks, buckets, levels, events, windows is not None,
                           series)
