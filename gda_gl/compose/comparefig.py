"""The figures of ``gda-gl compare``, composed: many runs side by side, a statistic against a hyperparameter.

* :func:`stacked_bands` / :func:`grid_cells`: up to :data:`STACK_MAX` runs are stacked in full-width
  bands sharing the x axis (each its own y); more (a sweep of 30-100 runs) are a grid of small multiples,
  each cell a compact curve of one run with its name, all over the same x range, each with its own y
  range, so every run stays readable.  The shared x range is on the view's x axis (:func:`shared_x_range`:
  each run's whole extent through its own map), never in iterations read as another axis's units.
* :func:`compose_scatter`: one comparison statistic (``loose ends / 100 it``, ``overshoot share``, ...)
  against one numeric hyperparameter (``lr``, ``config.batch_size``, ...): the paper's hyperparameter
  analysis.  A parameter spanning more than :data:`LOG_DECADES` decades is placed on a log10 axis.

Compute only: :mod:`gda_gl.gl.comparefig` draws what these return.
"""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np

from .frame import Frame, Markers
from .layout import Layout
from .scene import compose, resolve_x
from .state import ViewState
from .view import View
from .xaxis import AxisRange

__all__ = ["stacked_bands", "grid_cells", "compose_scatter", "grid_shape", "shared_x_range", "STACK_MAX",
           "LOG_DECADES"]

#: at most this many runs are stacked in bands; more are drawn as a grid of small multiples
STACK_MAX = 6
#: a hyperparameter spanning more decades than this is drawn on a log10 axis
LOG_DECADES = 1.5


def grid_shape(n: int, width: int, height: int) -> tuple[int, int]:
    """(columns, rows) of a grid of ``n`` cells about 1.6 times as wide as high."""
    cols = max(1, min(n, round(math.sqrt(n * width / max(height, 1) / 1.6))))
    return cols, -(-n // cols)


def shared_x_range(runs, state: ViewState) -> AxisRange:
    """The state's x range on its axis, its open ends filled with the runs' whole extent on that axis."""
    return resolve_x(runs, state)


def _state_for(state: ViewState, x_range) -> ViewState:
    st = ViewState(**{f.name: getattr(state, f.name) for f in fields(state) if not f.name.startswith("_")})
    st.x_range = tuple(x_range)
    st.y_range = None
    return st


def stacked_bands(runs, state: ViewState, size: tuple[int, int]) -> list[tuple[object, ViewState, Layout]]:
    """(run, state, layout) of each full-width band, top to bottom, all over the same x range (each its own y)."""
    w, h = size
    band = h // len(runs)
    st = _state_for(state, shared_x_range(runs, state))
    out = []
    for i, run in enumerate(runs):
        lay = Layout.for_size(w, band, colorbar=st.color_by != "none")
        lay.origin = (0, h - (i + 1) * band)
        out.append((run, st, lay))
    return out


def grid_cells(runs, state: ViewState, size: tuple[int, int], names: list[str]
               ) -> list[tuple[View, Frame, Layout]]:
    """(View, Frame, layout) of each small multiple of a grid, all over the same x range."""
    w, h = size
    cols, rows = grid_shape(len(runs), w, h)
    cw, ch = w // cols, h // rows
    st = _state_for(state, shared_x_range(runs, state))
    out = []
    for i, (run, name) in enumerate(zip(runs, names)):
        r, c = divmod(i, cols)
        lay = Layout(cw, ch, left=46, right=6, bottom=22, top=16, origin=(c * cw, h - (r + 1) * ch))
        view, frame = compose([run], st, lay.plot, (lay.width, lay.height))
        frame.axis_titles, frame.font_size, frame.x_tick_px, frame.y_tick_px = False, 8, 80, 26
        frame.texts.append((name[:60], lay.left, lay.height - 3, "lt", 9,
                            tuple(int(255 * v) for v in run.color[:3]) + (255,), True, False))
        out.append((view, frame, lay))
    return out


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
    px, py, pw, ph = lay.plot
    grey = (30, 30, 30, 255)
    for xi, yi, name, good in zip(xd, y, names, ok):
        if good and len(names) <= 40:
            frame.texts.append((name[:40], px + (xi - x0) / (x1 - x0) * pw + 7, py + (yi - y0) / (y1 - y0) * ph,
                                "lm", 9, grey, False, False))
    frame.texts.append((f"{param} (log10)" if log_x else param, px + pw / 2, 6, "mb", 12, grey, False, False))
    frame.texts.append((stat, 12, py + ph / 2, "mm", 12, grey, False, True))
    frame.texts.append((frame.title, lay.width / 2, lay.height - 8, "mt", 13, grey, True, False))
    return view, frame, lay
