"""Level of detail: a min/max envelope pyramid over iterations (datashader-style, nothing lost).

Level 0 holds, per iteration, the min and max of phi_k over its drawn part
(alpha in [0, taken]) and the min/max of the classic value phi_k(0).  Level
``l`` reduces ``2**l`` consecutive iterations with ``fmin``/``fmax`` (NaN
ignored), so a single spike anywhere survives to the coarsest level.  A frame
asks for the finest level that gives about one bucket per pixel column
(:meth:`EnvelopePyramid.query`); building is O(n K) once, extending for a live
run touches only the new iterations and the parents they change.

Compute only: no GL here.  :func:`envelope_reference` is the brute-force twin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .growable import Growable

__all__ = ["EnvelopePyramid", "Buckets", "row_envelope", "envelope_reference"]


def row_envelope(alphas: np.ndarray, phi: np.ndarray, taken: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row min/max of phi over alpha in [0, taken] (NaN when nothing finite there).

    Parameters
    ----------
    alphas : (K,) grid; phi : (n, K); taken : (n,) accepted alpha (values <= 0 or NaN count as 1)
    """
    phi = np.asarray(phi)
    n = phi.shape[0]
    if n == 0:
        return np.empty(0, np.float32), np.empty(0, np.float32)
    t = np.where(np.isfinite(taken) & (taken > 0), taken, 1.0)
    if np.all(t == t[0]):
        # one taken alpha for all rows (the probe's case): the drawn part is a prefix of the sorted grid
        ncols = max(1, int(np.searchsorted(alphas, t[0] * (1 + 1e-9), side="right")))
        sub = phi[:, :ncols]
        if not np.isfinite(sub).all():  # +-Inf leave a gap like NaN; fmin/fmax skip NaN
            sub = np.where(np.isfinite(sub), sub, np.nan)
        return (np.fmin.reduce(sub, axis=1).astype(np.float32, copy=False),
                np.fmax.reduce(sub, axis=1).astype(np.float32, copy=False))
    mask = (alphas[None, :] <= t[:, None] * (1 + 1e-9)) & np.isfinite(phi)
    with _quiet():
        lo = np.nanmin(np.where(mask, phi, np.nan), axis=1)
        hi = np.nanmax(np.where(mask, phi, np.nan), axis=1)
    return lo.astype(np.float32), hi.astype(np.float32)


