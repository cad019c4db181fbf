"""The level-of-detail pyramid: every extreme of a run at every zoom level, in bounded space.

Level 0 reduces :data:`BASE_ROWS` consecutive rows (iterations) into one
*bucket*; level ``l + 1`` reduces :data:`FANOUT` buckets of level ``l``; the
top level has a single bucket, the whole-run summary ``info`` and ``compare``
read.  A bucket keeps what drawing and colouring need, exactly (like
Perfetto's min/max/last counter mipmaps, nothing is sampled away):

* the envelope of phi over the drawn part of each step (alpha in [0, taken]),
* the classic curve phi_k(0) as min, max, first and last value,
* per statistic of :data:`recorder.stats.FLOAT_AGGREGATED`: min, max, sum and
  count of finite values; per code statistic (step class, probe status): a
  count per code,
* iteration span, row count, epoch span and the number of batch changes,
* line-search counts: rows with a line search, trial points, loose ends
  (trial points beyond the accepted step).

Every field reduces with one of six associative operations (min, max, sum,
first, last) declared in :data:`BUCKET_FIELDS`, so level 0 is "merge rows in
groups of 64" and level ``l + 1`` is "merge buckets in groups of 4": one
:func:`merge` does both.  :class:`PyramidBuilder` grows the pyramid as rows
arrive and reports which chunks (:data:`CHUNK` buckets of one level) changed,
so a writer rewrites O(levels) small chunks per commit and a reader of a
live run fetches only those.  :func:`reference_buckets` is the plain twin:
buckets of any level computed directly from the rows, one bucket at a time.

Compute only (numpy); storage is :mod:`recorder.store`'s business.
"""

from __future__ import annotations

import warnings
from typing import Callable, Mapping

import numpy as np

from . import schema, stats, stepgeom

__all__ = ["BASE_ROWS", "FANOUT", "CHUNK", "BUCKET_FIELDS", "BUCKET_DTYPES", "row_records", "row_envelope",
           "merge", "PyramidBuilder", "reference_buckets", "bucket_rows", "validate_buckets"]

BASE_ROWS = 16
FANOUT = 4
CHUNK = 4096  # buckets per stored chunk; a multiple of FANOUT so parents never straddle chunks

_F4, _F8, _I4, _I8 = np.dtype("<f4"), np.dtype("<f8"), np.dtype("<i4"), np.dtype("<i8")


def stat_bucket_fields(st: stats.Statistic) -> list[tuple[str, np.dtype, str]]:
    """The bucket fields one statistic aggregates into (none for identity columns)."""
    if st.aggregate == "float":
        return [(f"{st.name}:min", _F8, "min"), (f"{st.name}:max", _F8, "max"), (f"{st.name}:sum", _F8, "sum"),
                (f"{st.name}:count", _I4, "sum")]
    if st.aggregate == "codes":
        return [(f"{st.name}:{code}", _I4, "sum") for code, _ in st.codes]
    return []


def _fields() -> tuple[tuple[str, np.dtype, str], ...]:
    """The frozen schema-2 fields (:data:`recorder.schema.LOD_FIELDS_V2`), then those of newer statistics."""
    f = [(n, np.dtype(d), op) for n, d, op in schema.LOD_FIELDS_V2]
    have = {n for n, _, _ in f}
    return tuple(f + [x for st in stats.STATISTICS for x in stat_bucket_fields(st) if x[0] not in have])


#: (name, dtype, reduction) of every bucket field, in storage order.
BUCKET_FIELDS: tuple[tuple[str, np.dtype, str], ...] = _fields()
BUCKET_DTYPES: dict[str, np.dtype] = {n: d for n, d, _ in BUCKET_FIELDS}
assert (BASE_ROWS, FANOUT, CHUNK) == (schema.LOD_BASE_ROWS, schema.LOD_FANOUT, schema.LOD_CHUNK)


def layout() -> dict:
    """What a new file's pyramid bytes mean (its ``meta.lod``; see :func:`recorder.schema.stored_lod_fields`
    for the layouts a reader accepts)."""
    return schema.lod_layout(BUCKET_FIELDS)


def bucket_rows(level: int) -> int:
    """Rows per bucket at ``level``."""
    return BASE_ROWS * FANOUT ** level


