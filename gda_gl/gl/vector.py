"""Vector figures (SVG, PDF) of the very frames the GL renderer draws: for papers.

:class:`VectorScene` collects primitives in canvas pixels (origin bottom-left, as GL): rectangles,
line segments, markers, clip rectangles and text items of a :class:`~gda_gl.compose.textlayer.TextLayer`.
:class:`RecordingBatch` stands in for a GL program of :mod:`gda_gl.gl.programs` (same ``set`` and
``draw(**uniforms)``) and turns what it is given into pixels the way the vertex shaders do
(``shaders/*.vert.glsl``: data units relative to the view origin times ``u_scale`` plus
``u_plot_origin``, or pixels with ``u_space``; rectangles never thinner than ``u_min_px``; markers
with a NaN y pinned under the plot's top).  The vector renderer
(:class:`gda_gl.gl.vector_render.VectorRenderer`) is the GL renderer with these batches, so an SVG
or PDF holds the same composed frame as the PNG: same layout, ticks, labels, legend.

Writers: :func:`gda_gl.gl.vector_svg.to_svg` (``xml.etree``; segments of one colour and width share a
path) and :func:`gda_gl.gl.vector_pdf.to_pdf` (PDF 1.4 written there: one page, a Flate-compressed content stream, the
standard Helvetica font, one graphics state per opacity).  Text is real text in both (searchable,
editable); it is placed at the anchor the raster layer uses, so labels sit where the PNG has them
(Helvetica in a PDF is a little narrower than the PNG's Open Sans).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["VectorScene", "RecordingBatch", "FONT_FAMILY"]

FONT_FAMILY = "Open Sans, Helvetica, Arial, sans-serif"
#: Bezier control distance of a quarter circle (unit radius)
_KAPPA = 0.5522847498


def _rgba(c) -> tuple[float, float, float, float]:
    c = [float(v) for v in c]
    return (c[0], c[1], c[2], c[3] if len(c) > 3 else 1.0)


def _hex(c) -> str:
    r, g, b, _ = _rgba(c)
    return "#%02x%02x%02x" % tuple(int(round(255 * min(1.0, max(0.0, v)))) for v in (r, g, b))


def _num(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".") if math.isfinite(v) else "0"


@dataclass
class VectorScene:
    """Everything drawn into one figure, in canvas pixels (origin bottom-left)."""

    width: int
    height: int
    items: list = field(default_factory=list)   # (kind, data, clip index or -1)
    clips: list = field(default_factory=list)   # (x, y, w, h) canvas px
    origin: tuple[float, float] = (0.0, 0.0)    # the current viewport's position
    _clip: int = -1

    def viewport(self, ox: float, oy: float) -> None:
        """Positions given from now on are relative to (ox, oy) (a stacked or gridded figure's cell)."""
        self.origin = (float(ox), float(oy))

    def clip(self, rect: tuple[float, float, float, float] | None) -> None:
        """Clip what follows to ``rect`` (x, y, w, h relative to the viewport), or stop clipping."""
        if rect is None:
            self._clip = -1
            return
        ox, oy = self.origin
        self.clips.append((rect[0] + ox, rect[1] + oy, rect[2], rect[3]))
        self._clip = len(self.clips) - 1

    def _shift(self, a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, np.float64).copy()
        a[..., 0::2] += self.origin[0]
        a[..., 1::2] += self.origin[1]
        return a

    def rects(self, rects, colors) -> None:
        """Filled rectangles (x0, y0, x1, y1) in viewport px, one RGBA each."""
        r = self._shift(np.asarray(rects, np.float64).reshape(-1, 4))
        c = np.broadcast_to(np.asarray(colors, np.float32).reshape(-1, 4), (len(r), 4))
        self.items += [("rect", (tuple(q), tuple(cc)), self._clip) for q, cc in zip(r, c) if cc[3] > 0]

    def segments(self, p0, p1, colors, width: float) -> None:
        """Line segments in viewport px, one RGBA each, ``width`` px wide."""
        a = self._shift(np.asarray(p0, np.float64).reshape(-1, 2))
        b = self._shift(np.asarray(p1, np.float64).reshape(-1, 2))
        c = np.broadcast_to(np.asarray(colors, np.float32).reshape(-1, 4), (len(a), 4))
        ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1) & (c[:, 3] > 0)
        self.items.append(("segs", (a[ok], b[ok], np.asarray(c[ok]), float(width)), self._clip))

    def markers(self, xy, colors, sizes, shapes) -> None:
        """Markers in viewport px: 0 disc, 1 square, 2 triangle, 3 ring; ``sizes`` are diameters."""
        p = self._shift(np.asarray(xy, np.float64).reshape(-1, 2))
        n = len(p)
        c = np.broadcast_to(np.asarray(colors, np.float32).reshape(-1, 4), (n, 4))
        s = np.broadcast_to(np.asarray(sizes, np.float64), (n,))
        sh = np.broadcast_to(np.asarray(shapes, np.float64), (n,))
        self.items += [("marker", (tuple(p[i]), tuple(c[i]), float(s[i]), int(round(sh[i]))), self._clip)
                       for i in range(n) if np.isfinite(p[i]).all() and c[i][3] > 0]

    def texts(self, items, layer_width: int, layer_height: int) -> None:
        """The items of a TextLayer of the viewport's size, placed as the raster layer places them."""
        for item in items:
            self.items.append(("text", _placed(item, layer_width) + (self.origin,), -1))


