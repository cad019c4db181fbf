"""Things the explorer draws over the rendered curve: box-zoom rectangle, glyph legend, help, match rug, readout.

Drawn after :meth:`gda_gl.gl.render.CurveRenderer.draw` with the engine's own GL
programs (:mod:`gda_gl.gl.programs`) in canvas pixels, positioned with the
:class:`~gda_gl.compose.view.View` that was just drawn.  Compute-only helpers
(:func:`help_text`, :func:`text_boxes`) are separate from the GL class so
they can be tested without a context.  What the overlays draw over the curve
(owner lines, the highlight rug) comes out of the composition
(:func:`gda_gl.compose.scene.compose`) in the drawn Frame; they only draw it.  No toolkit imports here.

Names used everywhere (help, legend, details panel, README):

- *arc*: phi_k over [0, accepted step], drawn on x in [k, k+1];
- *beyond the step*: the lighter continuation of the arc past the accepted step;
- *trial point*: a point a line search evaluated (dark disc);
- *loose end*: a trial point beyond the accepted step (orange triangle); one
  beyond the probe's alpha grid is joined to the end of its step's arc by a
  thin dotted *owner line*, so it never floats over a neighbouring step;
- *batch change*: faint vertical rule where the loss function changes (the curve jumps).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from gda_gl.compose.textlayer import TextLayer
from gda_gl.compose.view import View

log = logging.getLogger(__name__)

__all__ = ["OverlaySpec", "Overlays", "GLYPHS", "help_text", "text_boxes"]

LOOSE_RGBA = (0.95, 0.55, 0.10, 1.0)
TRIAL_RGBA = (0.15, 0.15, 0.15, 0.9)
RULE_RGBA = (0.55, 0.55, 0.70, 0.8)
MATCH_RGBA = (0.85, 0.10, 0.45, 0.9)

#: (sample kind, label) of every glyph of the main plot, in the order of the legend.
GLYPHS = (
    ("arc", "arc: phi_k over [0, step taken], one per step, on x in [k, k+1]"),
    ("beyond", "beyond the step: phi_k past the accepted alpha, lighter (O)"),
    ("trial", "trial point of the line search (T)"),
    ("loose", "loose end: trial point beyond the accepted step (T)"),
    ("owner", "owner line: joins a far loose end to its step"),
    ("rule", "batch change: the loss function changes, the curve jumps (B)"),
    ("envelope", "envelope: min..max of the arcs per pixel column, zoomed out (E)"),
    ("classic", "classic curve: loss at the start of each step"),
    ("flag", "non-finite loss (pinned to the top edge)"),
    ("rug", "highlighted steps (H), one tick per pixel column"),
)
DETAIL_GLYPHS = ("arc", "beyond", "trial", "loose", "owner", "rule")
OVERVIEW_GLYPHS = ("envelope", "classic", "rule")

# The help's key rows ((keys, what they do)) come with each OverlaySpec (``help_rows``): the explorer passes
# the rows of its one input table (gda_gl.explorer.inputmap.HELP_KEYS); this GL layer imports no UI.


@lru_cache(maxsize=512)
def _width(text: str, size: int, bold: bool = False) -> float:
    """Pixel width of a label (cached: the legend and help are laid out every frame)."""
    return TextLayer(1, 1).text_width(text, size, bold)


def help_text(rows) -> str:
    """The help as plain text: the key rows ((keys, what they do)), then the glyphs."""
    w = max(len(k) for k, _ in rows)
    lines = [f"{k:<{w}}  {v}" for k, v in rows]
    lines.append("")
    lines += [label for _, label in GLYPHS]
    return "\n".join(lines)


@dataclass
class OverlaySpec:
    """What to draw over one frame (canvas pixels, origin top-left like toolkit events)."""

    box: tuple[float, float, float, float] | None = None   # px0, py0, px1, py1 of a box zoom in progress
    legend: tuple[str, ...] = ()                            # glyph kinds to explain in the corner legend
    legend_offset: int = 0                                  # px below the plot top (room for the run legend)
    help: bool = False
    help_rows: tuple = ()                                   # (keys, what they do) rows of the help panel
    connectors: tuple[np.ndarray, np.ndarray] | None = None  # (n, 2) p0 and p1 in data units (x, display y)
    rug: np.ndarray | None = None                           # pixel columns (relative to the plot) with matches
    readout: str = ""                                       # frame-time readout (bottom-left)
    run_color: tuple = (0.12, 0.47, 0.71, 1.0)
    extras: dict = field(default_factory=dict)


def text_boxes(layer: TextLayer) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Bounding boxes (left, top, right, bottom; image rows top-down) of a text layer's items."""
    from gda_gl.compose.textlayer import _font

    out = []
    for text, x, y, anchor, size, _color, bold, rotate in layer.items:
        font = _font(size, bold)
        if rotate:
            w = font.getlength(text)
            out.append((text, (x - size, layer.height - y - w / 2, x + size, layer.height - y + w / 2)))
        else:
            out.append((text, tuple(float(v) for v in font.getbbox(text, anchor=anchor))))
            left, top, right, bottom = out[-1][1]
            out[-1] = (text, (left + x, top + layer.height - y, right + x, bottom + layer.height - y))
    return out


