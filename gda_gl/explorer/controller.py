"""Interaction logic of the explorer: zoom, pan, animation, filters, picking, live following. No GL, no toolkit.

The controller owns the :class:`~gda_gl.state.ViewState` (the single source of
truth the canvas and the panels observe) and the runs.  ``state.x_range`` /
``state.y_range`` hold the *target* view; while an animation runs, the
displayed x range (:meth:`ExplorerController.display_state`) moves towards it
along a path that keeps the zoom's anchor on screen (the point under the
cursor for the wheel, the step for a double-click; van Wijk and Nuij's smooth
zoom-and-pan when the target is off screen).

Two views, never mixed up:

- the **target** (``state.x_range``): where an animation is going;
- the **drawn view** (:attr:`ExplorerController.drawn_view`, a
  :class:`~gda_gl.view.View` set by the canvas after every frame from
  ``CurveRenderer.last_view``): what is on screen.  Every pixel -> data mapping
  (hover, click, box zoom, status line) uses it.

An animation is over only once a frame *showing the target* has been handed
out (:meth:`display_state` returned it), so a frame that takes longer than the
animation still ends with the target on screen.  Pixel coordinates are the
toolkit's: origin at the top-left of the canvas.

Run data is read only through the run's windows (``run.rows_reaching``,
``run.rows``, ``run.row_at``, ``run.windows.row_of``, ``run.x_span``,
``len(run)``, ``run.reach``, ``run.visible``), never whole, so recordings of
any length work; :meth:`ExplorerController.matches` is the one place that
reads a whole column (the highlight filter), and falls back to the drawn
window when a run is too long to load.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..overlays import help_text
from ..render import Layout, resolve_view
from ..scene import RUN_COLORS, RunData, highlight_mask, transform_y
from ..state import COLOR_BY_CHOICES, ViewState
from ..view import View

log = logging.getLogger(__name__)

__all__ = ["ExplorerController", "HELP", "ANIMATION_S", "interpolate_view", "ZOOM_OUT_LIMIT"]

ANIMATION_S = 0.25
ZOOM_OUT_LIMIT = 1.1      # the widest view: this many times the run (plus the loose ends of its last step)
MIN_WIDTH = 0.02          # the narrowest view, in iterations
VAN_WIJK_RHO = 1.4        # zoom/pan trade-off of the smooth path (van Wijk and Nuij 2003 recommend ~1.4)
PICK_PX = 8.0             # a click this close to a drawn arc selects it
HOVER_PX = 14.0           # the hover readout names the nearest arc within this distance
BEYOND_PENALTY_PX = 5.0   # picking prefers solid arcs: a light part counts as this much farther

HELP = help_text()

HIGHLIGHTS = (None, "overshoot", "undershoot", "efficiency<0.5", "failed", "nonfinite")


def _ease(t: float) -> float:
    t = min(1.0, max(0.0, t))
    return t * t * (3.0 - 2.0 * t)


def _anchored(a, b, p, e):
    """Views from a to b with data point p at a screen fraction moving linearly, width geometrically."""
    wa, wb = a[1] - a[0], b[1] - b[0]
    fa, fb = (p - a[0]) / wa, (p - b[0]) / wb
    w = wa * (wb / wa) ** e
    f = fa + (fb - fa) * e
    return (p - f * w, p - f * w + w)


def _van_wijk(a, b, e, rho=VAN_WIJK_RHO):
    """Smooth zoom-and-pan (van Wijk and Nuij 2003) from view a to view b in one dimension, at path fraction e."""
    ua, ub = 0.5 * (a[0] + a[1]), 0.5 * (b[0] + b[1])
    w0, w1 = a[1] - a[0], b[1] - b[0]
    d = abs(ub - ua)
    sign = 1.0 if ub >= ua else -1.0
    r2 = rho * rho
    if d < 1e-12 * max(w0, w1):
        w = w0 * (w1 / w0) ** e
        return (ua - 0.5 * w, ua + 0.5 * w)
    b0 = (w1 * w1 - w0 * w0 + r2 * r2 * d * d) / (2 * w0 * r2 * d)
    b1 = (w1 * w1 - w0 * w0 - r2 * r2 * d * d) / (2 * w1 * r2 * d)
    r0 = math.log(-b0 + math.sqrt(b0 * b0 + 1))
    r1 = math.log(-b1 + math.sqrt(b1 * b1 + 1))
    S = (r1 - r0) / rho
    s = e * S
    u = w0 / r2 * (math.cosh(r0) * math.tanh(rho * s + r0) - math.sinh(r0))
    w = w0 * math.cosh(r0) / math.cosh(rho * s + r0)
    c = ua + sign * u
    if e >= 1.0:
        return b
    return (c - 0.5 * w, c + 0.5 * w)


def interpolate_view(a: tuple[float, float], b: tuple[float, float], e: float,
                     anchor: float | None = None) -> tuple[float, float]:
    """The x range at path fraction ``e`` (0..1) of the flight from ``a`` to ``b``.

    With an ``anchor`` inside both views it stays on screen the whole way (its screen fraction
    moves linearly, the width changes geometrically).  Without one, the fixed point of the two
    views is used when they nest (a pure zoom about that point), a linear move when the widths
    are equal (a pan), and van Wijk and Nuij's smooth zoom-and-pan otherwise.
    """
    if e <= 0.0:
        return a
    if e >= 1.0:
        return b
    wa, wb = a[1] - a[0], b[1] - b[0]
    if anchor is not None and a[0] <= anchor <= a[1] and b[0] <= anchor <= b[1]:
        return _anchored(a, b, anchor, e)
    if abs(wa - wb) <= 1e-12 * max(wa, wb):
        shift = (b[0] - a[0]) * e
        if abs(b[0] - a[0]) <= wa:  # the two views overlap: a plain pan
            return (a[0] + shift, a[1] + shift)
        return _van_wijk(a, b, e)
    f = (b[0] - a[0]) / (wa - wb)  # screen fraction of the point both views share
    if 0.0 <= f <= 1.0:
        return _anchored(a, b, a[0] + f * wa, e)
    return _van_wijk(a, b, e)


def _arrays(d):
    """Iterations, phi samples and accepted alphas (<= 0 or NaN as 1) of a window of rows."""
    t = np.asarray(d["taken_alpha"], np.float64)
    t = np.where(np.isfinite(t) & (t > 0), t, 1.0)
    return d.iteration.astype(np.float64), np.asarray(d.phi, np.float64), t


MAX_PICK_ROWS = 8192  # rows searched for the nearest arc (zoomed far out: the ones nearest the cursor)
MATCH_ROWS = 200_000  # the highlight filter reads whole runs up to this many rows (else the drawn window)


class ExplorerController:
    """Zoom/pan/filter/select logic for one or more runs shown in one plot.

    Parameters
    ----------
    runs : prepared runs (overlaid)
    state : the shared view state (a fresh one when None)
    size : canvas size in pixels (width, height)
    clock : time source (tests pass a fake clock)
    """

    def __init__(self, runs: list[RunData], state: ViewState | None = None, size: tuple[int, int] = (1200, 700),
                 clock: Callable[[], float] = time.monotonic):
        self.runs = runs
        self.state = state or ViewState()
        self.size = size
        self.clock = clock
        self._anim: dict | None = None
        self.hover_info: dict | None = None
        self.recordings: list = []
        self.pending: list[str] = []          # --follow: files that do not exist yet
        self.live_status: dict[str, str] = {}
        self._last_growth: dict[str, float] = {}
        self.drawn_view: View | None = None   # set by the canvas after each frame: what is on screen
        self.drawn_mode: str | None = None    # "overview" or "detail", of the drawn frame
        self.drawn_match: tuple | None = None  # (rows matching the highlight in the drawn frame, exact?)
        self.selected_run: int | None = None
        self.show_help = False
        self.show_legend = True
        self.show_readout = False
        self._redraw: list[Callable[[], None]] = []
        self._grow: list[Callable[[], None]] = []
        self._matches_key = None
        self._matches = np.empty(0, np.int64)
        self.matches_whole = True
        if self.state.x_range is None:
            self.state.x_range = self.full_x_range()

    # -- listeners -----------------------------------------------------------
    def on_redraw(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` whenever the picture must be redrawn, even if the state did not change."""
        self._redraw.append(fn)

    def on_grow(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` after a live run grew (new rows, or a followed file appeared)."""
        self._grow.append(fn)

    def request_redraw(self) -> None:
        for fn in list(self._redraw):
            fn()

    # -- geometry ----------------------------------------------------------
    @property
    def layout(self) -> Layout:
        return Layout.for_size(*self.size, colorbar=self.state.color_by != "none")

    def resize(self, width: int, height: int) -> None:
        self.size = (max(1, int(width)), max(1, int(height)))

    def visible_runs(self) -> list[RunData]:
        return [r for r in self.runs if getattr(r, "visible", True)]

    def full_x_range(self) -> tuple[float, float]:
        spans = [r.x_span for r in self.runs if len(r)]
        if not spans:
            return (0.0, 1.0)
        lo = min(s[0] for s in spans)
        hi = max(s[1] for s in spans)
        return (lo, hi if hi > lo else lo + 1.0)

    def _reach(self) -> float:
        """How far right of x = k + 1 a step's drawn arc reaches (the alpha grid's end / the step)."""
        return max((float(r.reach) for r in self.runs), default=1.0)

    def x_bounds(self) -> tuple[float, float]:
        """The widest x range one may zoom out to: about ZOOM_OUT_LIMIT times the run."""
        f0, f1 = self.full_x_range()
        f1 += max(0.0, min(self._reach(), 4.0) - 1.0) if self.runs else 0.0
        pad = max(0.5 * (ZOOM_OUT_LIMIT - 1.0) * (f1 - f0), 0.25)
        return (f0 - pad, f1 + pad)

    def clamp_x(self, lo: float, hi: float) -> tuple[float, float]:
        """Keep a view inside :meth:`x_bounds` (narrowing it if wider), at least MIN_WIDTH wide."""
        b0, b1 = self.x_bounds()
        w = min(max(hi - lo, MIN_WIDTH), b1 - b0)
        c = 0.5 * (lo + hi)
        lo, hi = c - 0.5 * w, c + 0.5 * w
        if lo < b0:
            lo, hi = b0, b0 + w
        if hi > b1:
            lo, hi = b1 - w, b1
        return (lo, hi)

    def display_view(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The (animated) x range and y range (display units) to draw now (ends the animation at its end)."""
        st = self.display_state()
        return resolve_view(self.visible_runs(), st, self.layout.plot[2])

    def display_state(self) -> ViewState:
        """A copy of the state with the x range to draw now; the animation ends when this returns its target."""
        return replace(self.state, x_range=self._animated_x(consume=True), _observers=[])

    def view(self) -> View:
        """The view on screen: the last drawn one, or (before the first frame) the one that would be drawn."""
        if self.drawn_view is not None:
            return self.drawn_view
        st = replace(self.state, x_range=self._animated_x(consume=False), _observers=[])
        lay = self.layout
        (x0, x1), (y0, y1) = resolve_view(self.visible_runs(), st, lay.plot[2])
        return View(float(x0), float(x1), float(y0), float(y1), bool(st.log_y), lay.plot, (lay.width, lay.height))

    def px_to_data(self, px: float, py: float) -> tuple[float, float]:
        """Canvas pixel (origin top-left) to (iteration x, loss) in data units, through the drawn view."""
        return self.view().px_to_data(px, py)

    def data_to_px(self, x: float, y: float) -> tuple[float, float]:
        """(iteration x, loss) to canvas pixels (origin top-left), through the drawn view."""
        return self.view().data_to_px(x, y)

    # -- animation ---------------------------------------------------------
    def _animated_x(self, consume: bool = False) -> tuple[float, float]:
        target = self.state.x_range or self.full_x_range()
        if self._anim is None:
            return target
        an = self._anim
        t = (self.clock() - an["t0"]) / ANIMATION_S
        if t >= 1.0 or an["b"] != target:
            if consume:
                self._anim = None
            return target
        return interpolate_view(an["a"], an["b"], _ease(t), an["anchor"])

    @property
    def animating(self) -> bool:
        """True until a frame showing the target has been handed out by :meth:`display_state`."""
        return self._anim is not None

    def set_x_range(self, x_range: tuple[float, float], animate: bool = True, y_range=None,
                    keep_follow: bool = False, anchor: float | None = None) -> None:
        lo, hi = float(x_range[0]), float(x_range[1])
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi - lo < 1e-9:
            return
        lo, hi = self.clamp_x(lo, hi)
        current = self._animated_x()
        self._anim = {"t0": self.clock(), "a": current, "b": (lo, hi), "anchor": anchor} \
            if animate and current != (lo, hi) else None
        changes = {"x_range": (lo, hi), "y_range": y_range}
        if not keep_follow:
            changes["follow"] = False
        self.state.update(**changes)
        self.request_redraw()  # also when nothing changed: Home twice redraws the target

    # -- zoom and pan ------------------------------------------------------
    def zoom_at(self, px: float, py: float, factor: float, animate: bool = True) -> None:
        """Zoom by ``factor`` (> 1 in) keeping the iteration under pixel column ``px`` fixed."""
        x0, x1 = self.state.x_range or self.full_x_range()
        lx, _, pw, _ = self.layout.plot
        frac = min(1.0, max(0.0, (px - lx) / pw))
        anchor = x0 + frac * (x1 - x0)  # anchor in the target view, so repeated wheel steps compose
        w = (x1 - x0) / factor
        self.set_x_range((anchor - frac * w, anchor + (1 - frac) * w), animate, y_range=self.state.y_range,
                         anchor=anchor)

    def zoom_y_at(self, py: float, factor: float) -> None:
        """Zoom the y axis by ``factor`` (> 1 in) about the loss under pixel row ``py``; y stops auto-fitting."""
        v = self.view()
        _, ly, _, ph = v.plot
        frac = min(1.0, max(0.0, (v.size[1] - py - ly) / ph))
        anchor = v.y0 + frac * (v.y1 - v.y0)
        h = (v.y1 - v.y0) / factor
        self._set_y_display(anchor - frac * h, anchor + (1 - frac) * h, v.log_y)

    def _set_y_display(self, y0: float, y1: float, log_y: bool) -> None:
        if not (math.isfinite(y0) and math.isfinite(y1)) or y1 - y0 <= 1e-12 * max(1.0, abs(y1)):
            return
        self.state.update(y_range=(10.0 ** y0, 10.0 ** y1) if log_y else (y0, y1))
        self.request_redraw()

    def toggle_autofit(self) -> bool:
        """Freeze y at what is drawn, or let it fit the data again; returns whether y auto-fits now."""
        if self.state.y_range is None:
            v = self.view()
            self._set_y_display(v.y0, v.y1, v.log_y)
        else:
            self.state.update(y_range=None)
        self.request_redraw()
        return self.state.y_range is None

    def pan(self, dx_px: float, dy_px: float = 0.0) -> None:
        """Move the view by a drag of (dx, dy) pixels; y moves only once it is fixed (not auto-fitted)."""
        x0, x1 = self.state.x_range or self.full_x_range()
        pw = self.layout.plot[2]
        shift = -dx_px / pw * (x1 - x0)
        yr = self.state.y_range
        if yr is not None and dy_px:
            v = self.view()
            dy = dy_px / v.plot[3] * (v.y1 - v.y0)
            lo, hi = v.y0 + dy, v.y1 + dy
            yr = (10 ** lo, 10 ** hi) if self.state.log_y else (lo, hi)
        self.set_x_range((x0 + shift, x1 + shift), animate=False, y_range=yr)

    def box_zoom(self, p0: tuple[float, float], p1: tuple[float, float]) -> None:
        """Zoom onto the pixel rectangle p0..p1 of the drawn view (y too when the box is taller than 3 px)."""
        if abs(p1[0] - p0[0]) < 3:
            return
        v = self.view()
        (xa, ya), (xb, yb) = v.px_to_data(*p0), v.px_to_data(*p1)
        yr = (min(ya, yb), max(ya, yb)) if abs(p1[1] - p0[1]) >= 3 else None
        self.set_x_range((min(xa, xb), max(xa, xb)), y_range=yr)

    def home(self) -> None:
        self.set_x_range(self.full_x_range())

    def zoom_to_iteration(self, iteration: int) -> None:
        """Fly onto one step: phi_k with its part beyond the step and a little of both neighbours.

        The flight keeps the step on screen when it is on screen now (the step's middle is the anchor).
        """
        reach = self._reach()
        self.set_x_range((iteration - 0.15, iteration + max(1.0, min(reach, 4.0)) + 0.15),
                         anchor=iteration + 0.5)

    # -- picking and details -------------------------------------------------
    def iteration_at(self, x: float) -> tuple[RunData, int] | None:
        """The run and iteration whose segment [k, k+1) contains x (first visible run that has one)."""
        for run in self.visible_runs():
            row = run.row_at(x) if len(run) else None
            if row is not None and len(row):
                return run, int(row.iteration[0])
        return None

    def nearest_arc(self, px: float, py: float, max_px: float = HOVER_PX) -> dict | None:
        """The drawn arc nearest to the cursor over all visible runs, within ``max_px`` pixels.

        Returns ``{"run", "run_index", "row", "iteration", "alpha", "dist_px"}`` (alpha of the nearest
        point of the arc) or None.  Distances are measured in pixels of the drawn view, to the
        polyline through the arc's samples (the part beyond the step included when it is shown).
        """
        v = self.view()
        lx, ly, pw, ph = v.plot
        sx, sy = pw / (v.x1 - v.x0), ph / (v.y1 - v.y0)
        gy = v.size[1] - py
        xc = v.x0 + (px - lx) / sx
        tol_x = max_px / sx
        best = None
        for i, run in enumerate(self.runs):
            if not getattr(run, "visible", True) or len(run) == 0:
                continue
            xa, xb = xc - tol_x, xc + tol_x
            n = run.windows.rows_in_range(xa - run.reach, xb + 1)
            if n > MAX_PICK_ROWS:  # zoomed far out: the rows nearest the cursor column are enough
                half = 0.5 * (xb - xa + run.reach + 1) * MAX_PICK_ROWS / n
                xa, xb = xc - half, xc + half
            win = run.rows_reaching(xa, xb)
            if len(win) == 0:
                continue
            it, phi, t = _arrays(win)
            a = np.asarray(run.alphas, np.float64)
            X = lx + (it[:, None] + a[None, :] / t[:, None] - v.x0) * sx
            Y = ly + (_display(phi, v.log_y) - v.y0) * sy
            if len(a) < 2:
                continue
            main = a[None, 1:] <= t[:, None] * (1 + 1e-9)
            keep_seg = main if not self.state.show_loose else np.ones_like(main)
            x0s, y0s, x1s, y1s = X[:, :-1], Y[:, :-1], X[:, 1:], Y[:, 1:]
            dx, dy = x1s - x0s, y1s - y0s
            L2 = dx * dx + dy * dy
            with np.errstate(invalid="ignore", divide="ignore"):
                u = np.clip(((px - x0s) * dx + (gy - y0s) * dy) / np.where(L2 > 0, L2, 1.0), 0.0, 1.0)
            qx, qy = x0s + u * dx, y0s + u * dy
            dist = np.hypot(qx - px, qy - gy)
            # the solid arc wins over a light one (beyond a neighbour's step) crossing it nearby
            dist = np.where(keep_seg & np.isfinite(dist), dist + np.where(main, 0.0, BEYOND_PENALTY_PX), np.inf)
            j = int(np.argmin(dist))
            d = float(dist.flat[j])
            if d - (0.0 if main.flat[j] else BEYOND_PENALTY_PX) <= max_px and (best is None or d < best["dist_px"]):
                rr, ss = divmod(j, len(a) - 1)
                alpha = float(a[ss] + u.flat[j] * (a[ss + 1] - a[ss]))
                best = {"run": run, "run_index": i, "iteration": int(it[rr]), "alpha": alpha, "dist_px": d}
        return best

    def hover(self, px: float, py: float) -> dict | None:
        """Run, iteration, alpha and loss under the cursor (plus phi_k(alpha) there), or None off the plot."""
        v = self.view()
        if not v.contains_px(px, py):
            self.hover_info = None
            return None
        x, y = v.px_to_data(px, py)
        info = {"x": x, "loss": y}
        near = self.nearest_arc(px, py)
        if near is not None:
            run, k = near["run"], near["iteration"]
        else:
            hit = self.iteration_at(x)
            run, k = hit if hit is not None else (None, None)
        row = run.windows.row_of(k) if run is not None else None
        if row is not None:
            it, phi, t = _arrays(row)
            alpha = (x - it[0]) * t[0]
            fin = np.isfinite(phi[0])
            a = np.asarray(run.alphas, np.float64)
            info.update({"run": run.name, "run_index": self.runs.index(run), "iteration": int(it[0]),
                         "alpha": alpha, "dist_px": near["dist_px"] if near else math.inf,
                         "phi": float(np.interp(alpha, a[fin], phi[0][fin])) if fin.sum() >= 2 else math.nan})
        self.hover_info = info
        return info

    def pick(self, px: float, py: float, tolerance_px: float = PICK_PX) -> int | None:
        """Select the step whose drawn arc is nearest the cursor (any run, within ``tolerance_px``)."""
        self.hover(px, py)
        near = self.nearest_arc(px, py, tolerance_px)
        if near is None:
            return None
        self.select(near["run_index"], near["iteration"])
        return near["iteration"]

    def select(self, run_index: int | None, iteration: int | None) -> None:
        self.selected_run = run_index
        self.state.update(selected=iteration)
        self.request_redraw()

    def selected_run_data(self) -> RunData | None:
        """The run whose step is selected (the picked one; else the first that holds the iteration)."""
        k = self.state.selected
        if k is None:
            return None
        order = list(range(len(self.runs)))
        if self.selected_run is not None and self.selected_run < len(self.runs):
            order.remove(self.selected_run)
            order.insert(0, self.selected_run)
        for i in order:
            if len(self.runs[i]) and self.runs[i].windows.row_of(int(k)) is not None:
                return self.runs[i]
        return None

    def details(self) -> dict | None:
        """Numbers of the selected line search (see :func:`gda_gl.detail.detail_numbers`)."""
        from ..detail import detail_numbers

        run = self.selected_run_data()
        if run is None:
            return None
        return dict(detail_numbers(run.windows.row_of(int(self.state.selected)), 0), run=run.name)

    # -- filters -------------------------------------------------------------
    def matches(self) -> np.ndarray:
        """Iterations matching the highlight filter (visible runs, sorted, unique; cached).

        Runs of at most :data:`MATCH_ROWS` rows are filtered whole; a longer run contributes the
        matches among the rows in the drawn view when those are at most :data:`MATCH_ROWS`, else
        none (the frame's bucket counts, ``drawn_match``, then give the number in view).
        ``matches_whole`` says whether the result covers every visible run completely.
        """
        base = (self.state.highlight, tuple(bool(getattr(r, "visible", True)) for r in self.runs),
                tuple(len(r) for r in self.runs))
        v = self.view()
        vkey = (v.x0, v.x1)
        if self._matches_key is not None and self._matches_key[0] == base and \
                (self.matches_whole or self._matches_key[1] == vkey):
            return self._matches
        parts, whole = [], True
        for run in self.visible_runs():
            if len(run) == 0:
                continue
            if len(run) <= MATCH_ROWS:
                d = run.data
            else:
                whole = False
                if run.windows.rows_in_range(math.floor(v.x0), v.x1) > MATCH_ROWS:
                    continue
                d = run.rows(math.floor(v.x0), v.x1)
            m = highlight_mask(d, self.state.highlight)
            if m is not None:
                parts.append(d.iteration[m])
        self._matches = np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)
        self._matches_key, self.matches_whole = (base, vkey), whole
        return self._matches

    def match_summary(self) -> str:
        """``highlight X: N steps (M in view)`` for the status line, or '' without a filter."""
        if not self.state.highlight:
            return ""
        try:
            m = self.matches()
        except ValueError as exc:
            return str(exc)
        v = self.view()
        lo = int(np.searchsorted(m, math.floor(v.x0), side="left"))
        hi = int(np.searchsorted(m, math.ceil(v.x1), side="left"))
        if self.matches_whole:
            return f"highlight {self.state.highlight}: {len(m):,} steps ({max(0, hi - lo):,} in view)"
        count, exact = self.drawn_match if self.drawn_match is not None else (None, True)
        if count is None:
            return f"highlight {self.state.highlight}: {max(0, hi - lo):,} in view"
        return f"highlight {self.state.highlight}: {'' if exact else 'at most '}{count:,} in view"

    def jump_match(self, direction: int = 1) -> int | None:
        """Zoom onto the next (+1) or previous (-1) matching iteration after the selection / view centre."""
        m = self.matches()
        if len(m) == 0:
            return None
        x0, x1 = self.state.x_range or self.full_x_range()
        ref = self.state.selected if self.state.selected is not None else 0.5 * (x0 + x1)
        i = np.searchsorted(m, ref, side="right" if direction > 0 else "left")
        i = i if direction > 0 else i - 1
        if not 0 <= i < len(m):
            return None
        k = int(m[i])
        self.select(None, k)
        self.zoom_to_iteration(k)
        return k

    def cycle_highlight(self) -> str | None:
        i = HIGHLIGHTS.index(self.state.highlight) if self.state.highlight in HIGHLIGHTS else 0
        self.state.update(highlight=HIGHLIGHTS[(i + 1) % len(HIGHLIGHTS)])
        return self.state.highlight

    def cycle_color(self) -> str:
        i = COLOR_BY_CHOICES.index(self.state.color_by)
        self.state.update(color_by=COLOR_BY_CHOICES[(i + 1) % len(COLOR_BY_CHOICES)])
        return self.state.color_by

    def set_iteration_range(self, lo: int | None, hi: int | None) -> None:
        """Filter by iteration range (shows exactly that range)."""
        full = self.full_x_range()
        self.state.update(iteration_range=None if lo is None and hi is None else (lo, hi))
        self.set_x_range((full[0] if lo is None else lo, full[1] if hi is None else hi))

    def set_epoch_range(self, lo: int, hi: int) -> None:
        """Filter by epochs ``lo..hi`` (inclusive): the view spans their iterations."""
        xs = []
        for run in self.visible_runs():
            if len(run) == 0:
                continue
            try:
                d = run.data  # epochs: a whole column
            except MemoryError:
                continue  # too long to load: epochs filter the runs that can be loaded
            e = d["epoch"]
            sel = (e >= lo) & (e <= hi)
            if sel.any():
                it = d.iteration[sel]
                xs += [float(it.min()), float(it.max()) + 1.0]
        if xs:
            self.state.update(epoch_range=(lo, hi))
            self.set_x_range((min(xs), max(xs)))

    def max_epoch(self) -> int:
        """The last run's last epoch (epochs never decrease): read from the last row only."""
        out = 0
        for r in self.runs:
            if len(r):
                last = r.row_at(r.x_span[1] - 0.5)
                if last is not None and len(last):
                    out = max(out, int(last["epoch"][-1]))
        return out

    # -- runs ------------------------------------------------------------------
    def set_run_visible(self, index: int, visible: bool) -> None:
        self.runs[index].visible = bool(visible)
        self._matches_key = None
        self.request_redraw()

    def set_run_color(self, index: int, rgba) -> None:
        self.runs[index].color = np.asarray(rgba, np.float32)
        self.request_redraw()

    # -- export ------------------------------------------------------------------
    def visible_rows_csv(self, path: str | Path) -> int:
        """Write the rows whose steps are in the drawn x range (all visible runs) as CSV; returns the row count."""
        v = self.view()
        n = 0
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            header = None
            for run in self.visible_runs():
                if len(run) == 0:
                    continue
                d = run.rows(math.floor(v.x0), v.x1)
                sel = np.nonzero(d.iteration + 1 > v.x0)[0]
                cols = list(d.columns)
                if header is None:
                    header = ["run", *cols]
                    w.writerow(header)
                for r in sel:
                    w.writerow([run.name, *(d[c][r].item() for c in cols)])
                    n += 1
        return n

    # -- keys ----------------------------------------------------------------
    def key(self, name: str) -> str | None:
        """Handle a key; returns a short status message (or None)."""
        k = name.lower() if len(name) == 1 else name
        if k in ("+", "="):
            self.zoom_at(self.layout.left + self.layout.plot[2] / 2, 0, 2.0)
        elif k in ("-", "_"):
            self.zoom_at(self.layout.left + self.layout.plot[2] / 2, 0, 0.5)
        elif k in ("Home", "0"):
            self.home()
        elif k == "Left":
            self.pan(self.layout.plot[2] * 0.25)
        elif k == "Right":
            self.pan(-self.layout.plot[2] * 0.25)
        elif k == "l":
            self.state.update(log_y=not self.state.log_y, y_range=None)
            return f"log y {'on' if self.state.log_y else 'off'}"
        elif k == "a":
            return "y auto-fit " + ("on" if self.toggle_autofit() else "off (ctrl+wheel zooms y, drag pans it)")
        elif k == "c":
            return f"colour by {self.cycle_color()}"
        elif k == "o":
            self.state.update(show_loose=not self.state.show_loose)
            return f"beyond the step (light arcs) {'on' if self.state.show_loose else 'off'}"
        elif k == "t":
            self.state.update(show_trials=not self.state.show_trials)
        elif k == "b":
            self.state.update(show_rules=not self.state.show_rules)
        elif k == "e":
            self.state.update(show_envelope=not self.state.show_envelope)
        elif k == "m":
            steps = (0.0, 0.6, 0.9, 0.99, 0.999)
            cur = self.state.smoothing
            nxt = next((v for v in steps if v > cur + 1e-12), 0.0)
            self.state.update(smoothing=nxt)
            return f"smoothing (EMA of the classic curve) {nxt:g}" if nxt else "smoothing off"
        elif k == "g":
            self.show_legend = not self.show_legend
            self.request_redraw()
        elif k == "r":
            self.show_readout = not self.show_readout
            self.request_redraw()
        elif k == "h":
            h = self.cycle_highlight()
            return f"highlight: {h or 'none'}" + (f" ({len(self.matches()):,} steps)" if h else "")
        elif k == "n":
            j = self.jump_match(+1)
            return f"match: iteration {j}" if j is not None else "no further match"
        elif k == "p":
            j = self.jump_match(-1)
            return f"match: iteration {j}" if j is not None else "no earlier match"
        elif k == "d":
            if self.hover_info and "iteration" in self.hover_info:
                self.select(self.hover_info.get("run_index"), self.hover_info["iteration"])
                return f"details of iteration {self.state.selected}"
        elif k == "f":
            self.state.update(follow=True)
            self.follow_newest()
            return "following the newest iterations"
        elif k in ("?", "F1"):
            self.show_help = not self.show_help
            self.request_redraw()
            return "help: press ? or Esc to close" if self.show_help else None
        elif k == "Escape" and self.show_help:
            self.show_help = False
            self.request_redraw()
        return None

    # -- live runs -----------------------------------------------------------
    def attach_recordings(self, recordings: list, pending: list[str] | None = None) -> None:
        """Keep the recordings open to poll them for new rows (``--follow``); wait for ``pending`` files."""
        self.recordings = list(recordings)
        self.pending = list(pending or [])
        for run in self.runs:
            self._last_growth[run.name] = self.clock()
        for p in self.pending:
            self.live_status[Path(p).stem] = "waiting for the file"

    def _open_pending(self) -> int:
        """Open followed files that appeared since the last poll; returns how many did."""
        from recorder.store import Recording

        opened = 0
        for p in list(self.pending):
            if not Path(p).exists():
                continue
            rec = None
            try:
                rec = Recording(p)
                run = RunData.from_recording(rec, color=RUN_COLORS[len(self.runs) % len(RUN_COLORS)])
            except Exception as exc:  # still being created: try again at the next poll
                log.debug("%s not readable yet: %s", p, exc)
                if rec is not None:
                    rec.close()
                continue
            self.runs.append(run)
            self.recordings.append(rec)
            self.pending.remove(p)
            self.live_status.pop(Path(p).stem, None)
            self._last_growth[run.name] = self.clock()
            opened += 1
        return opened

    def poll(self) -> int:
        """Append rows committed since the last poll to the runs; returns how many arrived."""
        prev_full = self.full_x_range()
        was_whole = self._shows_whole(prev_full)
        total = 0
        opened = self._open_pending() if self.pending else 0
        for rec, run in zip(self.recordings, self.runs):
            if run.in_memory:
                new = rec.read_new()
                n = len(new)
                run.extend(new)
            else:
                n = run.refresh()
            if n:
                total += n
                self._last_growth[run.name] = self.clock()
            state = rec.writer_state()
            idle = self.clock() - self._last_growth.get(run.name, self.clock())
            if state == "live":
                self.live_status[run.name] = "live" if idle < 5.0 else f"live, no new data for {idle:.0f} s"
            elif state == "died":
                self.live_status[run.name] = "writer died (recording ends here)"
            else:
                self.live_status[run.name] = "finished"
        if opened:
            total += sum(len(r) for r in self.runs[-opened:])
        if total:
            self._matches_key = None
            if self.state.follow:
                self.follow_newest(grow=was_whole)
            for fn in list(self._grow):
                fn()
            self.request_redraw()
        return total

    def _shows_whole(self, full: tuple[float, float]) -> bool:
        x0, x1 = self.state.x_range or full
        return x0 <= full[0] + 1e-9 and x1 >= full[1] - 1e-9

    def follow_newest(self, grow: bool | None = None) -> None:
        """Keep the newest iteration at the right edge: the whole run while the whole run was shown
        (the view grows with it), else the same width sliding right."""
        x0, x1 = self.state.x_range or self.full_x_range()
        full = self.full_x_range()
        reach = self._reach()
        right = full[1] + max(0.0, min(reach, 4.0) - 1.0)
        if grow is None:
            grow = self._shows_whole(full)
        if grow:
            self.set_x_range((full[0], right), animate=False, keep_follow=True)
            return
        w = min(x1 - x0, full[1] - full[0] + 1.0)
        self.set_x_range((right - w, right), animate=False, keep_follow=True)


def _display(y: np.ndarray, log_y: bool) -> np.ndarray:
    """Loss to display units (the composition's :func:`gda_gl.scene.transform_y`)."""
    return transform_y(y, log_y)