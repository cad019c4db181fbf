"""Draw one frame of the explorer's controller into the current framebuffer: no toolkit, no window.

Both front ends of the explorer draw through here, so they show the same picture for the same
state: the VisPy canvas of the desktop window (:class:`~gda_gl.explorer.canvas.ExplorerCanvas`,
inside its own GL context) and the notebook widget (:mod:`gda_gl.notebook`, into an offscreen
framebuffer of an EGL context).  One frame is

1. the composition of the controller's *display* state (the animated x range; handing it out ends
   a finished flight, see :meth:`~gda_gl.explorer.navigation.Navigator.display_state`) drawn by
   :class:`~gda_gl.gl.render.CurveRenderer`;
2. the view and Frame just drawn handed back to the controller
   (:meth:`~gda_gl.explorer.navigation.Navigator.set_drawn`), so picking, hover and the status line
   map pixels through what is on screen;
3. the overlays (:class:`~gda_gl.gl.overlays.Overlays`): owner lines, highlight rug, glyph legend,
   help, the box of a box zoom in progress, the frame-time readout.

The caller owns the GL context, the renderer and the overlays (created inside that context), and
the framebuffer bound while this runs; the controller's size is the framebuffer's size.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from gda_gl.compose.frame import Frame
from gda_gl.gl.overlays import DETAIL_GLYPHS, OVERVIEW_GLYPHS, OverlaySpec
from .inputmap import HELP_KEYS

log = logging.getLogger(__name__)

__all__ = ["draw_controller_frame", "overlay_spec"]


def overlay_spec(c, st, frame: Frame, runs, box=None, frame_ms: Sequence[float] = ()) -> OverlaySpec:
    """What the overlays draw over ``frame``: its owner lines and rug, the legend, help, box, readout.

    Parameters
    ----------
    c : the explorer's controller (its legend, help and readout switches)
    st : the state the frame was drawn for (its toggles name the legend's glyphs)
    frame : the Frame just drawn
    runs : the visible runs (the first one's colour draws the legend's samples)
    box : (px0, py0, px1, py1) of a box zoom in progress, canvas pixels, origin top-left
    frame_ms : recent frame times (ms) for the readout (key R)
    """
    mode = frame.mode
    spec = OverlaySpec(box=box, help=c.show_help, help_rows=HELP_KEYS)
    if runs:
        spec.run_color = tuple(float(v) for v in runs[0].color)
    from gda_gl.compose.manyruns import sweep_style

    # the glyph legend explains arcs and envelopes; many runs zoomed out are lines (their legend is the runs')
    if c.show_legend and not c.show_help and runs and st.color_by == "none" and \
            not (sweep_style(frame.runs) and mode != "detail"):
        kinds = DETAIL_GLYPHS if mode == "detail" else OVERVIEW_GLYPHS
        kinds = tuple(k for k in kinds if not ((k in ("trial", "loose", "owner") and not st.show_trials)
                                               or (k == "beyond" and not st.show_loose)
                                               or (k == "rule" and not st.show_rules)
                                               or (k == "envelope" and not st.show_envelope)))
        if st.highlight:
            kinds = kinds + ("rug",)
        spec.legend = kinds
        entries = len(frame.legend)  # runs and the series drawn over the curve: the renderer's legend rows
        outside = c.layout.legend > 0  # the run legend in the margin right of the plot (compose.layout)
        spec.legend_offset = 16 * entries + 6 if entries > 1 and not outside else 0
    owner = frame.merged("owner")
    if owner is not None:
        origin = np.asarray(frame.origin, np.float64)
        spec.connectors = (owner.p0 + origin, owner.p1 + origin)
    spec.rug = frame.rug
    if c.show_readout and len(frame_ms):
        ms = np.asarray(frame_ms)
        spec.readout = (f"frame {ms[-1]:.1f} ms, median {np.median(ms):.1f} ms over {len(ms)} "
                        f"({1000.0 / max(np.median(ms), 1e-3):.0f} fps), {mode}")
    return spec


def draw_controller_frame(c, renderer, overlays, title: str | None = None, box=None,
                          frame_ms: Sequence[float] = ()) -> Frame:
    """Draw the controller's current view (curve, then overlays) into the bound framebuffer.

    Parameters
    ----------
    c : the explorer's controller; its ``size`` must be the framebuffer's size
    renderer : a :class:`~gda_gl.gl.render.CurveRenderer` of the current GL context
    overlays : an :class:`~gda_gl.gl.overlays.Overlays` of the current GL context
    title : the title line (the live state of followed runs), None for the runs' own title
    box : a box zoom in progress (see :func:`overlay_spec`)
    frame_ms : recent frame times for the readout

    Returns
    -------
    Frame
        the frame drawn (also handed to the controller with its view)
    """
    st = c.display_state()
    runs = c.visible_runs()
    frame = renderer.draw(c.runs, st, c.layout, title=title)  # picking ids index c.runs
    view = renderer.last_view
    c.set_drawn(view, frame)
    c.drawn_mode = frame.mode
    c.drawn_match = (getattr(frame, "match_count", None), getattr(frame, "match_exact", True))
    overlays.draw(view, overlay_spec(c, st, frame, runs, box, frame_ms))
    return frame
