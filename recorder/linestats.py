"""Per-iteration line statistics of phi_k, computed at record time and stored.

Two implementations of the same definitions:

* :func:`line_stats` is vectorised over iterations and generic over the array
  module (``numpy``, or ``cupy`` for phi already on a CUDA device, so the
  statistics are computed where the losses are and only a few numbers cross
  the bus).
* :func:`line_stats_reference` is the plain per-iteration twin (``np.polyfit``,
  ``np.interp``); tests check the two agree.

Definitions (alphas in units of d_k, ``taken`` the accepted alpha, 1.0 for a
probe of ``d_k = w_{k+1} - w_k``):

``min_alpha``, ``min_phi``
    grid argmin and minimum over the finite samples.
``efficiency``
    ``(phi(0) - phi(taken)) / (phi(0) - min phi)``: 1 reached the grid minimum,
    0 no progress, negative went uphill.  NaN when phi(0) is the minimum, or
    phi(0) / phi(taken) are unknown (phi(taken) is interpolated linearly when
    ``taken`` is not a grid point).
``step_class``
    near-optimal when efficiency >= :data:`NEAR_OPTIMAL_EFFICIENCY`, else
    undershoot when the minimum lies beyond the step, overshoot when before it.
``curvature``
    phi'' of the least-squares parabola through the finite samples (>= 3).
``cockpit_alpha``
    the step's position on that parabola in Cockpit's normalised units:
    ``(taken - a*) / |a*|`` with ``a*`` the parabola's vertex: -1 start, 0
    valley floor, +1 opposite wall (NaN when the parabola is not convex).
"""

from __future__ import annotations

import numpy as np

from . import schema

NEAR_OPTIMAL_EFFICIENCY = 0.9

STAT_NAMES = ("min_alpha", "min_phi", "efficiency", "step_class", "curvature", "cockpit_alpha")


def _xp_of(a):
    mod = type(a).__module__.split(".")[0]
    if mod == "cupy":
        import cupy

        return cupy
    return np


def line_stats(alphas, phi, taken=None):
    """Line statistics of many iterations at once.

    Parameters
    ----------
    alphas : (K,) increasing grid, or (n, K) per-row alphas (each row increasing, then NaN where the
        step has no point: :func:`line_stats_rows`)
    phi : (n, K) values (any float dtype; NaN/Inf allowed)
    taken : (n,) accepted alpha per iteration (default 1.0)

    Returns
    -------
    dict of name -> (n,) array (float64; ``step_class`` int8), in phi's array module
    """
    xp = _xp_of(phi)
    a = xp.asarray(alphas, dtype=xp.float64)
    p = xp.asarray(phi, dtype=xp.float64)
    if p.ndim == 1:
        p = p[None, :]
    if a.ndim == 2:
        return line_stats_rows(a, p, taken)
    n, k = p.shape
    t = xp.ones(n, xp.float64) if taken is None else xp.broadcast_to(xp.asarray(taken, xp.float64), (n,))
    fin = xp.isfinite(p)
    anyfin = fin.any(axis=1)
    nan = xp.float64(np.nan)

    masked = xp.where(fin, p, xp.inf)
    idx = xp.argmin(masked, axis=1)
    min_phi = xp.where(anyfin, xp.take_along_axis(masked, idx[:, None], axis=1)[:, 0], nan)
    min_alpha = xp.where(anyfin, a[idx], nan)

    # phi(0) and phi(taken) by linear interpolation on the grid (exact at grid points)
    def at(alpha_vals):
        j = xp.clip(xp.searchsorted(a, alpha_vals, side="left"), 1, k - 1) if k > 1 else xp.zeros(n, xp.int64)
        if k == 1:
            v = p[:, 0]
            return xp.where(alpha_vals == a[0], v, nan)
        a0, a1 = a[j - 1], a[j]
        v0 = xp.take_along_axis(p, (j - 1)[:, None], axis=1)[:, 0]
        v1 = xp.take_along_axis(p, j[:, None], axis=1)[:, 0]
        w = (alpha_vals - a0) / (a1 - a0)
        exact0 = alpha_vals == a0
        exact1 = alpha_vals == a1
        v = xp.where(exact0, v0, xp.where(exact1, v1, v0 + w * (v1 - v0)))
        inside = (alpha_vals >= a[0]) & (alpha_vals <= a[-1])
        return xp.where(inside, v, nan)

    phi0 = at(xp.zeros(n, xp.float64))
    phit = at(t)
    efficiency, cls = _efficiency_and_class(xp, phi0, phit, min_phi, min_alpha, t)

    # least-squares parabola phi ~ c0 + c1 u + c2 u^2 in centred u = a - mean(a), masked to finite samples
    curvature, cockpit = _parabola_rows(xp, a - a.mean(), a.mean(), fin, p, t)
    return {"min_alpha": min_alpha, "min_phi": min_phi, "efficiency": efficiency, "step_class": cls,
            "curvature": curvature, "cockpit_alpha": cockpit}


