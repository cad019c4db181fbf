"""Details on demand: one iteration's line search in its own coordinates (alpha on x).

phi_K over the whole alpha grid (the part beyond the accepted step lighter),
the trial points numbered in evaluation order (loose ends in orange), the
accepted alpha, the grid minimum, the least-squares parabola (dashed), the
Armijo line where the slope at 0 is known, and the numbers as text.  Used by
``gda-gl render --detail K`` and the explorer's detail panel.

:func:`compose_detail` is compute only and returns a :class:`~gda_gl.compose.view.View` and a
:class:`~gda_gl.compose.scene.Frame`, the same kinds the curve's composition returns; the renderer draws
both with one method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recorder import stats, stepgeom
from recorder.errors import RecordingError

from .layout import Layout
from .frame import Frame, Markers, Rects, Segments
from .scene import NONFINITE_COLOR, RunData, transform_y
from .textlayer import TextLayer
from .view import View

__all__ = ["compose_detail", "detail_numbers", "fitted_parabola", "stat_value", "ARMIJO_RHO"]



ARMIJO_RHO = 0.05  # Rasmussen's RHO = SIG / 2, the sufficient-decrease constant of the paper's line search


def stat_value(stat: stats.Statistic, v):
    """A row's value of statistic ``stat`` as the details show it: a code's name, an integer, or a float."""
    if stat.codes:
        return dict(stat.codes).get(int(v), "?")
    if stat.fmt == "d" and np.isfinite(v):
        return int(v)
    return float(v)


def _label(name: str) -> str:
    """The details' key of statistic ``name`` (its registry label)."""
    return stats.STAT_BY_NAME[name].label


def detail_numbers(d, row: int) -> dict:
    """The numbers shown for one line search (shared by the PNG export and the explorer panel): the iteration,
    phi(0), then every statistic of :data:`recorder.stats.STATISTICS` the recording holds (by its label, in
    the registry's order: a new statistic shows without a change here), then the trial points and loose ends.

    Parameters
    ----------
    d : rows (:class:`~recorder.codec.Iterations`, e.g. the one-row window of the step) or a RunData
    row : the row in ``d``
    """
    if isinstance(d, RunData):
        d = d.data
    tr = d.trials_of(row)
    out = {"iteration": int(d.iteration[row]),
           "loss phi(0)": float(d.phi[row, 0]) if d.alphas_of(row)[0] == 0 else float(d["train_loss"][row])}
    for s in stats.STATISTICS:
        if s.name != "iteration" and s.name in d.columns:
            out[s.label] = stat_value(s, d[s.name][row])
    out["trial points"] = len(tr["alpha"])
    accepted = stepgeom.accepted_alpha(d["taken_alpha"][row])
    out["loose ends"] = int(np.count_nonzero(stepgeom.beyond(tr["alpha"], accepted)))
    return out


def _legend(run: RunData) -> list[tuple[str, tuple]]:
    """(label, RGBA 0-255) of the details view's glyphs; names as in :mod:`gda_gl.gl.overlays`."""
    rc = tuple(int(255 * c) for c in run.color[:3])
    return [("phi_k (arc)", rc + (255,)), ("beyond the step", rc + (120,)), ("trial points (order)", (40, 40, 40, 255)),
            ("loose ends: trials beyond the step", (242, 140, 25, 255)), ("grid minimum", (217, 51, 38, 255)),
            ("fitted parabola", (140, 77, 178, 255)), (f"Armijo line (rho={ARMIJO_RHO})", (90, 90, 90, 255)),
            ("accepted alpha", (25, 158, 64, 255))]


def _wrap_legend(text: TextLayer, legend, width: float, fs: int) -> list[list]:
    """Split legend entries into lines no wider than ``width`` pixels."""
    lines, cur, used = [], [], 0.0
    for label, col in legend:
        if text.text_width(label, fs) + 14 > width:
            label = label.split(":")[0]
        w = text.text_width(label, fs) + 14
        if cur and used + w > width:
            lines.append(cur)
            cur, used = [], 0.0
        cur.append((label, col))
        used += w
    if cur:
        lines.append(cur)
    return lines


def _fmt(v) -> str:
    """A number of the details column: floats to 6 digits, integers with the thousands separators the axes use."""
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.6g}"
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return f"{int(v):,}"
    return str(v)


