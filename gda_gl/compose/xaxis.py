"""The x axis users pick: iteration, epoch, samples seen, wall time or forward passes. Compute only.

Everything is composed in *iteration space* (step k spans u in [k, k + 1), a point of its arc sits
at u = k + alpha / accepted); an :class:`AxisMap` then takes u to the chosen axis.  Each map is
monotone and piecewise linear through knots (u_i, v_i), exact at its knots:

* ``iteration``: v = u (no map; the fast path draws exactly as before);
* ``forward_passes``: forward passes before step k, line-search evaluations included (a step with a
  line search counts its ``ls_evals``, one without counts 1): the fair axis for comparing CG with SGD;
* ``samples``: samples trained on before step k (the ``samples`` statistic: each step's micro-batches'
  batch sizes, summed over ranks); a recording without it cannot provide the axis;
* ``wall_time``: seconds since the run's first step finished; step k spans from its own end to the
  next step's end (the recorder stores when a step finished);
* ``epoch``: e + (u - s_e) / (s_{e+1} - s_e) inside epoch e starting at iteration s_e (fractional
  epochs; the last epoch is scaled by the one before it, so a live run's epoch grows).

Bounded work: a run's *global* map has a knot per pyramid bucket of the coarsest level holding at
most :data:`GLOBAL_KNOTS` buckets (exact at their boundaries; cumulative quantities come from the
buckets' sums), built once per run and axis.  A frame refines it exactly over its own window
(:func:`window_map`): per row when it draws rows, per bucket when it draws buckets, anchored at a
global knot.  Epoch boundaries are located to the row (the pyramid finds the bucket, its rows the
row).  Positions are monotone, so the view's x range maps back to an iteration window per run
(:meth:`AxisMap.to_iter`).

Two x spaces, two types: an :class:`IterRange` is in iteration space (a run's own steps; two runs
with different batch sizes put different steps at the same epoch), an :class:`AxisRange` in the
units of the chosen axis (what the view's x range, ticks and pixels are in).  A run owns its maps
(:meth:`gda_gl.compose.rundata.RunData.axis_map`) and converts between the two
(:meth:`~gda_gl.compose.rundata.RunData.to_iterations`, :meth:`~gda_gl.compose.rundata.RunData.to_axis`);
the drawn :class:`~gda_gl.compose.view.View` carries each run's iteration window, so everything that
asks "what is in view" (exports, filters, counts, jumps, spin boxes) reads iterations per run from it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .state import X_AXES as AXES  # declared with the view state, which validates it

__all__ = ["AXES", "AXIS_TITLES", "AxisMap", "IterRange", "AxisRange", "unavailable", "global_map", "build_map",
           "window_map", "GLOBAL_KNOTS"]

AXIS_TITLES = {"iteration": "iteration", "epoch": "epoch", "samples": "samples seen",
               "wall_time": "wall time (s since the first step)",
               "forward_passes": "forward passes (line-search evaluations included)"}
#: a global map has at most about this many knots
GLOBAL_KNOTS = 65536


#: relative rounding of an iteration mapped back from another axis (float64 maps: ~1e-15; far below a step)
_SNAP = 1e-9


def _snap(u: float) -> float:
    """``u``, or the integer within rounding of it."""
    r = round(u) if math.isfinite(u) else u
    return float(r) if math.isfinite(u) and abs(u - r) <= _SNAP * max(1.0, abs(u)) else u


class IterRange(NamedTuple):
    """A range in iteration space of one run: step k spans [k, k + 1)."""

    lo: float
    hi: float

    def steps(self) -> tuple[int, int]:
        """The steps ``[first, last + 1)`` whose spans overlap the range (their iteration numbers); an end
        within rounding of a step boundary (a range mapped back from another axis) counts as on it."""
        return int(math.floor(_snap(self.lo))), int(math.ceil(_snap(self.hi)))

    def union(self, other: "IterRange | None") -> "IterRange":
        return self if other is None else IterRange(min(self.lo, other.lo), max(self.hi, other.hi))


class AxisRange(NamedTuple):
    """A range in the units of the view's x axis (epochs, samples, seconds, ...; iterations on that axis)."""

    lo: float
    hi: float

    def union(self, other: "AxisRange | None") -> "AxisRange":
        return self if other is None else AxisRange(min(self.lo, other.lo), max(self.hi, other.hi))