def line_stats_reference(alphas, phi, taken=None) -> dict[str, np.ndarray]:
    """Plain per-iteration twin of :func:`line_stats` (numpy, one iteration at a time); ``alphas`` (K,) or
    (n, K) per-row (a row's NaN alphas and their phi values are left out)."""
    p2 = np.atleast_2d(np.asarray(phi, np.float64))
    n = len(p2)
    a2 = np.broadcast_to(np.asarray(alphas, np.float64), p2.shape)
    tk = np.ones(n) if taken is None else np.broadcast_to(np.asarray(taken, np.float64), (n,))
    out = {name: np.full(n, np.nan) for name in STAT_NAMES}
    out["step_class"] = np.zeros(n, np.int8)
    for i in range(n):
        keep = np.isfinite(a2[i])
        a, row, t = a2[i][keep], p2[i][keep], float(tk[i])
        fin = np.isfinite(row)
        if not fin.any():
            continue
        j = int(np.argmin(np.where(fin, row, np.inf)))
        out["min_alpha"][i], out["min_phi"][i] = a[j], row[j]

        def value_at(x):
            if x < a[0] or x > a[-1]:
                return np.nan
            hit = np.nonzero(a == x)[0]
            if len(hit):
                return row[hit[0]]
            return float(np.interp(x, a, row))

        phi0, phit = value_at(0.0), value_at(t)
        denom = phi0 - row[j]
        if np.isfinite(phi0) and np.isfinite(phit) and denom > 0:
            eff = (phi0 - phit) / denom
            out["efficiency"][i] = eff
            if eff >= NEAR_OPTIMAL_EFFICIENCY:
                out["step_class"][i] = schema.CLASS_NEAR_OPTIMAL
            elif a[j] > t:
                out["step_class"][i] = schema.CLASS_UNDERSHOOT
            else:
                out["step_class"][i] = schema.CLASS_OVERSHOOT
        if fin.sum() >= 3:
            c2, c1, _ = np.polyfit(a[fin], row[fin], 2)
            out["curvature"][i] = 2 * c2
            if c2 > 0:
                vertex = -c1 / (2 * c2)
                if vertex != 0:
                    out["cockpit_alpha"][i] = (t - vertex) / abs(vertex)
    return out


def line_stats_rows(alphas, phi, taken=None):
    """:func:`line_stats` with per-row alphas: the same definitions, row ``i`` on its own grid ``alphas[i]``.

    Parameters
    ----------
    alphas : (n, K) per-row alphas: each row's points increasing, then NaN (a shared grid broadcast to
        (n, K) gives the results of the shared-grid path)
    phi : (n, K) values at those alphas (values where alpha is NaN are ignored)
    taken : (n,) accepted alpha per iteration (default 1.0)
    """
    xp = _xp_of(phi)
    p = xp.asarray(phi, dtype=xp.float64)
    p = p[None, :] if p.ndim == 1 else p
    n, k = p.shape
    a = xp.broadcast_to(xp.asarray(alphas, dtype=xp.float64), (n, k))
    t = xp.ones(n, xp.float64) if taken is None else xp.broadcast_to(xp.asarray(taken, xp.float64), (n,))
    has = xp.isfinite(a)
    a0 = xp.where(has, a, 0.0)
    fin = xp.isfinite(p) & has
    anyfin = fin.any(axis=1)
    nan = xp.float64(np.nan)
    masked = xp.where(fin, p, xp.inf)
    idx = xp.argmin(masked, axis=1)
    min_phi = xp.where(anyfin, xp.take_along_axis(masked, idx[:, None], axis=1)[:, 0], nan)
    min_alpha = xp.where(anyfin, xp.take_along_axis(a0, idx[:, None], axis=1)[:, 0], nan)
    phi0 = _value_at_rows(xp, a, has, p, xp.zeros(n, xp.float64))
    phit = _value_at_rows(xp, a, has, p, t)
    efficiency, cls = _efficiency_and_class(xp, phi0, phit, min_phi, min_alpha, t)
    centre = a0.sum(1) / xp.maximum(has.sum(1), 1)
    curvature, cockpit = _parabola_rows(xp, xp.where(has, a0 - centre[:, None], 0.0), centre, fin, p, t)
    return {"min_alpha": min_alpha, "min_phi": min_phi, "efficiency": efficiency, "step_class": cls,
            "curvature": curvature, "cockpit_alpha": cockpit}