def fitted_parabola(alphas: np.ndarray, phi: np.ndarray) -> np.ndarray | None:
    """Coefficients (c2, c1, c0) of the least-squares parabola through the finite samples."""
    fin = np.isfinite(phi)
    if fin.sum() < 3:
        return None
    return np.polyfit(alphas[fin], phi[fin].astype(np.float64), 2)


@dataclass
class _Step:
    """One line search as the details view reads it (row 0 of a one-row window)."""

    run: RunData
    alphas: np.ndarray
    phi: np.ndarray
    trials: dict
    taken: float        # the accepted alpha (recorder.stepgeom's rule)
    nums: dict


def _read_step(run: RunData, iteration: int) -> _Step:
    d = run.windows.row_of(int(iteration)) if len(run) else None
    if d is None:
        span = run.x_span
        raise RecordingError(getattr(run, "path", run.name), f"iteration {iteration} is not in the recording "
                                                             f"(it holds {span[0]:.0f}..{span[1] - 1:.0f})")
    alphas = d.alphas_of(0)  # the step's own alphas (NaN past its last, for a per-step grid)
    have = np.isfinite(alphas)
    return _Step(run, alphas[have], d.phi[0].astype(np.float64)[have], d.trials_of(0),
                 float(stepgeom.accepted_alpha(d["taken_alpha"][0])), detail_numbers(d, 0))


def _shown(nums: dict) -> dict:
    """The numbers the details view writes: every one but those without a value (NaN says nothing)."""
    return {k: v for k, v in nums.items() if not (isinstance(v, float) and math.isnan(v))}


def _detail_layout(layout: Layout, legend, fs: int, text0: TextLayer, shown: dict) -> tuple[Layout, list]:
    """The plot's layout (numbers column on the right, legend lines on top) and the legend lines; the column
    is as wide as its longest label and value need (the registry's labels), at most 45 % of the canvas."""
    need = max((text0.text_width(str(k), fs) + text0.text_width(_fmt(v), fs, bold=True) + 28
                for k, v in shown.items()), default=0.0)
    right = int(min(max(min(250, max(150, 0.3 * layout.width)), need), 0.45 * layout.width))
    # the legend runs along the top, wrapped into as many lines as the plot's width needs
    lines = _wrap_legend(text0, legend, layout.width - layout.left - right - 8, fs - 1)
    if len(lines) > 1 and layout.height - layout.top - layout.bottom - (fs + 6) * len(lines) < 110:
        # short canvas: one legend line (the essentials), the plot keeps its height; ? explains the rest
        lines = _wrap_legend(text0, [legend[i] for i in (0, 1, 3, 7)], layout.width - layout.left - right - 8,
                             fs - 1)[:1]
    top = layout.top + (fs + 6) * len(lines) + 4
    return Layout(layout.width, layout.height, left=layout.left, right=right, bottom=layout.bottom, top=top,
                  origin=layout.origin), lines


def _detail_view(st: _Step, layout: Layout, log_y: bool) -> View:
    """x: every grid alpha, trial and the accepted step, 4 % padding; y: every finite loss, 8 % padding."""
    tr = st.trials
    ax = np.concatenate([st.alphas, tr["alpha"][np.isfinite(tr["alpha"])], [0.0, st.taken]])
    x0, x1 = float(ax.min()), float(ax.max())
    pad = 0.04 * (x1 - x0 or 1.0)
    ys = np.concatenate([st.phi[np.isfinite(st.phi)], tr["loss"][np.isfinite(tr["loss"])]])
    ty = transform_y(ys, log_y)
    ty = ty[np.isfinite(ty)]
    if len(ty) == 0:
        ty = np.array([0.0, 1.0])
    y0, y1 = float(ty.min()), float(ty.max())
    ypad = 0.08 * (y1 - y0 or 1.0)
    return View(x0 - pad, x1 + pad, y0 - ypad, y1 + ypad, bool(log_y), layout.plot, (layout.width, layout.height))


