"""Details on demand: one iteration's line search in its own coordinates (alpha on x).

phi_K over the whole alpha grid (the part beyond the accepted step lighter),
the trial points numbered in evaluation order (loose ends in orange), the
accepted alpha, the grid minimum, the least-squares parabola (dashed), the
Armijo line where the slope at 0 is known, and the numbers as text.  Used by
``gda-gl render --detail K`` and the explorer's detail panel.

:func:`compose_detail` is compute only and returns a :class:`~gda_gl.view.View` and a
:class:`~gda_gl.scene.Frame`, the same kinds the curve's composition returns; the renderer draws
both with one method.
"""

from __future__ import annotations

import math

import numpy as np

from recorder import stepgeom

from .render import CLASS_LABELS, CurveRenderer, Layout
from .frame import Frame, Markers, Rects, Segments
from .scene import NONFINITE_COLOR, RunData, transform_y
from .textlayer import TextLayer
from .view import View

__all__ = ["compose_detail", "draw_detail", "detail_numbers", "fitted_parabola", "ARMIJO_RHO"]


ARMIJO_RHO = 0.05  # Rasmussen's RHO = SIG / 2, the sufficient-decrease constant of the paper's line search


def detail_numbers(d, row: int) -> dict:
    """The numbers shown for one line search (shared by the PNG export and the explorer panel).

    Parameters
    ----------
    d : rows (:class:`~recorder.codec.Iterations`, e.g. the one-row window of the step) or a RunData
    row : the row in ``d``
    """
    if isinstance(d, RunData):
        d = d.data
    tr = d.trials_of(row)
    out = {"iteration": int(d.iteration[row]), "epoch": int(d["epoch"][row]), "batch": int(d["batch"][row]),
           "loss phi(0)": float(d.phi[row, 0]) if d.alpha_grid[0] == 0 else float(d["train_loss"][row]),
           "train loss": float(d["train_loss"][row]), "taken alpha": float(d["taken_alpha"][row]),
           "native step": float(d["native_step"][row]), "slope phi'(0)": float(d["slope0"][row]),
           "grid min alpha": float(d["min_alpha"][row]), "grid min phi": float(d["min_phi"][row]),
           "efficiency": float(d["efficiency"][row]), "class": CLASS_LABELS.get(int(d["step_class"][row]), "?"),
           "curvature": float(d["curvature"][row]), "Cockpit alpha": float(d["cockpit_alpha"][row]),
           "evaluations": int(d["ls_evals"][row]), "trial points": len(tr["alpha"]),
           "loose ends": int(np.count_nonzero(stepgeom.beyond(tr["alpha"], stepgeom.accepted_alpha(d["taken_alpha"][row]))))}
    return out


def _legend(run: RunData) -> list[tuple[str, tuple]]:
    """(label, RGBA 0-255) of the details view's glyphs; names as in :mod:`gda_gl.overlays`."""
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
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.6g}"
    return str(v)


def fitted_parabola(alphas: np.ndarray, phi: np.ndarray) -> np.ndarray | None:
    """Coefficients (c2, c1, c0) of the least-squares parabola through the finite samples."""
    fin = np.isfinite(phi)
    if fin.sum() < 3:
        return None
    return np.polyfit(alphas[fin], phi[fin].astype(np.float64), 2)


