"""A whole figure: the curve (:func:`gda_gl.compose.scene.compose`) and the series panels below it. Compute only.

The renderer draws what :func:`compose_figure` returns, part by part; it composes nothing itself.
"""

from __future__ import annotations

from . import seriesview
from .frame import Frame
from .layout import Layout
from .rundata import RunData
from .scene import compose
from .state import ViewState
from .view import View

__all__ = ["compose_figure"]


def compose_figure(runs: list[RunData], state: ViewState, layout: Layout) -> list[tuple[View, Frame, Layout]]:
    """The whole figure for ``state`` on ``layout``: (View, Frame, layout) of the curve, then of each series
    panel of ``layout.panels`` below it, sharing the curve's x range (the renderer only draws these)."""
    view, frame = compose(runs, state, layout.plot, (layout.width, layout.height))
    out = [(view, frame, layout)]
    for name, lay in zip(layout.panels, layout.panel_layouts()):
        windows = seriesview.read_windows(runs, [name], view.x0, view.x1, lay.plot[2], state.x_axis)
        pv, pf = seriesview.panel_frame(windows, name, (view.x0, view.x1), name in state.series_log, lay.plot,
                                        (lay.width, lay.height), frame.xmaps, state.x_axis)
        out.append((pv, pf, lay))
    return out