def compose_detail(run: RunData, iteration: int, layout: Layout, log_y: bool = False
                   ) -> tuple[View, Frame, dict, Layout]:
    """What the details view draws for one line search: (View, Frame, the numbers written, the layout used).

    Compute only, like :func:`gda_gl.compose.scene.compose`: the same renderer draws the Frame
    (:meth:`gda_gl.gl.render.CurveRenderer.draw_frame`).  Reads one row through the run's windows.
    """
    st = _read_step(run, iteration)
    fs = 11 if layout.width >= 360 and layout.height >= 200 else 9
    text0 = TextLayer(layout.width, layout.height)
    shown = _shown(st.nums)
    layout, lines = _detail_layout(layout, _legend(run), fs, text0, shown)
    view = _detail_view(st, layout, log_y)
    frame = Frame(origin=(view.x0, view.y0), mode="line-search",
                  title=f"{run.name}: line search of iteration {st.nums['iteration']}")
    frame.axis_titles, frame.font_size, frame.x_tick_px, frame.seg_width = False, fs, 100, 2.0
    frame.rule_min_px = 1.5
    _detail_geometry(frame, st, view)
    _trial_labels(frame, st, view, fs)
    _detail_texts(frame, st, view, layout, lines, fs, text0, shown)
    return view, frame, shown, layout


def _rel(view: View, x, y) -> np.ndarray:
    """(alpha, loss) to frame positions (relative to the view origin, y in display units)."""
    return np.stack([np.asarray(x, np.float64) - view.x0, transform_y(y, view.log_y) - view.y0], axis=-1)


