"""Figures of ``gda-gl compare``: many runs side by side, and a statistic against a hyperparameter.

* :func:`draw_runs` chooses the layout by the number of runs: up to :data:`STACK_MAX` runs are
  stacked in full-width bands sharing the x axis (each its own y); more (a sweep of 30-100 runs) are a
  grid of small multiples, each cell a compact curve of one run with its name, all with the same x
  range and each with its own y range, so every run stays readable.
* :func:`draw_scatter` draws one comparison statistic (``loose ends / 100 it``, ``overshoot share``, ...)
  against one numeric hyperparameter (``lr``, ``config.batch_size``, ...): the paper's hyperparameter
  analysis.  A parameter spanning more than :data:`LOG_DECADES` decades is placed on a log10 axis.

Both compose Frames and draw them with the one renderer (:class:`~gda_gl.gl.render.CurveRenderer`).
"""

from __future__ import annotations

import math

import numpy as np

from gda_gl.compose.frame import Frame, Markers
from gda_gl.compose.layout import Layout
from gda_gl.compose.runcolor import LOG_DECADES  # noqa: F401 (re-exported: declared once, in runcolor)
from gda_gl.compose.scene import compose
from gda_gl.compose.state import ViewState
from gda_gl.compose.textlayer import TextLayer
from gda_gl.compose.view import View

from .render import CurveRenderer

__all__ = ["draw_runs", "draw_stacked", "draw_scatter", "grid_shape", "shared_x_range", "STACK_MAX", "LOG_DECADES"]

#: at most this many runs are stacked in bands; more are drawn as a grid of small multiples
STACK_MAX = 6


