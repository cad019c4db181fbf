"""The explorer's VisPy canvas: draws through the engine, forwards input events to the controller.

Works with any VisPy app backend: Qt inside the desktop window, ``egl`` in
tests (events are synthesised there).  After every frame the canvas hands the
view it drew (``CurveRenderer.last_view``) to the controller
(``controller.drawn_view``), so hover, clicks and the status line map pixels
through what is on screen.  Animations redraw until the controller has handed
out the target; a timer polls the live sources (a
:class:`~gda_gl.session.follow.Follower`, owned by the window) every 0.2 s.

Keys go through the input map (:func:`gda_gl.explorer.inputmap.dispatch`);
commands owned outside the controller (``export`` here, ``save_state`` added by
the window) are in :attr:`ExplorerCanvas.commands`.  Mouse gestures are named
by :func:`gda_gl.explorer.inputmap.mouse_action`.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path

from vispy import app

from gda_gl.gl.overlays import Overlays, OverlaySpec
from gda_gl.gl.render import CurveRenderer
from . import inputmap, picking
from .controller import ExplorerController
from .export import export_controller_view
from .frame_draw import draw_controller_frame, overlay_spec

log = logging.getLogger(__name__)

__all__ = ["ExplorerCanvas"]


class ExplorerCanvas(app.Canvas):
    """Canvas showing the enhanced training error curve of the controller's runs.

    Parameters
    ----------
    controller : the explorer's controller
    poll_s : how often the live sources are polled
    fps : show the frame-time readout from the start (key R toggles it)
    follower : the live sources (:class:`~gda_gl.session.follow.Follower`) to poll, if any
    """

    def __init__(self, controller: ExplorerController, poll_s: float = 0.2, fps: bool = False,
                 follower=None, **kw):
        super().__init__(size=controller.size, title="gda_gl", keys=None, **kw)
        self.controller = controller
        self.follower = follower
        self.commands = {"export": lambda: self.export(Path.cwd())}
        self.renderer: CurveRenderer | None = None
        self.overlays: Overlays | None = None
        self.message = ""          # the last key's message (until the mouse moves)
        self.status = ""           # the status line: message, hover readout, highlight matches, live state
        self.pending_redraw = False
        self._press = None
        self._drag = False
        self._box = None
        self._mouse = None
        self.frames = 0
        self.frame_ms: deque[float] = deque(maxlen=60)
        controller.show_readout = controller.show_readout or fps
        controller.state.observe(lambda st, changed: self.request_redraw())
        controller.on_redraw(self.request_redraw)
        self.poll_timer = app.Timer(poll_s, connect=self._on_poll, start=bool(follower and follower.active))

    def request_redraw(self) -> None:
        self.pending_redraw = True
        self.update()

    @property
    def mouse(self) -> tuple[float, float] | None:
        """The last cursor position over the canvas (physical pixels, origin top-left), or None."""
        return self._mouse

    @mouse.setter
    def mouse(self, pos: tuple[float, float] | None) -> None:
        """Place a resting cursor (scripts and tests): the next frame's status line reads it."""
        self._mouse = None if pos is None else (float(pos[0]), float(pos[1]))

    # -- drawing ---------------------------------------------------------------
    def on_draw(self, event=None) -> None:
        t0 = time.perf_counter()
        self.pending_redraw = False
        if self.renderer is None:
            self.renderer = CurveRenderer()
            self.overlays = Overlays()
        c = self.controller
        w, h = self.physical_size
        c.resize(int(w), int(h))
        title = self.follower.title() if self.follower is not None else None
        # the same frame the notebook widget draws (frame_draw: curve, set_drawn, overlays)
        draw_controller_frame(c, self.renderer, self.overlays, title=title, box=self._box, frame_ms=self.frame_ms)
        if c.show_readout:
            from vispy import gloo

            gloo.gl.glFinish()  # time the frame, not its submission
        self.frames += 1
        self.frame_ms.append(1000.0 * (time.perf_counter() - t0))
        self.refresh_status()
        if c.animating:
            self.request_redraw()

    def _overlay_spec(self, st, frame, runs) -> OverlaySpec:
        """What the overlays draw over ``frame`` (see :func:`.frame_draw.overlay_spec`)."""
        return overlay_spec(self.controller, st, frame, runs, self._box, self.frame_ms)

    def refresh_status(self) -> None:
        """Recompute the status line against the view just drawn (the cursor may not have moved)."""
        c = self.controller
        parts = [self.message] if self.message else []
        if self._mouse is not None:
            parts.append(picking.hover_text(c.hover(*self._mouse)))
        parts.append(c.match_summary())
        self.status = "  |  ".join(p for p in parts if p)

    def on_resize(self, event) -> None:
        self.controller.resize(*event.physical_size)

    # -- input -------------------------------------------------------------------
    def _scale(self, pos):
        r = self.pixel_scale
        return pos[0] * r, pos[1] * r

    @staticmethod
    def _mods(event) -> list[str]:
        return [getattr(k, "name", str(k)) for k in (event.modifiers or ())]

    def on_mouse_wheel(self, event) -> None:
        x, y = self._scale(event.pos)
        steps = event.delta[1] if event.delta[1] else event.delta[0]
        if inputmap.mouse_action("wheel", self._mods(event)) == "zoom_y":
            self.controller.zoom_y_at(y, 1.25 ** steps)
        else:
            self.controller.zoom_at(x, y, 1.25 ** steps)

    def on_mouse_press(self, event) -> None:
        box = inputmap.mouse_action("drag", self._mods(event)) == "box_zoom"
        self._press = (self._scale(event.pos), box)
        self._drag = False

    def on_mouse_move(self, event) -> None:
        pos = self._scale(event.pos)
        self._mouse = pos
        if self._press is not None and event.is_dragging:
            (p0, box) = self._press
            if box:
                self._box = (p0[0], p0[1], pos[0], pos[1])
                self.request_redraw()
            else:
                last = self._scale(event.last_event.pos)
                self.controller.pan(pos[0] - last[0], pos[1] - last[1])
            self._drag = True
        else:
            self.message = ""
            self.refresh_status()

    def on_mouse_release(self, event) -> None:
        if self._press is None:
            return
        (p0, box) = self._press
        msg = self.controller.release(p0, self._scale(event.pos), box, self._drag)
        if box and self._drag:
            self._box = None   # the outline goes
            self.request_redraw()
        elif msg:
            self.message = msg
            self.refresh_status()
        self._press = None

    def on_mouse_double_click(self, event) -> None:
        self.controller.fly_to_pixel(*self._scale(event.pos))

    def on_key_press(self, event) -> None:
        if event.key is None:
            return
        name = getattr(event.key, "name", str(event.key))
        if len(name) == 1 and self._mods(event) and name.lower() in ("x", "s"):
            return  # ctrl+X / ctrl+S belong to the menu, not to the plain keys
        msg = self.controller.key(name if len(name) > 1 else (event.text or name), self.commands)
        if msg is not None:  # "" clears the message (Esc closing the help)
            self.message = msg
            if msg:
                log.info("%s", msg)
            self.refresh_status()

    def export(self, folder: Path) -> str:
        """Write the view as PNG and the visible rows as CSV into ``folder``; returns a status message.

        The PNG is the view as drawn, without the frame-time readout (key R), which is about this
        machine and not about the run.
        """
        return export_controller_view(self.controller, self.render, self.request_redraw, folder)

    def _on_poll(self, event=None) -> None:
        if self.follower is None:
            return
        try:
            if self.follower.poll():
                self.request_redraw()
        except Exception as exc:  # a vanished or damaged file: say so, keep the window
            self.message = f"cannot read new iterations: {exc}"
            self.refresh_status()
            log.warning("%s", self.message)
            self.poll_timer.stop()
