"""Navigation of the explorer's plot: the x/y view, its bounds, the target and the drawn view, zoom and pan.

:class:`Navigator` is the base of :class:`~gda_gl.explorer.controller.ExplorerController`:
it owns the geometry (layout for the canvas size, the runs' full x span, the
zoom-out bound), the *target* view (``state.x_range`` / ``state.y_range``) and
its flight (:class:`~gda_gl.explorer.animation.Flight`), and the *drawn* view
(:attr:`Navigator.drawn_view`, set by the canvas after every frame) through
which every pixel -> data mapping goes.  The controller adds runs, selection,
filters and keys on top.  No GL, no toolkit.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Callable

from gda_gl.compose.frame import Frame
from gda_gl.compose.layout import Layout, figure_layout
from gda_gl.compose import xaxis
from gda_gl.compose.scene import RunData, compose, runs_x_span
from gda_gl.compose.xaxis import AxisRange, IterRange
from gda_gl.compose.state import ViewState
from gda_gl.compose.view import View
from .animation import Flight

__all__ = ["Navigator", "ZOOM_OUT_LIMIT", "MIN_WIDTH"]

ZOOM_OUT_LIMIT = 1.1      # the widest view: this many times the run (plus the loose ends of its last step)
MIN_WIDTH = 0.02          # the narrowest view, in iterations


class Navigator:
    """The view of one plot over ``runs``: target, flight, drawn view, zoom, pan.

    Parameters
    ----------
    runs : the runs shown (overlaid)
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
        self.flight = Flight(lambda: self.clock())
        self._drawn: tuple[View | None, Frame | None] = (None, None)  # what is on screen (set_drawn)
        self._redraw: list[Callable[[], None]] = []
        if self.state.x_range is None:
            self.state.x_range = tuple(self.full_x_range())

    # -- listeners -----------------------------------------------------------
    def on_redraw(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` whenever the picture must be redrawn, even if the state did not change."""
        self._redraw.append(fn)

    def request_redraw(self) -> None:
        for fn in list(self._redraw):
            fn()

    # -- geometry ----------------------------------------------------------
    @property
    def layout(self) -> Layout:
        return figure_layout(*self.size, self.runs, self.state)  # with a panel per series drawn in one

    def resize(self, width: int, height: int) -> None:
        self.size = (max(1, int(width)), max(1, int(height)))

    def visible_runs(self) -> list[RunData]:
        return [r for r in self.runs if getattr(r, "visible", True)]

    def full_x_range(self) -> tuple[float, float]:
        """The runs' whole x extent on the state's x axis."""
        return runs_x_span(self.runs, self.state.x_axis)

    def _axis_map(self, run: RunData | None = None):
        """The x axis map of ``run`` (the first run with rows by default); None on the iteration axis."""
        run = run or next((r for r in self.runs if len(r)), None)
        return None if run is None else run.axis_map(self.state.x_axis)

    def full_iterations(self) -> IterRange:
        """Every visible run's whole extent in iterations, together (0..1 for none)."""
        out = None
        for r in self.visible_runs():
            if len(r):
                out = r.x_span.union(out)
        return out if out is not None else IterRange(0.0, 1.0)

    def iterations_of(self, run: RunData) -> IterRange | None:
        """The iterations of ``run`` inside the state's x range (None when the state has no x range)."""
        if self.state.x_range is None:
            return None
        return run.to_iterations(self.state.x_axis, AxisRange(*self.state.x_range))

    def iterations_shown(self) -> IterRange | None:
        """The state's x range as iterations: each visible run's own, together (None when it has no x range)."""
        if self.state.x_range is None:
            return None
        out = None
        for r in self.visible_runs():
            if len(r):
                out = self.iterations_of(r).union(out)
        return out if out is not None else IterRange(*self.state.x_range)

    def _per_iteration(self) -> float:
        """Axis units per iteration (1 on the iteration axis; the runs' average slope on others)."""
        gmap = self._axis_map()
        if gmap is None:
            return 1.0
        du, dv = gmap.u[-1] - gmap.u[0], gmap.v[-1] - gmap.v[0]
        return dv / du if du > 0 and dv > 0 else 1.0

    def min_width(self) -> float:
        """The narrowest view on the x axis: :data:`MIN_WIDTH` iterations."""
        return MIN_WIDTH * self._per_iteration()

    # -- what is on screen -------------------------------------------------------
    def set_drawn(self, view: View, frame: Frame) -> None:
        """Called by the canvas after every frame: the view and frame now on screen."""
        self._drawn = (view, frame)

    @property
    def drawn_view(self) -> View | None:
        """The view last drawn (None before the first frame)."""
        return self._drawn[0]

    @drawn_view.setter
    def drawn_view(self, view: View | None) -> None:
        """Set only the view on screen (its frame is composed on demand, see :meth:`drawn`)."""
        self._drawn = (view, None)

    def compose_for(self, state: ViewState) -> tuple[View, Frame]:
        """The composition of ``state`` on this canvas (:func:`gda_gl.compose.scene.compose`)."""
        lay = self.layout
        return compose(self.runs, state, lay.plot, (lay.width, lay.height))

    def drawn(self) -> tuple[View, Frame]:
        """The view and frame on screen: what the canvas last drew; before the first frame, what it would draw.

        Where only the view is known (set through :attr:`drawn_view`), its frame is composed for exactly
        that view once and kept.
        """
        view, frame = self._drawn
        if view is None:
            st = replace(self.state, x_range=self._animated_x(consume=False), _observers=[])
            return self.compose_for(st)
        if frame is None:
            st = replace(self.state, x_range=view.x_range, y_range=view.y_range_data, log_y=view.log_y,
                         _observers=[])
            frame = compose(self.runs, st, view.plot, view.size)[1]
            self._drawn = (view, frame)
        return view, frame

    def _reach(self) -> float:
        """How far right of x = k + 1 a step's drawn arc reaches (the alpha grid's end / the step)."""
        return max((float(r.reach) for r in self.runs), default=1.0)

    def x_bounds(self) -> tuple[float, float]:
        """The widest x range one may zoom out to: about ZOOM_OUT_LIMIT times the run."""
        f0, f1 = self.full_x_range()
        f1 += (max(0.0, min(self._reach(), 4.0) - 1.0) if self.runs else 0.0) * self._per_iteration()
        pad = max(0.5 * (ZOOM_OUT_LIMIT - 1.0) * (f1 - f0), 0.25 * self._per_iteration())
        return (f0 - pad, f1 + pad)

    def clamp_x(self, lo: float, hi: float) -> tuple[float, float]:
        """Keep a view inside :meth:`x_bounds` (narrowing it if wider), at least MIN_WIDTH wide."""
        b0, b1 = self.x_bounds()
        w = min(max(hi - lo, self.min_width()), b1 - b0)
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
        view = self.compose_for(st)[0]
        return view.x_range, view.y_range

    def display_state(self) -> ViewState:
        """A copy of the state with the x range to draw now; the animation ends when this returns its target."""
        return replace(self.state, x_range=self._animated_x(consume=True), _observers=[])

    def view(self) -> View:
        """The view on screen: the last drawn one, or (before the first frame) the one that would be drawn."""
        return self.drawn_view if self.drawn_view is not None else self.drawn()[0]

    def px_to_data(self, px: float, py: float) -> tuple[float, float]:
        """Canvas pixel (origin top-left) to (iteration x, loss) in data units, through the drawn view."""
        return self.view().px_to_data(px, py)

    def data_to_px(self, x: float, y: float) -> tuple[float, float]:
        """(iteration x, loss) to canvas pixels (origin top-left), through the drawn view."""
        return self.view().data_to_px(x, y)

    # -- animation ---------------------------------------------------------
    def _animated_x(self, consume: bool = False) -> tuple[float, float]:
        return self.flight.x_range(self.state.x_range or self.full_x_range(), consume)

    @property
    def animating(self) -> bool:
        """True until a frame showing the target has been handed out by :meth:`display_state`."""
        return self.flight.active

    def set_x_range(self, x_range: tuple[float, float], animate: bool = True, y_range=None,
                    keep_follow: bool = False, anchor: float | None = None) -> None:
        lo, hi = float(x_range[0]), float(x_range[1])
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi - lo < 1e-9:
            return
        lo, hi = self.clamp_x(lo, hi)
        if animate:
            self.flight.start(self._animated_x(), (lo, hi), anchor)
        else:
            self.flight.stop()
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
        w = max((x1 - x0) / factor, self.min_width())  # narrowest about the anchor (clamp_x would re-centre: a drift)
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
        u = (iteration - 0.15, iteration + max(1.0, min(reach, 4.0)) + 0.15, iteration + 0.5)
        gmap = self._axis_map(getattr(self, "selected_run_data", lambda: None)())
        x0, x1, anchor = (float(v) for v in (u if gmap is None else gmap.to_axis(u)))
        self.set_x_range((x0, x1), anchor=anchor)

    def set_x_axis(self, axis: str) -> None:
        """Show the runs on another x axis (the whole run; the y range fits again).

        Raises
        ------
        ValueError : a visible run cannot provide ``axis`` (the reason)
        """
        for r in self.visible_runs():
            why = xaxis.unavailable(r, axis)
            if why:
                raise ValueError(why)
        self.flight.stop()
        self.state.update(x_axis=axis, y_range=None, x_range=tuple(runs_x_span(self.runs, axis)), follow=False)
        self.request_redraw()
