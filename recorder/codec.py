"""Block codec and the in-memory table: the one place raw bytes become numpy columns and back.

Design
------
A block is one row of the ``blocks`` table: ``n`` iterations stored columnar,
one BLOB per field in the order of :func:`recorder.schema.block_columns`.
:func:`encode_block` turns columns into those BLOBs; :func:`decode_block` is the
only decoder, used by the writer (to reload the tail block when appending) and
by the reader, so every check on stored bytes lives here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from . import schema
from .colcodec import CodecError, compress_array, decompress_array

__all__ = ["Iterations", "BlockError", "encode_block", "decode_block", "concat_parts", "as_grid", "as_row_alphas",
           "check_row_alphas", "json_safe",
           "trials_arrays", "loads_bounded", "MAX_GRID", "READ_BUDGET_BYTES",
           "TRIAL_BYTES", "declared_trials", "interval_of"]


# --------------------------------------------------------------------------- in-memory table

@dataclass
class Iterations:
    """A run's iterations as numpy columns (what :meth:`Recording.read` returns).

    Attributes
    ----------
    alpha_grid : (K,) float64
    columns : dict of name -> (n,) array, one per :data:`recorder.schema.ITER_FIELDS`
    phi : (n, K) float32, phi_k at the alpha grid
    trial_offsets : (n + 1,) int64, trials of row i are ``trials[name][off[i]:off[i+1]]``
    trials : dict of name -> concatenated trial arrays (:data:`recorder.schema.TRIAL_FIELDS`)
    row_alphas : (n, K) float64 or None: each row's own alphas (adaptive probes; ``phi[i, j]`` is at
        ``row_alphas[i, j]``; measured alphas ascending, then NaN), None when every row has ``alpha_grid``
        (then ``alpha_grid`` is the grid; with per-row alphas it is the nominal grid, only its length K
        and ends [0, alpha_max] mean anything).  :meth:`alphas_of_rows` reads both alike.
    """

    alpha_grid: np.ndarray
    columns: dict[str, np.ndarray]
    phi: np.ndarray
    trial_offsets: np.ndarray
    trials: dict[str, np.ndarray] = field(default_factory=dict)
    row_alphas: np.ndarray | None = None

    def alphas_of_rows(self) -> np.ndarray:
        """(n, K) float64: the alpha of every phi value (the shared grid broadcast when rows share it)."""
        if self.row_alphas is not None:
            return self.row_alphas
        g = np.asarray(self.alpha_grid, np.float64)
        return np.broadcast_to(g, (len(self), len(g)))

    def columns_with_alphas(self) -> dict[str, np.ndarray]:
        """``columns`` plus, for per-row alphas, ``"alpha"`` (the block layout the pyramid builder reads)."""
        if self.row_alphas is None:
            return self.columns
        return {**self.columns, schema.ROW_ALPHA_COLUMN: self.row_alphas}

    def alphas_of(self, row: int) -> np.ndarray:
        """(K,) float64: the alphas of row ``row`` (NaN where that step measured fewer points)."""
        return self.alphas_of_rows()[row]

    def __len__(self) -> int:
        return int(self.phi.shape[0])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    @property
    def iteration(self) -> np.ndarray:
        return self.columns["iteration"]

    def trials_of(self, row: int) -> dict[str, np.ndarray]:
        """Trial points of row ``row`` (not iteration number), in storage order."""
        a, b = int(self.trial_offsets[row]), int(self.trial_offsets[row + 1])
        return {k: v[a:b] for k, v in self.trials.items()}

    def row_of(self, iteration: int) -> int:
        """Row index of an iteration number; ``KeyError`` if absent."""
        it = self.columns["iteration"]
        i = int(np.searchsorted(it, iteration))
        if i >= len(it) or it[i] != iteration:
            raise KeyError(iteration)
        return i

    def slice_rows(self, a: int, b: int) -> "Iterations":
        ta, tb = int(self.trial_offsets[a]), int(self.trial_offsets[b])
        return Iterations(self.alpha_grid, {k: v[a:b] for k, v in self.columns.items()}, self.phi[a:b],
                          self.trial_offsets[a:b + 1] - ta, {k: v[ta:tb] for k, v in self.trials.items()},
                          None if self.row_alphas is None else self.row_alphas[a:b])

    @staticmethod
    def empty(alpha_grid: np.ndarray) -> "Iterations":
        k = len(alpha_grid)
        return Iterations(np.asarray(alpha_grid, np.float64),
                          {n: np.empty(0, d) for n, d in schema.ITER_DTYPES.items()},
                          np.empty((0, k), schema.PHI_DTYPE), np.zeros(1, np.int64),
                          {n: np.empty(0, d) for n, d in schema.TRIAL_DTYPES.items()})

    @staticmethod
    def concat(parts: Sequence["Iterations"]) -> "Iterations":
        parts = list(parts)
        if len(parts) == 1:
            return parts[0]
        cols, phi, counts, trials = concat_parts([(p.columns, p.phi, np.diff(p.trial_offsets), p.trials)
                                                  for p in parts])
        off = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=off[1:])
        ra = None
        if any(p.row_alphas is not None for p in parts):
            ra = np.concatenate([np.asarray(p.alphas_of_rows(), np.float64) for p in parts])
        return Iterations(parts[0].alpha_grid, cols, phi, off, trials, ra)


# --------------------------------------------------------------------------- block encoding

#: Longest alpha grid a recording may declare (a probe uses tens of alphas).
MAX_GRID = 1 << 16
#: Most bytes a reader assembles at once (:meth:`recorder.reader.Recording.read`, ``read_new``,
#: :func:`recorder.seriesread.read_series`), counted from the row or point counts the file declares,
#: before decoding: a compressed file of a few MB can declare gigabytes.
READ_BUDGET_BYTES = 1 << 30
#: Deepest nesting accepted in stored JSON (run metadata is a few levels deep).
MAX_JSON_DEPTH = 64
#: Longest JSON text accepted from one ``meta`` value (the model summary is capped at 20,000 characters).
MAX_JSON_CHARS = 16 << 20


class BlockError(ValueError):
    """Stored block bytes that do not match the schema (the reader adds the file and the block id)."""


def encode_block(cols: Mapping[str, np.ndarray], phi: np.ndarray, tcount: np.ndarray,
                 trials: Mapping[str, np.ndarray], version: int = schema.SCHEMA_VERSION,
                 fields: Sequence[tuple[str, np.dtype]] | None = None) -> list[bytes]:
    """Columns of one block as the BLOBs of :func:`recorder.schema.block_columns`, in that order.

    Parameters
    ----------
    cols : name -> (n,) array for every field stored
    phi : (n, K) values at the alpha grid
    tcount : (n,) trial points per iteration
    trials : name -> (sum(tcount),) array for every :data:`recorder.schema.TRIAL_FIELDS`
    version : schema version to write (2: each column a Zstandard frame of its shuffled bytes; 1: raw bytes)
    fields : (name, stored dtype) of the per-iteration columns the file has
        (:func:`recorder.schema.stored_fields`; default: all this release writes to a new file)

    A per-row alpha grid travels with the columns as ``cols["alpha"]`` ((n, K),
    :data:`recorder.schema.ROW_ALPHA_COLUMN`); when present it is encoded last, for files that have
    that column.

    Returns
    -------
    list of bytes
    """
    if fields is None:
        fields = schema.stored_fields(version)
    arrays = [np.ascontiguousarray(cols[n], dt) for n, dt in fields]
    arrays.append(np.ascontiguousarray(phi, schema.PHI_DTYPE))
    arrays.append(np.ascontiguousarray(tcount, schema.TRIAL_COUNT_DTYPE))
    arrays += [np.ascontiguousarray(trials[n], schema.TRIAL_DTYPES[n]) for n, _, _ in schema.TRIAL_FIELDS]
    if schema.ROW_ALPHA_COLUMN in cols and version >= 2:
        arrays.append(np.ascontiguousarray(cols[schema.ROW_ALPHA_COLUMN], schema.ROW_ALPHA_DTYPE))
    if version >= 2:
        return [compress_array(a) for a in arrays]
    return [a.tobytes() for a in arrays]


#: bytes of one decoded trial point (alpha, loss, slope, order)
TRIAL_BYTES = sum(dt.itemsize for dt in schema.TRIAL_DTYPES.values())


def declared_trials(tcount_blob, n: int, version: int) -> int:
    """Trial points a block declares: the sum of its ``trial_count`` column, decoded alone (``n`` int32, a
    few KB), so a reader can budget a block's trial arrays before decompressing them (a compressed file of a
    few MB can declare gigabytes of trial points).

    Raises
    ------
    BlockError : the column does not decode
    """
    tc = _blob(tcount_blob, "trial_count", int(n), schema.TRIAL_COUNT_DTYPE, version)
    return int(tc.sum(dtype=np.int64))


def _blob(value, name: str, count: int, dtype: np.dtype, version: int = 1) -> np.ndarray:
    """``count`` values of ``dtype`` from one stored BLOB, checking type and length first (no copy)."""
    if version >= 2:
        try:
            return decompress_array(value, count, dtype, f"column {name}")
        except CodecError as exc:
            raise BlockError(str(exc)) from None
    if not isinstance(value, (bytes, bytearray, memoryview)):
        kind = "NULL" if value is None else type(value).__name__
        raise BlockError(f"column {name} is {kind}, expected a BLOB")
    want = count * dtype.itemsize
    if len(value) != want:
        raise BlockError(f"column {name} holds {len(value)} bytes, expected {want} ({count} x {dtype.name})")
    return np.frombuffer(value, dtype)


#: most rows a stored block may hold (the writer's blocks hold at most 8192)
MAX_BLOCK_ROWS = 1 << 16
#: most bytes of phi one stored block may hold
MAX_BLOCK_PHI_BYTES = 256 << 20


def _row_count(n, k: int, version: int) -> int:
    """A block's stored row count ``n``, checked against what a block may hold."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise BlockError(f"row count n is {type(n).__name__}, expected an integer")
    n = int(n)
    if n <= 0:
        raise BlockError(f"row count n = {n} (must be positive)")
    if k <= 0:
        raise BlockError("the alpha grid is empty")
    if version >= 2 and (n > MAX_BLOCK_ROWS or n * k * schema.PHI_DTYPE.itemsize > MAX_BLOCK_PHI_BYTES):
        raise BlockError(f"row count n = {n} is more than a block can hold")
    return n


