"""Headless export: render a figure into an offscreen framebuffer (PNG files: :mod:`gda_gl.session.files`).

Works with no display through VisPy's ``egl`` backend (Mesa llvmpipe on CPUs,
the NVIDIA EGL driver on GPU workstations); the backend is chosen by
:func:`gda_gl.gl.backend.use_backend`, never auto-picked.
"""

from __future__ import annotations

import logging

import numpy as np

from .render import CurveRenderer
from gda_gl.compose.layout import Layout
from gda_gl.compose.scene import RunData
from gda_gl.compose.state import ViewState

log = logging.getLogger(__name__)

__all__ = ["Offscreen", "render_image"]


class Offscreen:
    """A hidden canvas plus a framebuffer of a fixed size; ``with`` it to draw, then :meth:`read`."""

    def __init__(self, width: int, height: int):
        from .backend import use_backend

        use_backend(offscreen=True)
        from vispy import app, gloo

        self.width, self.height = int(width), int(height)
        self.canvas = app.Canvas(size=(self.width, self.height), show=False, title="gda_gl")
        self.canvas.set_current()
        self.color = gloo.RenderBuffer((self.height, self.width), "color")
        self.fbo = gloo.FrameBuffer(color=self.color)

    def __enter__(self) -> "Offscreen":
        self.canvas.set_current()
        self.fbo.activate()
        return self

    def __exit__(self, *exc) -> None:
        self.fbo.deactivate()

    def read(self) -> np.ndarray:
        """(height, width, 4) uint8 RGBA, rows top-down."""
        with self:
            return np.asarray(self.fbo.read(mode="color", alpha=True))

    def renderer_info(self) -> str:
        from vispy import gloo

        with self:
            return f"{gloo.gl.glGetParameter(gloo.gl.GL_RENDERER)} / {gloo.gl.glGetParameter(gloo.gl.GL_VERSION)}"

    def close(self) -> None:
        self.canvas.close()


def render_image(runs: list[RunData], state: ViewState, size: tuple[int, int] = (1200, 600),
                 title: str | None = None, target: Offscreen | None = None,
                 renderer: CurveRenderer | None = None) -> np.ndarray:
    """Render ``runs`` as seen through ``state``; returns RGBA uint8 (rows top-down)."""
    own = target is None
    target = target or Offscreen(*size)
    try:
        with target:
            r = renderer or CurveRenderer()
            layout = Layout.for_size(target.width, target.height, colorbar=state.color_by != "none")
            r.draw(runs, state, layout, title=title)
        return target.read()
    finally:
        if own:
            target.close()
