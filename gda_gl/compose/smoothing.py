"""Smoothed lines of the curve: the EMA of the classic curve, and a run's line among many. Compute only.

* :func:`add_smoothed`: the classic curve smoothed with TensorBoard's debiased EMA (``--smooth S``,
  key ``M``, the notebook's slider: any weight in [0, 1)), over the visible buckets or rows;
* :func:`add_run_line`: a run drawn as one thin line in the sweep style (:mod:`gda_gl.compose.manyruns`):
  its training loss per pixel column, averaged over a few columns, or the EMA when the user smooths.

Both read what a composition window (:class:`gda_gl.compose.scene._Window`) holds: ``visible_recs()`` (the
buckets in view, rows as buckets of one included) or its rows.
"""

from __future__ import annotations

import math

import numpy as np

from recorder import pyramid

from . import manyruns
from .frame import Ids, Segments

__all__ = ["ema", "add_smoothed", "add_run_line", "line_segments"]


def ema(values: np.ndarray, weights: np.ndarray, smoothing: float) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing) of ``values``, one point of weight
    ``weights[i]`` rows each: a point standing for n rows decays the history by ``smoothing ** n``.
    NaN points keep the previous average (and are NaN in the result)."""
    out = np.full(len(values), np.nan)
    acc, norm = 0.0, 0.0
    for i, (v, n) in enumerate(zip(values.tolist(), weights.tolist())):
        if not math.isfinite(v):
            continue
        d = smoothing ** n
        acc = d * acc + (1.0 - d) * v
        norm = d * norm + (1.0 - d)
        out[i] = acc / norm
    return out


def _smooth_input(w):
    """(x, value, weight) of the classic curve a window draws: bucket middles zoomed out, phi_k(0) per row."""
    if w.recs is not None:
        r = w.visible_recs()
        xs = w.x(0.5 * (r["first_it"].astype(np.float64) + r["last_it"].astype(np.float64) + 1.0))
        return xs, 0.5 * (r["cl_lo"].astype(np.float64) + r["cl_hi"].astype(np.float64)), r["rows"].astype(np.float64)
    d = w.rows
    if d is None or not len(d):
        return None
    sel = (d.iteration + 1 > w.u0) & (d.iteration < w.u1)
    xs = w.x(d.iteration[sel].astype(np.float64))
    vals = pyramid.classic_values(w.alphas_of(d), d.phi, d["train_loss"])[sel].astype(np.float64)
    return xs, vals, np.ones(len(xs))


def add_smoothed(frame, w, state, view) -> None:
    """The classic curve smoothed with an EMA, from the first visible point on (bounded by pixels).

    Zoomed out, a bucket contributes the middle of its classic min..max with the weight of its rows;
    with rows, every step contributes phi_k(0).
    """
    src = _smooth_input(w)
    if src is None:
        return
    xs, vals, weights = src
    if len(xs) > 20_000:  # more points than a frame can show: they are rows of a very wide window
        step = len(xs) // 20_000 + 1
        xs, vals, weights = xs[::step], vals[::step], weights[::step] * step
    sm = w.y(ema(vals, weights, state.smoothing), state.log_y) - view.y0
    ok = np.isfinite(sm)
    xs, sm = xs[ok] - view.x0, sm[ok]
    if len(xs) < 2:
        return
    p = np.stack([xs, sm], axis=1)
    c = np.asarray(w.color, np.float32) * np.array([0.55, 0.55, 0.55, 1.0], np.float32)
    frame.add(Segments("smooth", p[:-1], p[1:], c))


def add_run_line(frame, w, state, view, color) -> None:
    """A run as one thin line (the sweep style): its training loss per bucket, smoothed, in ``color`` (RGBA per
    bucket or one); the segments carry the buckets' ids, so hovering a line names its run."""
    r = w.visible_recs()
    if not len(r["rows"]):
        return
    first, last = r["first_it"].astype(np.float64), r["last_it"].astype(np.float64)
    xs = w.x(0.5 * (first + last + 1.0))
    vals, weights = manyruns.line_values(r)
    pts, ok = line_segments(xs, vals, weights, view.x0, view.x1, view.plot[2], state.smoothing)
    y = w.y(pts[:, 1], state.log_y) - view.y0
    p = np.stack([pts[:, 0] - view.x0, y], axis=1)
    pair = ok[:-1] & ok[1:] & np.isfinite(y[:-1]) & np.isfinite(y[1:])
    if not pair.any():
        return
    c = np.broadcast_to(np.asarray(color, np.float32), (len(p), 4))[:-1][pair].copy()
    c[:, 3] *= manyruns.LINE_ALPHA
    ids = Ids.buckets(w.index, r["first_it"][:-1][pair], r["last_it"][1:][pair])
    frame.add(Segments("lines", p[:-1][pair], p[1:][pair], c, ids))


def line_segments(xs: np.ndarray, values: np.ndarray, weights: np.ndarray, x0: float, x1: float, width_px: int,
                  smoothing: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(points, kept) of a run's line: bucket middles ``xs`` (view units) and their smoothed values.

    ``smoothing`` > 0: TensorBoard's EMA of that weight per row (:func:`ema`), else the
    centred average over :data:`~gda_gl.compose.manyruns.LINE_SMOOTH_PX` pixel columns.
    """
    if not len(xs):
        return np.empty((0, 2)), np.zeros(0, bool)
    if smoothing > 0:
        sm = ema(np.where(weights > 0, values, np.nan), np.maximum(weights, 1.0), smoothing)
    else:
        per_px = len(xs) / max(1.0, (float(np.max(xs)) - float(np.min(xs))) / max(x1 - x0, 1e-300) * width_px)
        half = int(math.ceil(0.5 * manyruns.LINE_SMOOTH_PX * max(per_px, 0.0)))
        sm = manyruns.smooth_centered(values, weights, half)
    pts = np.stack([np.asarray(xs, np.float64), sm], axis=1)
    return pts, np.isfinite(sm)