def _decode_fields(it, fields, n: int, version: int) -> dict[str, np.ndarray]:
    """The per-iteration columns, in the current dtypes; fields the file lacks as their default."""
    cols = {}
    for name, dt in fields:
        value, col = next(it)
        arr = _blob(value, col, n, dt, version)
        want = schema.ITER_DTYPES.get(name)
        if want is not None:  # a field this release does not know is skipped
            cols[name] = arr if arr.dtype == want else arr.astype(want)
    for name, want in schema.ITER_DTYPES.items():
        if name not in cols:  # newer than the file: its default
            cols[name] = np.full(n, schema.field_default(name), want)
    return {name: cols[name] for name in schema.ITER_DTYPES}


def decode_block(blobs: Sequence, n, k: int, version: int = schema.SCHEMA_VERSION,
                 fields: Sequence[tuple[str, np.dtype]] | None = None, row_alphas: bool = False,
                 interval: tuple | None = None):
    """Validate and decode the BLOBs of one block; the only decoder of stored bytes.

    Every length is checked against ``n`` and the schema's dtypes *before*
    anything is allocated, so memory is bounded by the bytes actually stored.

    Parameters
    ----------
    blobs : the block's BLOB columns in the order of :func:`recorder.schema.block_columns`
    n : the block's stored row count
    k : length of the recording's alpha grid
    version : the file's schema version (1: raw columns, float64 statistics; 2: compressed columns);
        columns are returned with the current dtypes (:data:`recorder.schema.ITER_DTYPES`) either way
    fields : (name, stored dtype) of the file's per-iteration columns (:func:`recorder.schema.stored_fields`,
        the default: every one of ``version``); fields the file lacks read as their default
        (:func:`recorder.schema.field_default`), stored fields this release does not know are skipped
    row_alphas : the block has the per-row alpha column (last): it is checked (:func:`check_row_alphas`,
        inside ``interval`` when given: :func:`interval_of` the file's nominal grid)
        and returned as ``cols["alpha"]``, (n, k) float64

    Returns
    -------
    (cols, phi, tcount, trials) : read-only numpy views of the stored bytes;
        ``phi`` is (n, k), ``tcount`` (n,), ``trials`` arrays of ``sum(tcount)`` values

    Raises
    ------
    BlockError
        one line describing the first mismatch (wrong type, length, row count, trial counts, order).
    """
    if fields is None:
        fields = schema.stored_fields(version)
    names = [f"f_{name}" for name, _ in fields] + list(schema.PHI_TRIAL_COLUMNS)
    if row_alphas and version >= 2:
        names.append(schema.ROW_ALPHA_COLUMN)
    if len(blobs) != len(names):
        raise BlockError(f"has {len(blobs)} columns, expected {len(names)}")
    n = _row_count(n, k, version)
    raw = version < 2
    it = iter(zip(blobs, names))
    cols = _decode_fields(it, fields, n, version)
    value, col = next(it)
    if raw and isinstance(value, (bytes, bytearray, memoryview)) and len(value) != n * k * schema.PHI_DTYPE.itemsize:
        raise BlockError(f"column phi holds {len(value)} bytes, expected {n * k * schema.PHI_DTYPE.itemsize} "
                         f"({n} rows x {k} alphas x float32)")
    phi = _blob(value, col, n * k, schema.PHI_DTYPE, version).reshape(n, k)
    value, col = next(it)
    tcount = _blob(value, col, n, schema.TRIAL_COUNT_DTYPE, version)
    if tcount.min() < 0:
        raise BlockError("negative trial count")
    m = int(tcount.sum(dtype=np.int64))
    trials = {}
    for name, dt in schema.TRIAL_DTYPES.items():
        value, col = next(it)
        if raw and isinstance(value, (bytes, bytearray, memoryview)) and len(value) != m * dt.itemsize:
            raise BlockError(f"trial counts add up to {m} but column {col} holds {len(value)} bytes "
                             f"({len(value) / dt.itemsize:g} values)")
        if not raw and m > 64 * MAX_BLOCK_ROWS:
            raise BlockError(f"trial counts add up to {m}, more than a block can hold")
        trials[name] = _blob(value, col, m, dt, version)
    if row_alphas and version >= 2:
        value, col = next(it)
        ra = _blob(value, col, n * k, schema.ROW_ALPHA_DTYPE, version).reshape(n, k)
        try:
            check_row_alphas(ra, phi, interval)
        except ValueError as exc:
            raise BlockError(f"column {col}: {exc}") from None
        cols[schema.ROW_ALPHA_COLUMN] = ra
    iters = cols["iteration"]
    if n > 1 and not np.all(iters[1:] > iters[:-1]):
        raise BlockError("iterations are not strictly increasing")
    return cols, phi, tcount, trials


