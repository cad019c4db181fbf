"""jupyter_rfb events -> the explorer's controller, through the one input table.

jupyter_rfb sends the browser's input as dicts (``type`` plus ``x``, ``y`` in CSS pixels relative to
the image, ``buttons``, ``modifiers`` such as ``"Control"``/``"Shift"``, and for wheels ``dx``/``dy``
in CSS pixels, for keys the DOM ``key`` name).  :class:`RfbInput` turns them into the same
controller calls the desktop canvas (:mod:`gda_gl.explorer.canvas`) makes for VisPy's events:

=================  ====================================================================
rfb event          controller call (gesture named by :func:`.inputmap.mouse_action`)
=================  ====================================================================
wheel              ``zoom_at`` (``zoom_y_at`` with ctrl), factor 1.25 per 100 CSS px (a notch)
pointer_down       remembers the press; shift+drag starts a box zoom
pointer_move       drag: ``pan`` or the box outline; no button: the hover readout
pointer_up         ``release``: box: ``box_zoom``; no drag (a click): ``pick`` (select the nearest step)
double_click       ``fly_to_pixel``: ``select`` + ``zoom_to_iteration`` (fly to the step)
key_down           :func:`.inputmap.dispatch` (DOM names mapped to VisPy's: ArrowLeft -> Left)
pointer_leave      forgets the cursor (no hover readout)
resize             the framebuffer size (physical pixels: CSS size times the pixel ratio)
=================  ====================================================================

Positions are scaled by the pixel ratio into framebuffer pixels (origin top-left, like the
canvas).  No GL and no widget library here: the widget passes its callbacks in.
"""

from __future__ import annotations

import logging
from typing import Callable

from gda_gl.explorer import inputmap

log = logging.getLogger(__name__)

__all__ = ["RfbInput", "WHEEL_NOTCH_PX", "key_name"]

WHEEL_NOTCH_PX = 100.0   # CSS pixels of one wheel notch (Chrome, Firefox in pixel mode)
_DOM_KEYS = {"ArrowLeft": "Left", "ArrowRight": "Right", "ArrowUp": "Up", "ArrowDown": "Down", "Esc": "Escape"}


def key_name(key: str) -> str:
    """The VisPy key name of a DOM ``KeyboardEvent.key`` (``ArrowLeft`` -> ``Left``; others unchanged)."""
    return _DOM_KEYS.get(key, key)


class RfbInput:
    """The explorer's gestures over a jupyter_rfb frame.

    Parameters
    ----------
    ctrl : the explorer's controller
    redraw : asks the widget for a new frame (the box outline changed)
    say : shows a status message (a key's or a click's result), or '' to clear it
    commands : actions owned outside the controller (``"export"``, ``"save_state"``) by name
    """

    def __init__(self, ctrl, redraw: Callable[[], None], say: Callable[[str], None],
                 commands: dict | None = None):
        self.ctrl = ctrl
        self.redraw = redraw
        self.say = say
        self.commands = commands if commands is not None else {}
        self.ratio = 1.0
        self.mouse: tuple[float, float] | None = None   # framebuffer pixels, origin top-left
        self.box: tuple[float, float, float, float] | None = None
        self._press = None   # ((x, y), box?) of the pressed left button
        self._last = None
        self._drag = False

    def _pos(self, event) -> tuple[float, float]:
        return float(event.get("x", 0.0)) * self.ratio, float(event.get("y", 0.0)) * self.ratio

    def handle(self, event: dict) -> None:
        """Dispatch one rfb event (unknown types are ignored)."""
        kind = event.get("type") or event.get("event_type")
        fn = getattr(self, f"on_{kind}", None)
        if fn is not None:
            fn(event)

    # -- events ------------------------------------------------------------------------------
    def on_resize(self, event) -> None:
        self.ratio = float(event.get("ratio") or event.get("pixel_ratio") or 1.0)
        w = event.get("pwidth") or event["width"] * self.ratio
        h = event.get("pheight") or event["height"] * self.ratio
        self.ctrl.resize(int(w), int(h))

    def on_wheel(self, event) -> None:
        x, y = self._pos(event)
        dx, dy = float(event.get("dx", 0.0)), float(event.get("dy", 0.0))
        notches = -(dy if dy else dx) / WHEEL_NOTCH_PX
        notches = max(-5.0, min(5.0, notches))
        if not notches:
            return
        if inputmap.mouse_action("wheel", event.get("modifiers", ())) == "zoom_y":
            self.ctrl.zoom_y_at(y, 1.25 ** notches)
        else:
            self.ctrl.zoom_at(x, y, 1.25 ** notches)

    def on_pointer_down(self, event) -> None:
        if event.get("button", 1) != 1:
            return
        pos = self._pos(event)
        box = inputmap.mouse_action("drag", event.get("modifiers", ())) == "box_zoom"
        self._press, self._last, self._drag = (pos, box), pos, False

    def on_pointer_move(self, event) -> None:
        pos = self._pos(event)
        self.mouse = pos
        if self._press is not None and 1 in tuple(event.get("buttons", ())):
            p0, box = self._press
            if box:
                self.box = (p0[0], p0[1], pos[0], pos[1])
                self.redraw()
            elif self._last is not None:
                self.ctrl.pan(pos[0] - self._last[0], pos[1] - self._last[1])
            self._last = pos
            self._drag = True
        else:
            self.ctrl.hover(*pos)
            self.say("")

    def on_pointer_up(self, event) -> None:
        if self._press is None:
            return
        p0, box = self._press
        self._press = None
        msg = self.ctrl.release(p0, self._pos(event), box, self._drag)
        if box and self._drag:
            self.box = None   # the outline goes
            self.redraw()
        elif msg:
            self.say(msg)

    def on_pointer_leave(self, event) -> None:
        self.mouse = None
        self.ctrl.hover_info = None
        self.say("")

    def on_double_click(self, event) -> None:
        k = self.ctrl.fly_to_pixel(*self._pos(event))
        if k is not None:
            self.say(f"selected iteration {k}")

    def on_key_down(self, event) -> None:
        mods = {str(m) for m in event.get("modifiers", ())}
        if mods & {"Control", "Meta", "Alt"}:
            return  # the browser's and the notebook's shortcuts, not the explorer's keys
        name = key_name(str(event.get("key", "")))
        if not name:
            return
        msg = self.ctrl.key(name, self.commands)
        if msg:
            log.info("%s", msg)
            self.say(msg)
