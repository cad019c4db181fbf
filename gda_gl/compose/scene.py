"""What to draw for a view: one composition step from (runs, view state, layout) to (View, Frame). Compute only.

:func:`compose` is the one place that decides what is drawn.  It resolves the
view (x from the state, y fitted to what is visible), asks each run's
:class:`~recorder.window.RunWindows` for exactly the window it needs, and
returns the :class:`~gda_gl.compose.view.View` with a :class:`Frame`: flat arrays of
line segments, rectangles and markers relative to the view origin (float64
here, float32 on the GPU, so precision does not depend on how far out the
iterations are), plus the legend, epoch marks and colour range.  The renderer
draws a Frame and knows nothing of recordings or view states.

Per-frame work is bounded by pixels and visible rows, never by the run:

* zoomed out (at least :data:`recorder.pyramid.BASE_ROWS` rows per pixel
  column) a run is drawn from pyramid buckets at the level with one to four
  buckets per column, merged to one per column: the envelope of phi (min..max
  of every visible step), the classic curve phi_k(0), colour-by from each
  bucket's mean, highlight from its counts;
* in between, from the visible rows reduced the same way (each row a bucket
  of one);
* zoomed in (at most one row per two pixel columns) every step is its own arc
  (Becker et al. 2019): segment k draws phi_k over alpha in [0, taken] on x in
  [k, k+1]; segments are never joined, so a change of mini-batch shows as a
  jump; the part beyond the taken step dangles past k+1 in a lighter style;
  trial points are markers; batch changes are faint vertical rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recorder import pyramid, schema, stepgeom
from recorder.codec import Iterations

from .filters import FILTER_HELP, highlight_buckets, highlight_mask, parse_filter  # noqa: F401 (re-exported)
from . import manyruns, seriesview, xaxis
from .frame import Frame, Ids, Markers, Rects, Segments
from .rundata import RunData
from .marks import epochs_and_rules
from .smoothing import add_run_line, add_smoothed, ema  # noqa: F401 (ema re-exported)
from .state import ViewState, is_param_name
from .style import (CLASS_COLORS, FADE, LOOSE_COLOR, NONFINITE_COLOR, RULE_COLOR, RUN_COLORS,  # noqa: F401
                    TRIAL_COLOR, bucket_stat, stat_color_range, stat_colors)
from .view import View, transform_y
from .xaxis import AxisMap, AxisRange, IterRange

__all__ = ["RunData", "Frame", "compose", "build_frame", "fit_y_range", "runs_x_span", "resolve_x",
           "iterations_on_axis", "RUN_COLORS",
           "CLASS_COLORS", "stat_colors", "parse_filter", "stat_color_range", "highlight_mask", "highlight_buckets",
           "transform_y"]

#: rows in view per pixel column at most for drawing every step as its own arc
DETAIL_ROWS_PER_PX = 0.5
#: phi samples (rows x alphas) a frame reads at most to draw every step as its own arc
DETAIL_SAMPLES = 1 << 24
#: phi samples a zoomed-out frame reduces from rows at most; more come from the pyramid's finest level
OVERVIEW_ROW_SAMPLES = 1 << 22


@dataclass
class _Window:
    """What one run contributes to a frame: pyramid buckets or visible rows."""

    run: RunData
    index: int                      # the run's place in the list given to compose (picking ids)
    level: int | None
    recs: dict | None = None        # buckets (level >= 0) or rows as buckets of one (level None, overview)
    rows: Iterations | None = None  # visible rows (level None)
    u0: float = -math.inf           # the view's x range in this run's iterations
    u1: float = math.inf
    xmap: AxisMap | None = None     # iterations -> the x axis (None: the iteration axis itself)
    yscale: float = 1.0             # losses are drawn times this (1 / the run's first loss when normalised)
    line: bool = False              # many runs: drawn as one thin line (gda_gl.manyruns), no envelope
    color: np.ndarray | None = None  # the run's colour in this frame (its own, or from a hyperparameter)

    def visible_recs(self) -> dict:
        """The buckets (or rows as buckets) that overlap the view."""
        keep = _visible(self.recs, self.u0, self.u1)
        return {k: v[keep] for k, v in self.recs.items()}

    def alphas_of(self, d: Iterations) -> np.ndarray:
        return _alphas(self.run, d)

    def y(self, loss, log: bool) -> np.ndarray:
        """Losses of this run in display units (scaled when the view normalises runs)."""
        v = np.asarray(loss, np.float64)
        return transform_y(v if self.yscale == 1.0 else v * self.yscale, log)

    def x(self, u) -> np.ndarray:
        """Positions in iteration space (k + alpha / accepted) on the view's x axis."""
        return np.asarray(u, np.float64) if self.xmap is None else self.xmap.to_axis(u)


