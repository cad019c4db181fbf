"""The renderer: draws a :class:`~gda_gl.compose.frame.Frame` with axes, legend, colour bar in the current GL context.

:class:`CurveRenderer` owns the GL programs and is shared by the headless
exporter (:func:`render_png`, ``gda-gl render``) and the interactive canvas.
Layout, ticks and text are computed per frame on the CPU (cheap: a few dozen
items); geometry comes from :func:`gda_gl.compose.scene.build_frame` and is uploaded
once per frame in a handful of buffers sized by the pixels, not the samples.
"""

from __future__ import annotations

import logging

import numpy as np

from recorder import stats

from gda_gl.compose.frame import Frame, Markers, Rects, Segments
from gda_gl.compose.xaxis import AXIS_TITLES
from gda_gl.compose.figure import compose_figure
from gda_gl.compose.scene import CLASS_COLORS, RunData, stat_colors
from gda_gl.compose.state import ViewState
from gda_gl.compose.textlayer import TextLayer
from gda_gl.compose.view import View
from gda_gl.compose.ticks import colorbar_labels, format_ticks, log_ticks
from gda_gl.compose.layout import Layout, axis_ticks, figure_layout, legend_rows  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

__all__ = ["Layout", "CurveRenderer", "STAT_LABELS", "DRAW_TABLE", "figure_layout"]

STAT_LABELS = {s.name: s.title for s in stats.STATISTICS}
CLASS_LABELS = dict(stats.CLASS_NAMES)

BG = (1.0, 1.0, 1.0, 1.0)
AXIS = (0.25, 0.25, 0.25, 1.0)
GRID = (0.90, 0.90, 0.90, 1.0)

#: batch kind -> (GL program, uniforms), in draw order: how draw_frame draws each kind of a Frame.
#: ``u_width`` None: the frame's ``seg_width`` or, by zoom, 2 px when a step is wide, else 1.5;
#: ``u_min_px`` None: the frame's ``rule_min_px``.  Kinds not listed (``owner``) are drawn by the overlays.
DRAW_TABLE: tuple[tuple[str, str, dict], ...] = (
    ("rules", "rect", {"u_min_px": None}),
    ("envelope", "rect", {"u_min_px": 1.0}),
    ("classic", "rect", {"u_min_px": 1.5}),
    ("lines", "segment", {"u_width": 1.0}),
    ("beyond", "segment", {"u_width": 1.2}),
    ("arcs", "segment", {"u_width": None}),
    ("smooth", "segment", {"u_width": 2.0}),
    ("series_band", "rect", {"u_min_px": 1.0}),
    ("series", "segment", {"u_width": 1.6}),
    ("series_marks", "marker", {}),
    ("trials", "marker", {}),
    ("flags", "marker", {}),
)


def _clip_text(text: TextLayer, s: str, width: float, fs: int, bold: bool = False) -> str:
    """``s`` shortened with an ellipsis to at most ``width`` pixels."""
    if text.text_width(s, fs, bold) <= width:
        return s
    while len(s) > 1 and text.text_width(s + "...", fs, bold) > width:
        s = s[:-1]
    return s + "..."


def fit_title(text: TextLayer, title: str, width: float, fs: int, runs: int) -> str:
    """The title if it fits the canvas, else "N runs" for a long "A vs B vs ..." title, else clipped."""
    if text.text_width(title, fs, True) <= width:
        return title
    if " vs " in title and runs > 1:
        return f"{runs} runs"
    return _clip_text(text, title, width, fs, True)


