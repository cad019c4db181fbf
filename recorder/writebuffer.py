"""The writer's append buffer: rows validated when appended, buffered, and cut into block-sized chunks
(:class:`AppendBuffer`).

Mixed into :class:`recorder.writer.RecordingWriter`: :meth:`AppendBuffer.append` converts one row's values
(one bad value raises for that call only), :meth:`AppendBuffer.append_arrays` takes columns at once; both
bound the buffer in rows and bytes while commits fail (the writer then stops recording and counts the
dropped rows).  Committing the buffer is the commit loop's (:mod:`recorder.writer`).
"""

from __future__ import annotations

import functools
import logging
import math
import operator
import time
from typing import Mapping, Sequence

import numpy as np

from . import schema
from .codec import as_row_alphas, interval_of, trials_arrays
from .errors import RecordingError

log = logging.getLogger(__name__)

_ROW_FIELDS = tuple(name for name, _, _ in schema.ITER_FIELDS if name != "iteration")
_ROW_DEFAULTS = {name: (math.nan if dt.kind == "f" else 0) for name, dt in schema.ITER_DTYPES.items()}
_ROW_TEMPLATE = [0] + [_ROW_DEFAULTS[name] for name in _ROW_FIELDS]   # a row of defaults, iteration first
_ROW_INDEX = {name: i + 1 for i, name in enumerate(_ROW_FIELDS)}
_INT_RANGE = {name: (int(np.iinfo(dt).min), int(np.iinfo(dt).max))
              for name, dt in schema.ITER_DTYPES.items() if dt.kind in "iu"}
_NAN_ROWS: dict[int, np.ndarray] = {}
_MAX_EVENTS = 10000
#: Default bound on the bytes of rows a writer buffers while commits fail (a full disk): then it stops
#: recording (see :class:`RecordingWriter`, ``max_buffer_bytes``).
MAX_BUFFER_BYTES = 32 << 20


def _as_int(name: str, v) -> int:
    """``v`` as an integer that fits field ``name``'s dtype (``TypeError``/``ValueError`` otherwise)."""
    if isinstance(v, (int, np.integer)):
        iv = int(v)
    elif isinstance(v, (float, np.floating)):
        if not (math.isfinite(v) and float(v).is_integer()):
            raise ValueError(f"{name} must be an integer, got {v!r}")
        iv = int(v)
    else:
        try:
            iv = operator.index(v)
        except TypeError:
            raise TypeError(f"{name} must be an integer, got {type(v).__name__} {str(v)[:40]!r}") from None
    lo, hi = _INT_RANGE[name]
    if not lo <= iv <= hi:
        raise ValueError(f"{name} = {iv} is out of range ({lo}..{hi})")
    return iv


def _as_float(name: str, v) -> float:
    if isinstance(v, (str, bytes)):
        raise TypeError(f"{name} must be a number, got {type(v).__name__} {str(v)[:40]!r}")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {type(v).__name__} {str(v)[:40]!r}") from None
    except OverflowError:
        raise ValueError(f"{name} = {str(v)[:40]} does not fit a float64") from None


_CONVERT = {name: functools.partial(_as_float if dt.kind == "f" else _as_int, name)
            for name, dt in schema.ITER_DTYPES.items()}


def _column(name: str, v, n: int) -> np.ndarray:
    """A whole column for ``append_arrays``, with the same checks as a single value."""
    dt = schema.ITER_DTYPES[name]
    a = np.asarray(v)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"column {name} must be numbers, got dtype {a.dtype}")
    a = np.broadcast_to(a, (n,)) if a.ndim == 0 else a
    if a.shape != (n,):
        raise ValueError(f"column {name} has shape {a.shape}, expected ({n},)")
    if dt.kind in "iu":
        lo, hi = _INT_RANGE[name]
        if a.dtype.kind == "f" and not (np.all(np.isfinite(a)) and np.all(a == np.round(a))):
            raise ValueError(f"column {name} must hold integers")
        if a.size and (a.min() < lo or a.max() > hi):
            raise ValueError(f"column {name} has values out of range ({lo}..{hi})")
    return np.ascontiguousarray(a, dt)