def grid_shape(n: int, width: int, height: int) -> tuple[int, int]:
    """(columns, rows) of a grid of ``n`` cells about 1.6 times as wide as high."""
    cols = max(1, min(n, round(math.sqrt(n * width / max(height, 1) / 1.6))))
    return cols, -(-n // cols)


def shared_x_range(runs, state: ViewState) -> tuple[float, float]:
    """The state's x range, its open ends filled with the runs' whole extent."""
    lo, hi = state.x_range if state.x_range is not None else (None, None)
    return (min(r.x_span[0] for r in runs) if lo is None else lo, max(r.x_span[1] for r in runs) if hi is None else hi)


def draw_stacked(runs, state: ViewState, size: tuple[int, int], renderer: CurveRenderer,
                 shared_y: bool = False) -> None:
    """One full-width band per run, top to bottom, all over the same x range (each its own y, or one)."""
    w, h = size
    band = h // len(runs)
    st = _state_for(state, shared_x_range(runs, state))
    lays = []
    for i in range(len(runs)):
        lay = Layout.for_size(w, band, colorbar=st.color_by != "none")
        lay.origin = (0, h - (i + 1) * band)
        lays.append(lay)
    if shared_y and st.y_range is None:
        st.y_range = shared_y_range(runs, st, lays[0])
    for run, lay in zip(runs, lays):
        renderer.draw([run], st, lay, title=run.name)


def _state_for(state: ViewState, x_range) -> ViewState:
    """A copy of ``state`` over ``x_range``; its y range kept only when typed (``--ylim``), else fitted per cell."""
    st = ViewState(**{k: v for k, v in vars(state).items() if not k.startswith("_")})
    st.x_range = x_range
    return st


#: pixels of the grid's top strip (the figure's title) and bottom strip (the x axis title)
GRID_TITLE_PX, GRID_XTITLE_PX = 24, 20


def cell_label(text: TextLayer, label: str, width: float, size: int = 9) -> tuple[str, int]:
    """A cell's label fitted to ``width`` px: the font shrinks down to 7 px first, then the end is cut."""
    from .render import _clip_text

    for fs in range(size, 6, -1):
        if text.text_width(label, fs) <= width:
            return label, fs
    return _clip_text(text, label, width, 7), 7


def shared_y_range(runs, st: ViewState, lay: Layout) -> tuple[float, float] | None:
    """One y range (data units) over every run's fitted range, for small multiples with a shared y axis."""
    lo, hi = math.inf, -math.inf
    for run in runs:
        view, _ = compose([run], st, lay.plot, (lay.width, lay.height))
        lo, hi = min(lo, view.y0), max(hi, view.y1)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        return None
    return (10.0 ** lo, 10.0 ** hi) if st.log_y else (lo, hi)


def draw_runs(runs, state: ViewState, size: tuple[int, int], names: list[str],
              renderer: CurveRenderer | None = None, shared_y: bool = False) -> None:
    """Draw the runs stacked (few) or as a grid of small multiples (many), all over the same x range.

    ``names`` label the cells (the caller passes the hyperparameters that tell runs apart when they
    have them); ``shared_y``: every cell over the same y range (else each fitted to its run).
    """
    renderer = renderer or CurveRenderer()
    if len(runs) <= STACK_MAX:
        draw_stacked(runs, state, size, renderer, shared_y=shared_y)
        return
    w, h = size
    cols, rows = grid_shape(len(runs), w, h - GRID_TITLE_PX - GRID_XTITLE_PX)
    cw, ch = w // cols, (h - GRID_TITLE_PX - GRID_XTITLE_PX) // rows
    st = _state_for(state, shared_x_range(runs, state))
    text = TextLayer(w, h)
    places = [divmod(i, cols) for i in range(len(runs))]
    cells = [Layout(cw, ch, left=46, right=6, bottom=22, top=16, origin=(c * cw, h - GRID_TITLE_PX - (r + 1) * ch))
             for r, c in places]
    renderer.clear_canvas(size)  # the title strips are outside every cell
    if shared_y and cells and st.y_range is None:
        st.y_range = shared_y_range(runs, st, cells[0])
    for run, name, lay in zip(runs, names, cells):
        view, frame = compose([run], st, lay.plot, (lay.width, lay.height))
        frame.axis_titles, frame.font_size, frame.x_tick_px, frame.y_tick_px = False, 8, 80, 26
        frame.legend = []  # the cell's label names its run
        label, fs = cell_label(text, name, lay.width - lay.left - 4)
        frame.texts.append((label, lay.left, lay.height - 3, "lt", fs,
                            tuple(int(255 * v) for v in run.color[:3]) + (255,), True, False))
        renderer.draw_frame(view, frame, lay)
    _grid_titles(renderer, runs, st, size, shared_y)


def _grid_titles(renderer: CurveRenderer, runs, st: ViewState, size: tuple[int, int], shared_y: bool) -> None:
    """The grid's title (the run count and how y is scaled) and its x and y axis titles, in the strips."""
    from gda_gl.compose.xaxis import AXIS_TITLES

    w, h = size
    ink = (30, 30, 30, 255)
    y_what = "loss / the run's first loss" if st.normalize else "loss"
    y_what += " (log)" if st.log_y else ""
    title = f"{len(runs)} runs, {y_what}, {'one y axis for all' if shared_y else 'each run its own y axis'}"
    items = [(title, w / 2, h - 5, "mt", 13, ink, True, False),
             (AXIS_TITLES.get(st.x_axis, st.x_axis), w / 2, 3, "mb", 11, ink, False, False)]
    renderer.draw_texts(items, size)


def _numbers(values: list, what: str) -> np.ndarray:
    """Values as floats, or ValueError naming the first that is not a number."""
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{what} is not a number in every run (one run has {str(v)[:40]!r})")
        out.append(float(v))
    return np.asarray(out, np.float64)


def _padded(v: np.ndarray) -> tuple[float, float]:
    fin = v[np.isfinite(v)]
    if not len(fin):
        return 0.0, 1.0
    lo, hi = float(fin.min()), float(fin.max())
    pad = 0.08 * (hi - lo) if hi > lo else max(abs(hi) * 0.1, 0.5)
    return lo - pad, hi + pad


def _point_labels(frame: Frame, xd, y, names, ok, lay: Layout, rng) -> None:
    """Each run's name beside its point where it overlaps no other label or point (:mod:`gda_gl.compose.labelplace`)."""
    from gda_gl.compose.labelplace import place_labels

    x0, x1, y0, y1 = rng
    px, py, pw, ph = lay.plot
    text = TextLayer(lay.width, lay.height)
    idx = [i for i in range(len(names)) if ok[i]]
    pts = [(px + (xd[i] - x0) / (x1 - x0) * pw, py + (y[i] - y0) / (y1 - y0) * ph) for i in idx]
    labels = [names[i][:40] for i in idx]
    sizes = [(text.text_width(s, 9), 12.0) for s in labels]
    for label, spot in zip(labels, place_labels(pts, sizes, (px, py, px + pw, py + ph))):
        if spot is not None:
            frame.texts.append((label, spot[0], spot[1], spot[2], 9, (30, 30, 30, 255), False, False))


def draw_scatter(stat_values: list, param_values: list, names: list[str], colors, stat: str, param: str,
                 size: tuple[int, int], renderer: CurveRenderer | None = None) -> View:
    """One point per run: ``stat`` (y) against the hyperparameter ``param`` (x), each point named.

    Raises
    ------
    ValueError : ``param`` or ``stat`` is not a number in every run
    """
    x = _numbers(param_values, param)
    y = _numbers(stat_values, stat)
    log_x = bool(np.all(x > 0) and np.log10(x.max() / x.min()) > LOG_DECADES)
    xd = np.log10(x) if log_x else x
    lay = Layout.for_size(*size, colorbar=False)
    (x0, x1), (y0, y1) = _padded(xd), _padded(y)
    view = View(x0, x1, y0, y1, False, lay.plot, (lay.width, lay.height))
    frame = Frame(origin=(x0, y0), mode="scatter", title=f"{stat} against {param}")
    frame.axis_titles = False
    ok = np.isfinite(xd) & np.isfinite(y)
    frame.add(Markers("series_marks", np.stack([xd - x0, y - y0], axis=1)[ok], np.asarray(colors, np.float32)[ok],
                      9.0, 0.0))
    _point_labels(frame, xd, y, names, ok, lay, (x0, x1, y0, y1))
    grey = (30, 30, 30, 255)
    px, py, pw, ph = lay.plot
    frame.log_x = log_x  # ticks in the parameter's units (0.001, 0.01, ...), placed on log10 positions
    frame.texts.append((f"{param} (log scale)" if log_x else param, px + pw / 2, 6, "mb", 12, grey, False, False))
    frame.texts.append((stat, 12, py + ph / 2, "mm", 12, grey, False, True))
    frame.texts.append((frame.title, lay.width / 2, lay.height - 8, "mt", 13, grey, True, False))
    (renderer or CurveRenderer()).draw_frame(view, frame, lay)
    return view
