"""Pixel layout of a figure: the plot rectangle, the series panels below it, and the ticks for a plot. Compute only.

Shared by the composition (:func:`gda_gl.compose.scene.compose` fits a View into
``layout.plot``) and by the renderer, which draws into it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import seriesview
from .state import ViewState
from .ticks import linear_ticks, log_ticks

__all__ = ["Layout", "figure_layout", "axis_ticks"]


@dataclass
class Layout:
    """Pixel layout of a figure: the plot rectangle inside the canvas (origin bottom-left)."""

    width: int
    height: int
    left: int = 78
    right: int = 18
    bottom: int = 58
    top: int = 34
    origin: tuple[int, int] = (0, 0)  # viewport position in the framebuffer (stacked views)
    panels: tuple[str, ...] = ()      # series panels below the plot, top to bottom (their height is taken
                                      # from the bottom margin's side of the canvas)

    @classmethod
    def for_size(cls, width: int, height: int, colorbar: bool, panels: tuple[str, ...] = ()) -> "Layout":
        small = width < 400 or height < 250
        lay = cls(width, height, left=56 if small else 78, right=18, bottom=44 if small else 58,
                  top=26 if small else 34, panels=tuple(panels))
        if colorbar:
            lay.right += 84
        return lay

    @property
    def panel_height(self) -> int:
        """Pixels of each series panel: a quarter of the canvas each, together at most half of it."""
        if not self.panels:
            return 0
        return int(max(40, min(self.height // 4, (self.height // 2) // len(self.panels))))

    @property
    def plot(self) -> tuple[int, int, int, int]:
        """x, y, w, h of the plot rectangle (above the series panels)."""
        bottom = self.bottom + self.panel_height * len(self.panels)
        return (self.left, bottom, max(1, self.width - self.left - self.right),
                max(1, self.height - bottom - self.top))

    def panel_layouts(self) -> list["Layout"]:
        """The layouts of the series panels, top to bottom, sharing the plot's left and right edges."""
        h = self.panel_height
        n = len(self.panels)
        return [Layout(self.width, h, left=self.left, right=self.right, bottom=18, top=16,
                       origin=(self.origin[0], self.origin[1] + (n - 1 - i) * h)) for i in range(n)]


def figure_layout(width: int, height: int, runs, state: ViewState) -> Layout:
    """The layout of a figure for ``state``: a colour bar when colouring, a panel per series drawn in one."""
    return Layout.for_size(width, height, colorbar=state.color_by != "none",
                           panels=tuple(seriesview.plan(runs, state)[1]))


def axis_ticks(plot, view, log_y: bool, px_per_x_tick: int = 110, px_per_y_tick: int = 60
               ) -> tuple[np.ndarray, np.ndarray]:
    """Tick positions (x in iterations or alpha, y in display units) for a plot rectangle."""
    _, _, pw, ph = plot
    (x0, x1), (y0, y1) = view
    xt = linear_ticks(x0, x1, max(2, pw // px_per_x_tick))
    ny = max(2, ph // px_per_y_tick)
    yt = log_ticks(y0, y1, ny) if log_y else linear_ticks(y0, y1, ny)
    return xt, yt
