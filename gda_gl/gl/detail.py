"""Draw the details of one line search: :func:`gda_gl.compose.detail.compose_detail`, then the renderer."""

from __future__ import annotations

from gda_gl.compose.detail import compose_detail
from gda_gl.compose.layout import Layout
from gda_gl.compose.rundata import RunData

from .render import CurveRenderer

__all__ = ["draw_detail"]


def draw_detail(self: CurveRenderer, run: RunData, iteration: int, layout: Layout, log_y: bool = False) -> dict:
    """Draw the details of one line search with ``self`` (compose, then the renderer's Frame draw);
    returns the numbers shown."""
    view, frame, nums, layout = compose_detail(run, iteration, layout, log_y)
    self.draw_frame(view, frame, layout)
    self.last_detail_text = self.last_text
    return nums