class AxisMap:
    """A monotone piecewise-linear map between iteration space u and an axis v (linear past the ends)."""

    def __init__(self, u: np.ndarray, v: np.ndarray):
        u = np.asarray(u, np.float64)
        v = np.maximum.accumulate(np.asarray(v, np.float64))
        keep = np.concatenate([[True], np.diff(u) > 0])
        self.u, self.v = u[keep], v[keep]
        if len(self.u) < 2:
            self.u = np.array([self.u[0] if len(self.u) else 0.0, (self.u[0] if len(self.u) else 0.0) + 1.0])
            self.v = np.array([self.v[0] if len(self.v) else 0.0, (self.v[0] if len(self.v) else 0.0) + 1.0])
        du, dv = np.diff(self.u), np.diff(self.v)
        self._slope0 = dv[0] / du[0] if dv[0] > 0 else 1.0
        self._slope1 = dv[-1] / du[-1] if dv[-1] > 0 else 1.0

    def to_axis(self, u) -> np.ndarray:
        """Axis values of iteration-space positions (linear past the first and last knots)."""
        u = np.asarray(u, np.float64)
        out = np.interp(u, self.u, self.v)
        out = np.where(u < self.u[0], self.v[0] + (u - self.u[0]) * self._slope0, out)
        return np.where(u > self.u[-1], self.v[-1] + (u - self.u[-1]) * self._slope1, out)

    def to_iter(self, v) -> np.ndarray:
        """Iteration-space positions of axis values (the first u where v is reached on a flat stretch)."""
        v = np.asarray(v, np.float64)
        j = np.clip(np.searchsorted(self.v, v, side="left"), 1, len(self.v) - 1)
        v0, v1, u0, u1 = self.v[j - 1], self.v[j], self.u[j - 1], self.u[j]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(v1 > v0, u0 + (v - v0) / np.where(v1 > v0, v1 - v0, 1.0) * (u1 - u0), u1)
        out = np.where(v < self.v[0], self.u[0] + (v - self.v[0]) / self._slope0, out)
        return np.where(v > self.v[-1], self.u[-1] + (v - self.v[-1]) / self._slope1, out)

    def merged(self, u: np.ndarray, v: np.ndarray) -> "AxisMap":
        """This map with its knots inside [u[0], u[-1]] replaced by the (exact) knots ``u``, ``v``."""
        if not len(u):
            return self
        out = (self.u < u[0]) | (self.u > u[-1])
        uu = np.concatenate([self.u[out & (self.u < u[0])], u, self.u[out & (self.u > u[-1])]])
        vv = np.concatenate([self.v[out & (self.u < u[0])], v, self.v[out & (self.u > u[-1])]])
        return AxisMap(uu, vv)


# ----------------------------------------------------------------------------- what a step adds

def _row_amount(axis: str, cols) -> np.ndarray:
    """What each row adds to a cumulative axis."""
    if axis == "forward_passes":
        return np.maximum(1.0, np.asarray(cols["ls_evals"], np.float64))
    return np.nan_to_num(np.asarray(cols["samples"], np.float64), nan=0.0)


def _bucket_amount(axis: str, recs: dict) -> np.ndarray:
    """What each bucket adds to a cumulative axis (from the pyramid's sums)."""
    if axis == "forward_passes":
        return recs["ls_evals:sum"].astype(np.float64) + recs["rows"].astype(np.float64) - recs["searched"]
    return np.asarray(recs["samples:sum"], np.float64)


def unavailable(run, axis: str) -> str | None:
    """Why ``run`` cannot provide ``axis`` (None: it can)."""
    if axis not in AXES:
        return f"unknown x axis {axis!r} (choose from {', '.join(AXES)})"
    if axis in ("iteration", "epoch", "forward_passes") or not len(run):
        return None
    top = run.windows.summary()
    if axis == "wall_time" and (top is None or int(top["wall_time:count"][0]) < len(run)):
        return f"{run.name} has steps without a wall time"
    if axis == "samples" and (top is None or "samples:count" not in top or int(top["samples:count"][0]) < len(run)
                              or float(top["samples:min"][0]) <= 0):
        return f"{run.name} records no samples per step (recorded from gda_gl 0.4 on)"
    return None


# ----------------------------------------------------------------------------- global maps

def _global_buckets(run) -> tuple[dict | None, int]:
    """The coarsest-level-with-at-most-GLOBAL_KNOTS buckets of the whole run (None: read rows), and the level."""
    counts = run.windows.chunks.counts()
    if not counts or not counts[0]:
        return None, -1
    level = next((lv for lv, c in enumerate(counts) if c <= GLOBAL_KNOTS), len(counts) - 1)
    return run.windows.buckets_between(level, -math.inf, math.inf), level