def interval_of(nominal) -> tuple[float, float]:
    """The interval every per-row alpha lies in: the ends of the nominal grid, widened by two float32 steps
    (the adaptive probe stores float32-exact alphas, so its end anchor ``float32(alpha_max)`` may lie just
    past ``alpha_max``; no earlier release wrote alphas further out)."""
    g = np.asarray(nominal, np.float64)
    pad = 2.0 ** -22
    return float(g[0]) - pad * max(1.0, abs(float(g[0]))), float(g[-1]) + pad * max(1.0, abs(float(g[-1])))


def check_row_alphas(alphas: np.ndarray, phi: np.ndarray | None = None, interval: tuple | None = None) -> None:
    """Check per-row alphas: each row finite and strictly increasing, then NaN to the end; phi (when given)
    NaN wherever alpha is; every alpha inside ``interval`` (:func:`interval_of` the nominal grid) when given.

    Raises
    ------
    ValueError
        one line naming the first bad row.
    """
    a = np.asarray(alphas, np.float64)
    if a.ndim != 2:
        raise ValueError(f"per-row alphas must be 2-D (got shape {a.shape})")
    fin = np.isfinite(a)
    count = fin.sum(axis=1)
    padded = np.arange(a.shape[1])[None, :] < count[:, None]  # where a row's finite values must be
    bad = np.nonzero(np.any(fin != padded, axis=1) | np.any(np.isinf(a), axis=1))[0]
    if len(bad):
        raise ValueError(f"row {int(bad[0])}: alphas must be finite values first, then NaN")
    with np.errstate(invalid="ignore"):
        inc = np.where(padded[:, 1:], np.diff(a, axis=1) > 0, True)
    bad = np.nonzero(~inc.all(axis=1))[0]
    if len(bad):
        raise ValueError(f"row {int(bad[0])}: alphas are not strictly increasing")
    if phi is not None:
        bad = np.nonzero(np.any(~fin & ~np.isnan(np.asarray(phi, np.float64)), axis=1))[0]
        if len(bad):
            raise ValueError(f"row {int(bad[0])}: a loss without an alpha")
    if interval is not None:
        with np.errstate(invalid="ignore"):
            bad = np.nonzero(np.any(fin & ((a < interval[0]) | (a > interval[1])), axis=1))[0]
        if len(bad):
            row = a[int(bad[0])]
            raise ValueError(f"row {int(bad[0])}: alphas {np.nanmin(row):g}..{np.nanmax(row):g} leave the nominal "
                             f"interval {interval[0]:g}..{interval[1]:g}")


