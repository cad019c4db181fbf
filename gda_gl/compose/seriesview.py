"""Logged series in the figure: loss-like ones over the enhanced curve, the others in panels below it. Compute only.

A run's series (``rec.log``: validation loss, accuracy, anything; and the built-in ``train_loss``,
``lr``, ``grad_norm``) are read through :meth:`recorder.window.RunWindows.series`, which returns
raw points while fewer than 16 fall in a pixel column and pyramid buckets (min, max, count, ...)
beyond that, so a frame's work is bounded by pixels whatever the series' length, and a spike stays
visible at every zoom (buckets are drawn as min..max bands).

Which series are drawn where (:func:`plan`):

* ``ViewState.series is None`` (the default): every *logged* series whose name contains "loss"
  (validation loss, test loss, ...) on the curve's own axes;
* otherwise the series named there: loss-like names on the curve's axes, every other name in a
  panel of its own below the curve (its own y scale, log when named in ``ViewState.series_log``),
  sharing the curve's x range.

Style on the curve's axes: a darker shade of the run's colour, a point mark where few points are
visible, a legend entry "run: series".  A point at iteration k is drawn at x = k (the iteration
it was logged at).  Non-finite values leave a gap and put a red flag on the top edge, never a line
to +-inf.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from .frame import Frame, Markers, Rects, Segments
from .style import NONFINITE_COLOR
from .view import View, transform_y
from .xaxis import AxisRange

log = logging.getLogger(__name__)

__all__ = ["plan", "available", "is_loss_like", "SeriesWindow", "read_windows", "extent", "draw_series",
           "series_color", "MARK_POINTS"]

#: at most this many visible points get a mark each
MARK_POINTS = 200
#: logged points are squares (shape code 1): discs and triangles are line-search trial points
SERIES_MARK_SHAPE = 1.0
BUILTIN = ("train_loss", "lr", "grad_norm")


def is_loss_like(name: str) -> bool:
    """Series drawn on the loss axis: names containing "loss"."""
    return "loss" in name.lower()


def _names(run) -> list[str]:
    try:
        return list(run.windows.series_names())
    except Exception as exc:  # an in-memory run or a damaged table: no series, say why once
        log.debug("no series for %s: %s", getattr(run, "name", "?"), exc)
        return list(BUILTIN)


def available(runs) -> list[str]:
    """Every series some run holds (built-in ones first), in first-seen order."""
    out: list[str] = []
    for r in runs:
        out += [n for n in _names(r) if n not in out]
    return out


def plan(runs, state) -> tuple[list[str], list[str]]:
    """(series on the curve's axes, series in panels) for ``state`` (see the module docstring)."""
    names = available([r for r in runs if getattr(r, "visible", True)])
    if state.series is None:
        return [n for n in names if n not in BUILTIN and is_loss_like(n)], []
    chosen = [n for n in state.series if n in names]
    return [n for n in chosen if is_loss_like(n)], [n for n in chosen if not is_loss_like(n)]


@dataclass
class SeriesWindow:
    """One run's series as read for a frame: points (``level`` None) or buckets."""

    run_index: int
    run: object
    name: str
    data: object
    u0: float = -math.inf   # the view's x range in the run's iterations
    u1: float = math.inf


def read_windows(runs, names: list[str], x0: float, x1: float, width_px: int, axis: str = "iteration"
                 ) -> list[SeriesWindow]:
    """Each visible run's window onto each named series it holds, for the view's ``[x0, x1]`` on ``axis``
    (one pixel column of margin)."""
    out = []
    for i, r in enumerate(runs):
        if not getattr(r, "visible", True) or not len(r):
            continue
        have = _names(r)
        u0, u1 = r.to_iterations(axis, AxisRange(x0, x1))
        margin = (u1 - u0) / max(width_px, 1)
        for name in names:
            if name not in have:
                continue
            try:
                data = r.windows.series(name, u0 - margin - 1, u1 + margin + 1, max(1, int(width_px)))
            except (KeyError, ValueError) as exc:
                log.warning("%s: series %s not drawn: %s", r.name, name, exc)
                continue
            out.append(SeriesWindow(i, r, name, data, u0, u1))
    return out


def _points(s) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(x, value, low, high) of a window: points as they are, buckets at their middle with their mean."""
    d = s.data
    if d.level is None:
        return d.iteration.astype(np.float64), np.asarray(d.value, np.float64), None, None
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(d.finite > 0, d.sum / np.maximum(d.finite, 1), np.nan)
    x = 0.5 * (d.first_it.astype(np.float64) + d.last_it.astype(np.float64))
    lo = np.where(d.finite > 0, d.min, np.nan)
    hi = np.where(d.finite > 0, d.max, np.nan)
    return x, mean, lo, hi


def extent(windows: list[SeriesWindow], x0: float, x1: float, log_y: bool, yscales: dict | None = None
           ) -> tuple[float, float] | None:
    """(min, max) in display units of what the windows draw inside the view (each window's iteration range
    ``u0..u1``, the view's [x0, x1] on its axis), or None."""
    lo, hi = math.inf, -math.inf
    for s in windows:
        x, v, blo, bhi = _points(s)
        keep = (x >= s.u0 - 1) & (x <= s.u1 + 1)  # iterations: the view's range in this run
        vals = [v[keep]] + ([blo[keep], bhi[keep]] if blo is not None else [])
        t = transform_y(np.concatenate(vals) * (yscales or {}).get(s.run_index, 1.0), log_y)
        t = t[np.isfinite(t)]
        if len(t):
            lo, hi = min(lo, float(t.min())), max(hi, float(t.max()))
    return (lo, hi) if math.isfinite(lo) else None


#: opacity of a series' line over the curve among many runs (its points are drawn opaque)
SWEEP_SERIES_ALPHA = 0.3


def series_color(run_color, on_curve: bool, many: bool = False) -> np.ndarray:
    """A series' colour: a darker shade of the run's colour on the curve's axes, the run's colour in a panel;
    among many runs (``many``) the run's colour, faint (the points are marked; thirty lines would cover the runs)."""
    c = np.asarray(run_color, np.float32).copy()
    if on_curve and many:
        c[3] *= SWEEP_SERIES_ALPHA
    elif on_curve:
        c[:3] *= 0.55
    return c


def _per_column(xs: np.ndarray, x1s: np.ndarray, lo: np.ndarray, hi: np.ndarray, mid: np.ndarray, bad: np.ndarray,
                view: View):
    """Items (start x, end x, low, high, middle value, non-finite?) merged to one per pixel column they start in,
    when there are more items than columns: each column keeps the lowest low, the highest high (every extreme
    stays drawn), the mean of the finite middles, and whether any item was non-finite."""
    px = max(1, view.plot[2])
    if len(xs) <= px:
        return xs, x1s, lo, hi, mid, bad
    col = np.floor(xs / max(view.x1 - view.x0, 1e-300) * px)
    starts = np.concatenate([[0], np.nonzero(np.diff(col))[0] + 1])
    ends = np.concatenate([starts[1:], [len(xs)]]) - 1
    with np.errstate(invalid="ignore"):
        fin = np.isfinite(mid)
        total = np.add.reduceat(np.where(fin, mid, 0.0), starts)
        count = np.add.reduceat(fin.astype(np.float64), starts)
        lo_c = np.fmin.reduceat(np.where(np.isfinite(lo), lo, np.nan), starts)
        hi_c = np.fmax.reduceat(np.where(np.isfinite(hi), hi, np.nan), starts)
        mid_c = np.where(count > 0, total / np.maximum(count, 1.0), np.nan)
    return xs[starts], x1s[ends], lo_c, hi_c, mid_c, np.logical_or.reduceat(bad, starts)


def draw_series(frame: Frame, windows: list[SeriesWindow], view: View, on_curve: bool, xmaps: dict | None = None,
                yscales: dict | None = None, colors: dict | None = None) -> None:
    """Add the windows' bands, lines, marks and non-finite flags to ``frame`` (positions relative to the view;
    ``xmaps``: run index -> the frame's :class:`~gda_gl.compose.xaxis.AxisMap` when the x axis is not the iteration;
    ``colors``: run index -> the run's colour in this frame, when not its own).
    More items than pixel columns are merged per column (:func:`_per_column`): work bounded by pixels.
    Many runs (:mod:`gda_gl.compose.manyruns`) get one legend entry per series, not one per run and series."""
    from .manyruns import sweep_style

    sweep = on_curve and sweep_style(frame.runs)
    for s in windows:
        x, v, blo, bhi = _points(s)
        scale = (yscales or {}).get(s.run_index, 1.0)  # a normalised view: this run's losses over its first
        v, blo, bhi = (None if a is None else a * scale for a in (v, blo, bhi))
        xmap = (xmaps or {}).get(s.run_index)
        to_x = (lambda u: np.asarray(u, np.float64)) if xmap is None else xmap.to_axis
        color = series_color((colors or {}).get(s.run_index, s.run.color), on_curve, sweep)
        d = s.data
        buckets = blo is not None
        xs = to_x(d.first_it if buckets else x) - view.x0
        x1s = to_x(d.last_it + 1.0) - view.x0 if buckets else xs
        bad = (d.rows > d.finite) if buckets else ~np.isfinite(v)  # a NaN or an infinity logged there
        lo, hi = (blo, bhi) if buckets else (v, v)
        xs, x1s, lo, hi, v, bad = _per_column(xs, x1s, lo, hi, v, bad, view)
        merged = len(xs) < len(x)
        if buckets or merged:  # the min..max band keeps every spike visible
            band = np.stack([xs, transform_y(lo, view.log_y) - view.y0, x1s,
                             transform_y(hi, view.log_y) - view.y0], axis=1)
            ok = np.all(np.isfinite(band), axis=1)
            frame.add(Rects("series_band", band[ok], color * np.array([1, 1, 1, 0.35], np.float32)))
        ys = transform_y(v, view.log_y) - view.y0
        xm = 0.5 * (xs + x1s) if buckets or merged else xs
        fin = np.isfinite(ys)
        pair = fin[:-1] & fin[1:]
        p = np.stack([xm, ys], axis=1)
        frame.add(Segments("series", p[:-1][pair], p[1:][pair], color, label=f"{s.run.name}: {s.name}"))
        if not buckets and not merged and fin.sum() <= MARK_POINTS:
            frame.add(Markers("series_marks", p[fin], np.r_[color[:3], 1.0] if sweep else color, 4.0 if sweep else 5.0,
                              SERIES_MARK_SHAPE))
        frame.add(Markers("flags", np.stack([xm[bad], np.full(int(bad.sum()), np.nan)], axis=1), NONFINITE_COLOR,
                          7.0, 2.0))
        if on_curve:
            _legend_entry(frame, s, color)


def _legend_entry(frame: Frame, s: SeriesWindow, color) -> None:
    """The series' legend entry: "run: name", or with many runs one "name" entry in grey for every run."""
    from .manyruns import sweep_style

    if not sweep_style(frame.runs):
        frame.legend.append((f"{s.run.name}: {s.name}", tuple(float(c) for c in color)))
        return
    entry = (f"{s.name} (squares)", (0.3, 0.3, 0.3, 1.0))
    if entry not in frame.legend:
        frame.legend.append(entry)


def panel_frame(windows: list[SeriesWindow], name: str, x_range: tuple[float, float], log_y: bool,
                plot: tuple[int, int, int, int], size: tuple[int, int], xmaps: dict | None = None,
                x_axis: str = "iteration") -> tuple[View, Frame]:
    """One series' panel: the runs' windows on their own y axis (5 % padding), the curve's x range."""
    x0, x1 = x_range
    ext = extent(windows, x0, x1, log_y) or ((-1.0, 1.0) if log_y else (0.0, 1.0))
    lo, hi = ext
    pad = 0.05 * (hi - lo) if hi > lo else (0.5 if log_y else max(abs(hi) * 0.05, 1e-6))
    view = View(x0, x1, lo - pad, hi + pad, log_y, tuple(int(v) for v in plot), tuple(int(v) for v in size))
    frame = Frame(origin=(view.x0, view.y0), mode="series", title=name, x_axis=x_axis)
    frame.axis_titles, frame.font_size, frame.y_tick_px = False, 9, 30
    frame.texts.append((name + (" (log)" if log_y else ""), plot[0] + 4, plot[1] + plot[3] + 2, "lb", 10,
                        (40, 40, 40, 255), True, False))
    draw_series(frame, windows, view, on_curve=False, xmaps=xmaps)
    return view, frame