class _Ink:
    """Primitives of one overlay in canvas GL pixels, gathered then drawn in three batches."""

    def __init__(self):
        self.rects, self.rect_colors = [], []
        self.p0, self.p1, self.seg_colors = [], [], []
        self.centers, self.marker_colors, self.sizes, self.shapes = [], [], [], []

    def rect(self, r, color) -> None:
        self.rects.append(r)
        self.rect_colors.append(color)

    def segment(self, a, b, color) -> None:
        self.p0.append(a)
        self.p1.append(b)
        self.seg_colors.append(color)

    def outline(self, x0, y0, x1, y1, color) -> None:
        corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        for i in range(4):
            self.segment(corners[i], corners[(i + 1) % 4], color)

    def marker(self, xy, color, size: float, shape: float) -> None:
        self.centers.append(xy)
        self.marker_colors.append(color)
        self.sizes.append(size)
        self.shapes.append(shape)


def _glyph_sample(ink: _Ink, kind: str, xa: float, xb: float, y: float, run_color) -> None:
    """A small sample of a glyph between px xa..xb at height y (GL px)."""
    rc = tuple(float(v) for v in run_color)
    xm = 0.5 * (xa + xb)
    samples = {
        "arc": lambda: ink.segment((xa, y - 3), (xb, y + 3), rc),
        "beyond": lambda: ink.segment((xa, y - 3), (xb, y + 3), rc[:3] + (rc[3] * 0.35,)),
        "trial": lambda: ink.marker((xm, y), TRIAL_RGBA, 7.0, 0.0),
        "loose": lambda: ink.marker((xm, y), LOOSE_RGBA, 10.0, 2.0),
        "owner": lambda: [ink.segment((xa + 7 * i, y), (xa + 7 * i + 3.5, y), LOOSE_RGBA[:3] + (0.8,))
                          for i in range(3)],
        "rule": lambda: ink.rect((xm, y - 6, xm + 1, y + 6), RULE_RGBA),
        "envelope": lambda: ink.rect((xa, y - 5, xb, y + 5), rc[:3] + (0.4,)),
        "classic": lambda: ink.rect((xa, y - 1, xb, y + 1), rc),
        "flag": lambda: ink.marker((xm, y), (0.85, 0.05, 0.05, 1.0), 10.0, 2.0),
        "rug": lambda: ink.rect((xm, y - 4, xm + 1, y + 4), MATCH_RGBA),
    }
    if kind in samples:
        samples[kind]()


