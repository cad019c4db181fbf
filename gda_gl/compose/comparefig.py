"""The figures of ``gda-gl compare``, composed: many runs side by side, a statistic against a hyperparameter.

* :func:`stacked_bands` / :func:`grid_cells`: up to :data:`STACK_MAX` runs are stacked in full-width
  bands sharing the x axis (each its own y); more (a sweep of 30-100 runs) are a grid of small multiples,
  each cell a compact curve of one run with its name, all over the same x range, each with its own y
  range (or, ``shared_y``, one y range over all runs: :func:`shared_y_range`), so every run stays
  readable; a grid has a title strip (run count, how y is scaled) and an x axis title
  (:func:`grid_titles`), and each cell's label (the hyperparameters that tell runs apart) is fitted
  to the cell.  The shared x range is on the view's x axis (:func:`shared_x_range`: each run's whole
  extent through its own map), never in iterations read as another axis's units.
* :func:`compose_scatter`: one comparison statistic (``loose ends / 100 it``, ``overshoot share``, ...)
  against one numeric hyperparameter (``lr``, ``config.batch_size``, ...): the paper's hyperparameter
  analysis.  A parameter spanning more than :data:`LOG_DECADES` decades is placed on a log10 axis
  ticked in the parameter's units (0.001, 0.01, ...); point labels never overlap
  (:mod:`gda_gl.compose.labelplace`).

Compute only: :mod:`gda_gl.gl.comparefig` draws what these return.
"""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np

from .frame import Frame, Markers
from .layout import Layout
from .runcolor import LOG_DECADES
from .scene import compose, resolve_x
from .state import ViewState
from .textlayer import TextLayer
from .view import View
from .xaxis import AXIS_TITLES, AxisRange

__all__ = ["stacked_bands", "grid_cells", "grid_titles", "compose_scatter", "grid_shape", "shared_x_range",
           "shared_y_range", "cell_label", "STACK_MAX", "LOG_DECADES", "GRID_TITLE_PX", "GRID_XTITLE_PX"]

#: at most this many runs are stacked in bands; more are drawn as a grid of small multiples
STACK_MAX = 6
#: pixels of a grid's top strip (the figure's title) and bottom strip (the x axis title)
GRID_TITLE_PX, GRID_XTITLE_PX = 24, 20


