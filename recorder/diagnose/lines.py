"""What each recorded step's line says, read from its measured points (vectorised over a block of rows).

Every number comes from the stored phi values at their alphas (the shared grid or the row's own
alphas), never from a fitted model: the minimum is the lowest measured point, the step's own loss is
phi at the accepted alpha (interpolated linearly between the two measured neighbours when the accepted
alpha is not a measured point).  The rules of one step (the accepted alpha and its fallback) are
:mod:`recorder.stepgeom`'s.

:func:`line_measures` returns one array per measure; :func:`concat` joins the measures of several
blocks.  Consumers: the step-size windows (``factor``, ``readable``, ``at_end``, ``resolution``), the
spike causes (``phi0``, ``phit``, ``curv_unit``) and the plateaus (``descent``).
"""

from __future__ import annotations

import numpy as np

from .. import stats, stepgeom
from ..codec import Iterations
from .thresholds import FLAT_REL, MIN_LINE_POINTS, NOISY_TV_RATIO

#: per-row columns copied from the recording as they are
COPIED = ("iteration", "epoch", "batch", "lr", "train_loss", "step_norm", "status", "curvature")


def _pick(p: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.take_along_axis(p, idx[:, None], axis=1)[:, 0]


def _first_true(mask: np.ndarray) -> np.ndarray:
    return np.argmax(mask, axis=1)


def _last_true(mask: np.ndarray) -> np.ndarray:
    return mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)


def value_at(a: np.ndarray, p: np.ndarray, fin: np.ndarray, x: np.ndarray) -> np.ndarray:
    """phi at ``x[i]`` on row i: the measured value there, else linear between the measured neighbours.

    Parameters
    ----------
    a, p : (n, K) alphas and phi; fin : (n, K) which points are measured and finite; x : (n,) alphas

    Returns
    -------
    (n,) float64, NaN where ``x`` lies outside the row's finite points
    """
    with np.errstate(invalid="ignore"):
        below = fin & (a <= x[:, None])
        above = fin & (a >= x[:, None])
    has = below.any(1) & above.any(1)
    lo, hi = _last_true(below), _first_true(above)
    a0, a1, v0, v1 = _pick(a, lo), _pick(a, hi), _pick(p, lo), _pick(p, hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(a1 > a0, (x - a0) / np.where(a1 > a0, a1 - a0, 1.0), 0.0)
        return np.where(has, v0 + w * (v1 - v0), np.nan)


def _shape(a: np.ndarray, p: np.ndarray, fin: np.ndarray, taken: np.ndarray) -> dict[str, np.ndarray]:
    """Minimum, its place, the interval's ends, flatness and noise of each row's measured points."""
    npts = fin.sum(1)
    masked = np.where(fin, p, np.inf)
    j = np.argmin(masked, axis=1)
    first, last = _first_true(fin), _last_true(fin)
    pmin = np.where(npts > 0, _pick(masked, j), np.nan)
    amin = np.where(npts > 0, _pick(a, j), np.nan)
    pmax = np.where(npts > 0, np.max(np.where(fin, p, -np.inf), axis=1), np.nan)
    scale = np.where(npts > 0, np.max(np.where(fin, np.abs(p), 0.0), axis=1), np.nan)
    with np.errstate(invalid="ignore"):
        flat = (pmax - pmin) <= FLAT_REL * np.maximum(scale, np.finfo(np.float32).tiny)
        tv = np.nansum(np.abs(np.diff(np.where(fin, p, np.nan), axis=1)), axis=1)
        one_valley = (_pick(p, first) - pmin) + (_pick(p, last) - pmin)
        noisy = ~flat & (tv > NOISY_TV_RATIO * one_valley)
        at_end = (j == last) & stepgeom.beyond(amin, taken)
    gap_left = np.where(j > first, amin - _pick(a, np.maximum(j - 1, 0)), 0.0)
    gap_right = np.where(j < last, _pick(a, np.minimum(j + 1, a.shape[1] - 1)) - amin, 0.0)
    return {"npts": npts, "amin": amin, "flat": flat, "noisy": noisy, "at_end": at_end,
            "gap": np.maximum(gap_left, gap_right)}


def line_measures(data: Iterations) -> dict[str, np.ndarray]:
    """Per-row measures of a block of rows.

    Parameters
    ----------
    data : rows as read (:meth:`recorder.reader.Recording.read_block`)

    Returns
    -------
    dict of name -> (n,) array: the :data:`COPIED` columns, and

    ``factor``
        alpha of the lowest measured point / accepted alpha (NaN without >= MIN_LINE_POINTS points)
    ``at_end``
        the lowest point is the last measured one, beyond the step: the factor is a lower bound
    ``resolution``
        the wider gap between the lowest point and its measured neighbours, in factor units
    ``readable``
        status ok, enough points, neither flat nor noisy (the line can say where its minimum is)
    ``unclear``
        status ok with enough points, but flat or noisy
    ``phi0``, ``phit``
        phi at alpha 0 and at the accepted alpha
    ``descent``
        (phi0 - phit) / |phi0|: how much of the loss the step removed along its own line
    ``curv_unit``
        the line's curvature per unit length of the step (phi'' / |d|^2)
    """
    n = len(data)
    out = {name: np.asarray(data.columns[name]) for name in COPIED}
    a = np.asarray(data.alphas_of_rows(), np.float64)
    p = np.asarray(data.phi, np.float64)
    taken = stepgeom.accepted_alpha(data.columns["taken_alpha"])
    fin = np.isfinite(p) & np.isfinite(a)
    if n == 0 or p.shape[1] == 0:
        empty = np.empty(0)
        return {**out, **{k: empty for k in ("factor", "resolution", "phi0", "phit", "descent", "curv_unit")},
                **{k: np.empty(0, bool) for k in ("at_end", "readable", "unclear")}}
    sh = _shape(a, p, fin, taken)
    ok = (out["status"] == stats.STATUS_OK) & (sh["npts"] >= MIN_LINE_POINTS)
    phi0 = value_at(a, p, fin, np.zeros(n))
    phit = value_at(a, p, fin, taken)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["factor"] = np.where(ok, sh["amin"] / taken, np.nan)
        out["resolution"] = np.where(ok, sh["gap"] / taken, np.nan)
        out["descent"] = (phi0 - phit) / np.abs(phi0)
        norm = np.asarray(data.columns["step_norm"], np.float64)
        out["curv_unit"] = np.asarray(data.columns["curvature"], np.float64) / (norm * norm)
    out["at_end"] = ok & sh["at_end"]
    out["unclear"] = ok & (sh["flat"] | sh["noisy"])
    out["readable"] = ok & ~out["unclear"]
    out["phi0"], out["phit"] = phi0, phit
    return out


def concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The measures of consecutive blocks as one table (empty parts are skipped)."""
    parts = [q for q in parts if len(q["iteration"])]
    if not parts:
        return line_measures(Iterations.empty(np.zeros(1)))
    return {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}