class CurveRenderer:
    """GL resources and the draw of one figure.  Create inside a current GL context."""

    def __init__(self):
        from .programs import MarkerBatch, Overlay, RectBatch, SegmentBatch

        self.rects = RectBatch()
        self.axes = SegmentBatch()
        programs = {"rect": RectBatch, "segment": SegmentBatch, "marker": MarkerBatch}
        #: one GL batch per drawn kind (its vertex buffer is reused from frame to frame)
        self.batches = {kind: programs[prog]() for kind, prog, _ in DRAW_TABLE}
        self.overlay = Overlay()
        self._make_overlay = Overlay
        #: one text overlay per viewport (the curve, each series panel): content keys stay valid frame to frame
        self._texts: dict[tuple, tuple] = {}
        self.last_frame: Frame | None = None
        self.last_text: TextLayer | None = None
        self.last_view = None

    def draw(self, runs: list[RunData], state: ViewState, layout: Layout, title: str | None = None) -> Frame:
        """Compose and draw the figure for ``state`` (see :func:`gda_gl.compose.scene.compose`), then the series panels
        ``layout.panels`` below it sharing its x range; returns the curve's Frame (``last_view`` its View)."""
        parts = compose_figure(runs, state, layout)
        view, frame, _ = parts[0]
        self.draw_frame(view, frame, layout, title)  # clears the whole canvas: the panels come after
        main = (self.last_frame, self.last_view, self.last_text)
        for pv, pf, lay in parts[1:]:
            self.draw_frame(pv, pf, lay)
        self.last_frame, self.last_view, self.last_text = main
        return frame

    def draw_frame(self, view: View, frame: Frame, layout: Layout, title: str | None = None) -> None:
        """Draw ``frame`` as described by ``view`` into the bound framebuffer (viewport = layout size)."""
        px, py, pw, ph = layout.plot
        x0, x1, y0, y1 = view.x0, view.x1, view.y0, view.y1
        self.last_frame, self.last_view = frame, view
        sx, sy = pw / (x1 - x0), ph / (y1 - y0)
        u = {"u_resolution": (float(layout.width), float(layout.height)), "u_plot_origin": (float(px), float(py)),
             "u_scale": (float(sx), float(sy)), "u_space": 0.0, "u_min_px": 0.0, "u_pin_top": 0.0,
             "u_plot_top": float(py + ph)}
        self._begin(layout)
        text = TextLayer(layout.width, layout.height)

        # grid and ticks (px space)
        log_y = view.log_y
        view = ((x0, x1), (y0, y1))
        xt, yt = axis_ticks(layout.plot, view, log_y, px_per_x_tick=frame.x_tick_px, px_per_y_tick=frame.y_tick_px)
        if frame.log_x:  # x positions are log10 of the values: decades (and 2, 5) labelled in the values
            xt = log_ticks(x0, x1, max(2, pw // frame.x_tick_px))
        self.draw_grid(u, layout.plot, view, xt, yt)

        # plot contents, clipped to the plot rectangle
        self._clip(layout, layout.plot)
        seg_width = frame.seg_width if frame.seg_width is not None else (2.0 if pw / max(1.0, x1 - x0) > 20 else 1.5)
        for kind, _, uniforms in DRAW_TABLE:
            batch = frame.merged(kind)
            if batch is None:
                continue
            self._set_batch(self.batches[kind], batch)
            extra = {"u_width": seg_width, "u_min_px": frame.rule_min_px}
            self.batches[kind].draw(**dict(u, **{k: (extra[k] if v is None else v) for k, v in uniforms.items()}))
        self._clip(layout, None)

        # frame box, tick marks and tick labels
        fs = frame.font_size or (11 if layout.width >= 400 else 9)
        self.draw_box_and_labels(u, text, layout.plot, view, xt, yt, log_y, fs, log_x=frame.log_x)
        self._epoch_labels(text, frame.epoch_marks, px, py, sx, pw, fs)
        if frame.axis_titles:
            text.add(AXIS_TITLES.get(frame.x_axis, frame.x_axis), px + pw / 2, py - layout.bottom + 6, "mb", fs + 1)
            text.add(frame.y_title + (" (log)" if log_y else ""), 12, py + ph / 2, "mm", fs + 1, rotate=True)
            if title is None:
                title = frame.title
                if frame.mode == "detail":
                    title += "  (each arc: phi_k over [0, step]; lighter: beyond the step)"
            text.add(fit_title(text, title, layout.width - 16, fs + 2, frame.runs or len(frame.legend)),
                     layout.width / 2, layout.height - 8, "mt", fs + 2, bold=True)
        for item in frame.texts:
            text.add(*item[:5], color=item[5], bold=item[6], rotate=item[7])
        if len(frame.legend) > 1 and frame.color_scale is None:
            self._legend(text, frame.legend, layout, u, fs, offset=84 if frame.color_by else 0)
        if frame.color_by and frame.stat_range is not None:
            self._colorbar(text, frame.color_by, frame.stat_range, layout, u, fs)
        elif frame.color_scale is not None:
            self._param_colorbar(text, frame.color_scale, layout, u, fs)
        self.last_text = text
        self._set_text(text, layout, u)

    @staticmethod
    def _set_batch(gl_batch, batch) -> None:
        """Upload one Frame batch into its GL batch."""
        if isinstance(batch, Segments):
            gl_batch.set(batch.p0, batch.p1, batch.color)
        elif isinstance(batch, Rects):
            gl_batch.set(batch.rects, batch.color)
        elif isinstance(batch, Markers):
            gl_batch.set(batch.xy, batch.color, batch.size, batch.shape)

    def draw_grid(self, u: dict, plot, view, xt, yt) -> None:
        """Light grid lines at the ticks (px space)."""
        px, py, pw, ph = plot
        (x0, x1), (y0, y1) = view
        sx, sy = pw / (x1 - x0), ph / (y1 - y0)
        p0 = [(px + (v - x0) * sx, py) for v in xt] + [(px, py + (v - y0) * sy) for v in yt]
        p1 = [(px + (v - x0) * sx, py + ph) for v in xt] + [(px + pw, py + (v - y0) * sy) for v in yt]
        if p0:
            self.axes.set(np.asarray(p0), np.asarray(p1), GRID)
            self.axes.draw(**dict(u, u_space=1.0, u_width=1.0))

    def _begin(self, layout: Layout, clear: bool = True) -> None:
        """Set the viewport to the layout's rectangle and clear it (the vector renderer records it instead)."""
        from vispy import gloo

        ox, oy = layout.origin
        gloo.set_viewport(ox, oy, layout.width, layout.height)
        gloo.set_state(blend=True, depth_test=False, cull_face=False, scissor_test=True,
                       blend_func=("src_alpha", "one_minus_src_alpha", "one", "one_minus_src_alpha"))
        gloo.set_scissor(int(ox), int(oy), int(layout.width), int(layout.height))  # queued in order with the clear
        if clear:
            gloo.set_clear_color(BG)
            gloo.clear(color=True)
        gloo.set_state(scissor_test=False)

    def _clip(self, layout: Layout, rect) -> None:
        """Clip what follows to ``rect`` (x, y, w, h in the layout), or stop clipping (None)."""
        from vispy import gloo

        if rect is None:
            gloo.set_state(scissor_test=False)
            return
        ox, oy = layout.origin
        gloo.set_state(scissor_test=True)
        gloo.set_scissor(int(rect[0] + ox), int(rect[1] + oy), int(rect[2]), int(rect[3]))

    def clear_canvas(self, size: tuple[int, int]) -> None:
        """Clear the whole canvas to the background (figures of several viewports with margins between them)."""
        self._begin(Layout(int(size[0]), int(size[1])))

    def draw_texts(self, items, size: tuple[int, int]) -> None:
        """Text items (:class:`TextLayer`'s tuples) over the whole canvas, without clearing it (a grid's titles)."""
        w, h = size
        lay = Layout(w, h)
        self._begin(lay, clear=False)
        text = TextLayer(w, h)
        for item in items:
            text.add(*item[:5], color=item[5], bold=item[6], rotate=item[7])
        u = {"u_resolution": (float(w), float(h)), "u_plot_origin": (0.0, 0.0), "u_scale": (1.0, 1.0),
             "u_space": 1.0, "u_min_px": 0.0, "u_pin_top": 0.0, "u_plot_top": float(h)}
        self._set_text(text, lay, u)

    def draw_box_and_labels(self, u: dict, text: TextLayer, plot, view, xt, yt, log_y: bool, fs: int,
                            log_x: bool = False) -> None:
        """The plot frame, tick marks and tick labels."""
        px, py, pw, ph = plot
        (x0, x1), (y0, y1) = view
        sx, sy = pw / (x1 - x0), ph / (y1 - y0)
        box = np.array([[px, py, px + pw, py], [px + pw, py, px + pw, py + ph], [px + pw, py + ph, px, py + ph],
                        [px, py + ph, px, py]], np.float64)
        tick_p0 = [(px + (v - x0) * sx, py) for v in xt] + [(px, py + (v - y0) * sy) for v in yt]
        tick_p1 = [(px + (v - x0) * sx, py - 5) for v in xt] + [(px - 5, py + (v - y0) * sy) for v in yt]
        p0 = np.concatenate([box[:, :2], np.asarray(tick_p0, np.float64).reshape(-1, 2)])
        p1 = np.concatenate([box[:, 2:], np.asarray(tick_p1, np.float64).reshape(-1, 2)])
        self.axes.set(p0, p1, AXIS)
        self.axes.draw(**dict(u, u_space=1.0, u_width=1.0))
        for v, label in zip(xt, format_ticks(xt, log=log_x)):
            text.add(label, px + (v - x0) * sx, py - 8, "mt", fs)
        for v, label in zip(yt, format_ticks(yt, log=log_y)):
            text.add(label, px - 8, py + (v - y0) * sy, "rm", fs)

    def _set_text(self, text: TextLayer, layout: Layout, u: dict) -> None:
        """Draw the text layer of this viewport, rasterised and uploaded only when its content changed (each
        viewport, the curve's and every series panel's, keeps its own overlay, so they do not evict each other)."""
        where = (layout.origin, layout.width, layout.height)
        overlay, key = self._texts.get(where, (None, None))
        if overlay is None:
            if len(self._texts) >= 128:  # a window resized many times: forget the oldest viewports
                self._texts.pop(next(iter(self._texts)))
            overlay = self._make_overlay()
        content = (text.width, text.height, tuple(text.items))
        if content != key:
            overlay.set(text.rasterize())
        self._texts[where] = (overlay, content)
        overlay.draw(**u)

    def _epoch_labels(self, text, marks, px, py, sx, pw, fs) -> None:
        """Epoch starts under the x axis, each run's on a row of its own (up to three runs, in the run's colour
        when there are several), when they are few enough to read (x relative to the view origin)."""
        rows = sorted({m[2] for m in marks})
        if len(rows) > 3:
            return
        for r in rows:
            mine = [m for m in marks if m[2] == r]
            if not 0 < len(mine) <= max(1, pw // 70):
                continue
            right = -1e9  # labels that would overlap the previous one are left out
            for x, e, _, rgba in mine:
                label = f"epoch {e}"
                half = 0.5 * text.text_width(label, fs - 1)
                if px + x * sx - half < right + 6:
                    continue
                right = px + x * sx + half
                color = (90, 90, 140, 255) if len(rows) == 1 else tuple(int(255 * c) for c in rgba[:3]) + (255,)
                text.add(label, px + x * sx, py - 24 - (fs + 1) * r, "mt", fs - 1, color=color)

    def _legend(self, text, entries, layout: Layout, u, fs, offset: int = 0) -> None:
        """The run legend: in the margin right of the plot when the layout keeps one (``layout.legend`` px), never
        over the data; else in the plot's top-right corner (as many columns as its rows need, at most a third of
        its width).  Entries that do not fit are counted in a last row ("+N more").  ``offset``: px of the margin
        taken by a colour bar before the legend."""
        px, py, pw, ph = layout.plot
        room = layout.legend
        rows = legend_rows(ph)
        if room:  # swatch at 10 px right of the plot (and of a colour bar), text 22 px further
            ncols = 1 if len(entries) <= rows else 2
            width = (room - 12) / ncols
            right = px + pw + offset + 10 + ncols * width
        else:
            width = min(max(text.text_width(name, fs) for name, _ in entries) + 28, max(60, pw // 6))
            ncols, right = max(1, min(-(-len(entries) // rows), int(pw // 3 // width))), px + pw - 10
        shown = entries if len(entries) <= rows * ncols else entries[:max(0, rows * ncols - 1)]
        rects, colors = [], []
        for i, (name, color) in enumerate(shown):
            col, row = divmod(i, rows)
            x, yy = right - (ncols - 1 - col) * width, py + ph - 14 - 16 * row
            rects.append((x - width, yy - 2, x - width + 16, yy + 2))
            colors.append(color)
            text.add(_clip_text(text, name, width - 26, fs), x - width + 22, yy, "lm", fs)
        if len(shown) < len(entries):
            text.add(f"+{len(entries) - len(shown)} more", right - width + 22, py + ph - 14 - 16 * (rows - 1),
                     "lm", fs)
        if rects:  # a plot one row high shows only the "+N more" line
            self.rects.set(np.asarray(rects), np.asarray(colors))
            self.rects.draw(**dict(u, u_space=1.0, u_min_px=1.0))

    def _param_colorbar(self, text, scale, layout: Layout, u, fs) -> None:
        """The colour bar of runs coloured by a hyperparameter: its colormap, labels in its units (log past 1.5
        decades), its name on top."""
        from gda_gl.compose.runcolor import colormap_rgba

        px, py, pw, ph = layout.plot
        x0, w, n = px + pw + 16, 14, 64
        edges = np.linspace(py, py + ph, n + 1)
        rects = np.stack([np.full(n, x0), edges[:-1], np.full(n, x0 + w), edges[1:]], axis=1)
        self.rects.set(rects, colormap_rgba((np.arange(n) + 0.5) / n))
        for f, label in scale.labels(5):
            text.add(label, x0 + w + 4, py + f * ph, "lm", fs - 1)
        self.rects.draw(**dict(u, u_space=1.0, u_min_px=1.0))
        text.add(_clip_text(text, scale.title, layout.width - x0 + 6, fs - 1), x0 - 6, layout.height - 14, "lt",
                 fs - 1)

    def _colorbar(self, text, name, rng, layout, u, fs) -> None:
        px, py, pw, ph = layout.plot
        x0 = px + pw + 16
        w = 14
        if name == "step_class":
            rects, cols = [], []
            for i, (code, c) in enumerate(CLASS_COLORS.items()):
                yy = py + ph - 20 - 22 * i
                rects.append((x0, yy - 7, x0 + w, yy + 7))
                cols.append(c)
                text.add(CLASS_LABELS[code], x0 + w + 4, yy, "lm", fs - 1)
            self.rects.set(np.asarray(rects), np.asarray(cols))
        else:
            n = 64
            edges = np.linspace(py, py + ph, n + 1)
            rects = np.stack([np.full(n, x0), edges[:-1], np.full(n, x0 + w), edges[1:]], axis=1)
            vals = rng[0] + (np.arange(n) + 0.5) / n * (rng[1] - rng[0])
            self.rects.set(rects, stat_colors(vals, name, rng))
            for f, label in colorbar_labels(rng[0], rng[1], 5):  # one label for a constant statistic
                text.add(label, x0 + w + 4, py + f * ph, "lm", fs - 1)
        self.rects.draw(**dict(u, u_space=1.0, u_min_px=1.0))
        text.add(STAT_LABELS.get(name, name), x0 + w / 2 + 10, layout.height - 14, "mt", fs - 1)