def _needed_stats(state: ViewState | None) -> set:
    """Statistics a frame reads from rows drawn as buckets: colour-by, the highlight's, the probe status."""
    need = {"status"}
    if state is None:
        return need
    if state.color_by not in (None, "none"):
        need.add(state.color_by)
    if state.highlight:
        kind, arg = parse_filter(state.highlight)
        need.add({"class": "step_class", "status": "status"}.get(kind) or arg[0])
    return need


def run_yscale(run: RunData) -> float:
    """1 / the run's first loss (the classic curve's first value), for views that normalise runs; 1 when
    that is not a positive finite number."""
    top = run.windows.summary()
    first = float(top["cl_first"][0]) if top is not None else float("nan")
    return 1.0 / first if math.isfinite(first) and first > 0 else 1.0


def _detail_flags(shown, counts, width_px: int, state: ViewState | None) -> list[bool]:
    """Which runs draw every step as an arc.  Few runs: all or none, as the rows of all fit the pixels.  Many
    runs (:mod:`gda_gl.compose.manyruns`): a run once each of its steps has ``ARC_PX_PER_STEP`` pixels;
    a focused run as soon as its rows fit the pixels."""
    samples = sum(c * len(r.alphas) for c, (_, r, _, _) in zip(counts, shown))
    fits = sum(counts) <= width_px * DETAIL_ROWS_PER_PX and samples <= DETAIL_SAMPLES
    if not manyruns.sweep_style(len(shown)):
        return [fits] * len(shown)
    return [samples <= DETAIL_SAMPLES and manyruns.arcs_fit(u1 - u0, width_px)
            or (manyruns.is_focused(state, r.name) and c <= width_px * DETAIL_ROWS_PER_PX
                and c * len(r.alphas) <= DETAIL_SAMPLES) for c, (_, r, u0, u1) in zip(counts, shown)]


def _gather(runs: list[RunData], x0: float, x1: float, width_px: int, state: ViewState | None = None
            ) -> tuple[list[_Window], str]:
    """Ask each run for the window it must draw; decide overview or detail per run (the frame's mode is
    "detail" when every run draws its arcs)."""
    axis = state.x_axis if state is not None else "iteration"
    shown = [(i, r, *r.to_iterations(axis, AxisRange(x0, x1))) for i, r in enumerate(runs) if r.visible and len(r)]
    counts = [r.windows.rows_in_range(u0 - r.reach, u1) for _, r, u0, u1 in shown]
    flags = _detail_flags(shown, counts, width_px, state)
    sweep = manyruns.sweep_style(len(shown))
    out = []
    for (i, r, u0, u1), count, detail in zip(shown, counts, flags):
        line = sweep and not detail and not manyruns.is_focused(state, r.name)
        w = _window(r, i, u0, u1, count, detail, width_px, state, sweep, line)
        w.line = line
        w.yscale = run_yscale(r) if state is not None and state.normalize else 1.0
        gmap = r.axis_map(axis)
        w.xmap = None if gmap is None else xaxis.window_map(r, axis, gmap, rows=w.rows if w.level is None else None,
                                                            recs=w.recs if w.level is not None else None)
        out.append(w)
    return out, "detail" if all(flags) else "overview"