def grid_shape(n: int, width: int, height: int) -> tuple[int, int]:
    """(columns, rows) of a grid of ``n`` cells about 1.6 times as wide as high."""
    cols = max(1, min(n, round(math.sqrt(n * width / max(height, 1) / 1.6))))
    return cols, -(-n // cols)


def shared_x_range(runs, state: ViewState) -> AxisRange:
    """The state's x range on its axis, its open ends filled with the runs' whole extent on that axis."""
    return resolve_x(runs, state)


def _state_for(state: ViewState, x_range) -> ViewState:
    """A copy of ``state`` over ``x_range``; its y range kept (a typed ``--ylim``): the caller clears it to fit."""
    st = ViewState(**{f.name: getattr(state, f.name) for f in fields(state) if not f.name.startswith("_")})
    st.x_range = tuple(x_range)
    return st


def shared_y_range(runs, st: ViewState, lay: Layout) -> tuple[float, float] | None:
    """One y range (data units) over every run's fitted range, for bands or cells with a shared y axis."""
    lo, hi = math.inf, -math.inf
    for run in runs:
        view, _ = compose([run], st, lay.plot, (lay.width, lay.height))
        lo, hi = min(lo, view.y0), max(hi, view.y1)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        return None
    return (10.0 ** lo, 10.0 ** hi) if st.log_y else (lo, hi)


def cell_label(text: TextLayer, label: str, width: float, size: int = 9) -> tuple[str, int]:
    """A cell's label fitted to ``width`` px: the font shrinks down to 7 px first, then the end is cut."""
    for fs in range(size, 6, -1):
        if text.text_width(label, fs, True) <= width:
            return label, fs
    while len(label) > 1 and text.text_width(label + "...", 7, True) > width:
        label = label[:-1]
    return label + "...", 7


def stacked_bands(runs, state: ViewState, size: tuple[int, int], shared_y: bool = False
                  ) -> list[tuple[object, ViewState, Layout]]:
    """(run, state, layout) of each full-width band, top to bottom, all over the same x range (each its own y,
    or ``shared_y`` one for all)."""
    w, h = size
    band = h // len(runs)
    st = _state_for(state, shared_x_range(runs, state))
    out = []
    for i, run in enumerate(runs):
        lay = Layout.for_size(w, band, colorbar=st.color_by != "none")
        lay.origin = (0, h - (i + 1) * band)
        out.append((run, st, lay))
    if shared_y and out and st.y_range is None:
        st.y_range = shared_y_range(runs, st, out[0][2])
    return out


def grid_cells(runs, state: ViewState, size: tuple[int, int], names: list[str], shared_y: bool = False
               ) -> list[tuple[View, Frame, Layout]]:
    """(View, Frame, layout) of each small multiple of a grid, all over the same x range, below the title strip
    and above the x title strip (:func:`grid_titles`); ``names`` label the cells."""
    w, h = size
    body = h - GRID_TITLE_PX - GRID_XTITLE_PX
    cols, rows = grid_shape(len(runs), w, body)
    cw, ch = w // cols, body // rows
    st = _state_for(state, shared_x_range(runs, state))
    lays = [Layout(cw, ch, left=46, right=6, bottom=22, top=16, origin=(c * cw, h - GRID_TITLE_PX - (r + 1) * ch))
            for r, c in (divmod(i, cols) for i in range(len(runs)))]
    if shared_y and lays and st.y_range is None:
        st.y_range = shared_y_range(runs, st, lays[0])
    text = TextLayer(1, 1)
    out = []
    for run, name, lay in zip(runs, names, lays):
        view, frame = compose([run], st, lay.plot, (lay.width, lay.height))
        frame.axis_titles, frame.font_size, frame.x_tick_px, frame.y_tick_px = False, 8, 80, 26
        frame.legend = []  # the cell's label names its run
        label, fs = cell_label(text, name, lay.width - lay.left - 4)
        frame.texts.append((label, lay.left, lay.height - 3, "lt", fs,
                            tuple(int(255 * v) for v in run.color[:3]) + (255,), True, False))
        out.append((view, frame, lay))
    return out


def grid_titles(runs, state: ViewState, size: tuple[int, int], shared_y: bool) -> list[tuple]:
    """Text items over a whole grid: its title (the run count, the loss scale, how y is shared) in the top strip,
    the x axis title in the bottom strip."""
    w, h = size
    ink = (30, 30, 30, 255)
    y_what = ("loss / the run's first loss" if state.normalize else "loss") + (" (log)" if state.log_y else "")
    title = f"{len(runs)} runs, {y_what}, {'one y axis for all' if shared_y else 'each run its own y axis'}"
    return [(title, w / 2, h - 5, "mt", 13, ink, True, False),
            (AXIS_TITLES.get(state.x_axis, state.x_axis), w / 2, 3, "mb", 11, ink, False, False)]


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
    """Each run's name beside its point where it overlaps no other label or point (:mod:`.labelplace`)."""
    from .labelplace import place_labels

    x0, x1, y0, y1 = rng
    px, py, pw, ph = lay.plot
    text = TextLayer(1, 1)
    idx = [i for i in range(len(names)) if ok[i]]
    pts = [(px + (xd[i] - x0) / (x1 - x0) * pw, py + (y[i] - y0) / (y1 - y0) * ph) for i in idx]
    labels = [names[i][:40] for i in idx]
    sizes = [(text.text_width(s, 9), 12.0) for s in labels]
    for label, spot in zip(labels, place_labels(pts, sizes, (px, py, px + pw, py + ph))):
        if spot is not None:
            frame.texts.append((label, spot[0], spot[1], spot[2], 9, (30, 30, 30, 255), False, False))


def compose_scatter(stat_values: list, param_values: list, names: list[str], colors, stat: str, param: str,
                    size: tuple[int, int]) -> tuple[View, Frame, Layout]:
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
    px, py, pw, ph = lay.plot
    grey = (30, 30, 30, 255)
    frame.log_x = log_x  # ticks in the parameter's units (0.001, 0.01, ...), placed on log10 positions
    frame.texts.append((f"{param} (log scale)" if log_x else param, px + pw / 2, 6, "mb", 12, grey, False, False))
    frame.texts.append((stat, 12, py + ph / 2, "mm", 12, grey, False, True))
    frame.texts.append((frame.title, lay.width / 2, lay.height - 8, "mt", 13, grey, True, False))
    return view, frame, lay
