"""Picking: which drawn arc is under (or nearest to) a pixel, and the hover readout there.

Compute only (numpy, no GL, no toolkit).  Everything is measured in pixels of
the *drawn* view (:class:`~gda_gl.view.View`), never the target of an
animation.  Run data is read through the runs' windows
(``run.rows_reaching``, ``run.row_at``, ``run.windows.row_of``,
``run.windows.rows_in_range``), so runs of any length work: zoomed far out,
only the :data:`MAX_PICK_ROWS` rows nearest the cursor column are searched.

An arc of step k is drawn as the polyline through ``(k + alpha / t_k, phi_k(alpha))``
over the probe's alpha grid, where ``t_k`` is the accepted alpha (``<= 0`` or
NaN count as 1).  The part beyond the step (``alpha > t_k``) is pickable only
while it is shown, and counts :data:`BEYOND_PENALTY_PX` farther so that a solid
arc wins over a light one crossing it.
"""

from __future__ import annotations

import math

import numpy as np

from ..scene import RunData, transform_y
from ..view import View

__all__ = ["PICK_PX", "HOVER_PX", "BEYOND_PENALTY_PX", "MAX_PICK_ROWS", "iteration_at", "nearest_arc",
           "hover_info"]

PICK_PX = 8.0             # a click this close to a drawn arc selects it
HOVER_PX = 14.0           # the hover readout names the nearest arc within this distance
BEYOND_PENALTY_PX = 5.0   # picking prefers solid arcs: a light part counts as this much farther
MAX_PICK_ROWS = 8192      # rows searched for the nearest arc (zoomed far out: the ones nearest the cursor)


def _arrays(d):
    """Iterations, phi samples and accepted alphas (<= 0 or NaN as 1) of a window of rows."""
    t = np.asarray(d["taken_alpha"], np.float64)
    t = np.where(np.isfinite(t) & (t > 0), t, 1.0)
    return d.iteration.astype(np.float64), np.asarray(d.phi, np.float64), t


def iteration_at(runs: list[RunData], x: float) -> tuple[RunData, int] | None:
    """The run and iteration whose segment [k, k+1) contains x (first of ``runs`` that has one)."""
    for run in runs:
        row = run.row_at(x) if len(run) else None
        if row is not None and len(row):
            return run, int(row.iteration[0])
    return None


def _pick_window(run: RunData, xc: float, tol_x: float):
    """The rows whose arcs may pass within ``tol_x`` of x = ``xc`` (at most about MAX_PICK_ROWS)."""
    xa, xb = xc - tol_x, xc + tol_x
    n = run.windows.rows_in_range(xa - run.reach, xb + 1)
    if n > MAX_PICK_ROWS:  # zoomed far out: the rows nearest the cursor column are enough
        half = 0.5 * (xb - xa + run.reach + 1) * MAX_PICK_ROWS / n
        xa, xb = xc - half, xc + half
    return run.rows_reaching(xa, xb)


def _nearest_in_run(run: RunData, v: View, px: float, py: float, max_px: float, show_loose: bool):
    """(distance with penalty, iteration, alpha) of the nearest pickable segment of one run, or None."""
    lx, ly, pw, ph = v.plot
    sx, sy = pw / (v.x1 - v.x0), ph / (v.y1 - v.y0)
    gy = v.size[1] - py
    win = _pick_window(run, v.x0 + (px - lx) / sx, max_px / sx)
    a = np.asarray(run.alphas, np.float64)
    if len(win) == 0 or len(a) < 2:
        return None
    it, phi, t = _arrays(win)
    X = lx + (it[:, None] + a[None, :] / t[:, None] - v.x0) * sx
    Y = ly + (transform_y(phi, v.log_y) - v.y0) * sy
    main = a[None, 1:] <= t[:, None] * (1 + 1e-9)
    keep_seg = main if not show_loose else np.ones_like(main)
    x0s, y0s, x1s, y1s = X[:, :-1], Y[:, :-1], X[:, 1:], Y[:, 1:]
    dx, dy = x1s - x0s, y1s - y0s
    L2 = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        u = np.clip(((px - x0s) * dx + (gy - y0s) * dy) / np.where(L2 > 0, L2, 1.0), 0.0, 1.0)
    dist = np.hypot(x0s + u * dx - px, y0s + u * dy - gy)
    # the solid arc wins over a light one (beyond a neighbour's step) crossing it nearby
    dist = np.where(keep_seg & np.isfinite(dist), dist + np.where(main, 0.0, BEYOND_PENALTY_PX), np.inf)
    j = int(np.argmin(dist))
    d = float(dist.flat[j])
    if d - (0.0 if main.flat[j] else BEYOND_PENALTY_PX) > max_px:
        return None
    rr, ss = divmod(j, len(a) - 1)
    return d, int(it[rr]), float(a[ss] + u.flat[j] * (a[ss + 1] - a[ss]))


def nearest_arc(runs: list[RunData], v: View, px: float, py: float, max_px: float = HOVER_PX,
                show_loose: bool = True) -> dict | None:
    """The drawn arc nearest to pixel (px, py) over the visible ``runs``, within ``max_px`` pixels.

    Returns ``{"run", "run_index", "iteration", "alpha", "dist_px"}`` (alpha of the nearest
    point of the arc; ``run_index`` indexes ``runs``) or None.  Distances are measured in pixels
    of the drawn view ``v``, to the polyline through the arc's samples (the part beyond the step
    included when ``show_loose``).
    """
    best = None
    for i, run in enumerate(runs):
        if not getattr(run, "visible", True) or len(run) == 0:
            continue
        hit = _nearest_in_run(run, v, px, py, max_px, show_loose)
        if hit is not None and (best is None or hit[0] < best["dist_px"]):
            best = {"run": run, "run_index": i, "iteration": hit[1], "alpha": hit[2], "dist_px": hit[0]}
    return best


def hover_info(runs: list[RunData], v: View, px: float, py: float, show_loose: bool = True) -> dict | None:
    """Run, iteration, alpha and loss under the cursor (plus phi_k(alpha) there), or None off the plot.

    The step is the nearest arc within :data:`HOVER_PX`, else the step whose segment [k, k+1)
    holds the cursor's x (first visible run).  ``run_index`` indexes ``runs``.
    """
    if not v.contains_px(px, py):
        return None
    x, y = v.px_to_data(px, py)
    info = {"x": x, "loss": y}
    near = nearest_arc(runs, v, px, py, HOVER_PX, show_loose)
    if near is not None:
        run, k = near["run"], near["iteration"]
    else:
        hit = iteration_at([r for r in runs if getattr(r, "visible", True)], x)
        run, k = hit if hit is not None else (None, None)
    row = run.windows.row_of(k) if run is not None else None
    if row is not None:
        it, phi, t = _arrays(row)
        alpha = (x - it[0]) * t[0]
        fin = np.isfinite(phi[0])
        a = np.asarray(run.alphas, np.float64)
        info.update({"run": run.name, "run_index": runs.index(run), "iteration": int(it[0]),
                     "alpha": alpha, "dist_px": near["dist_px"] if near else math.inf,
                     "phi": float(np.interp(alpha, a[fin], phi[0][fin])) if fin.sum() >= 2 else math.nan})
    return info