def _window(r: RunData, i: int, u0: float, u1: float, count: int, detail: bool, width_px: int,
            state: ViewState | None, sweep: bool, line: bool = False) -> _Window:
    """One run's window: its rows (detail, or reduced to buckets of one) or pyramid buckets zoomed out (a run
    drawn as a line among many: the finest buckets once they are dense enough for its smoothed line, and only
    the fields a line needs, :func:`gda_gl.compose.manyruns.line_fields`)."""
    env = None
    if not detail:
        level = r.windows.choose_level(u0 - r.reach, u1, width_px, rows=count)
        if level is None and (count * len(r.alphas) > OVERVIEW_ROW_SAMPLES or
                              line and manyruns.buckets_suffice(count, width_px)):
            level = 0  # rows are reduced here only while their samples stay within budget
        if level is not None:
            env = r.windows.envelope(u0 - r.reach, u1, width_px, level=level, rows=count)
    if env is not None:
        recs = manyruns.line_fields(env.recs, _needed_stats(state)) if line else env.recs
        return _Window(r, i, env.level, recs, u0=u0, u1=u1, color=r.color)
    rows = r.rows_reaching(u0, u1)
    w = _Window(r, i, None, None, rows, u0=u0, u1=u1, color=r.color)
    if not detail:
        need = _needed_stats(state) | ({"train_loss"} if sweep else set())
        w.recs = manyruns.row_line_recs(_alphas(r, rows), rows) if line and need <= {"status", "train_loss"} else \
            pyramid.row_records(_alphas(r, rows), rows.columns, rows.phi, None, None, None, with_stats=need)
    return w


def _merge_columns(recs: dict, starts_x: np.ndarray, x0: float, x1: float, width_px: int) -> dict:
    """Merge buckets that start in the same pixel column (one rectangle per column at most); ``starts_x``
    are the buckets' starts on the view's x axis."""
    n = len(recs["rows"])
    if n <= 1:
        return recs
    col = np.floor((starts_x - x0) / max(x1 - x0, 1e-300) * width_px)
    col = np.clip(col, -1, width_px)
    starts = np.concatenate([[0], np.nonzero(np.diff(col))[0] + 1])
    if len(starts) == n:
        return recs
    ends = np.concatenate([starts[1:], [n]]) - 1
    reduce = {"first": lambda v: v[starts], "last": lambda v: v[ends], "min": lambda v: np.fmin.reduceat(v, starts),
              "max": lambda v: np.fmax.reduceat(v, starts)}
    out = {}
    for name, dt, op in pyramid.BUCKET_FIELDS:
        v = recs.get(name)
        if v is not None:
            out[name] = reduce[op](v) if op in reduce else np.add.reduceat(v, starts).astype(dt, copy=False)
    return out


def _visible(recs: dict, x0: float, x1: float) -> np.ndarray:
    """Buckets (or rows as buckets) that overlap [x0, x1]."""
    return (recs["last_it"] + 1 > x0) & (recs["first_it"] < x1)


def fit_y_range(windows: list[_Window], x0: float, x1: float, log: bool,
                extra: tuple[float, float] | None = None) -> tuple[float, float]:
    """y range (display units) fitted to what is visible in [x0, x1] and the ``extra`` extent, 5 % padding."""
    lo, hi = extra if extra is not None else (np.inf, -np.inf)
    for w in windows:
        if w.recs is not None:
            keep = _visible(w.recs, w.u0, w.u1)
            lo_f, hi_f = ("cl_lo", "cl_hi") if w.line else ("env_lo", "env_hi")  # a line: what it draws
            tl, th = w.y(w.recs[lo_f][keep], log), w.y(w.recs[hi_f][keep], log)
        else:
            d = w.rows
            if not len(d):
                continue
            classic = pyramid.classic_values(_alphas(w.run, d), d.phi, d["train_loss"])
            elo, ehi = pyramid.row_envelope(_alphas(w.run, d), d.phi, d["taken_alpha"].astype(np.float64), classic)
            keep = (d.iteration + 1 > w.u0) & (d.iteration < w.u1)
            tl, th = w.y(elo[keep], log), w.y(ehi[keep], log)
        tl, th = tl[np.isfinite(tl)], th[np.isfinite(th)]
        if len(tl):
            lo = min(lo, float(tl.min()))
        if len(th):
            hi = max(hi, float(th.max()))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return (-1.0, 1.0) if log else (0.0, 1.0)
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        pad = 0.5 if log else max(abs(hi) * 0.05, 1e-6)
        return lo - pad, hi + pad
    pad = 0.05 * (hi - lo)
    return lo - pad, hi + pad


