"""The explorer's input map: ONE table of keys and mouse gestures -> actions, with their help text.

Each :class:`Binding` is one row of the help overlay (``label``, ``text``) and
says what its keys do (``keys``: key name -> action).  The same table feeds

- key dispatch (:func:`dispatch`, called by the canvas for every key press),
- the mouse gestures the canvas recognises (:func:`mouse_action`),
- the help overlay and ``overlays.help_text`` (:data:`HELP_KEYS`),
- the README's key list (a test checks that both name the same keys).

An action is either a function ``(controller) -> status message`` (None: leave
the status message as it is; "": clear it) or
the name of a *command* owned outside the controller (``"export"`` by the
canvas, ``"save_state"`` by the window), looked up in the ``commands`` mapping
passed to :func:`dispatch`.  Mouse actions are names the canvas implements
(they need the event's position).  Key names are VisPy's: one character
(matched case-insensitively) or a special name such as ``Home`` or ``Escape``.
No GL, no toolkit here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Mapping, Union

from gda_gl.compose.xaxis import AXES, AXIS_TITLES, unavailable

log = logging.getLogger(__name__)

__all__ = ["Binding", "BINDINGS", "HELP_KEYS", "KEY_ACTIONS", "dispatch", "mouse_action", "key_names"]

Action = Union[Callable[..., "str | None"], str]

SMOOTHING_STEPS = (0.0, 0.6, 0.9, 0.99, 0.999)


@dataclass(frozen=True)
class Binding:
    """One row of the help: its label and text, the keys it binds and the mouse gestures it names."""

    label: str
    text: str
    keys: Mapping[str, Action] = field(default_factory=dict)
    mouse: Mapping[str, str] = field(default_factory=dict)


# -- key actions (controller -> status message) ------------------------------------------------------
def _zoom_in(c):
    c.zoom_at(c.layout.left + c.layout.plot[2] / 2, 0, 2.0)


def _zoom_out(c):
    c.zoom_at(c.layout.left + c.layout.plot[2] / 2, 0, 0.5)


def _pan_left(c):
    c.pan(c.layout.plot[2] * 0.25)


def _pan_right(c):
    c.pan(-c.layout.plot[2] * 0.25)


def _log_y(c):
    c.state.update(log_y=not c.state.log_y, y_range=None)
    return f"log y {'on' if c.state.log_y else 'off'}"


def _autofit(c):
    return "y auto-fit " + ("on" if c.toggle_autofit() else "off (ctrl+wheel zooms y, drag pans it)")


def _toggle(field_name: str, message: str | None = None):
    def act(c):
        c.state.update(**{field_name: not getattr(c.state, field_name)})
        if message:
            return f"{message} {'on' if getattr(c.state, field_name) else 'off'}"
        return None
    act.__name__ = f"toggle_{field_name}"
    return act


def _smoothing(c):
    cur = c.state.smoothing
    nxt = next((v for v in SMOOTHING_STEPS if v > cur + 1e-12), 0.0)
    c.state.update(smoothing=nxt)
    return f"smoothing (EMA of the classic curve) {nxt:g}" if nxt else "smoothing off"


def _legend(c):
    c.show_legend = not c.show_legend
    c.request_redraw()


def _readout(c):
    c.show_readout = not c.show_readout
    c.request_redraw()


def _highlight(c):
    h = c.cycle_highlight()
    return f"highlight: {h or 'none'}" + (f" ({len(c.matches()):,} steps)" if h else "")


def _next_match(c):
    j = c.jump_match(+1)
    return f"match: iteration {j}" if j is not None else "no further match"


def _prev_match(c):
    j = c.jump_match(-1)
    return f"match: iteration {j}" if j is not None else "no earlier match"


def _details(c):
    info = c.hover_info
    if info and "iteration" in info:
        c.select(info.get("run_index"), info["iteration"])
        return f"details of iteration {c.state.selected}"
    return None


def _follow(c):
    c.state.update(follow=True)
    c.follow_newest()
    return "following the newest iterations"


def _x_axis(c):
    """The next x axis every visible run can provide (iteration, epoch, samples, wall time, forward passes)."""
    i = AXES.index(c.state.x_axis)
    for axis in AXES[i + 1:] + AXES[:i]:
        if not any(unavailable(r, axis) for r in c.visible_runs()):
            c.set_x_axis(axis)
            return f"x axis: {AXIS_TITLES[axis]}"
    return "no other x axis: the runs hold no epochs, wall times or samples to use"


def _normalize(c):
    c.state.update(normalize=not c.state.normalize, y_range=None)
    return "each run over its own first loss" if c.state.normalize else "losses as recorded"


def _help(c):
    c.show_help = not c.show_help
    c.request_redraw()
    return "help: press ? or Esc to close" if c.show_help else ""


def _close_help(c):
    if c.show_help:
        c.show_help = False
        c.request_redraw()
        return ""  # clears "press ? or Esc to close"
    return None


#: Every binding, in the order of the help overlay.
BINDINGS: tuple[Binding, ...] = (
    Binding("wheel", "zoom x at the cursor", mouse={"wheel": "zoom_x"}),
    Binding("ctrl+wheel", "zoom y at the cursor", mouse={"ctrl+wheel": "zoom_y"}),
    Binding("drag", "pan (x; y too once y is fixed)", mouse={"drag": "pan"}),
    Binding("shift+drag", "box zoom (draws the box)", mouse={"shift+drag": "box_zoom"}),
    Binding("click", "select the nearest step (details)", mouse={"click": "pick"}),
    Binding("double-click", "fly to that step", mouse={"double-click": "fly_to"}),
    Binding("+ / -", "zoom in / out", {"+": _zoom_in, "=": _zoom_in, "-": _zoom_out, "_": _zoom_out}),
    Binding("Home, 0", "whole run (press again: redraw)", {"Home": lambda c: c.home(), "0": lambda c: c.home()}),
    Binding("arrows", "pan left / right", {"Left": _pan_left, "Right": _pan_right}),
    Binding("A", "y auto-fit on / off", {"a": _autofit}),
    Binding("L", "log y", {"l": _log_y}),
    Binding("C", "colour by the next statistic", {"c": lambda c: f"colour by {c.cycle_color()}"}),
    Binding("M", "smooth the classic curve (EMA 0.6 / 0.9 / 0.99 / 0.999 / off)", {"m": _smoothing}),
    Binding("O / T / B / E", "beyond the step / trials / batch rules / envelope",
            {"o": _toggle("show_loose", "beyond the step (light arcs)"), "t": _toggle("show_trials"),
             "b": _toggle("show_rules"), "e": _toggle("show_envelope")}),
    Binding("H", "next highlight filter; N / P next / previous match",
            {"h": _highlight, "n": _next_match, "p": _prev_match}),
    Binding("J / K", "next / previous finding of gda-gl diagnose (flies to it)",
            {"j": lambda c: c.findings.jump(+1), "k": lambda c: c.findings.jump(-1)}),
    Binding("U", "x axis: iteration, epoch, samples, wall time, forward passes (next)", {"u": _x_axis}),
    Binding("Y", "each run's loss over its own first loss on / off", {"y": _normalize}),
    Binding("D", "details of the step under the cursor", {"d": _details}),
    Binding("F", "follow the newest iterations (live)", {"f": _follow}),
    Binding("G", "glyph legend on / off", {"g": _legend}),
    Binding("X", "export the view (PNG) and visible rows (CSV)", {"x": "export"}),
    Binding("R", "frame-time readout", {"r": _readout}),
    Binding("S", "save the view state", {"s": "save_state"}),
    Binding("? / F1 / Esc", "this help on / off", {"?": _help, "F1": _help, "Escape": _close_help}),
)

#: (label, text) rows of the help overlay, in order.
HELP_KEYS: tuple[tuple[str, str], ...] = tuple((b.label, b.text) for b in BINDINGS)

#: key name -> action, from :data:`BINDINGS`.
KEY_ACTIONS: dict[str, Action] = {k: a for b in BINDINGS for k, a in b.keys.items()}

_MOUSE: dict[str, str] = {g: a for b in BINDINGS for g, a in b.mouse.items()}


def key_names() -> set[str]:
    """Every bound key, as the README writes it (letters upper case)."""
    return {k.upper() if len(k) == 1 else k for k in KEY_ACTIONS}


def _normalise(name: str) -> str:
    return name.lower() if len(name) == 1 else name


def dispatch(ctrl, name: str, commands: Mapping[str, Callable[[], "str | None"]] | None = None) -> str | None:
    """Run the action bound to key ``name``; returns its status message ("" clears it, None leaves it).

    Parameters
    ----------
    ctrl : the explorer's controller (key actions act on it)
    name : VisPy key name, or the typed character
    commands : actions owned outside the controller (``"export"``, ``"save_state"``) by name; a
        command that is not provided does nothing
    """
    action = KEY_ACTIONS.get(_normalise(name))
    if action is None:
        return None
    if isinstance(action, str):
        fn = (commands or {}).get(action)
        if fn is None:
            log.debug("key %s: no handler for %s here", name, action)
            return None
        return fn()
    return action(ctrl)


def mouse_action(gesture: str, modifiers=()) -> str | None:
    """The action name of a mouse ``gesture`` ("wheel", "drag", "click", ...) with key ``modifiers``.

    A modifier-qualified binding ("ctrl+wheel", "shift+drag") wins over the plain gesture.
    """
    mods = {str(m).lower() for m in modifiers}
    for mod, prefix in (("control", "ctrl+"), ("shift", "shift+")):
        if mod in mods and prefix + gesture in _MOUSE:
            return _MOUSE[prefix + gesture]
    return _MOUSE.get(gesture)
