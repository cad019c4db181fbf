"""Interaction logic of the explorer: the view state, zoom and pan, selection, filters. No GL, no toolkit.

The controller owns the :class:`~gda_gl.compose.state.ViewState` (the single source of
truth the canvas and the panels observe) and the runs handed to it.  The rest
of the explorer's logic lives in parts with one responsibility each:

- :mod:`.animation`: the flight of the x range towards its target;
- :mod:`.picking`: the drawn arc nearest a pixel, the hover readout;
- :mod:`.filters`: the highlight filter's matches and counts;
- :mod:`.inputmap`: the table of keys and mouse gestures (also the help);
- :mod:`.follow`: live sources (owned by the window; it hands runs to :meth:`ExplorerController.add_run`);
- :mod:`.export`: PNG and CSV export.

``state.x_range`` / ``state.y_range`` hold the *target* view; while an
animation runs, the displayed x range (:meth:`ExplorerController.display_state`)
moves towards it.  Two views, never mixed up:

- the **target** (``state.x_range``): where an animation is going;
- the **drawn view** (:attr:`ExplorerController.drawn_view`, a
  :class:`~gda_gl.compose.view.View` set by the canvas after every frame from
  ``CurveRenderer.last_view``): what is on screen.  Every pixel -> data mapping
  (hover, click, box zoom, status line) uses it.

An animation is over only once a frame *showing the target* has been handed
out (:meth:`display_state` returned it), so a frame that takes longer than the
animation still ends with the target on screen.  Pixel coordinates are the
toolkit's: origin at the top-left of the canvas.

Run data is read only through the run's windows (``run.rows_reaching``,
``run.rows``, ``run.row_at``, ``run.windows.row_of``, ``run.x_span``,
``len(run)``, ``run.reach``, ``run.visible``), never whole, so recordings of
any length work; the highlight filter (:mod:`.filters`) and the epoch filter
are the places that read a whole column, within limits.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np

from gda_gl.compose import seriesview
from gda_gl.compose.scene import RunData, iterations_on_axis
from gda_gl.compose.xaxis import IterRange
from gda_gl.compose.state import COLOR_BY_CHOICES, ViewState
from gda_gl.compose.detail import detail_numbers
from . import export, filters, inputmap, picking
from .findings import FindingsNav
from .navigation import MIN_WIDTH, ZOOM_OUT_LIMIT, Navigator

log = logging.getLogger(__name__)

__all__ = ["ExplorerController", "ZOOM_OUT_LIMIT", "MIN_WIDTH"]


class ExplorerController(Navigator):
    """Zoom/pan (:class:`~.navigation.Navigator`), selection, filters and keys for runs shown in one plot.

    Parameters
    ----------
    runs : prepared runs (overlaid)
    state : the shared view state (a fresh one when None)
    size : canvas size in pixels (width, height)
    clock : time source (tests pass a fake clock)
    """

    def __init__(self, runs: list[RunData], state: ViewState | None = None, size: tuple[int, int] = (1200, 700),
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(runs, state, size, clock)
        self.hover_info: dict | None = None
        self.drawn_mode: str | None = None    # "overview" or "detail", of the drawn frame
        self.drawn_match: tuple | None = None  # (rows matching the highlight in the drawn frame, exact?)
        self.selected_run: int | None = None
        self.show_help = False
        self.show_legend = True
        self.show_readout = False
        self._grow: list[Callable[[], None]] = []
        self._select: list[Callable[[], None]] = []
        self._matches = filters.Matches()
        #: the runs' findings (``gda-gl diagnose``) and the flight to each (keys J / K, the findings list)
        self.findings = FindingsNav(self)

    # -- listeners -----------------------------------------------------------
    def on_grow(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` after the runs grew (new rows, or a followed file appeared)."""
        self._grow.append(fn)

    def on_select(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` after every selection, also one that changes only the run (the same step of another run)."""
        self._select.append(fn)

    # -- picking and details (geometry in :mod:`.picking`) ---------------------------------
    def iteration_at(self, x: float) -> tuple[RunData, int] | None:
        """The run and iteration whose segment [k, k+1) contains x (first visible run that has one)."""
        return picking.iteration_at(self.runs, x, self.drawn()[1].xmaps)

    def nearest_arc(self, px: float, py: float, max_px: float = picking.HOVER_PX) -> dict | None:
        """The drawn arc nearest to the cursor in the drawn frame (see :func:`.picking.nearest_arc`), with its run."""
        view, frame = self.drawn()
        near = picking.nearest_arc(frame, view, px, py, max_px)
        if near is None or near["run_index"] >= len(self.runs):
            return None
        return dict(near, run=self.runs[near["run_index"]])

    def hover(self, px: float, py: float) -> dict | None:
        """What the cursor points at in the drawn frame (see :func:`.picking.hover_info`), or None off the plot."""
        view, frame = self.drawn()
        info = picking.hover_info(self.runs, frame, view, px, py)
        if info is not None and "iteration" in info and self.state.color_by not in (None, "none"):
            info["stat"] = picking.step_statistic(self.runs[info["run_index"]], info["iteration"], self.state.color_by)
        self.hover_info = info
        return info

    def pick(self, px: float, py: float, tolerance_px: float = picking.PICK_PX) -> int | None:
        """Select the step whose drawn arc is nearest the cursor (any run, within ``tolerance_px``)."""
        self.hover(px, py)
        near = self.nearest_arc(px, py, tolerance_px)
        if near is None:
            self._focus_line(px, py)
            return None
        self.select(near["run_index"], near["iteration"])
        return near["iteration"]

    def _focus_line(self, px: float, py: float) -> None:
        """A click on a run's line among many draws that run in full (``ViewState.focus``)."""
        from .runtable import line_at

        view, frame = self.drawn()
        k = line_at(frame, view, px, py)
        if k is not None and k < len(self.runs):
            self.state.update(focus=(self.runs[k].name,))

    def release(self, p0: tuple[float, float], pos: tuple[float, float], box: bool, dragged: bool) -> str | None:
        """The left button, pressed at ``p0``, goes up at ``pos`` (pixels): box zoom, or a click's pick.

        A box drag zooms to the box, a click (no drag) selects the nearest step (:meth:`pick`), a pan
        drag has already moved.  Returns the status message of a selected step, else None.
        """
        if box and dragged:
            self.box_zoom(p0, pos)
        elif not dragged:
            k = self.pick(*pos)
            if k is not None:
                return f"selected iteration {k}"
        return None

    def fly_to_pixel(self, px: float, py: float) -> int | None:
        """Double click: select the step under the cursor and zoom to it; returns its iteration, or None.

        The step is the drawn arc nearest the cursor, else the step of the first visible run whose
        segment ``[k, k+1)`` holds the cursor's x; None (nothing changes) where there is neither.
        """
        near = self.nearest_arc(px, py)
        if near is not None:
            idx, k = near["run_index"], near["iteration"]
        else:
            hit = self.iteration_at(self.px_to_data(px, py)[0])
            if hit is None:
                return None
            run, k = hit
            idx = self.runs.index(run)
        self.select(idx, k)
        self.zoom_to_iteration(k)
        return k

    def select(self, run_index: int | None, iteration: int | None) -> None:
        self.selected_run = run_index
        name = self.runs[run_index].name if run_index is not None and run_index < len(self.runs) else None
        self.state.update(selected=iteration, selected_run=name if iteration is not None else None)
        for fn in list(self._select):
            fn()
        self.request_redraw()

    def selected_run_data(self) -> RunData | None:
        """The run whose step is selected (the picked one; else the first that holds the iteration)."""
        k = self.state.selected
        if k is None:
            return None
        order = list(range(len(self.runs)))
        if self.selected_run is None and self.state.selected_run is not None:  # a saved state names the run
            self.selected_run = next((i for i, r in enumerate(self.runs) if r.name == self.state.selected_run), None)
        if self.selected_run is not None and self.selected_run < len(self.runs):
            order.remove(self.selected_run)
            order.insert(0, self.selected_run)
        for i in order:
            if len(self.runs[i]) and self.runs[i].windows.row_of(int(k)) is not None:
                return self.runs[i]
        return None

    def details(self) -> dict | None:
        """Numbers of the selected line search (see :func:`gda_gl.compose.detail.detail_numbers`)."""
        run = self.selected_run_data()
        if run is None:
            return None
        return dict(detail_numbers(run.windows.row_of(int(self.state.selected)), 0), run=run.name)

    # -- filters (matching in :mod:`.filters`) -----------------------------------------------
    @property
    def matches_whole(self) -> bool:
        """Whether the last :meth:`matches` covers every visible run completely."""
        return self._matches.whole

    def matches(self) -> np.ndarray:
        """Iterations matching the highlight filter (visible runs, sorted, unique; cached)."""
        return self._matches.get(self.runs, self.state.highlight, self.view())

    def match_summary(self) -> str:
        """``highlight X: N steps (M in view)`` for the status line, or '' without a filter."""
        if not self.state.highlight:
            return ""
        try:
            self.matches()
        except ValueError as exc:
            return str(exc)
        return filters.summary(self.state.highlight, self._matches, self.view(), self.drawn_match)

    def jump_match(self, direction: int = 1) -> int | None:
        """Zoom onto the next (+1) or previous (-1) matching iteration after the selection / view centre."""
        its = self.iterations_shown() or self.full_iterations()
        ref = self.state.selected if self.state.selected is not None else 0.5 * (its[0] + its[1])
        k = filters.next_match(self.matches(), ref, direction)
        if k is not None:
            self.select(None, k)
            self.zoom_to_iteration(k)
        return k

    def cycle_highlight(self) -> str | None:
        hl = filters.HIGHLIGHTS
        i = hl.index(self.state.highlight) if self.state.highlight in hl else 0
        self.state.update(highlight=hl[(i + 1) % len(hl)])
        return self.state.highlight

    def cycle_color(self) -> str:
        i = COLOR_BY_CHOICES.index(self.state.color_by)
        self.state.update(color_by=COLOR_BY_CHOICES[(i + 1) % len(COLOR_BY_CHOICES)])
        return self.state.color_by

    def set_iteration_range(self, lo: int | None, hi: int | None) -> None:
        """Filter by iteration range (shows exactly that range)."""
        full = self.full_iterations()
        self.state.update(iteration_range=None if lo is None and hi is None else (lo, hi))
        its = IterRange(full[0] if lo is None else float(lo), full[1] if hi is None else float(hi))
        self.set_x_range(iterations_on_axis(self.visible_runs(), its, self.state.x_axis))

    def set_epoch_range(self, lo: int, hi: int) -> None:
        """Filter by epochs ``lo..hi`` (inclusive): the view spans their iterations."""
        span = None
        for run in self.visible_runs():
            if len(run) == 0:
                continue
            try:
                d = run.data  # epochs: a whole column
            except MemoryError:
                continue  # too long to load: epochs filter the runs that can be loaded
            e = d["epoch"]
            sel = (e >= lo) & (e <= hi)
            if sel.any():  # this run's own steps of those epochs, on the axis through its own map
                it = d.iteration[sel]
                its = IterRange(float(it.min()), float(it.max()) + 1.0)
                span = run.to_axis(self.state.x_axis, its).union(span)
        if span is not None:
            self.state.update(epoch_range=(lo, hi))
            self.set_x_range(span)

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
        self._matches.invalidate()
        self.request_redraw()

    # -- series (drawn per gda_gl.compose.seriesview.plan) ---------------------------------------
    def series_shown(self) -> tuple[list[str], list[str]]:
        """(every series the runs hold, those drawn now)."""
        on_curve, panels = seriesview.plan(self.runs, self.state)
        return seriesview.available(self.runs), on_curve + panels

    def show_series(self, name: str, on: bool) -> None:
        """Draw series ``name`` (loss-like on the curve's axes, others in a panel) or stop drawing it."""
        _, shown = self.series_shown()
        names = [n for n in shown if n != name] + ([name] if on else [])
        self.state.update(series=tuple(names))

    def toggle_series_log(self, name: str) -> bool:
        """Log y for the panel of series ``name`` on/off; returns whether it is log now."""
        log_now = name not in self.state.series_log
        others = tuple(n for n in self.state.series_log if n != name)
        self.state.update(series_log=others + ((name,) if log_now else ()))
        return log_now

    def set_run_color(self, index: int, rgba) -> None:
        self.runs[index].color = np.asarray(rgba, np.float32)
        self.request_redraw()

    def add_run(self, run: RunData) -> None:
        """Show one more run (a followed file appeared); call :meth:`runs_grew` once the poll is done."""
        self.runs.append(run)

    def runs_grew(self, was_whole: bool) -> None:
        """The runs got new rows: follow the newest when following, tell the listeners, redraw.

        ``was_whole``: whether the whole run was shown before they grew (then the view grows with it).
        """
        self._matches.invalidate()
        if self.state.follow:
            self.follow_newest(grow=was_whole)
        for fn in list(self._grow):
            fn()
        self.request_redraw()

    def shows_whole(self) -> bool:
        """Whether the target view shows every run whole."""
        full = self.full_x_range()
        x0, x1 = self.state.x_range or full
        return x0 <= full[0] + 1e-9 and x1 >= full[1] - 1e-9

    def follow_newest(self, grow: bool | None = None) -> None:
        """Keep the newest iteration at the right edge: the whole run while the whole run was shown
        (the view grows with it), else the same width sliding right."""
        x0, x1 = self.state.x_range or self.full_x_range()
        full = self.full_x_range()
        right = full[1] + max(0.0, min(self._reach(), 4.0) - 1.0)
        if grow is None:
            grow = self.shows_whole()
        if grow:
            self.set_x_range((full[0], right), animate=False, keep_follow=True)
            return
        w = min(x1 - x0, full[1] - full[0] + 1.0)
        self.set_x_range((right - w, right), animate=False, keep_follow=True)

    # -- export and keys ------------------------------------------------------------------------
    def visible_rows_csv(self, path: str | Path) -> int:
        """Write the rows whose steps are in the drawn x range (all visible runs) as CSV; returns the row count."""
        return export.visible_rows_csv(self.runs, self.view(), path, self.series_shown()[1])

    def key(self, name: str, commands=None) -> str | None:
        """Handle a key through the input map (:func:`.inputmap.dispatch`); returns a status message or None."""
        return inputmap.dispatch(self, name, commands)