def _epoch_starts(run, recs: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """(epoch numbers, first iteration of each) in order, located to the row."""
    if recs is None:
        d = run.rows(-math.inf, math.inf)
        e = np.asarray(d["epoch"], np.int64)
        idx = np.concatenate([[0], np.nonzero(np.diff(e) != 0)[0] + 1]) if len(e) else np.empty(0, np.int64)
        return e[idx], d.iteration[idx].astype(np.int64)
    ef, el = recs["epoch_first"].astype(np.int64), recs["epoch_last"].astype(np.int64)
    eps, starts = [int(ef[0])], [int(recs["first_it"][0])]
    for b in range(len(ef)):
        if b and ef[b] != el[b - 1]:  # a boundary exactly at this bucket's start
            eps.append(int(ef[b]))
            starts.append(int(recs["first_it"][b]))
        if ef[b] != el[b]:  # boundaries inside the bucket: its rows say where
            d = run.rows(int(recs["first_it"][b]), int(recs["last_it"][b]) + 1)
            e = np.asarray(d["epoch"], np.int64)
            for i in np.nonzero(np.diff(e) != 0)[0] + 1:
                eps.append(int(e[i]))
                starts.append(int(d.iteration[i]))
    return np.asarray(eps, np.int64), np.asarray(starts, np.int64)


def _epoch_map(run, recs) -> AxisMap:
    eps, starts = _epoch_starts(run, recs)
    end = run.x_span[1]
    last_len = (starts[-1] - starts[-2]) if len(starts) > 1 else (end - starts[-1])
    frac = min(1.0, (end - starts[-1]) / max(last_len, 1e-9))
    return AxisMap(np.concatenate([starts, [end]]), np.concatenate([eps, [eps[-1] + frac]]).astype(np.float64))


def global_map(run, axis: str) -> AxisMap | None:
    """The run's map for ``axis`` (None for the iteration axis): :meth:`RunData.axis_map`, which caches it."""
    return run.axis_map(axis)


def build_map(run, axis: str) -> AxisMap:
    """Build ``run``'s whole-run map for ``axis`` (not the iteration axis); the run caches it."""
    recs, _ = _global_buckets(run)
    if axis == "epoch":
        return _epoch_map(run, recs)
    if recs is None:  # a short run: exact per row
        d = run.rows(-math.inf, math.inf)
        return _row_knots(axis, d, 0.0, None)
    u = np.concatenate([recs["first_it"].astype(np.float64), [float(recs["last_it"][-1]) + 1.0]])
    if axis == "wall_time":
        t = recs["wall_time:min"].astype(np.float64)
        t0 = t[0]
        v = np.concatenate([t - t0, [float(recs["wall_time:max"][-1]) - t0]])
        return AxisMap(u, v)
    return AxisMap(u, np.concatenate([[0.0], np.cumsum(_bucket_amount(axis, recs))]))


def _row_knots(axis: str, d, anchor: float, t0: float | None) -> AxisMap:
    """Exact knots of rows ``d``: at each row's start and after the last; ``anchor`` is the value at the first
    row (cumulative axes), ``t0`` the run's first wall time."""
    it = d.iteration.astype(np.float64)
    u = np.concatenate([it, [it[-1] + 1.0]]) if len(it) else np.empty(0)
    if axis == "wall_time":
        t = np.asarray(d["wall_time"], np.float64)
        t0 = t[0] if t0 is None else t0
        return AxisMap(u, np.concatenate([t - t0, [t[-1] - t0 + (t[-1] - t[-2] if len(t) > 1 else 1.0)]]))
    return AxisMap(u, anchor + np.concatenate([[0.0], np.cumsum(_row_amount(axis, d))]))


def window_map(run, axis: str, gmap: AxisMap, rows=None, recs: dict | None = None) -> AxisMap:
    """``gmap`` made exact over a frame's window: its rows (``rows``) or its buckets (``recs``)."""
    if axis == "epoch" or gmap is None:
        return gmap
    if rows is not None and len(rows):
        first = float(rows.iteration[0])
        if axis == "wall_time":
            local = _row_knots(axis, rows, 0.0, _first_wall_time(run))
        else:
            local = _row_knots(axis, rows, _cumulative_at(run, axis, gmap, first), None)
        return gmap.merged(local.u[:-1], local.v[:-1])
    if recs is not None and len(recs["rows"]):
        u = recs["first_it"].astype(np.float64)
        if axis == "wall_time":
            v = recs["wall_time:min"].astype(np.float64) - _first_wall_time(run)
        else:
            start = _cumulative_at(run, axis, gmap, u[0])
            v = start + np.concatenate([[0.0], np.cumsum(_bucket_amount(axis, recs))[:-1]])
        return gmap.merged(u, v)
    return gmap


def _first_wall_time(run) -> float:
    top = run.windows.summary()
    return float(top["wall_time:min"][0]) if top is not None else 0.0


def _cumulative_at(run, axis: str, gmap: AxisMap, u: float) -> float:
    """The exact cumulative value at iteration ``u`` (a row's start): the global knot at or before it plus
    the rows between (at most one global bucket of them)."""
    j = int(np.searchsorted(gmap.u, u, side="right")) - 1
    if j < 0:
        return float(gmap.v[0])
    base_u = float(gmap.u[j])
    if base_u == u:
        return float(gmap.v[j])
    between = run.rows(base_u, u)
    return float(gmap.v[j] + np.sum(_row_amount(axis, between)))