def runs_x_span(runs: list[RunData], axis: str = "iteration") -> AxisRange:
    """The whole x extent on ``axis`` of the runs that hold rows (each run's [first iteration, last + 1] through
    its own map); (0, 1) for none."""
    spans = [r.axis_span(axis) for r in runs if len(r)]
    if not spans:
        return AxisRange(0.0, 1.0)
    lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
    return AxisRange(lo, hi if hi > lo else lo + 1.0)


def iterations_on_axis(runs: list[RunData], its: IterRange, axis: str) -> AxisRange:
    """Iterations ``its`` of every run with rows, on ``axis``: the union of each run's own mapping (runs with
    different batch sizes reach a step at different epochs)."""
    out = None
    for r in runs:
        if len(r) and getattr(r, "visible", True):
            out = r.to_axis(axis, its).union(out)
    return out if out is not None else AxisRange(float(its[0]), float(its[1]))


def resolve_x(runs: list[RunData], state: ViewState) -> AxisRange:
    """The x range (the axis's units) to draw: the state's, its open ends filled by the runs' extent, or the
    whole runs."""
    if state.x_range is not None:
        lo, hi = state.x_range
        if lo is None or hi is None:  # open ends (the command line's A: or :B) reach the runs' ends
            full = runs_x_span(runs, state.x_axis)
            lo, hi = full[0] if lo is None else lo, full[1] if hi is None else hi
        x0, x1 = float(lo), float(hi)
    elif state.iteration_range is not None:
        x0, x1 = iterations_on_axis(runs, IterRange(*state.iteration_range), state.x_axis)
    else:
        x0, x1 = runs_x_span(runs, state.x_axis)
    if not (math.isfinite(x0) and math.isfinite(x1)):
        x0, x1 = 0.0, 1.0
    if x1 <= x0:
        x1 = x0 + 1.0
    return AxisRange(x0, x1)


def _resolve_y(wins, state: ViewState, x0: float, x1: float, extra: tuple[float, float] | None = None
               ) -> tuple[float, float]:
    """The state's y range, or one fitted to the visible windows and ``extra`` (display units, e.g. series)."""
    if state.y_range is not None:
        y0, y1 = (float(v) for v in transform_y(np.asarray(state.y_range, np.float64), state.log_y))
        if math.isfinite(y0) and math.isfinite(y1) and y1 > y0:
            return y0, y1
    return fit_y_range(wins, x0, x1, state.log_y, extra)


def compose(runs: list[RunData], state: ViewState, plot: tuple[int, int, int, int], size: tuple[int, int]
            ) -> tuple[View, Frame]:
    """The one composition step: what to draw for ``state`` on a plot rectangle of a canvas.

    Parameters
    ----------
    runs : the runs (invisible ones are skipped; picking ids index this list)
    state : the view state (x range, filters, colour-by, ...)
    plot : (x, y, w, h) of the plot rectangle in pixels (origin bottom-left)
    size : canvas size in pixels

    Returns
    -------
    (View, Frame): the view drawn and everything in it: the curve's batches, the owner lines of far
    loose ends, the highlight rug, the runs' x span.
    """
    for r in runs:
        why = xaxis.unavailable(r, state.x_axis) if r.visible else None
        if why:
            raise ValueError(f"x axis {state.x_axis}: {why}")
    x0, x1 = resolve_x(runs, state)
    width_px = max(1, int(plot[2]))
    wins, mode = _gather(runs, x0, x1, width_px, state)
    on_curve, _ = seriesview.plan(runs, state)
    swins = seriesview.read_windows(runs, on_curve, x0, x1, width_px, state.x_axis) if on_curve else []
    ysc = {w.index: w.yscale for w in wins if w.yscale != 1.0}
    y0, y1 = _resolve_y(wins, state, x0, x1, seriesview.extent(swins, x0, x1, bool(state.log_y), ysc))
    iters = [None] * len(runs)
    for w in wins:
        iters[w.index] = IterRange(w.u0, w.u1)
    view = View(x0, x1, y0, y1, bool(state.log_y), tuple(int(v) for v in plot), tuple(int(v) for v in size),
                axis=state.x_axis, iterations=tuple(iters))
    frame = build_frame(wins, mode, state, view)
    frame.x_axis = state.x_axis
    frame.y_title = "loss / the run's first loss" if state.normalize else "loss"
    frame.xmaps = {w.index: w.xmap for w in wins if w.xmap is not None}
    yscales = {w.index: w.yscale for w in wins if w.yscale != 1.0}
    seriesview.draw_series(frame, swins, view, on_curve=True, xmaps=frame.xmaps, yscales=yscales,
                           colors={w.index: w.color for w in wins if w.color is not w.run.color})
    frame.x_span = runs_x_span(runs, state.x_axis)
    return view, frame