def _placed(item, layer_width: int) -> tuple:
    """(text, left x, baseline y (bottom-up), size, rgba 0..1, bold, rotate) of a TextLayer item: the left end of
    its baseline where the raster layer puts it (anchor resolved with the same font, moved inside the border)."""
    from gda_gl.compose.textlayer import _font, _inside

    text, x, y, anchor, size, color, bold, rotate = item
    rgba = tuple(v / 255.0 for v in color)
    font = _font(size, bold)
    if rotate:  # centred on (x, y), reading upwards
        return (text, x, y, size, rgba, bold, True)
    left, top, right, _ = font.getbbox(text, anchor=anchor)
    base_left, base_top, _, _ = font.getbbox(text, anchor="ls")
    shift = _inside(int(round(x + left)), max(1, right - left), layer_width) - int(round(x + left))
    bx = x + left - base_left + shift
    by = y - (top - base_top)  # image rows grow downwards, y upwards
    return (text, bx, by, size, rgba, bold, False)


class RecordingBatch:
    """A stand-in for a GL batch (:mod:`gda_gl.gl.programs`) that hands its primitives, in pixels, to a scene."""

    def __init__(self, scene: VectorScene, kind: str):
        self.scene, self.kind = scene, kind
        self.args: tuple | None = None

    def set(self, *args) -> None:
        self.args = args

    def draw(self, **u) -> None:
        if self.args is None:
            return
        getattr(self, f"_draw_{self.kind}")(u, *self.args)

    @staticmethod
    def _px(u: dict, p: np.ndarray) -> np.ndarray:
        """Positions to pixels as ``view.glsl`` does (``u_space`` 1: already pixels)."""
        p = np.asarray(p, np.float64)
        if u.get("u_space", 0.0) > 0.5:
            return p
        o, s = np.asarray(u["u_plot_origin"], np.float64), np.asarray(u["u_scale"], np.float64)
        return o + p * s

    def _draw_rect(self, u: dict, rects, color) -> None:
        r = np.asarray(rects, np.float64).reshape(-1, 4)
        if not len(r):
            return
        lo, hi = self._px(u, r[:, :2]), self._px(u, r[:, 2:])
        a, b = np.minimum(lo, hi), np.maximum(lo, hi)
        c, half = 0.5 * (a + b), np.maximum(0.5 * (b - a), 0.5 * float(u.get("u_min_px", 0.0)))
        self.scene.rects(np.concatenate([c - half, c + half], axis=1), color)

    def _draw_segment(self, u: dict, p0, p1, color) -> None:
        if len(p0):
            self.scene.segments(self._px(u, p0), self._px(u, p1), color, float(u.get("u_width", 1.0)))

    def _draw_marker(self, u: dict, centers, color, size, shape) -> None:
        c = np.asarray(centers, np.float64).reshape(-1, 2)
        if not len(c):
            return
        o, s = np.asarray(u["u_plot_origin"], np.float64), np.asarray(u["u_scale"], np.float64)
        px = o + c * s
        sizes = np.broadcast_to(np.asarray(size, np.float64), (len(c),))
        pin = float(u.get("u_pin_top", 0.0))
        top = float(u.get("u_plot_top", 0.0))
        nan = ~np.isfinite(c[:, 1]) | (pin > 0)
        px[nan, 1] = top - np.maximum(pin, 0.5 * sizes[nan] + 1.0)
        self.scene.markers(px, color, sizes, shape)