def as_row_alphas(alphas, phi: np.ndarray, n: int, k: int, interval: tuple | None = None) -> np.ndarray:
    """The per-row alphas of ``n`` appended rows as a checked (n, k) float64 array.

    ``alphas`` is None (no alphas: all NaN, then ``phi`` must be all NaN too) or n x k values; rows
    with fewer measured points are NaN-padded (:func:`check_row_alphas`).

    Raises
    ------
    ValueError
        wrong size, or a row that breaks the layout.
    """
    if alphas is None:
        a = np.full((n, k), np.nan)
    else:
        a = np.array(alphas, np.float64)
        if a.size != n * k:
            raise ValueError(f"alphas has {a.size} values, expected {n} x {k} (one per phi value)")
        a = a.reshape(n, k)
    check_row_alphas(a, np.asarray(phi).reshape(n, k), interval)
    return a


def as_grid(alpha_grid) -> np.ndarray:
    """The alpha grid as a validated float64 vector.

    Raises
    ------
    ValueError
        not 1-D, empty, longer than :data:`MAX_GRID`, non-finite or not strictly increasing.
    """
    if isinstance(alpha_grid, (list, tuple)) and not all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
            for v in alpha_grid):
        raise ValueError("alpha grid must be a list of numbers (not text or booleans)")
    if isinstance(alpha_grid, np.ndarray) and alpha_grid.dtype.kind not in "iuf":
        raise ValueError(f"alpha grid must be numbers, got an array of {alpha_grid.dtype}")
    try:
        g = np.asarray(alpha_grid, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError("alpha grid must be a list of numbers") from None
    if g.ndim != 1:
        raise ValueError(f"alpha grid must be 1-D (got shape {g.shape})")
    if g.size == 0 or g.size > MAX_GRID:
        raise ValueError(f"alpha grid must have 1 to {MAX_GRID} values (got {g.size})")
    if not np.all(np.isfinite(g)):
        raise ValueError("alpha grid must be finite numbers")
    if g.size > 1 and not np.all(np.diff(g) > 0):
        raise ValueError("alpha grid must be strictly increasing")
    return g


def json_depth_ok(text: str, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether the brackets of JSON ``text`` nest at most ``max_depth`` deep (strings skipped), in O(len)."""
    depth = 0
    in_str = False
    esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def loads_bounded(text) -> object:
    """``json.loads`` of a stored value with a size and nesting bound.

    Raises
    ------
    ValueError
        not text, longer than :data:`MAX_JSON_CHARS`, nested deeper than :data:`MAX_JSON_DEPTH`, or not JSON.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("not UTF-8 text") from None
    if not isinstance(text, str):
        raise ValueError(f"is {'NULL' if text is None else type(text).__name__}, expected JSON text")
    if len(text) > MAX_JSON_CHARS:
        raise ValueError(f"JSON text of {len(text)} characters (at most {MAX_JSON_CHARS})")
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and not json_depth_ok(text):
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not valid JSON ({str(exc).splitlines()[0][:80]})") from None


def json_safe(v):
    """Metadata as strict JSON: non-finite floats become strings ("nan", "inf")."""
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if isinstance(v, np.generic):
        return json_safe(v.item())
    return v


def trials_arrays(trials: Mapping[str, Sequence] | None, total: int | None = None) -> dict[str, np.ndarray]:
    if trials is None:
        m = total or 0
        if m:
            raise ValueError("trial_count given without trials")
        return {n: np.empty(0, d) for n, d in schema.TRIAL_DTYPES.items()}
    alpha = np.asarray(trials["alpha"], schema.TRIAL_DTYPES["alpha"]).ravel()
    m = len(alpha)
    if total is not None and total != m:
        raise ValueError(f"trial_count sums to {total} but {m} trials were given")
    out = {"alpha": alpha}
    for name, dt in schema.TRIAL_DTYPES.items():
        if name == "alpha":
            continue
        v = trials.get(name)
        if v is None:
            v = np.arange(m) if name == "order" else np.full(m, np.nan)
        out[name] = np.asarray(v, dt).ravel()
        if len(out[name]) != m:
            raise ValueError(f"trial field {name!r} has {len(out[name])} values, expected {m}")
    return out


def concat_parts(parts):
    """Concatenate ``(cols, phi, tcount, trials)`` chunks row-wise (the one concatenator of block data)."""
    if len(parts) == 1:
        return parts[0]
    cols = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    phi = np.concatenate([p[1] for p in parts])
    tcount = np.concatenate([p[2] for p in parts])
    trials = {k: np.concatenate([p[3][k] for p in parts]) for k in parts[0][3]}
    return cols, phi, tcount, trials