def _polyline(p: np.ndarray, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Segments joining consecutive points (``step`` 2: every other gap, a dashed line)."""
    idx = np.arange(0, len(p) - 1, step)
    return p[idx], p[idx + 1]


def _detail_geometry(frame: Frame, st: _Step, view: View) -> None:
    """Rules at alpha 0 and the accepted step; the parabola (dashed), Armijo line and phi; markers; flags."""
    a, phi, x0 = st.alphas, st.phi, view.x0
    rx = np.array([st.taken - x0, 0.0 - x0])
    frame.add(Rects("rules", np.stack([rx, np.zeros(2), rx, np.full(2, view.y1 - view.y0)], axis=1),
                    [(0.10, 0.62, 0.25, 0.8), (0.4, 0.4, 0.4, 0.5)]))
    coef = fitted_parabola(a, phi)
    xs = np.linspace(view.x0, view.x1, 200)
    parts = [(*_polyline(_rel(view, xs, np.polyval(coef, xs) if coef is not None else np.full_like(xs, np.nan)), 2),
              (0.55, 0.30, 0.70, 0.9))]
    s0 = st.nums[_label("slope0")]
    if math.isfinite(s0) and np.isfinite(phi[0]) and a[0] == 0:  # Armijo line phi(0) + rho alpha phi'(0)
        xa = np.linspace(0, view.x1, 60)
        parts.append((*_polyline(_rel(view, xa, phi[0] + ARMIJO_RHO * xa * s0)), (0.3, 0.3, 0.3, 0.6)))
    p = _rel(view, a, phi)
    # phi over the grid: accepted part strong, beyond the step lighter
    strong = np.where(stepgeom.within(a[1:], st.taken), 1.0, 0.45)
    phi_cols = np.concatenate([np.broadcast_to(st.run.color[:3], (len(a) - 1, 3)), strong[:, None]], axis=1)
    parts.append((*_polyline(p), phi_cols))
    p0 = np.concatenate([q0 for q0, _, _ in parts])
    p1 = np.concatenate([q1 for _, q1, _ in parts])
    cols = np.concatenate([np.broadcast_to(np.asarray(c, np.float32), (len(q0), 4)) for q0, _, c in parts])
    ok = np.all(np.isfinite(p0), axis=1) & np.all(np.isfinite(p1), axis=1)
    # one batch in this order (parabola, Armijo line, phi): later segments draw over earlier ones
    frame.add(Segments("arcs", p0[ok], p1[ok], cols[ok]))
    okp = np.all(np.isfinite(p), axis=1)
    _markers(frame, p[okp], np.broadcast_to(st.run.color, (int(okp.sum()), 4)), 0.0, 4.0)
    tp = _rel(view, st.trials["alpha"], st.trials["loss"])
    okt = np.all(np.isfinite(tp), axis=1)
    loose = stepgeom.beyond(st.trials["alpha"], st.taken)
    _markers(frame, tp[okt], np.where(loose[okt, None], (0.95, 0.55, 0.10, 1.0), (0.15, 0.15, 0.15, 1.0)),
             np.where(loose[okt], 2.0, 0.0), 9.0)
    if math.isfinite(st.nums[_label("min_alpha")]):
        _markers(frame, _rel(view, [st.nums[_label("min_alpha")]], [st.nums[_label("min_phi")]]),
                 np.array([[0.85, 0.2, 0.15, 1.0]]), 1.0, 10.0)
    bad = ~np.isfinite(phi)
    if bad.any():  # non-finite samples: flags on the top edge
        frame.add(Markers("flags", np.stack([a[bad] - x0, np.full(int(bad.sum()), np.nan)], axis=1), NONFINITE_COLOR,
                          7.0, 2.0))


def _trial_labels(frame: Frame, st: _Step, view: View, fs: int) -> None:
    """Each trial point numbered in evaluation order, where the label stays inside the plot."""
    px, py, pw, ph = view.plot
    sx, sy = pw / (view.x1 - view.x0), ph / (view.y1 - view.y0)
    tp = _rel(view, st.trials["alpha"], st.trials["loss"])
    okt = np.all(np.isfinite(tp), axis=1)
    for (xa_, ya_), order, okk in zip(tp, st.trials["order"], okt):
        lx_, ly_ = px + xa_ * sx + 7, py + ya_ * sy + 7
        if okk and px <= lx_ <= px + pw - fs and py <= ly_ <= py + ph - fs:
            frame.texts.append((str(int(order) + 1), lx_, ly_, "lb", fs - 1, (20, 20, 20, 255), False, False))


def _detail_texts(frame: Frame, st: _Step, view: View, layout: Layout, lines, fs: int, text0: TextLayer,
                  shown: dict) -> None:
    """Axis titles, the title, the legend lines and the column of numbers right of the plot."""
    px, py, pw, ph = view.plot
    txt, grey = frame.texts, (30, 30, 30, 255)
    xlabel = "alpha (units of the step d_k; 1 = step taken)"
    if text0.text_width(xlabel, fs + 1) > pw:
        xlabel = "alpha (1 = step taken)"
    txt.append((xlabel, px + pw / 2, 4, "mb", fs + 1, grey, False, False))
    txt.append(("phi_k(alpha) (log)" if view.log_y else "phi_k(alpha)", 12, py + ph / 2, "mm", fs + 1, grey, False,
                True))
    title = frame.title
    if text0.text_width(title, fs + 2, bold=True) > layout.width - 8:
        title = f"{st.run.name}: iteration {st.nums['iteration']}"
    txt.append((title, layout.width / 2, layout.height - 6, "mt", fs + 2, grey, True, False))
    y = layout.height - 6 - (fs + 8)  # the legend: one or more lines under the title, each entry in its colour
    for line in lines:
        x = px
        for label, col in line:
            txt.append((label, x, y, "lt", fs - 1, col, False, False))
            x += text0.text_width(label, fs - 1) + 14
        y -= fs + 6
    # the numbers: a column right of the plot; a smaller font (down to 7 px) before any row is cut
    items = list(shown.items())
    top_y = layout.height - 6 - (fs + 8)
    fs = int(max(7, min(fs, (top_y - 4) // max(1, len(items)) - 5)))
    tx, row_h = px + pw + 14, fs + 5
    n_fit = max(0, int((top_y - 4) // row_h))
    if len(items) > n_fit:
        items = items[:max(0, n_fit - 1)] + ([("...", f"{len(shown) - n_fit + 1} more")] if n_fit else [])
    for i, (k, v) in enumerate(items):
        value = _fmt(v)
        room = layout.width - 8 - tx - text0.text_width(value, fs, bold=True) - 6  # the label never meets its value
        txt.append((_clipped(text0, f"{k}", room, fs), tx, top_y - row_h * i, "lt", fs, grey, False, False))
        txt.append((value, layout.width - 8, top_y - row_h * i, "rt", fs, grey, True, False))


def _clipped(text0: TextLayer, s: str, width: float, fs: int) -> str:
    """``s`` shortened with an ellipsis to at most ``width`` pixels (a long statistic label beside its value)."""
    if text0.text_width(s, fs) <= width:
        return s
    while len(s) > 1 and text0.text_width(s + "...", fs) > width:
        s = s[:-1]
    return s + "..."


def _markers(frame: Frame, xy, color, shape, size) -> None:
    frame.add(Markers("trials", xy, color, size, shape))
