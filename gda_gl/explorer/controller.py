"""Interaction logic of the explorer: zoom, pan, animation, filters, picking, live following. No GL, no toolkit.

The controller owns the :class:`~gda_gl.state.ViewState` (the single source of
truth the canvas and the panels observe) and the runs.  ``state.x_range`` /
``state.y_range`` hold the *target* view; while an animation runs, the
displayed view (:meth:`ExplorerController.display_view`) eases towards it in
about a quarter second (centre linearly, width geometrically, smoothstep in
time) and ends exactly on it.  Pixel coordinates are the toolkit's: origin at
the top-left of the canvas.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Callable

import numpy as np

from recorder.store import Recording

from ..render import Layout, resolve_view
from ..scene import RunData, highlight_mask, transform_y
from ..state import COLOR_BY_CHOICES, ViewState

__all__ = ["ExplorerController", "HELP", "ANIMATION_S"]

ANIMATION_S = 0.25

HELP = """\
Mouse: wheel zoom (anchored at the cursor) | drag pan | shift+drag box zoom | double-click zoom onto one
iteration | click a segment: details | hover: iteration, alpha, loss under the cursor
Keys: + / - zoom in / out | Home or 0: whole run | arrows: pan | L log y | C next colour statistic
O loose ends | T trial points | B batch rules | E envelope | H cycle highlight filter (faded others)
N / P next / previous match | D details of the hovered iteration | F follow the newest iterations (live)
S save the view state | ? or F1 this help"""

HIGHLIGHTS = (None, "overshoot", "undershoot", "efficiency<0.5", "failed", "nonfinite")


def _ease(t: float) -> float:
    t = min(1.0, max(0.0, t))
    return t * t * (3.0 - 2.0 * t)


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
        self._anim: tuple[float, tuple, tuple] | None = None
        self.hover_info: dict | None = None
        self.recordings: list[Recording] = []
        self.live_status: dict[str, str] = {}
        self._last_growth: dict[str, float] = {}
        if self.state.x_range is None:
            self.state.x_range = self.full_x_range()

    # -- geometry ----------------------------------------------------------
    @property
    def layout(self) -> Layout:
        return Layout.for_size(*self.size, colorbar=self.state.color_by != "none")

    def resize(self, width: int, height: int) -> None:
        self.size = (max(1, int(width)), max(1, int(height)))

    def full_x_range(self) -> tuple[float, float]:
        spans = [r.x_span for r in self.runs if len(r.data)]
        if not spans:
            return (0.0, 1.0)
        lo = min(s[0] for s in spans)
        hi = max(s[1] for s in spans)
        return (lo, hi if hi > lo else lo + 1.0)

    def display_view(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The (animated) x range and y range (display units) to draw now."""
        x = self._animated_x()
        st = replace(self.state, x_range=x, _observers=[])
        pw = self.layout.plot[2]
        return resolve_view(self.runs, st, pw)

    def display_state(self) -> ViewState:
        """A copy of the state with the x range being shown now (the renderer fits y itself)."""
        return replace(self.state, x_range=self._animated_x(), _observers=[])

    def px_to_data(self, px: float, py: float) -> tuple[float, float]:
        """Canvas pixel (origin top-left) to (iteration x, loss) in data units."""
        (x0, x1), (y0, y1) = self.display_view()
        lx, ly, pw, ph = self.layout.plot
        gy = self.size[1] - py
        x = x0 + (px - lx) / pw * (x1 - x0)
        yd = y0 + (gy - ly) / ph * (y1 - y0)
        return x, (10 ** yd if self.state.log_y else yd)

    def data_to_px(self, x: float, y: float) -> tuple[float, float]:
        (x0, x1), (y0, y1) = self.display_view()
        lx, ly, pw, ph = self.layout.plot
        yd = float(transform_y(np.array([y]), self.state.log_y)[0])
        return lx + (x - x0) / (x1 - x0) * pw, self.size[1] - (ly + (yd - y0) / (y1 - y0) * ph)

    # -- animation ---------------------------------------------------------
    def _animated_x(self) -> tuple[float, float]:
        if self._anim is None:
            return self.state.x_range or self.full_x_range()
        t0, a, b = self._anim
        t = (self.clock() - t0) / ANIMATION_S
        if t >= 1.0:
            self._anim = None
            return self.state.x_range
        e = _ease(t)
        ca, cb = 0.5 * (a[0] + a[1]), 0.5 * (b[0] + b[1])
        wa, wb = a[1] - a[0], b[1] - b[0]
        w = wa * (wb / wa) ** e
        c = ca + (cb - ca) * e
        return (c - 0.5 * w, c + 0.5 * w)

    @property
    def animating(self) -> bool:
        if self._anim is not None and self.clock() - self._anim[0] >= ANIMATION_S:
            self._anim = None
        return self._anim is not None

    def set_x_range(self, x_range: tuple[float, float], animate: bool = True, y_range=None,
                    keep_follow: bool = False) -> None:
        lo, hi = float(x_range[0]), float(x_range[1])
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi - lo < 1e-6:
            return
        current = self._animated_x()
        self._anim = (self.clock(), current, (lo, hi)) if animate else None
        changes = {"x_range": (lo, hi), "y_range": y_range}
        if not keep_follow:
            changes["follow"] = False
        self.state.update(**changes)

    # -- zoom and pan ------------------------------------------------------
    def zoom_at(self, px: float, py: float, factor: float, animate: bool = True) -> None:
        """Zoom by ``factor`` (> 1 in) keeping the iteration under pixel column ``px`` fixed."""
        x0, x1 = self.state.x_range or self.full_x_range()
        lx, _, pw, _ = self.layout.plot
        frac = min(1.0, max(0.0, (px - lx) / pw))
        anchor = x0 + frac * (x1 - x0)  # anchor in the target view, so repeated wheel steps compose
        w = (x1 - x0) / factor
        self.set_x_range((anchor - frac * w, anchor + (1 - frac) * w), animate)

    def pan(self, dx_px: float, dy_px: float = 0.0) -> None:
        x0, x1 = self.state.x_range or self.full_x_range()
        pw = self.layout.plot[2]
        shift = -dx_px / pw * (x1 - x0)
        yr = self.state.y_range
        if yr is not None and dy_px:
            (_, _), (y0, y1) = self.display_view()
            ph = self.layout.plot[3]
            dy = dy_px / ph * (y1 - y0)
            lo, hi = y0 + dy, y1 + dy
            yr = (10 ** lo, 10 ** hi) if self.state.log_y else (lo, hi)
        self.set_x_range((x0 + shift, x1 + shift), animate=False, y_range=yr)

    def box_zoom(self, p0: tuple[float, float], p1: tuple[float, float]) -> None:
        (xa, ya), (xb, yb) = self.px_to_data(*p0), self.px_to_data(*p1)
        if abs(p1[0] - p0[0]) < 3:
            return
        yr = (min(ya, yb), max(ya, yb)) if abs(p1[1] - p0[1]) >= 3 else None
        self.set_x_range((min(xa, xb), max(xa, xb)), y_range=yr)

    def home(self) -> None:
        self.set_x_range(self.full_x_range())

    def zoom_to_iteration(self, iteration: int) -> None:
        """Zoom onto one step: phi_k with its loose end and a little of both neighbours."""
        reach = max((float(r.alphas.max()) for r in self.runs), default=2.0)
        self.set_x_range((iteration - 0.15, iteration + max(1.0, reach) + 0.15))

    # -- picking and details -------------------------------------------------
    def iteration_at(self, x: float) -> tuple[RunData, int] | None:
        """The run and row whose segment [k, k+1) contains x (first run that has one)."""
        for run in self.runs:
            it = run.data.iteration
            r = int(np.searchsorted(it, int(math.floor(x)), side="right")) - 1
            if 0 <= r < len(it) and it[r] <= x < it[r] + 1:
                return run, r
        return None

    def hover(self, px: float, py: float) -> dict | None:
        """Iteration, alpha and loss under the cursor (plus phi_k(alpha) there), or None off the plot."""
        lx, ly, pw, ph = self.layout.plot
        gy = self.size[1] - py
        if not (lx <= px <= lx + pw and ly <= gy <= ly + ph):
            self.hover_info = None
            return None
        x, y = self.px_to_data(px, py)
        info = {"x": x, "loss": y}
        hit = self.iteration_at(x)
        if hit is not None:
            run, r = hit
            d = run.data
            taken = float(d["taken_alpha"][r]) if d["taken_alpha"][r] > 0 else 1.0
            alpha = (x - d.iteration[r]) * taken
            phi = d.phi[r].astype(np.float64)
            fin = np.isfinite(phi)
            info.update({"run": run.name, "iteration": int(d.iteration[r]), "alpha": alpha,
                         "phi": float(np.interp(alpha, d.alpha_grid[fin], phi[fin])) if fin.sum() >= 2 else math.nan})
        self.hover_info = info
        return info

    def pick(self, px: float, py: float, tolerance_px: float = 8.0) -> int | None:
        """Select the segment under the cursor (within ``tolerance_px`` of its curve); returns the iteration."""
        info = self.hover(px, py)
        if not info or "iteration" not in info or not math.isfinite(info.get("phi", math.nan)):
            return None
        _, cy = self.data_to_px(info["x"], info["phi"])
        if abs(cy - py) > tolerance_px:
            return None
        self.state.update(selected=info["iteration"])
        return info["iteration"]

    def details(self) -> dict | None:
        """Numbers of the selected line search (see :func:`gda_gl.detail.detail_numbers`)."""
        from ..detail import detail_numbers

        k = self.state.selected
        if k is None:
            return None
        for run in self.runs:
            try:
                row = run.data.row_of(k)
            except KeyError:
                continue
            return dict(detail_numbers(run, row), run=run.name)
        return None

    # -- filters -------------------------------------------------------------
    def matches(self) -> np.ndarray:
        """Iterations matching the highlight filter (all runs, sorted, unique)."""
        parts = []
        for run in self.runs:
            m = highlight_mask(run.data, self.state.highlight)
            if m is not None:
                parts.append(run.data.iteration[m])
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)

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
        self.state.update(selected=k)
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
        for run in self.runs:
            e = run.data["epoch"]
            sel = (e >= lo) & (e <= hi)
            if sel.any():
                it = run.data.iteration[sel]
                xs += [float(it.min()), float(it.max()) + 1.0]
        if xs:
            self.state.update(epoch_range=(lo, hi))
            self.set_x_range((min(xs), max(xs)))

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
        elif k == "c":
            return f"colour by {self.cycle_color()}"
        elif k == "o":
            self.state.update(show_loose=not self.state.show_loose)
        elif k == "t":
            self.state.update(show_trials=not self.state.show_trials)
        elif k == "b":
            self.state.update(show_rules=not self.state.show_rules)
        elif k == "e":
            self.state.update(show_envelope=not self.state.show_envelope)
        elif k == "h":
            return f"highlight: {self.cycle_highlight() or 'none'}"
        elif k == "n":
            j = self.jump_match(+1)
            return f"match: iteration {j}" if j is not None else "no further match"
        elif k == "p":
            j = self.jump_match(-1)
            return f"match: iteration {j}" if j is not None else "no earlier match"
        elif k == "d":
            if self.hover_info and "iteration" in self.hover_info:
                self.state.update(selected=self.hover_info["iteration"])
                return f"details of iteration {self.state.selected}"
        elif k == "f":
            self.state.update(follow=True)
            self.follow_newest()
            return "following the newest iterations"
        elif k in ("?", "F1"):
            return HELP
        return None

    # -- live runs -----------------------------------------------------------
    def attach_recordings(self, recordings: list[Recording]) -> None:
        """Keep the recordings open to poll them for new rows (``--follow``)."""
        self.recordings = recordings
        for run in self.runs:
            self._last_growth[run.name] = self.clock()

    def poll(self) -> int:
        """Append rows committed since the last poll to the runs; returns how many arrived."""
        total = 0
        for rec, run in zip(self.recordings, self.runs):
            new = rec.read_new()
            if len(new):
                run.extend(new)
                total += len(new)
                self._last_growth[run.name] = self.clock()
            state = rec.writer_state()
            idle = self.clock() - self._last_growth.get(run.name, self.clock())
            if state == "live":
                self.live_status[run.name] = "live" if idle < 5.0 else f"live, no new data for {idle:.0f} s"
            elif state == "died":
                self.live_status[run.name] = "writer died (recording ends here)"
            else:
                self.live_status[run.name] = "finished"
        if total and self.state.follow:
            self.follow_newest()
        return total

    def follow_newest(self) -> None:
        """Move the view so the newest iteration is at its right edge (same width)."""
        x0, x1 = self.state.x_range or self.full_x_range()
        full = self.full_x_range()
        w = min(x1 - x0, full[1] - full[0] + 1.0)
        reach = max((float(r.alphas.max()) for r in self.runs), default=1.0)
        right = full[1] + max(0.0, reach - 1.0)
        self.set_x_range((right - w, right), animate=False, keep_follow=True)