def build_frame(wins: list[_Window], mode: str, state: ViewState, view: View) -> Frame:
    """Primitives for ``view`` from the gathered windows."""
    x0, x1, y0 = view.x0, view.x1, view.y0
    width_px = max(1, view.plot[2])
    frame = Frame(origin=(x0, y0), mode=mode)
    frame.runs = len(wins)
    frame.title = " vs ".join(w.run.name for w in wins) if not manyruns.sweep_style(len(wins)) else f"{len(wins)} runs"
    color_by = state.color_by if state.color_by not in (None, "none") else None
    if color_by and is_param_name(color_by):
        frame.color_scale = _color_runs_by(wins, color_by)
        frame.title += f", coloured by {frame.color_scale.name}"
        color_by = None
    frame.legend = [(w.run.name, w.color) for w in wins]
    frame.color_by = color_by
    # merge per pixel column first: colour range and highlight counts then see what is drawn
    for w in wins:
        if w.recs is not None:
            w.recs = _merge_columns(w.recs, w.x(w.recs["first_it"]), x0, x1, width_px)
        frame.levels[w.run.name] = w.level
    if color_by:
        frame.stat_range = stat_color_range(color_by, [_window_stat(w, color_by, x0, x1) for w in wins])
    counts, exact, rug = [], True, []
    for w in wins:
        if w.recs is not None:
            c, ex, cols = _overview(frame, w, state, view, color_by)
        else:
            c, ex, cols = _detail(frame, w, state, view, color_by)
        if c is not None:
            counts.append(c)
            exact &= ex
            rug.append(cols)
        epochs_and_rules(frame, w, state, view, width_px)
        if w.line:
            add_run_line(frame, w, state, view, w.color)
        elif state.smoothing > 0:
            add_smoothed(frame, w, state, view)
    if state.highlight:
        frame.match_count, frame.match_exact = sum(counts), exact
        frame.rug = np.unique(np.concatenate(rug)) if rug else np.empty(0, np.int64)
    return frame


def _color_runs_by(wins: list[_Window], name: str):
    """Give each window the colour of its run's hyperparameter ``name`` (:mod:`gda_gl.compose.runcolor`); the scale."""
    from .runcolor import param_colors, param_key, param_scale

    key = param_key(name)
    values = [w.run.params.get(key) for w in wins]
    scale = param_scale(key, values)
    for w, c in zip(wins, param_colors(values, scale)):
        w.color = c
    return scale


def _window_stat(w: _Window, name: str, x0: float, x1: float) -> np.ndarray:
    """The values of statistic ``name`` a window draws (bucket means zoomed out)."""
    if w.recs is not None:
        return bucket_stat(w.recs, name)[_visible(w.recs, w.u0, w.u1)]
    if w.rows is not None and len(w.rows):
        return w.rows[name].astype(np.float64)
    return np.empty(0)


