"""The explorer's VisPy canvas: draws through the engine, forwards input events to the controller.

Works with any VisPy app backend: Qt inside the desktop window, ``egl`` in
tests (events are synthesised there).  Animations redraw at the display rate
until they end; a timer polls live recordings every 0.2 s when following.
"""

from __future__ import annotations

import logging

from vispy import app

from ..render import CurveRenderer
from .controller import ExplorerController

log = logging.getLogger(__name__)

__all__ = ["ExplorerCanvas"]


class ExplorerCanvas(app.Canvas):
    """Canvas showing the enhanced training error curve of the controller's runs."""

    def __init__(self, controller: ExplorerController, poll_s: float = 0.2, **kw):
        super().__init__(size=controller.size, title="gda_gl", keys=None, **kw)
        self.controller = controller
        self.renderer: CurveRenderer | None = None
        self.status = ""
        self._press = None
        self._drag = False
        self.frames = 0
        controller.state.observe(lambda st, changed: self.update())
        self.poll_timer = app.Timer(poll_s, connect=self._on_poll, start=bool(controller.recordings))

    # -- drawing ---------------------------------------------------------------
    def on_draw(self, event=None) -> None:
        if self.renderer is None:
            self.renderer = CurveRenderer()
        c = self.controller
        w, h = self.physical_size
        c.resize(int(w), int(h))
        title = None
        if c.live_status:
            title = "  ".join(f"{name} [{st}]" for name, st in c.live_status.items())
        self.renderer.draw(c.runs, c.display_state(), c.layout, title=title)
        self.frames += 1
        if c.animating:
            self.update()

    def on_resize(self, event) -> None:
        self.controller.resize(*event.physical_size)

    # -- input -------------------------------------------------------------------
    def _scale(self, pos):
        r = self.pixel_scale
        return pos[0] * r, pos[1] * r

    def on_mouse_wheel(self, event) -> None:
        x, y = self._scale(event.pos)
        self.controller.zoom_at(x, y, 1.25 ** event.delta[1])

    def on_mouse_press(self, event) -> None:
        mods = [getattr(k, "name", str(k)) for k in (event.modifiers or ())]
        self._press = (self._scale(event.pos), "Shift" in mods)
        self._drag = False

    def on_mouse_move(self, event) -> None:
        pos = self._scale(event.pos)
        if self._press is not None and event.is_dragging:
            (p0, box) = self._press
            if not box:
                last = self._scale(event.last_event.pos)
                self.controller.pan(pos[0] - last[0], 0.0)
            self._drag = True
        else:
            info = self.controller.hover(*pos)
            self.status = _hover_text(info)

    def on_mouse_release(self, event) -> None:
        if self._press is None:
            return
        (p0, box) = self._press
        pos = self._scale(event.pos)
        if box and self._drag:
            self.controller.box_zoom(p0, pos)
        elif not self._drag:
            k = self.controller.pick(*pos)
            if k is not None:
                self.status = f"selected iteration {k}"
        self._press = None

    def on_mouse_double_click(self, event) -> None:
        x, _ = self.controller.px_to_data(*self._scale(event.pos))
        hit = self.controller.iteration_at(x)
        if hit is not None:
            run, r = hit
            k = int(run.data.iteration[r])
            self.controller.state.update(selected=k)
            self.controller.zoom_to_iteration(k)

    def on_key_press(self, event) -> None:
        if event.key is None:
            return
        name = getattr(event.key, "name", str(event.key))
        msg = self.controller.key(name if len(name) > 1 else (event.text or name))
        if msg:
            self.status = msg
            log.info("%s", msg)

    def _on_poll(self, event=None) -> None:
        try:
            if self.controller.poll():
                self.update()
        except Exception as exc:  # a vanished or damaged file: say so, keep the window
            self.status = f"cannot read new iterations: {exc}"
            log.warning("%s", self.status)
            self.poll_timer.stop()


def _hover_text(info) -> str:
    if not info:
        return ""
    if "iteration" in info:
        return (f"{info['run']}: iteration {info['iteration']}, alpha {info['alpha']:.4g}, "
                f"phi {info['phi']:.6g} (cursor loss {info['loss']:.6g})")
    return f"x {info['x']:.6g}, loss {info['loss']:.6g}"
