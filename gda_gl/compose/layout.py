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

__all__ = ["Layout", "figure_layout", "axis_ticks", "legend_width", "legend_rows"]


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
    legend: int = 0                   # px of the right margin that hold the run legend (0: none or inside the plot)

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


#: the run legend right of the plot is at most this wide (px), and at most this share of the canvas width
LEGEND_MAX_PX, LEGEND_MAX_SHARE = 210, 0.2


def legend_width(runs, state: ViewState, width: int, plot_height: int = 10_000) -> int:
    """Pixels of the run legend right of the plot (0: none): its longest entry (two columns when one column of
    16 px rows does not hold every entry beside ``plot_height`` px), bounded; runs coloured by a hyperparameter
    have a colour bar instead, and a narrow canvas keeps the legend inside the plot."""
    from .manyruns import sweep_style
    from .state import is_param_name
    from .textlayer import TextLayer

    shown = [r for r in runs if r.visible and len(r)]
    if len(shown) < 2 or is_param_name(state.color_by) or width < 600:
        return 0
    on_curve = seriesview.plan(runs, state)[0]
    names = [r.name for r in shown] + list(on_curve)
    if not sweep_style(len(shown)):
        names += [f"{r.name}: {s}" for r in shown for s in on_curve]
    fs = 11 if width >= 400 else 9
    text = TextLayer(1, 1)
    need = max(text.text_width(n, fs) for n in names) + 44  # the swatch, gaps and margin (gl.render._legend)
    entries = len(shown) + len(on_curve) * (1 if sweep_style(len(shown)) else len(shown) + 1)
    one = min(need, LEGEND_MAX_PX)
    if entries <= legend_rows(plot_height):
        return int(min(one, LEGEND_MAX_SHARE * width))
    return int(min(2 * one, 1.5 * LEGEND_MAX_SHARE * width))  # two columns, names clipped if they must


def legend_rows(plot_height: int) -> int:
    """Rows of 16 px a legend column beside a plot of ``plot_height`` px holds."""
    return max(1, int((plot_height - 20) // 16))


def figure_layout(width: int, height: int, runs, state: ViewState) -> Layout:
    """The layout of a figure for ``state``: a colour bar when colouring, a panel per series drawn in one, the
    run legend in a margin right of the plot (never over the data)."""
    lay = Layout.for_size(width, height, colorbar=state.color_by != "none",
                          panels=tuple(seriesview.plan(runs, state)[1]))
    lay.legend = legend_width(runs, state, width, lay.plot[3])
    lay.right += lay.legend
    return lay


def axis_ticks(plot, view, log_y: bool, px_per_x_tick: int = 110, px_per_y_tick: int = 60
               ) -> tuple[np.ndarray, np.ndarray]:
    """Tick positions (x in iterations or alpha, y in display units) for a plot rectangle."""
    _, _, pw, ph = plot
    (x0, x1), (y0, y1) = view
    xt = linear_ticks(x0, x1, max(2, pw // px_per_x_tick))
    ny = max(2, ph // px_per_y_tick)
    yt = log_ticks(y0, y1, ny) if log_y else linear_ticks(y0, y1, ny)
    return xt, yt