def _rug_columns(w: _Window, first: np.ndarray, last: np.ndarray, view: View) -> np.ndarray:
    """Pixel columns (from the plot's left edge) of the middles of matching steps or buckets in view."""
    mid = w.x(0.5 * (np.asarray(first, np.float64) + np.asarray(last, np.float64) + 1.0))
    cols = np.floor((mid - view.x0) / (view.x1 - view.x0) * view.plot[2])
    cols = cols[(cols >= 0) & (cols < view.plot[2])]
    return np.unique(cols.astype(np.int64))


def _run_colors(w: _Window, values_of, color_by, frame: Frame, n: int) -> np.ndarray:
    """RGBA per row or bucket: the colour-by statistic's colours, else the run's colour."""
    if color_by:
        return stat_colors(values_of(color_by), color_by, frame.stat_range)
    return np.broadcast_to(w.color, (n, 4)).copy()


def _overview(frame: Frame, w: _Window, state: ViewState, view: View, color_by):
    """Buckets as envelope and classic-curve rectangles; returns (match count, exact, rug columns)."""
    recs = w.recs
    x0, oy = view.x0, view.y0
    keep = _visible(recs, w.u0, w.u1)
    recs = {k: v[keep] for k, v in recs.items()}
    xs0 = w.x(recs["first_it"].astype(np.float64)) - x0
    xs1 = w.x(recs["last_it"].astype(np.float64) + 1.0) - x0
    lo, hi = w.y(recs["env_lo"], state.log_y), w.y(recs["env_hi"], state.log_y)
    colors = _run_colors(w, lambda name: bucket_stat(recs, name), color_by, frame, len(xs0))
    match, count, exact = highlight_buckets(recs, state.highlight)
    if match is not None:
        colors[~match, 3] *= FADE
    ids = Ids.buckets(w.index, recs["first_it"], recs["last_it"])
    ok = np.isfinite(lo) & np.isfinite(hi)
    if state.show_envelope and not w.line:
        c = colors[ok].copy()
        c[:, 3] *= 0.40
        frame.add(Rects("envelope", np.stack([xs0, lo - oy, xs1, hi - oy], axis=1)[ok], c, _take(ids, ok)))
    clo, chi = w.y(recs["cl_lo"], state.log_y), w.y(recs["cl_hi"], state.log_y)
    clast = w.y(recs["cl_last"], state.log_y)
    if len(xs0) > 1:  # join each bucket to the previous one's last value so the curve reads as a line
        clo[1:] = np.fmin(clo[1:], clast[:-1])
        chi[1:] = np.fmax(chi[1:], clast[:-1])
    okc = np.isfinite(clo) & np.isfinite(chi)
    if color_by and frame.runs > 1:  # the classic curve keeps its run's colour: runs stay apart
        colors = _run_colors(w, None, None, frame, len(xs0))
        if match is not None:
            colors[~match, 3] *= FADE
    if not w.line:
        frame.add(Rects("classic", np.stack([xs0, clo - oy, xs1, chi - oy], axis=1)[okc], colors[okc],
                        _take(ids, okc)))
    nf = recs[f"status:{schema.STATUS_NONFINITE}"] > 0  # one flag per bucket holding a non-finite probe
    frame.add(Markers("flags", np.stack([0.5 * (xs0 + xs1)[nf], np.full(int(nf.sum()), np.nan)], axis=1),
                      NONFINITE_COLOR, 7.0, 2.0))
    rug = _rug_columns(w, recs["first_it"][match], recs["last_it"][match], view) if match is not None else None
    return count, exact, rug


def _take(ids: Ids, sel: np.ndarray) -> Ids:
    return Ids(ids.run[sel], ids.first[sel], ids.last[sel], ids.a0[sel], ids.a1[sel])


