"""The renderer drawing into a :class:`~gda_gl.gl.vector.VectorScene` instead of OpenGL: SVG and PDF figures.

:class:`VectorRenderer` is :class:`~gda_gl.gl.render.CurveRenderer` with every GL program replaced by a
:class:`~gda_gl.gl.vector.RecordingBatch` and the GL state calls (viewport and clearing, scissor
clipping, the text overlay) recorded in the scene.  Everything else is the GL renderer's own code:
the composition, layout, ticks, labels, legend and colour bars of a PNG and of its SVG or PDF are
the same (``gda-gl render -o F.svg``, ``gda-gl compare --pdf F``).  No GL context is needed.
"""

from __future__ import annotations

from gda_gl.compose.layout import Layout

from .render import DRAW_TABLE, CurveRenderer
from .vector import RecordingBatch, VectorScene

__all__ = ["VectorRenderer", "draw_vector"]


class VectorRenderer(CurveRenderer):
    """A :class:`CurveRenderer` whose output is the vector scene :attr:`scene` of a ``size`` canvas."""

    def __init__(self, size: tuple[int, int]):  # noqa: D107 - no GL programs: recording batches
        self.scene = VectorScene(int(size[0]), int(size[1]))
        programs = {"rect": "rect", "segment": "segment", "marker": "marker"}
        self.rects = RecordingBatch(self.scene, "rect")
        self.axes = RecordingBatch(self.scene, "segment")
        self.batches = {kind: RecordingBatch(self.scene, programs[prog]) for kind, prog, _ in DRAW_TABLE}
        self.overlay = None
        self._texts = {}
        self.last_frame = None
        self.last_text = None
        self.last_view = None

    def _begin(self, layout: Layout, clear: bool = True) -> None:
        self.scene.viewport(*layout.origin)
        self.scene.clip(None)
        if clear:
            self.scene.rects([[0, 0, layout.width, layout.height]], [1.0, 1.0, 1.0, 1.0])

    def _clip(self, layout: Layout, rect) -> None:
        self.scene.viewport(*layout.origin)
        self.scene.clip(rect)

    def _set_text(self, text, layout: Layout, u: dict) -> None:
        self.scene.viewport(*layout.origin)
        self.scene.texts(text.items, layout.width, layout.height)


def draw_vector(size: tuple[int, int], draw, kind: str) -> bytes:
    """Run ``draw(renderer)`` with a :class:`VectorRenderer` and return the figure as ``kind`` ("svg" or "pdf")."""
    from .vector_pdf import to_pdf
    from .vector_svg import to_svg

    renderer = VectorRenderer(size)
    draw(renderer)
    return to_svg(renderer.scene) if kind == "svg" else to_pdf(renderer.scene)