def _efficiency_and_class(xp, phi0, phit, min_phi, min_alpha, t):
    """Step efficiency (phi(0) - phi(taken)) / (phi(0) - min phi) and the step class, per row (both paths)."""
    nan = xp.float64(np.nan)
    denom = phi0 - min_phi
    ok = xp.isfinite(phi0) & xp.isfinite(phit) & (denom > 0)
    efficiency = xp.where(ok, (phi0 - phit) / xp.where(ok, denom, 1.0), nan)
    cls = xp.full(len(phi0), schema.CLASS_UNKNOWN, xp.int8)
    cls = xp.where(ok & (efficiency >= NEAR_OPTIMAL_EFFICIENCY), schema.CLASS_NEAR_OPTIMAL, cls)
    rest = ok & (efficiency < NEAR_OPTIMAL_EFFICIENCY)
    cls = xp.where(rest & (min_alpha > t), schema.CLASS_UNDERSHOOT, cls)
    cls = xp.where(rest & (min_alpha <= t), schema.CLASS_OVERSHOOT, cls).astype(xp.int8)
    return efficiency, cls


def _value_at_rows(xp, a, has, p, x):
    """phi at ``x[i]`` on row i by linear interpolation between its points (exact at a point; NaN outside)."""
    n, k = p.shape
    kf = has.sum(1)
    nan = xp.float64(np.nan)
    if k == 1:
        return xp.where(has[:, 0] & (a[:, 0] == x), p[:, 0], nan)
    j = xp.clip((xp.where(has, a, xp.inf) < x[:, None]).sum(1), 1, xp.maximum(kf - 1, 1))
    a0 = xp.take_along_axis(a, (j - 1)[:, None], axis=1)[:, 0]
    a1 = xp.take_along_axis(a, j[:, None], axis=1)[:, 0]
    v0 = xp.take_along_axis(p, (j - 1)[:, None], axis=1)[:, 0]
    v1 = xp.take_along_axis(p, j[:, None], axis=1)[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        w = (x - a0) / (a1 - a0)
        v = xp.where(x == a0, v0, xp.where(x == a1, v1, v0 + w * (v1 - v0)))
    first = a[:, 0]
    last = xp.take_along_axis(a, xp.maximum(kf - 1, 0)[:, None], axis=1)[:, 0]
    single = (kf == 1) & (x == first)
    inside = (kf >= 2) & (x >= first) & (x <= last)
    return xp.where(single, p[:, 0], xp.where(inside, v, nan))


def _parabola_rows(xp, u, centre, fin, p, t):
    """Curvature and Cockpit's alpha of each row's least-squares parabola (centred alphas ``u``)."""
    nan = xp.float64(np.nan)
    m = fin.astype(xp.float64)
    pz = xp.where(fin, p, 0.0)
    s0, s1, s2 = m.sum(1), (m * u).sum(1), (m * u ** 2).sum(1)
    s3, s4 = (m * u ** 3).sum(1), (m * u ** 4).sum(1)
    t0, t1, t2 = pz.sum(1), (pz * u).sum(1), (pz * u ** 2).sum(1)
    det = s0 * (s2 * s4 - s3 * s3) - s1 * (s1 * s4 - s3 * s2) + s2 * (s1 * s3 - s2 * s2)
    good = (s0 >= 3) & (xp.abs(det) > 1e-300)
    dsafe = xp.where(good, det, 1.0)
    c1 = (s0 * (t1 * s4 - s3 * t2) - t0 * (s1 * s4 - s3 * s2) + s2 * (s1 * t2 - t1 * s2)) / dsafe
    c2 = (s0 * (s2 * t2 - t1 * s3) - s1 * (s1 * t2 - t1 * s2) + t0 * (s1 * s3 - s2 * s2)) / dsafe
    curvature = xp.where(good, 2.0 * c2, nan)
    convex = good & (c2 > 0)
    vertex = xp.where(convex, -c1 / xp.where(convex, 2.0 * c2, 1.0) + centre, nan)
    cockpit = xp.where(convex & (vertex != 0), (t - vertex) / xp.abs(xp.where(vertex != 0, vertex, 1.0)), nan)
    return curvature, cockpit
