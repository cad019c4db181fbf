"""Picking: what drawn thing is under (or nearest to) a pixel, and the hover readout there.

Compute only (numpy, no GL, no toolkit).  Picking reads the :class:`~gda_gl.compose.frame.Frame` that was
drawn, with the :class:`~gda_gl.compose.view.View` it was drawn in, never the runs or the target of an
animation: a step can be picked exactly where its arc is on screen, and a readout names a point
that is drawn.

* Zoomed in, the candidates are the ``arcs`` segments and, when drawn, the ``beyond`` segments
  (which count :data:`BEYOND_PENALTY_PX` farther, so that a solid arc wins over a light one crossing
  it).  Each segment carries its run, step and the alphas at its two ends (:class:`~gda_gl.compose.frame.Ids`),
  so the nearest point of the nearest segment gives the step and an alpha *on the drawn arc*.
* Zoomed out, the candidates are the buckets of the classic curve and the envelope: the readout names
  the bucket's iterations and its loss range, never one step's alpha.
* Elsewhere the readout gives the cursor's coordinates and says it is between the drawn steps.

Per call the work is bounded by what the frame holds (bounded by pixels), never by the run.
"""

from __future__ import annotations

import math

import numpy as np

from recorder import stats

from gda_gl.compose.frame import Frame
from gda_gl.compose.rundata import RunData
from gda_gl.compose.ticks import format_position
from gda_gl.compose.view import View, transform_y

__all__ = ["PICK_PX", "HOVER_PX", "BEYOND_PENALTY_PX", "iteration_at", "nearest_arc", "bucket_at", "hover_info"]

PICK_PX = 8.0             # a click this close to a drawn arc selects it
HOVER_PX = 14.0           # the hover readout names the nearest arc within this distance
BEYOND_PENALTY_PX = 5.0   # picking prefers solid arcs: a light part counts as this much farther
SERIES_READOUT_MAX = 3     # the status line names at most this many series values (more: see the hover table)


def iteration_at(runs: list[RunData], x: float, xmaps: dict | None = None) -> tuple[RunData, int] | None:
    """The run and iteration whose segment [k, k+1) contains x (first of ``runs`` that has one); ``xmaps``:
    run index -> the drawn frame's :class:`~gda_gl.compose.xaxis.AxisMap` when x is not in iterations."""
    for i, run in enumerate(runs):
        xmap = (xmaps or {}).get(i)
        u = x if xmap is None else float(xmap.to_iter(x))
        row = run.row_at(u) if len(run) and getattr(run, "visible", True) else None
        if row is not None and len(row):
            return run, int(row.iteration[0])
    return None