def row_envelope(alphas: np.ndarray, phi: np.ndarray, taken: np.ndarray, classic: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per-row min/max of phi over alpha in [0, taken], widened by the classic value.

    Non-finite samples are skipped (NaN where nothing finite remains).  ``taken`` values that are
    not finite or <= 0 (a step that did not move) count as 1.  ``alphas`` is the shared (K,) grid or
    (n, K) per-row alphas (NaN where a row has no point).
    """
    phi = np.asarray(phi)
    n = phi.shape[0]
    if n == 0:
        return np.empty(0, _F4), np.empty(0, _F4)
    t = stepgeom.accepted_alpha(taken)
    alphas = np.asarray(alphas, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if alphas.ndim == 2:
            mask = stepgeom.within(alphas, t[:, None]) & np.isfinite(phi)
            masked = np.where(mask, phi, np.nan)
            lo, hi = np.fmin.reduce(masked, axis=1), np.fmax.reduce(masked, axis=1)
        elif np.all(t == t[0]):
            ncols = stepgeom.grid_columns_within(alphas, t[0])
            sub = phi[:, :ncols]
            # plain min/max first; only rows where they are not finite need the NaN/Inf-skipping pass
            lo, hi = sub.min(axis=1), sub.max(axis=1)
            bad = ~(np.isfinite(lo) & np.isfinite(hi))
            if bad.any():
                sb = sub[bad]
                sb = np.where(np.isfinite(sb), sb, np.nan)
                lo, hi = lo.copy(), hi.copy()
                lo[bad], hi[bad] = np.fmin.reduce(sb, axis=1), np.fmax.reduce(sb, axis=1)
        else:
            mask = stepgeom.within(alphas[None, :], t[:, None]) & np.isfinite(phi)
            masked = np.where(mask, phi, np.nan)
            lo, hi = np.fmin.reduce(masked, axis=1), np.fmax.reduce(masked, axis=1)
    c = np.where(np.isfinite(classic), classic, np.nan).astype(_F4)
    return np.fmin(lo, c).astype(_F4, copy=False), np.fmax(hi, c).astype(_F4, copy=False)


def classic_values(alphas: np.ndarray, phi: np.ndarray, train_loss: np.ndarray) -> np.ndarray:
    """phi_k(0) per row, or the training loss where the probe did not measure it (the classic curve).

    ``alphas``: the shared (K,) grid or (n, K) per-row alphas."""
    alphas = np.asarray(alphas)
    if alphas.ndim == 2:
        at0 = alphas == 0.0
        j = np.argmax(at0, axis=1)
        c = np.where(at0.any(axis=1), np.asarray(phi)[np.arange(len(phi)), j], np.nan).astype(_F4) if len(phi) \
            else np.empty(0, _F4)
    else:
        j0 = np.nonzero(alphas == 0.0)[0]
        c = phi[:, j0[0]].astype(_F4) if len(j0) else np.full(len(phi), np.nan, _F4)
    return np.where(np.isfinite(c), c, np.asarray(train_loss, _F4))


#: per row, the trial points beyond the accepted step: the paper's loose ends (the rule: :mod:`recorder.stepgeom`)
loose_counts = stepgeom.loose_counts


def row_records(alphas: np.ndarray, cols: Mapping[str, np.ndarray], phi: np.ndarray,
                prev_batch: int | None, tcount: np.ndarray | None = None,
                trial_alpha: np.ndarray | None = None, with_stats: bool | set = True) -> dict[str, np.ndarray]:
    """Every row as a bucket of one (the input of :func:`merge` for level 0).

    Parameters
    ----------
    alphas : (K,) grid, or (n, K) per-row alphas; cols : the rows' columns (:data:`recorder.stats.STATISTICS`);
        phi : (n, K)
    prev_batch : batch id of the row before the first one (None at the start of the run)
    tcount, trial_alpha : trial points per row and their concatenated alphas (None: no trials)
    with_stats : True for every statistic's fields, False for none, or a set of statistic names
    """
    n = len(cols["iteration"])
    classic = classic_values(alphas, phi, cols["train_loss"])
    lo, hi = row_envelope(alphas, phi, np.asarray(cols["taken_alpha"], np.float64), classic)
    it = np.asarray(cols["iteration"], _I8)
    batch = np.asarray(cols["batch"], _I8)
    change = np.empty(n, _I4)
    if n:
        change[0] = 0 if prev_batch is None else int(batch[0] != prev_batch)
        change[1:] = batch[1:] != batch[:-1]
    ep = np.asarray(cols["epoch"], _I4)
    cl = np.where(np.isfinite(classic), classic, np.nan).astype(_F4)
    out = {"rows": np.ones(n, _I4), "first_it": it, "last_it": it, "env_lo": lo, "env_hi": hi, "cl_lo": cl,
           "cl_hi": cl, "cl_first": classic.astype(_F4), "cl_last": classic.astype(_F4), "epoch_first": ep,
           "epoch_last": ep, "batch_changes": change,
           "searched": (np.asarray(cols["ls_evals"]) > 0).astype(_I4),
           "trials": np.zeros(n, _I4) if tcount is None else np.asarray(tcount, _I4),
           "loose_ends": loose_counts(np.asarray(cols["taken_alpha"], np.float64), tcount, trial_alpha)}
    if not with_stats:
        return out
    wanted = None if with_stats is True else set(with_stats)
    for name in stats.FLOAT_AGGREGATED:
        if wanted is not None and name not in wanted:
            continue
        v = np.asarray(cols[name], np.float64)
        fin = np.isfinite(v)
        vn = np.where(fin, v, np.nan)
        out[f"{name}:min"] = vn
        out[f"{name}:max"] = vn
        out[f"{name}:sum"] = np.where(fin, v, 0.0)
        out[f"{name}:count"] = fin.astype(_I4)
    for name in stats.CODE_AGGREGATED:
        if wanted is not None and name not in wanted:
            continue
        v = np.asarray(cols[name])
        for code, _ in stats.STAT_BY_NAME[name].codes:
            out[f"{name}:{code}"] = (v == code).astype(_I4)
    return out


_STAT_FIELDS = {f"{n}:{a}" for n in stats.FLOAT_AGGREGATED for a in ("min", "max", "sum", "count")} | \
    {f"{n}:{c}" for n in stats.CODE_AGGREGATED for c, _ in stats.STAT_BY_NAME[n].codes}


def raw_rows(alphas: np.ndarray, cols: Mapping[str, np.ndarray], phi: np.ndarray, prev_batch: int | None,
             tcount: np.ndarray | None = None, trial_alpha: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Rows in the form :func:`merge_rows` reduces: the bucket-of-one fields of :func:`row_records` except the
    statistics, which stay raw columns (the fast ingest path: no per-row min/max/sum/count copies)."""
    out = row_records(alphas, cols, phi, prev_batch, tcount, trial_alpha, with_stats=False)
    for name in stats.FLOAT_AGGREGATED + stats.CODE_AGGREGATED:
        out[name] = np.asarray(cols[name])
    return out


def _groups(v: np.ndarray, factor: int):
    """(full groups as an (m, factor) view, the short last group or None)."""
    full = len(v) // factor
    g = v[:full * factor].reshape(full, factor)
    rest = v[full * factor:]
    return g, (rest if len(rest) else None)


def merge_rows(raw: Mapping[str, np.ndarray], factor: int) -> dict[str, np.ndarray]:
    """Level-0 buckets from :func:`raw_rows` (equal to ``merge(row_records(...), factor)``)."""
    out = merge({k: v for k, v in raw.items() if k in BUCKET_DTYPES}, factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name in stats.FLOAT_AGGREGATED:
            parts = {a: [] for a in ("min", "max", "sum", "count")}
            for g in _groups(raw[name], factor):
                if g is None:
                    continue
                g = g.reshape(-1, g.shape[-1]) if g.ndim == 2 else g[None, :]
                # min and max first: a group whose min and max are finite holds only finite values
                mn, mx = g.min(axis=1), g.max(axis=1)
                sm = g.sum(axis=1, dtype=np.float64)
                cnt = np.full(len(g), g.shape[1], np.int64)
                bad = ~(np.isfinite(mn) & np.isfinite(mx))
                if bad.any():
                    gb = g[bad]
                    fin = np.isfinite(gb)
                    gn = np.where(fin, gb, np.nan)
                    mn, mx = mn.copy(), mx.copy()
                    mn[bad], mx[bad] = np.fmin.reduce(gn, axis=1), np.fmax.reduce(gn, axis=1)
                    sm[bad] = np.where(fin, gb, 0).sum(axis=1, dtype=np.float64)
                    cnt[bad] = fin.sum(axis=1)
                parts["min"].append(mn)
                parts["max"].append(mx)
                parts["sum"].append(sm)
                parts["count"].append(cnt)
            for a, lst in parts.items():
                key = f"{name}:{a}"
                out[key] = np.concatenate(lst).astype(BUCKET_DTYPES[key], copy=False) if lst else \
                    np.empty(0, BUCKET_DTYPES[key])
        for name in stats.CODE_AGGREGATED:
            gs = [g.reshape(-1, g.shape[-1]) if g.ndim == 2 else g[None, :] for g in _groups(raw[name], factor)
                  if g is not None]
            for code, _ in stats.STAT_BY_NAME[name].codes:
                key = f"{name}:{code}"
                out[key] = np.concatenate([(g == code).sum(axis=1) for g in gs]).astype(_I4) if gs else \
                    np.empty(0, _I4)
    return out


def merge(records: Mapping[str, np.ndarray], factor: int) -> dict[str, np.ndarray]:
    """Reduce consecutive groups of ``factor`` buckets (the last group may be short) into one each.

    Fields absent from ``records`` are absent from the result."""
    m = len(records["rows"])
    nb = -(-m // factor)
    pad = nb * factor - m
    out: dict[str, np.ndarray] = {}
    if m == 0:
        return {name: np.empty(0, dt) for name, dt, _ in BUCKET_FIELDS if name in records}
    last_idx = np.minimum(np.arange(nb) * factor + factor - 1, m - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, dt, op in BUCKET_FIELDS:
            v = records.get(name)
            if v is None:
                continue
            if op == "first":
                out[name] = np.ascontiguousarray(v[::factor], dt)
                continue
            if op == "last":
                out[name] = np.ascontiguousarray(v[last_idx], dt)
                continue
            if pad:
                fill = np.nan if op in ("min", "max") else 0
                v = np.concatenate([v, np.full(pad, fill, v.dtype)])
            g = v.reshape(nb, factor)
            if op == "min":
                r = np.fmin.reduce(g, axis=1)
            elif op == "max":
                r = np.fmax.reduce(g, axis=1)
            else:
                r = g.sum(axis=1)
            out[name] = r.astype(dt, copy=False)
    return out


def _take(records: Mapping[str, np.ndarray], a: int, b: int | None = None) -> dict[str, np.ndarray]:
    return {k: v[a:b] for k, v in records.items()}


def _cat(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([a[k], b[k]]) for k in b}


def grow_levels(levels: list, counts: list, buckets: Mapping[str, np.ndarray], first_bucket: int,
                empty: Callable[[], dict], merge_fn: Callable[[Mapping, int], dict]
                ) -> list[tuple[int, int, dict[str, np.ndarray]]]:
    """Add new level-0 ``buckets`` (starting at bucket ``first_bucket``) to a growing pyramid, in place.

    ``levels[l]`` is ``(base, held)``: the buckets of level l from index ``base`` on (the newest chunk's), and
    ``counts[l]`` the buckets level l holds; ``merge_fn(records, FANOUT)`` merges children into parents, ``empty()``
    is a level without buckets.  Shared by the iteration pyramid and the series pyramids
    (:mod:`recorder.series`).  Returns the changed chunks as ``(level, chunk index, buckets)``, coarse levels last.
    """
    changed: list[tuple[int, int, dict]] = []
    level = 0
    while True:
        end = first_bucket + len(buckets["rows"])
        if level == len(levels):
            levels.append((0, empty()))
            counts.append(0)
        base, held = levels[level]
        held = _cat(_take(held, 0, first_bucket - base), buckets)
        for c in range(first_bucket // CHUNK, (end - 1) // CHUNK + 1):
            changed.append((level, c, _take(held, c * CHUNK - base, min((c + 1) * CHUNK, end) - base)))
        counts[level] = end
        new_base = ((end - 1) // CHUNK) * CHUNK if end > 1 else 0
        parent_first = first_bucket // FANOUT
        children = _take(held, parent_first * FANOUT - base)
        levels[level] = (new_base, _take(held, new_base - base))
        if end <= 1:
            del levels[level + 1:], counts[level + 1:]
            return changed
        buckets = merge_fn(children, FANOUT)
        first_bucket = parent_first
        level += 1


class PyramidBuilder:
    """Grows a pyramid as rows arrive; says which stored chunks changed.

    The builder holds, per level, only the chunk its newest bucket lies in, plus the rows of the
    newest (partial) level-0 bucket: memory is O(levels x CHUNK), whatever the run's length.

    Parameters
    ----------
    alphas : the run's alpha grid (rows that carry their own alphas as ``cols["alpha"]`` use those)
    """

    def __init__(self, alphas: np.ndarray):
        self.alphas = np.asarray(alphas, np.float64)
        self.n_rows = 0
        self._tail_rows: dict[str, np.ndarray] | None = None  # row records of the partial level-0 bucket
        self._prev_batch: int | None = None                  # batch of the last row added
        self._levels: list[tuple[int, dict[str, np.ndarray]]] = []  # per level: (base index, buckets from base)
        self._counts: list[int] = []                            # buckets per level

    @classmethod
    def resume(cls, alphas: np.ndarray, n_rows: int, last_chunks: list[tuple[int, dict[str, np.ndarray]]],
               tail_cols: Mapping[str, np.ndarray] | None, tail_phi: np.ndarray | None,
               prev_batch: int | None, tail_tcount: np.ndarray | None = None,
               tail_trial_alpha: np.ndarray | None = None) -> "PyramidBuilder":
        """Continue a stored pyramid (appending to an existing recording).

        Parameters
        ----------
        n_rows : rows already in the recording
        last_chunks : per level, (chunk index, buckets of the newest stored chunk)
        tail_cols, tail_phi : the rows of the newest partial level-0 bucket (None when it is full)
        prev_batch : batch of the row before ``tail_cols`` (or of the last row when no tail)
        """
        b = cls(alphas)
        b.n_rows = n_rows
        for ci, recs in last_chunks:
            b._levels.append((ci * CHUNK, dict(recs)))
            b._counts.append(ci * CHUNK + len(recs["rows"]))
        if tail_cols is not None and len(tail_cols["iteration"]):
            b._tail_rows = raw_rows(b._alphas_for(tail_cols), tail_cols, tail_phi, prev_batch, tail_tcount,
                                    tail_trial_alpha)
            b._prev_batch = int(tail_cols["batch"][-1])
        else:
            b._prev_batch = prev_batch
        return b

    def copy(self) -> "PyramidBuilder":
        """An independent copy (arrays are never modified in place, so sharing them is safe).

        The writer adds a commit's rows to a copy and keeps it only once the transaction committed.
        """
        b = PyramidBuilder.__new__(PyramidBuilder)
        b.__dict__.update(self.__dict__, _levels=list(self._levels), _counts=list(self._counts))
        return b

    def _alphas_for(self, cols: Mapping[str, np.ndarray]) -> np.ndarray:
        """The rows' alphas: their own (``cols["alpha"]``, the codec's per-row alpha column), else the grid."""
        ra = cols.get(schema.ROW_ALPHA_COLUMN)
        return self.alphas if ra is None else np.asarray(ra, np.float64)

    @property
    def levels(self) -> int:
        return len(self._counts)

    def counts(self) -> list[int]:
        """Buckets per level."""
        return list(self._counts)

    def add(self, cols: Mapping[str, np.ndarray], phi: np.ndarray, tcount: np.ndarray | None = None,
            trial_alpha: np.ndarray | None = None) -> list[tuple[int, int, dict[str, np.ndarray]]]:
        """Add rows (with their trial points, if any); returns the changed chunks as
        ``(level, chunk index, buckets)``, coarse levels last."""
        n = len(cols["iteration"])
        if n == 0:
            return []
        recs = raw_rows(self._alphas_for(cols), cols, phi, self._prev_batch, tcount, trial_alpha)
        self._prev_batch = int(np.asarray(cols["batch"])[-1])
        first_bucket = self.n_rows // BASE_ROWS
        if self._tail_rows is not None:
            recs = _cat(self._tail_rows, recs)
        self.n_rows += n
        rem = self.n_rows % BASE_ROWS
        self._tail_rows = _take(recs, len(recs["rows"]) - rem) if rem else None
        return grow_levels(self._levels, self._counts, merge_rows(recs, BASE_ROWS), first_bucket,
                           lambda: {k: np.empty(0, BUCKET_DTYPES[k]) for k in BUCKET_DTYPES}, merge)


def reference_buckets(alphas: np.ndarray, cols: Mapping[str, np.ndarray], phi: np.ndarray, level: int,
                      tcount: np.ndarray | None = None, trial_alpha: np.ndarray | None = None
                      ) -> dict[str, np.ndarray]:
    """Plain twin: the buckets of ``level`` computed from the rows one bucket at a time (no merging tree)."""
    off = np.zeros(len(cols["iteration"]) + 1, np.int64)
    if tcount is not None:
        np.cumsum(tcount, out=off[1:])
    size = bucket_rows(level)
    n = len(cols["iteration"])
    classic = classic_values(alphas, phi, cols["train_loss"])
    lo, hi = row_envelope(alphas, phi, np.asarray(cols["taken_alpha"], np.float64), classic)
    out = {name: [] for name, _, _ in BUCKET_FIELDS}
    batch = np.asarray(cols["batch"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for a in range(0, n, size):
            b = min(n, a + size)
            sl = slice(a, b)
            out["rows"].append(b - a)
            out["first_it"].append(cols["iteration"][a])
            out["last_it"].append(cols["iteration"][b - 1])
            out["env_lo"].append(np.nanmin(lo[sl]) if np.isfinite(lo[sl]).any() else np.nan)
            out["env_hi"].append(np.nanmax(hi[sl]) if np.isfinite(hi[sl]).any() else np.nan)
            c = classic[sl]
            cf = c[np.isfinite(c)]
            out["cl_lo"].append(cf.min() if len(cf) else np.nan)
            out["cl_hi"].append(cf.max() if len(cf) else np.nan)
            out["cl_first"].append(c[0])
            out["cl_last"].append(c[-1])
            out["epoch_first"].append(cols["epoch"][a])
            out["epoch_last"].append(cols["epoch"][b - 1])
            out["batch_changes"].append(sum(1 for i in range(max(a, 1), b) if batch[i] != batch[i - 1]))
            out["searched"].append(int(np.count_nonzero(np.asarray(cols["ls_evals"][sl]) > 0)))
            out["trials"].append(int(off[b] - off[a]))
            loose = 0
            for i in range(a, b):
                t = float(stepgeom.accepted_alpha(cols["taken_alpha"][i]))
                if trial_alpha is not None:
                    loose += int(np.count_nonzero(stepgeom.beyond(trial_alpha[off[i]:off[i + 1]], t)))
            out["loose_ends"].append(loose)
            for name in stats.FLOAT_AGGREGATED:
                v = np.asarray(cols[name][sl], np.float64)
                f = v[np.isfinite(v)]
                out[f"{name}:min"].append(f.min() if len(f) else np.nan)
                out[f"{name}:max"].append(f.max() if len(f) else np.nan)
                out[f"{name}:sum"].append(f.sum() if len(f) else 0.0)
                out[f"{name}:count"].append(len(f))
            for name in stats.CODE_AGGREGATED:
                v = np.asarray(cols[name][sl])
                for code, _ in stats.STAT_BY_NAME[name].codes:
                    out[f"{name}:{code}"].append(int((v == code).sum()))
    return {name: np.asarray(out[name], dt) for name, dt, _ in BUCKET_FIELDS}


def validate_buckets(recs: Mapping[str, np.ndarray], level: int, where: str) -> None:
    """Check that stored buckets add up (rows within bounds, code counts sum to rows, spans ordered).

    Raises
    ------
    ValueError
        one line naming ``where`` and the first problem found.
    """
    rows = recs["rows"].astype(np.int64)
    size = bucket_rows(level)
    if len(rows) and (rows.min() < 1 or rows.max() > size):
        raise ValueError(f"{where}: bucket row counts outside 1..{size}")
    if len(rows) > 1 and np.any(rows[:-1] != size):
        raise ValueError(f"{where}: a bucket other than the last is not full")
    for name in stats.CODE_AGGREGATED:
        tot = sum(recs[f"{name}:{code}"].astype(np.int64) for code, _ in stats.STAT_BY_NAME[name].codes)
        if np.any(tot != rows):
            raise ValueError(f"{where}: {name} counts do not add up to the bucket's rows")
    for name in stats.FLOAT_AGGREGATED:
        cnt = recs[f"{name}:count"].astype(np.int64)
        if np.any((cnt < 0) | (cnt > rows)):
            raise ValueError(f"{where}: {name} count outside 0..rows")
        lo, hi = recs[f"{name}:min"], recs[f"{name}:max"]
        with np.errstate(invalid="ignore"):
            bad = (cnt > 0) & ~(np.isfinite(lo) & np.isfinite(hi) & (lo <= hi))
        if bad.any():  # min and max are over the finite values the bucket counts
            raise ValueError(f"{where}: {name} min/max are not finite and ordered in a bucket that counts "
                             "finite values")
    f, last = recs["first_it"], recs["last_it"]
    if np.any(last < f) or (len(f) > 1 and np.any(f[1:] <= last[:-1])):
        raise ValueError(f"{where}: bucket iteration spans out of order")