def _dotted(view: View, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner lines (data units, display y) as dashes of about 6 px in canvas GL pixels."""
    lx, ly, pw, ph = view.plot
    sx, sy = pw / (view.x1 - view.x0), ph / (view.y1 - view.y0)
    qa = np.stack([lx + (a[:, 0] - view.x0) * sx, ly + (a[:, 1] - view.y0) * sy], axis=1)
    qb = np.stack([lx + (b[:, 0] - view.x0) * sx, ly + (b[:, 1] - view.y0) * sy], axis=1)
    c0, c1 = [], []
    for s_, e_ in zip(qa, qb):
        n = int(max(2, min(400, np.hypot(*(e_ - s_)) / 6)))
        pts = s_[None] + (e_ - s_)[None] * np.linspace(0, 1, n + 1)[:, None]
        c0 += list(pts[:-1:2])
        c1 += list(pts[1::2])
    return np.asarray(c0, np.float64), np.asarray(c1, np.float64)


class Overlays:
    """GL resources for the overlays; create inside a current GL context."""

    def __init__(self):
        from .programs import MarkerBatch, Overlay, RectBatch, SegmentBatch

        self.rects = RectBatch()
        self.lines = SegmentBatch()
        self.owner = SegmentBatch()
        self.markers = MarkerBatch()
        self.text = Overlay()
        self.readout = Overlay()
        self._text_key = None
        self._readout_key = None
        self.last_text: TextLayer | None = None

    def draw(self, view: View, spec: OverlaySpec) -> None:
        """Draw ``spec`` over the frame ``view`` describes (the current framebuffer, viewport = canvas)."""
        from vispy import gloo

        W, H = view.size
        lx, ly, pw, ph = view.plot
        gloo.set_viewport(0, 0, W, H)
        gloo.set_state(blend=True, depth_test=False, scissor_test=False,
                       blend_func=("src_alpha", "one_minus_src_alpha", "one", "one_minus_src_alpha"))
        u_px = {"u_resolution": (float(W), float(H)), "u_plot_origin": (0.0, 0.0), "u_scale": (1.0, 1.0),
                "u_space": 1.0, "u_min_px": 0.0, "u_pin_top": 0.0, "u_plot_top": float(ly + ph)}
        if spec.connectors is not None and len(spec.connectors[0]):  # owner lines, dotted, clipped to the plot
            self.owner.set(*_dotted(view, *spec.connectors), LOOSE_RGBA[:3] + (0.6,))
            gloo.set_state(scissor_test=True)
            gloo.gl.glScissor(int(lx), int(ly), int(pw), int(ph))
            self.owner.draw(**dict(u_px, u_width=1.4))
            gloo.set_state(scissor_test=False)
        ink, text = _Ink(), TextLayer(W, H)
        for v in (spec.rug if spec.rug is not None else ()):  # highlight rug along the bottom of the plot
            ink.rect((lx + float(v), ly, lx + float(v) + 1, ly + 7), MATCH_RGBA)
        if spec.box is not None:  # box zoom rectangle
            x0, y0, x1, y1 = spec.box
            gx0, gx1 = sorted((x0, x1))
            gy0, gy1 = sorted((H - y0, H - y1))
            ink.rect((gx0, gy0, gx1, gy1), (0.20, 0.45, 0.85, 0.15))
            ink.outline(gx0, gy0, gx1, gy1, (0.15, 0.35, 0.75, 0.9))
        fs = 11 if W >= 500 else 9
        if spec.help:
            self._help(ink, text, view, spec, fs)
        elif spec.legend:
            self._glyph_legend(ink, text, view, spec, fs)
        self._draw_ink(ink, u_px)
        self._draw_text(text, spec.readout, u_px, W, H)

    def _draw_ink(self, ink: _Ink, u_px: dict) -> None:
        if ink.rects:
            self.rects.set(np.asarray(ink.rects, np.float64), np.asarray(ink.rect_colors, np.float32))
            self.rects.draw(**dict(u_px, u_min_px=1.0))
        if ink.p0:
            self.lines.set(np.asarray(ink.p0, np.float64), np.asarray(ink.p1, np.float64),
                           np.asarray(ink.seg_colors, np.float32))
            self.lines.draw(**dict(u_px, u_width=1.5))
        if ink.centers:
            self.markers.set(np.asarray(ink.centers, np.float64), np.asarray(ink.marker_colors, np.float32),
                             np.asarray(ink.sizes, np.float32), np.asarray(ink.shapes, np.float32))
            self.markers.draw(**dict(u_px, u_space=0.0))

    def _draw_text(self, text: TextLayer, readout: str, u_px: dict, W: int, H: int) -> None:
        """The overlay's text (re-rasterised only when it changed) and the frame-time readout."""
        key = (W, H, tuple(text.items))
        if key != self._text_key:
            self.text.set(text.rasterize())
            self._text_key = key
        self.last_text = text
        if text.items:
            self.text.draw(**u_px)
        if readout:
            rkey = (W, H, readout)
            if rkey != self._readout_key:
                small = TextLayer(W, H)
                small.add(readout, 4, 4, "lb", 10, color=(90, 90, 90, 255))
                self.readout.set(small.rasterize())
                self._readout_key = rkey
            self.readout.draw(**u_px)

    def _glyph_legend(self, ink: _Ink, text: TextLayer, view: View, spec: OverlaySpec, fs: int) -> None:
        """The glyph legend in the plot's top-right corner (when it fits)."""
        lx, ly, pw, ph = view.plot
        labels = [dict(GLYPHS)[k].split(":")[0].split(" (")[0] for k in spec.legend]
        row_h = fs + 6
        top = ly + ph - 6 - spec.legend_offset
        right = lx + pw - 6
        left = right - (max(_width(s, fs - 1) for s in labels) + 40)
        bottom = top - row_h * len(labels) - 6
        if left <= lx + 10 or bottom <= ly + 10:
            return
        ink.rect((left, bottom, right, top), (1.0, 1.0, 1.0, 0.85))
        for i, (kind, label) in enumerate(zip(spec.legend, labels)):
            yy = top - 4 - row_h * (i + 0.5)
            _glyph_sample(ink, kind, left + 8, left + 28, yy, spec.run_color)
            text.add(label, left + 34, yy, "lm", fs - 1)

    def _help(self, ink: _Ink, text: TextLayer, view: View, spec: OverlaySpec, fs: int) -> None:
        """A translucent panel over the plot: keys and mouse on the left, glyphs on the right."""
        W, H = view.size
        row_h = fs + 5
        keys = spec.help_rows or (("?", "help"),)
        n_rows = max(len(keys), len(GLYPHS)) + 2
        panel_h = min(H - 8, row_h * n_rows + 20)
        panel_w = min(W - 8, 980)
        left = (W - panel_w) / 2
        top = (H + panel_h) / 2
        ink.rect((left, top - panel_h, left + panel_w, top), (1.0, 1.0, 1.0, 0.93))
        for a, b in (((left, top), (left + panel_w, top)), ((left + panel_w, top), (left + panel_w, top - panel_h)),
                     ((left + panel_w, top - panel_h), (left, top - panel_h)), ((left, top - panel_h), (left, top))):
            ink.segment(a, b, (0.3, 0.3, 0.3, 1.0))
        size = fs  # shrink the font until both columns fit
        while size > 7 and (row_h * n_rows + 20 > panel_h):
            size -= 1
            row_h = size + 5
        kw = max(_width(k, size, True) for k, _ in keys) + 10
        half = panel_w * 0.47
        text.add("help (? or Esc to close)", left + 12, top - 10, "lt", size + 1, bold=True)
        text.add("glyphs", left + half + 20, top - 10, "lt", size + 1, bold=True)
        y = top - 14 - 1.8 * row_h
        for i, (k, v) in enumerate(keys):
            yy = y - row_h * i
            text.add(k, left + 12, yy, "lm", size, bold=True)
            text.add(v, left + 12 + kw, yy, "lm", size)
        gx = left + half + 20
        for i, (kind, label) in enumerate(GLYPHS):
            yy = y - row_h * i
            _glyph_sample(ink, kind, gx, gx + 20, yy, spec.run_color)
            text.add(label, gx + 28, yy, "lm", size)