def _detail(frame: Frame, w: _Window, state: ViewState, view: View, color_by):
    """Every step as its own arc (plus the part beyond it, trial points, owner lines, flags)."""
    d = w.rows
    if d is None or not len(d):
        return (0 if state.highlight else None), True, np.empty(0, np.int64)
    it = d.iteration.astype(np.float64)
    t = stepgeom.accepted_alpha(d["taken_alpha"])
    if d.row_alphas is None:  # one grid: thinned to the pixels when it is dense
        cols = drawn_columns(w.run.alphas, t, view.px_per_x)
        a, phi = w.run.alphas[cols][None, :], d.phi[:, cols]
    else:  # each step its own alphas (an adaptive probe: a few each; NaN past a step's last)
        a, phi = d.row_alphas, d.phi
    fade = highlight_mask(d, state.highlight)
    X = w.x(stepgeom.arc_x(it[:, None], a, t[:, None])) - view.x0
    Y = w.y(phi, state.log_y) - view.y0
    colors = _run_colors(w, lambda name: d[name].astype(np.float64), color_by, frame, len(d))
    if fade is not None:
        colors[~fade, 3] *= FADE
    if a.shape[1] >= 2:
        _arcs(frame, w, d, np.broadcast_to(a, X.shape), X, Y, colors, stepgeom.within(a[:, 1:], t[:, None]),
              state.show_loose)
    every = d.alphas_of_rows()
    rows, ks = np.nonzero(~np.isfinite(d.phi) & np.isfinite(every) & (d["status"] != schema.STATUS_SKIPPED)[:, None])
    fx = w.x(stepgeom.arc_x(it[rows], every[rows, ks], t[rows])) - view.x0  # every non-finite sample, drawn or not
    frame.add(Markers("flags", np.stack([fx, np.full(len(fx), np.nan)], axis=1), NONFINITE_COLOR, 7.0, 2.0))
    if state.show_trials:
        _trials(frame, w, d, t, fade, state, view)
    if fade is None:
        return None, True, None
    vis = (d.iteration + 1 > w.u0) & (d.iteration < w.u1)
    return int(np.count_nonzero(fade & vis)), True, _rug_columns(w, d.iteration[fade], d.iteration[fade], view)


#: samples drawn per pixel of a step's width at least; denser alpha grids are thinned to this (issue: 65,536 alphas)
SAMPLES_PER_PX = 4


def drawn_columns(alphas: np.ndarray, accepted: np.ndarray, px_per_step: float) -> np.ndarray:
    """Indices of the grid alphas to draw: all of them, or an even thinning to about :data:`SAMPLES_PER_PX`
    samples per pixel of the widest arc, keeping the first, the last and each accepted step's end sample.

    Bounds a frame's work along alpha by pixels (a row's arc spans ``alphas.max() / accepted`` steps).
    """
    k = len(alphas)
    reach = float(np.max(alphas)) / float(np.min(accepted)) if k and len(accepted) else 1.0
    limit = max(64, int(math.ceil(SAMPLES_PER_PX * max(px_per_step, 1.0) * max(reach, 1.0))))
    if k <= limit:
        return np.arange(k)
    ends = [stepgeom.grid_columns_within(alphas, t) - 1 for t in np.unique(accepted)[:256]]
    return np.unique(np.concatenate([np.linspace(0, k - 1, limit).round().astype(np.int64), ends]))


def _alphas(run: RunData, d: Iterations) -> np.ndarray:
    """The alphas of rows ``d``: their own (n, K) when the recording keeps a grid per step, else the run's grid."""
    return d.row_alphas if d.row_alphas is not None else run.alphas


def _arcs(frame: Frame, w: _Window, d: Iterations, a: np.ndarray, X, Y, colors, main, show_beyond: bool) -> None:
    """The arcs (alpha within the step) and, when shown, the lighter part beyond the step; ``a`` holds the
    (n, K) alphas of X's points."""
    n, k = X.shape
    fin = np.isfinite(Y) & np.isfinite(X)  # a step with fewer points than the grid: NaN alphas past its last
    pair_ok = fin[:, :-1] & fin[:, 1:]
    p0 = np.stack([X[:, :-1], Y[:, :-1]], axis=2)
    p1 = np.stack([X[:, 1:], Y[:, 1:]], axis=2)
    rowc = np.broadcast_to(colors[:, None, :], (n, k - 1, 4))
    its = np.broadcast_to(d.iteration[:, None], (n, k - 1))
    a0, a1 = a[:, :-1], a[:, 1:]
    for kind, sel, alpha_scale in (("arcs", pair_ok & main, 1.0), ("beyond", pair_ok & ~main, 0.35)):
        if kind == "beyond" and not show_beyond:
            continue
        c = rowc[sel].copy()
        c[:, 3] *= alpha_scale
        frame.add(Segments(kind, p0[sel], p1[sel], c, Ids.steps(w.index, its[sel], a0[sel], a1[sel])))