class AppendBuffer:
    """The append half of :class:`recorder.writer.RecordingWriter` (a mixin: it uses the writer's
    attributes, set in its ``__init__``)."""

    def append(self, iteration: int, phi: Sequence[float] | np.ndarray | None = None, *,
               trials: Mapping[str, Sequence] | None = None, alphas: Sequence[float] | None = None,
               **fields) -> None:
        """Append one iteration.

        Every value is checked here: a bad one raises for this call only, and the
        rows appended before stay buffered.  Commit failures (a full disk) do not
        raise here: they are logged once and retried in the background.

        Parameters
        ----------
        iteration : an integer strictly larger than the previous one
        phi : (K,) values at the alpha grid (NaN where not measured); all NaN when None
        trials : optional dict with ``alpha``, ``loss`` and optionally ``slope``, ``order`` sequences
        alphas : (K,) this row's alphas (a writer made with ``row_alphas=True`` only): the measured ones
            strictly increasing, then NaN, phi NaN where alpha is; None: no alphas (phi must be all NaN)
        **fields : any of :data:`recorder.schema.ITER_FIELDS`; missing floats are NaN, ints 0

        Raises
        ------
        RecordingError : the writer is closed
        TypeError, ValueError : a value of the wrong type or out of range, an unknown field,
            a non-increasing iteration
        """
        if self._closed:
            raise RecordingError(self.path, "writer is closed")
        iteration = _as_int("iteration", iteration)
        row = _ROW_TEMPLATE.copy()  # only the fields given are converted (a probe gives a dozen of 20)
        row[0] = iteration
        for name, v in fields.items():
            i = _ROW_INDEX.get(name)
            if i is None:
                unknown = sorted(f for f in fields if f not in _ROW_INDEX)
                raise TypeError(f"unknown iteration fields: {', '.join(unknown)}")
            if v is not None:
                row[i] = _CONVERT[name](v)
        k = len(self.alpha_grid)
        if phi is None:
            phi_arr = _NAN_ROWS.get(k)
            if phi_arr is None:
                phi_arr = _NAN_ROWS.setdefault(k, np.full(k, np.nan, schema.PHI_DTYPE))
        else:
            phi_arr = np.array(phi, schema.PHI_DTYPE)
            if phi_arr.size != k:
                raise ValueError(f"phi has {phi_arr.size} values, expected {k} (one per alpha)")
            phi_arr = phi_arr.reshape(k)
        tr = trials_arrays(trials) if trials is not None else None
        ra = self._row_alphas_of(alphas, phi_arr, 1)
        with self._lock:
            if self._last_iteration is not None and iteration <= self._last_iteration:
                raise ValueError("iterations must be strictly increasing (the recording is append-only)")
            if self._full():
                return
            self._rows.append((row, phi_arr, tr, ra))
            self._pending_rows += 1
            self._pending_bytes += self._row_bytes + (0 if tr is None else 28 * len(tr["alpha"]))
            self._last_iteration = iteration
            big = self._pending_rows >= self.block_rows and self.error is None
        if big:
            self._flush_quietly()

    def _row_alphas_of(self, alphas, phi: np.ndarray, n: int) -> np.ndarray | None:
        """Checked (n, K) per-row alphas for a per-row writer (None otherwise; giving alphas to it raises)."""
        if not self.row_alphas:
            if alphas is not None:
                raise ValueError("alphas given, but this recording has one shared alpha grid (create the "
                                 "writer with row_alphas=True for per-row alphas)")
            return None
        return as_row_alphas(alphas, phi, n, len(self.alpha_grid), interval_of(self.alpha_grid))

    def _full(self) -> bool:
        """Whether the buffer is full while commits fail: then stop recording (lock held)."""
        if (self._pending_rows < self.max_buffer_rows and self._pending_bytes < self.max_buffer_bytes) \
                or self.error is None:
            return False
        if not self.stopped:
            self.stopped = True
            log.warning("%s: recording stopped: commits keep failing (%s) and %d rows are buffered; they are "
                        "committed when space returns, later iterations are not recorded", self.path,
                        getattr(self.error, "problem", self.error), self._pending_rows)
            self._events.append((self._last_iteration, time.time(), "recording-stopped",
                                 f"commits failed ({getattr(self.error, 'problem', self.error)}); iterations "
                                 f"after {self._last_iteration} were not recorded"))
        self.rows_dropped += 1
        return True

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except RecordingError:
            pass  # logged once in flush(); the background thread retries

    def _rows_to_chunk(self) -> None:
        """Turn the per-iteration rows collected by append() into one columnar chunk (lock held).

        The values were validated by append(), so the conversion cannot fail half-way.
        """
        rows, self._rows = self._rows, []
        if not rows:
            return
        table = list(zip(*(r[0] for r in rows)))
        cols = {name: np.array(table[i], dtype=schema.ITER_DTYPES[name]) for i, name in
                enumerate(("iteration",) + _ROW_FIELDS)}
        phi = np.stack([r[1] for r in rows]).astype(schema.PHI_DTYPE, copy=False)
        if self.row_alphas:
            cols[schema.ROW_ALPHA_COLUMN] = np.concatenate([r[3] for r in rows])
        trs = [r[2] for r in rows]
        tcount = np.array([0 if t is None else len(t["alpha"]) for t in trs], schema.TRIAL_COUNT_DTYPE)
        present = [t for t in trs if t is not None]
        trials = {name: (np.concatenate([t[name] for t in present]) if present else np.empty(0, dt))
                  for name, dt in schema.TRIAL_DTYPES.items()}
        self._pending.append((cols, phi, tcount, trials))

    def append_arrays(self, columns: Mapping[str, np.ndarray], phi: np.ndarray,
                      trial_count: np.ndarray | None = None, trials: Mapping[str, np.ndarray] | None = None,
                      alphas: np.ndarray | None = None) -> None:
        """Append many iterations at once (columnar); used by bulk importers and benchmarks.

        ``alphas``: (n, K) per-row alphas, for a writer made with ``row_alphas=True`` (see :meth:`append`).

        Everything is validated before anything is buffered (all or nothing).
        """
        if self._closed:
            raise RecordingError(self.path, "writer is closed")
        unknown = set(columns) - set(schema.ITER_DTYPES)
        if unknown:
            raise TypeError(f"unknown iteration fields: {', '.join(sorted(unknown))}")
        it = _column("iteration", columns["iteration"], np.asarray(columns["iteration"]).size)
        n = len(it)
        if n == 0:
            return
        phi = np.asarray(phi, schema.PHI_DTYPE)
        if phi.size != n * len(self.alpha_grid):
            raise ValueError(f"phi has {phi.size} values, expected {n} x {len(self.alpha_grid)}")
        phi = phi.reshape(n, len(self.alpha_grid))
        ra = self._row_alphas_of(alphas, phi, n)
        cols = {}
        for name, dt in schema.ITER_DTYPES.items():
            v = columns.get(name)
            cols[name] = (np.full(n, np.nan if dt.kind == "f" else 0, dt) if v is None else _column(name, v, n))
        if trial_count is None:
            tcount = np.zeros(n, schema.TRIAL_COUNT_DTYPE)
        else:
            tc = np.asarray(trial_count)
            if tc.shape != (n,) or tc.dtype.kind not in "iu" or (n and tc.min() < 0):
                raise ValueError(f"trial_count must be {n} non-negative integers")
            tcount = tc.astype(schema.TRIAL_COUNT_DTYPE)
        tr = trials_arrays(trials, total=int(tcount.sum(dtype=np.int64)))
        with self._lock:
            if np.any(np.diff(it) <= 0) or (self._last_iteration is not None and it[0] <= self._last_iteration):
                raise ValueError("iterations must be strictly increasing (the recording is append-only)")
            if self._full():
                self.rows_dropped += n - 1
                return
            self._rows_to_chunk()
            if ra is not None:
                cols[schema.ROW_ALPHA_COLUMN] = ra
            self._pending.append((cols, phi, tcount, tr))
            self._pending_rows += n
            self._pending_bytes += n * self._row_bytes + sum(v.nbytes for v in tr.values())
            self._last_iteration = int(it[-1])
            big = self._pending_rows >= self.block_rows and self.error is None
        if big:
            self._flush_quietly()

    def add_event(self, kind: str, message: str, iteration: int | None = None) -> None:
        """Record an event (probe failure, note); committed with the next flush."""
        it = None if iteration is None else _as_int("iteration", iteration)
        with self._lock:
            if len(self._events) < _MAX_EVENTS:
                self._events.append((it, time.time(), str(kind), str(message)))
            else:
                if not self.events_dropped:
                    log.warning("%s: %d events wait for a commit; later ones are not recorded until one "
                                "succeeds", self.path, _MAX_EVENTS)
                self.events_dropped += 1

    # -- committing ----------------------------------------------------------