def _to_px(view: View, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame positions (relative to the view origin) to GL pixels (origin bottom-left)."""
    lx, ly, pw, ph = view.plot
    return lx + p[:, 0] * (pw / (view.x1 - view.x0)), ly + p[:, 1] * (ph / (view.y1 - view.y0))


def _nearest_segment(batch, view: View, px: float, gy: float, penalty: float):
    """(distance + penalty, index, position 0..1 along it) of the segment of ``batch`` nearest to a pixel."""
    x0, y0 = _to_px(view, batch.p0)
    x1, y1 = _to_px(view, batch.p1)
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        u = np.clip(((px - x0) * dx + (gy - y0) * dy) / np.where(length2 > 0, length2, 1.0), 0.0, 1.0)
    dist = np.hypot(x0 + u * dx - px, y0 + u * dy - gy)
    dist = np.where(np.isfinite(dist), dist, np.inf)
    j = int(np.argmin(dist))
    return float(dist[j]) + penalty, j, float(u[j])


def nearest_arc(frame: Frame, view: View, px: float, py: float, max_px: float = HOVER_PX) -> dict | None:
    """The drawn arc nearest to canvas pixel (px, py) (origin top-left), within ``max_px`` pixels.

    Returns
    -------
    ``{"run_index", "iteration", "alpha", "dist_px", "beyond"}`` or None. ``run_index`` indexes the
    runs the frame was composed from; ``alpha`` is the point of the drawn segment nearest the cursor
    (between the alphas of its two ends); ``dist_px`` includes the penalty of a ``beyond`` segment.
    """
    gy = view.size[1] - py
    best = None
    for kind, penalty in (("arcs", 0.0), ("beyond", BEYOND_PENALTY_PX)):
        batch = frame.merged(kind)
        if batch is None or batch.ids is None:
            continue
        d, j, u = _nearest_segment(batch, view, px, gy, penalty)
        if d - penalty <= max_px and (best is None or d < best["dist_px"]):
            ids = batch.ids
            best = {"run_index": int(ids.run[j]), "iteration": int(ids.first[j]), "dist_px": d,
                    "alpha": float(ids.a0[j] + u * (ids.a1[j] - ids.a0[j])), "beyond": kind == "beyond"}
    return best


def bucket_at(frame: Frame, view: View, px: float, py: float) -> dict | None:
    """The zoomed-out bucket drawn in the cursor's pixel column nearest to it in y (classic curve or envelope).

    Returns ``{"run_index", "first", "last", "lo", "hi"}`` (iterations and the drawn loss range, display
    units undone) or None when no bucket is drawn in that column.
    """
    gy = view.size[1] - py
    best = None
    for kind in ("classic", "envelope"):
        batch = frame.merged(kind)
        if batch is None or batch.ids is None:
            continue
        xa, ya = _to_px(view, batch.rects[:, :2])
        xb, yb = _to_px(view, batch.rects[:, 2:])
        col = (np.floor(xa) <= px) & (px < np.maximum(np.floor(xb), np.floor(xa) + 1))
        if not col.any():
            continue
        dy = np.where(col, np.maximum(0.0, np.maximum(ya - gy, gy - yb)), np.inf)
        j = int(np.argmin(dy))
        if best is None or dy[j] < best[0]:
            best = (float(dy[j]), batch, j)
    if best is None:
        return None
    _, batch, j = best
    lo, hi = (float(v) for v in batch.rects[j, [1, 3]] + view.y0)
    if view.log_y:
        lo, hi = 10.0 ** lo, 10.0 ** hi
    return {"run_index": int(batch.ids.run[j]), "first": int(batch.ids.first[j]), "last": int(batch.ids.last[j]),
            "lo": lo, "hi": hi}


def _phi_at(run: RunData, iteration: int, alpha: float, log_y: bool) -> float:
    """phi of the drawn polyline of step ``iteration`` at ``alpha``: linear between grid samples in display
    units (on a log axis the drawn segment is straight in log10(phi))."""
    row = run.windows.row_of(iteration)
    if row is None or not len(row):
        return math.nan
    a = np.asarray(row.alphas_of(0), np.float64)  # the step's own alphas (a per-step grid) or the run's
    y = transform_y(np.asarray(row.phi[0], np.float64), log_y)
    fin = np.isfinite(y) & np.isfinite(a)
    if fin.sum() < 2:
        return math.nan
    yd = float(np.interp(alpha, a[fin], y[fin]))
    return 10.0 ** yd if log_y else yd


def hover_info(runs: list[RunData], frame: Frame, view: View, px: float, py: float) -> dict | None:
    """What the cursor points at in the drawn frame, or None off the plot.

    Always ``{"x", "loss"}`` (the cursor in data units).  Near a drawn arc also ``"run", "run_index",
    "iteration", "alpha", "phi", "dist_px"`` (alpha and phi of the drawn point nearest the cursor);
    zoomed out over a bucket ``"run", "run_index", "bucket": (first, last), "loss_range": (lo, hi)``;
    otherwise ``"over_step"`` and ``"run"`` when x lies in a step's column [k, k + 1) off its arc, or
    ``"between": True``.  Only a point of a drawn arc gets an alpha.  ``run_index`` indexes ``runs``.
    """
    if not view.contains_px(px, py):
        return None
    x, y = view.px_to_data(px, py)
    info = {"x": x, "loss": y, "x_res": (view.x1 - view.x0) / max(1, view.plot[2])}  # iterations per pixel
    values = series_at(frame, view, x)
    if values:
        info["series"] = values  # the series lines drawn over the curve, at the cursor's x
    if len(runs) > 1:  # the hover table: every run at the cursor's x, by its loss there
        from .runtable import runs_at

        info["table"] = runs_at(runs, frame, view, px)
    near = nearest_arc(frame, view, px, py, HOVER_PX)
    if near is not None and near["run_index"] < len(runs):
        run = runs[near["run_index"]]
        info.update(near, run=run.name, phi=_phi_at(run, near["iteration"], near["alpha"], view.log_y))
        return info
    if len(runs) > 1:  # a run's line among many (the sweep style) names its run
        from .runtable import line_at

        k = line_at(frame, view, px, py)
        if k is not None and k < len(runs):
            info.update(run=runs[k].name, run_index=k, line=True)
            return info
    bucket = bucket_at(frame, view, px, py) if frame.mode == "overview" else None
    if bucket is not None and bucket["run_index"] < len(runs):
        info.update(run=runs[bucket["run_index"]].name, run_index=bucket["run_index"],
                    bucket=(bucket["first"], bucket["last"]), loss_range=(bucket["lo"], bucket["hi"]))
        return info
    hit = iteration_at(runs, x, frame.xmaps)
    if hit is not None:
        info.update(over_step=hit[1], run=hit[0].name)
    else:
        info["between"] = True
    return info


def series_at(frame: Frame, view: View, x: float) -> dict[str, float]:
    """The value of every series line drawn over the curve at x: "run: name" -> value (data units), read
    from the drawn segments (linear between the points drawn); series not drawn at x are left out."""
    out = {}
    xr = x - frame.origin[0]
    for b in frame.of("series"):
        hit = np.nonzero((b.p0[:, 0] <= xr) & (xr <= b.p1[:, 0]))[0]
        if not len(hit) or not b.label:
            continue
        j = hit[0]
        span = b.p1[j, 0] - b.p0[j, 0]
        u = (xr - b.p0[j, 0]) / span if span > 0 else 0.0
        yd = b.p0[j, 1] + u * (b.p1[j, 1] - b.p0[j, 1]) + frame.origin[1]
        out[b.label] = float(10.0 ** yd if view.log_y else yd)
    return out


def step_statistic(run: RunData, iteration: int, name: str) -> str | None:
    """``label value`` of statistic ``name`` at one step, by the registry's label and format
    (:func:`recorder.stats.format_value`; the hover names the statistic the curve is coloured by)."""
    stat = stats.STAT_BY_NAME.get(name)
    row = run.windows.row_of(int(iteration)) if stat is not None else None
    if row is None or not len(row) or name not in row.columns:
        return None
    return f"{stat.label} {stats.format_value(name, row[name][0])}"


def hover_text(info: dict | None) -> str:
    """The status line's words for a :func:`hover_info` result (then the series drawn at the cursor's x)."""
    if not info:
        return ""
    series = info.get("series", {})
    if len(series) > SERIES_READOUT_MAX:  # many runs: the hover table gives every run's value
        return _hover_main(info)
    return _hover_main(info) + "".join(f"; {k} {v:.6g}" for k, v in series.items())


def _hover_main(info: dict) -> str:
    """The words for the step, bucket or place under the cursor."""
    x = format_x(info["x"], info.get("x_res", 1e-4))
    cursor = f"(cursor: x {x}, loss {info['loss']:.6g})"
    if "iteration" in info:
        stat = f", {info['stat']}" if info.get("stat") else ""
        return (f"{info['run']}: step {info['iteration']:,}, alpha {info['alpha']:.4g}, phi {info['phi']:.6g}{stat} "
                + cursor)
    if info.get("line"):
        return f"{info['run']}: its line (training loss, smoothed; click to draw it in full) {cursor}"
    if "bucket" in info:
        (a, b), (lo, hi) = info["bucket"], info["loss_range"]
        steps = f"step {a:,}" if a == b else f"steps {a:,}..{b:,}"
        return f"{info['run']}: {steps}, loss {lo:.6g}..{hi:.6g} {cursor}"
    if "over_step" in info:
        return f"x {x}, loss {info['loss']:.6g}: over step {info['over_step']:,} of {info['run']}, " \
               f"off its arc"
    return f"x {x}, loss {info['loss']:.6g} (between drawn steps)"


def format_x(x: float, resolution: float = 1e-4) -> str:
    """An x position (iterations): every digit of the integer part, the decimals a pixel of
    ``resolution`` iterations resolves (:func:`gda_gl.compose.ticks.format_position`)."""
    return format_position(x, resolution)