def _trials(frame: Frame, w: _Window, d: Iterations, t: np.ndarray, fade, state: ViewState, view: View) -> None:
    """Line-search trial points (loose ends as orange triangles) and owner lines of far loose ends."""
    off = d.trial_offsets
    if off[-1] <= off[0]:
        return
    rows = np.repeat(np.arange(len(d)), np.diff(off))
    alpha = np.asarray(d.trials["alpha"], np.float64)
    it = d.iteration.astype(np.float64)
    tx = w.x(stepgeom.arc_x(it[rows], alpha, t[rows])) - view.x0
    ty = w.y(d.trials["loss"], state.log_y) - view.y0
    ok = np.isfinite(tx) & np.isfinite(ty)
    loose = stepgeom.loose_mask(alpha, rows, t)
    col = np.where(loose[:, None], np.asarray(LOOSE_COLOR, np.float32), np.asarray(TRIAL_COLOR, np.float32))
    if fade is not None:
        col[~fade[rows], 3] *= FADE
    frame.add(Markers("trials", np.stack([tx, ty], axis=1)[ok], col[ok], 6.0, np.where(loose, 2.0, 0.0)[ok]))
    _owner_lines(frame, w, d, rows[ok], alpha[ok], ty[ok], t, state, view)


def _owner_lines(frame: Frame, w: _Window, d: Iterations, rows, alpha, ty, t, state: ViewState, view: View) -> None:
    """Lines from the end of a step's drawn arc to its loose ends beyond the alpha grid.

    Such a trial point sits at x = k + alpha / taken, possibly over a neighbouring step; its line starts
    at the last grid point when the part beyond the step is shown, else at the accepted step (k + 1).
    Only steps that start in the view get lines (a step left of the view would cross the whole plot).
    """
    every = np.broadcast_to(d.alphas_of_rows(), d.phi.shape)
    if every.shape[1] == 0:
        return
    with np.errstate(invalid="ignore"):
        amax = np.nan_to_num(np.nanmax(np.where(np.isfinite(every), every, -np.inf), axis=1), neginf=1.0)
    far = stepgeom.beyond(alpha, amax[rows]) & stepgeom.beyond(alpha, t[rows])
    it = d.iteration[rows].astype(np.float64)
    far &= (it >= math.floor(w.u0)) & (it <= w.u1)
    if not far.any():
        return
    rows, alpha, ty, it = rows[far], alpha[far], ty[far], it[far]
    a_end = amax[rows] if state.show_loose else t[rows]
    end_y = np.array([_phi_on_arc(every[r], d.phi[r], ae) for r, ae in zip(rows, a_end)])
    ey = w.y(end_y, state.log_y) - view.y0
    ok = np.isfinite(ey)
    p0 = np.stack([w.x(stepgeom.arc_x(it, a_end, t[rows])) - view.x0, ey], axis=1)[ok]
    p1 = np.stack([w.x(stepgeom.arc_x(it, alpha, t[rows])) - view.x0, ty], axis=1)[ok]
    frame.add(Segments("owner", p0, p1, LOOSE_COLOR[:3] + (0.6,),
                       Ids.steps(w.index, d.iteration[rows][ok], a_end[ok], alpha[ok])))


def _phi_on_arc(alphas: np.ndarray, phi: np.ndarray, alpha: float) -> float:
    """phi of one step's polyline at ``alpha`` (NaN unless every measured sample is finite)."""
    have = np.isfinite(alphas)
    a, p = alphas[have], np.asarray(phi, np.float64)[have]
    return float(np.interp(alpha, a, p)) if len(a) and np.isfinite(p).all() else math.nan