class _quiet:
    """Silence numpy's all-NaN-slice warnings (an all-NaN row is a legitimate gap)."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


@dataclass
class Buckets:
    """Envelope buckets covering a view: bucket i spans iterations ``[x0[i], x1[i])``."""

    level: int
    x0: np.ndarray
    x1: np.ndarray
    env_lo: np.ndarray
    env_hi: np.ndarray
    classic_lo: np.ndarray
    classic_hi: np.ndarray


def _reduce_pairs(a: np.ndarray, op) -> np.ndarray:
    """Reduce consecutive pairs (the last one alone when odd), NaN-ignoring."""
    m = len(a)
    if m % 2:
        a = np.append(a, np.float32(np.nan))
    return op(a[0::2], a[1::2])


class EnvelopePyramid:
    """Min/max pyramid over a run's iterations; extendable as a live run grows.

    Parameters
    ----------
    iterations : (n,) int, increasing iteration numbers of the rows
    env_lo, env_hi : (n,) per-row envelope of the drawn part of phi_k
    classic : (n,) phi_k(0) (or the training loss when phi is missing)
    """

    def __init__(self, iterations: np.ndarray, env_lo: np.ndarray, env_hi: np.ndarray, classic: np.ndarray):
        self._it = Growable(np.asarray(iterations, np.int64))
        base = [np.asarray(env_lo, np.float32), np.asarray(env_hi, np.float32),
                np.asarray(classic, np.float32), np.asarray(classic, np.float32)]
        self._levels: list[list[Growable]] = [[Growable(a) for a in base]]
        while self._levels[-1][0].n > 1:
            lo, hi, clo, chi = (g.view for g in self._levels[-1])
            self._levels.append([Growable(_reduce_pairs(lo, np.fmin)), Growable(_reduce_pairs(hi, np.fmax)),
                                 Growable(_reduce_pairs(clo, np.fmin)), Growable(_reduce_pairs(chi, np.fmax))])

    @property
    def iterations(self) -> np.ndarray:
        return self._it.view

    @property
    def levels(self) -> list[list[np.ndarray]]:
        """Per level: [envelope min, envelope max, classic min, classic max] (views)."""
        return [[g.view for g in lvl] for lvl in self._levels]

    def __len__(self) -> int:
        return self._it.n

    def extend(self, iterations: np.ndarray, env_lo: np.ndarray, env_hi: np.ndarray, classic: np.ndarray) -> None:
        """Append rows (a live run): recomputes only the buckets the new rows fall into, in place."""
        if len(iterations) == 0:
            return
        n_old = self._it.n
        self._it.append(np.asarray(iterations, np.int64))
        new = [np.asarray(env_lo, np.float32), np.asarray(env_hi, np.float32), np.asarray(classic, np.float32),
               np.asarray(classic, np.float32)]
        for g, a in zip(self._levels[0], new):
            g.append(a)
        first = n_old  # first changed index at level 0
        lvl = 1
        while self._levels[lvl - 1][0].n > 1:
            child = [g.view for g in self._levels[lvl - 1]]
            start = first // 2
            red = [_reduce_pairs(child[0][2 * start:], np.fmin), _reduce_pairs(child[1][2 * start:], np.fmax),
                   _reduce_pairs(child[2][2 * start:], np.fmin), _reduce_pairs(child[3][2 * start:], np.fmax)]
            if lvl < len(self._levels):
                for g, r in zip(self._levels[lvl], red):
                    g.set_tail(start, r)
            else:
                self._levels.append([Growable(r) for r in red])
            first = start
            lvl += 1
        del self._levels[lvl:]

    def choose_level(self, row_span: float, columns: int) -> int:
        """Finest level with at most about one bucket per pixel column for ``row_span`` rows."""
        if columns <= 0 or row_span <= columns:
            return 0
        return int(min(len(self._levels) - 1, max(0, np.floor(np.log2(row_span / columns)))))

    def query(self, x0: float, x1: float, columns: int) -> Buckets:
        """Buckets covering iterations in ``[x0, x1]`` at about one bucket per column."""
        it = self.iterations
        if len(it) == 0:
            e = np.empty(0)
            return Buckets(0, e, e, e, e, e, e)
        # integer keys: a float key would convert the whole int64 column on every query
        r0 = max(0, int(np.searchsorted(it, int(max(np.floor(x0), -2 ** 62)) - 1, side="left")) - 1)
        r1 = min(len(it), int(np.searchsorted(it, int(min(np.ceil(x1), 2 ** 62)) + 1, side="right")) + 1)
        level = self.choose_level(r1 - r0, columns)
        size = 1 << level
        b0, b1 = r0 // size, (r1 + size - 1) // size
        lo, hi, clo, chi = (g.view[b0:b1] for g in self._levels[level])
        first_rows = np.arange(b0, b1) * size
        last_rows = np.minimum(first_rows + size, len(it)) - 1
        xs0 = it[first_rows].astype(np.float64)
        xs1 = it[last_rows].astype(np.float64) + 1.0
        return Buckets(level, xs0, xs1, lo, hi, clo, chi)


def envelope_reference(iterations: np.ndarray, env_lo: np.ndarray, env_hi: np.ndarray, x0: float, x1: float,
                       columns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brute-force twin: per pixel column, min/max of every row whose span [it, it+1) touches it."""
    edges = np.linspace(x0, x1, columns + 1)
    lo = np.full(columns, np.nan, np.float32)
    hi = np.full(columns, np.nan, np.float32)
    for c in range(columns):
        sel = (iterations + 1 > edges[c]) & (iterations < edges[c + 1])
        if sel.any():
            with _quiet():
                lo[c] = np.nanmin(env_lo[sel])
                hi[c] = np.nanmax(env_hi[sel])
    return edges, lo, hi