def compose_detail(run: RunData, iteration: int, layout: Layout, log_y: bool = False
                   ) -> tuple[View, Frame, dict, Layout]:
    """What the details view draws for one line search: (View, Frame, the numbers, the layout used).

    Compute only, like :func:`gda_gl.scene.compose`: the same renderer draws the Frame
    (:meth:`gda_gl.render.CurveRenderer.draw_frame`).  Reads one row through the run's windows.
    """
    d = run.windows.row_of(int(iteration)) if len(run) else None
    if d is None:
        from recorder.errors import RecordingError

        span = run.x_span
        raise RecordingError(getattr(run, "path", run.name), f"iteration {iteration} is not in the recording "
                                                             f"(it holds {span[0]:.0f}..{span[1] - 1:.0f})")
    row = 0
    a = d.alpha_grid
    phi = d.phi[row].astype(np.float64)
    tr = d.trials_of(row)
    taken = float(stepgeom.accepted_alpha(d["taken_alpha"][row]))
    nums = detail_numbers(d, row)
    fs = 11 if layout.width >= 360 and layout.height >= 200 else 9
    legend = _legend(run)
    right = int(min(250, max(150, 0.3 * layout.width)))
    # the legend runs along the top, wrapped into as many lines as the plot's width needs
    text0 = TextLayer(layout.width, layout.height)
    lines = _wrap_legend(text0, legend, layout.width - layout.left - right - 8, fs - 1)
    if len(lines) > 1 and layout.height - layout.top - layout.bottom - (fs + 6) * len(lines) < 110:
        # short canvas: one legend line (the essentials), the plot keeps its height; ? explains the rest
        lines = _wrap_legend(text0, [legend[i] for i in (0, 1, 3, 7)], layout.width - layout.left - right - 8,
                             fs - 1)[:1]
    top = layout.top + (fs + 6) * len(lines) + 4
    layout = Layout(layout.width, layout.height, left=layout.left, right=right, bottom=layout.bottom, top=top,
                    origin=layout.origin)
    px, py, pw, ph = layout.plot
    ax = np.concatenate([a, tr["alpha"][np.isfinite(tr["alpha"])], [0.0, taken]])
    x0, x1 = float(ax.min()), float(ax.max())
    pad = 0.04 * (x1 - x0 or 1.0)
    x0, x1 = x0 - pad, x1 + pad
    coef = fitted_parabola(a, phi)
    xs = np.linspace(x0, x1, 200)
    para = np.polyval(coef, xs) if coef is not None else np.full_like(xs, np.nan)
    ys = np.concatenate([phi[np.isfinite(phi)], tr["loss"][np.isfinite(tr["loss"])]])
    ty = transform_y(ys, log_y)
    ty = ty[np.isfinite(ty)]
    if len(ty) == 0:
        ty = np.array([0.0, 1.0])
    y0, y1 = float(ty.min()), float(ty.max())
    pad = 0.08 * (y1 - y0 or 1.0)
    y0, y1 = y0 - pad, y1 + pad
    sx, sy = pw / (x1 - x0), ph / (y1 - y0)
    view = View(x0, x1, y0, y1, bool(log_y), layout.plot, (layout.width, layout.height))
    frame = Frame(origin=(x0, y0), mode="line-search", title=f"{run.name}: line search of iteration "
                                                              f"{nums['iteration']}")
    frame.axis_titles, frame.font_size, frame.x_tick_px, frame.seg_width = False, fs, 100, 2.0

    def rel(x, y):
        return np.stack([np.asarray(x, np.float64) - x0, transform_y(y, log_y) - y0], axis=-1)

    # accepted alpha and alpha = 0 as vertical rules
    rx = np.array([taken - x0, 0.0 - x0])
    frame.add(Rects("rules", np.stack([rx, np.zeros(2), rx, np.full(2, y1 - y0)], axis=1),
                    [(0.10, 0.62, 0.25, 0.8), (0.4, 0.4, 0.4, 0.5)]))
    frame.rule_min_px = 1.5
    segs_p0, segs_p1, cols = [], [], []
    # fitted parabola, dashed
    pp = rel(xs, para)
    for i in range(0, len(xs) - 1, 2):
        segs_p0.append(pp[i])
        segs_p1.append(pp[i + 1])
        cols.append((0.55, 0.30, 0.70, 0.9))
    # Armijo line phi(0) + rho alpha phi'(0)
    s0 = nums["slope phi'(0)"]
    if math.isfinite(s0) and np.isfinite(phi[0]) and a[0] == 0:
        xa = np.linspace(0, x1, 60)
        ap = rel(xa, phi[0] + ARMIJO_RHO * xa * s0)
        for i in range(0, len(xa) - 1):
            segs_p0.append(ap[i])
            segs_p1.append(ap[i + 1])
            cols.append((0.3, 0.3, 0.3, 0.6))
    # phi over the grid: accepted part strong, beyond the step lighter
    p = rel(a, phi)
    for i in range(len(a) - 1):
        segs_p0.append(p[i])
        segs_p1.append(p[i + 1])
        cols.append(tuple(run.color[:3]) + ((1.0,) if stepgeom.within(a[i + 1], taken) else (0.45,)))
    if segs_p0:
        s_p0, s_p1 = np.asarray(segs_p0, np.float64), np.asarray(segs_p1, np.float64)
        ok = np.all(np.isfinite(s_p0), axis=1) & np.all(np.isfinite(s_p1), axis=1)
        # one batch in this order (parabola, Armijo line, phi): later segments draw over earlier ones
        frame.add(Segments("arcs", s_p0[ok], s_p1[ok], np.asarray(cols, np.float32)[ok]))
    # samples, trials (numbered), grid minimum
    okp = np.all(np.isfinite(p), axis=1)
    _markers(frame, p[okp], np.broadcast_to(run.color, (int(okp.sum()), 4)), 0.0, 4.0)
    tp = rel(tr["alpha"], tr["loss"])
    okt = np.all(np.isfinite(tp), axis=1)
    loose = stepgeom.beyond(tr["alpha"], taken)
    _markers(frame, tp[okt], np.where(loose[okt, None], (0.95, 0.55, 0.10, 1.0), (0.15, 0.15, 0.15, 1.0)),
             np.where(loose[okt], 2.0, 0.0), 9.0)
    if math.isfinite(nums["grid min alpha"]):
        _markers(frame, rel([nums["grid min alpha"]], [nums["grid min phi"]]), np.array([[0.85, 0.2, 0.15, 1.0]]),
                 1.0, 10.0)
    bad = ~np.isfinite(phi)
    if bad.any():  # non-finite samples: flags on the top edge
        frame.add(Markers("flags", np.stack([a[bad] - x0, np.full(int(bad.sum()), np.nan)], axis=1), NONFINITE_COLOR,
                          7.0, 2.0))
    txt = frame.texts
    black = (20, 20, 20, 255)
    for (xa_, ya_), order, okk in zip(tp, tr["order"], okt):
        lx_, ly_ = px + xa_ * sx + 7, py + ya_ * sy + 7
        if okk and px <= lx_ <= px + pw - fs and py <= ly_ <= py + ph - fs:  # labels stay inside the plot
            txt.append((str(int(order) + 1), lx_, ly_, "lb", fs - 1, black, False, False))
    xlabel = "alpha (units of the step d_k; 1 = step taken)"
    if text0.text_width(xlabel, fs + 1) > pw:
        xlabel = "alpha (1 = step taken)"
    grey = (30, 30, 30, 255)
    txt.append((xlabel, px + pw / 2, 4, "mb", fs + 1, grey, False, False))
    txt.append(("phi_k(alpha) (log)" if log_y else "phi_k(alpha)", 12, py + ph / 2, "mm", fs + 1, grey, False, True))
    title = frame.title
    if text0.text_width(title, fs + 2, bold=True) > layout.width - 8:
        title = f"{run.name}: iteration {nums['iteration']}"
    txt.append((title, layout.width / 2, layout.height - 6, "mt", fs + 2, grey, True, False))
    # the legend: one or more lines under the title, each entry in its colour
    y = layout.height - 6 - (fs + 8)
    for line in lines:
        x = px
        for label, col in line:
            txt.append((label, x, y, "lt", fs - 1, col, False, False))
            x += text0.text_width(label, fs - 1) + 14
        y -= fs + 6
    # the numbers: a column right of the plot, as many rows as fit (all of them are in the panel)
    tx = px + pw + 14
    row_h = fs + 5
    top_y = layout.height - 6 - (fs + 8)
    n_fit = max(0, int((top_y - 4) // row_h))
    items = list(nums.items())
    if len(items) > n_fit:
        items = items[:max(0, n_fit - 1)] + ([("...", f"{len(nums) - n_fit + 1} more")] if n_fit else [])
    for i, (k, v) in enumerate(items):
        txt.append((f"{k}", tx, top_y - row_h * i, "lt", fs, grey, False, False))
        txt.append((_fmt(v), layout.width - 8, top_y - row_h * i, "rt", fs, grey, True, False))
    return view, frame, nums, layout


def _markers(frame: Frame, xy, color, shape, size) -> None:
    frame.add(Markers("trials", xy, color, size, shape))


def draw_detail(self: CurveRenderer, run: RunData, iteration: int, layout: Layout, log_y: bool = False) -> dict:
    """Draw the details of one line search with ``self`` (compose, then the renderer's Frame draw);
    returns the numbers shown."""
    view, frame, nums, layout = compose_detail(run, iteration, layout, log_y)
    self.draw_frame(view, frame, layout)
    self.last_detail_text = self.last_text
    return nums
