"""Drive the real explorer window (Qt under Xvfb) with synthetic input; write results as JSON plus screenshots.

usage: qt_drive.py OUT_DIR RUN_A.gda RUN_B.gda FOLLOW_PATH

Each scenario records what the state and the screen showed; tests/test_explorer_window.py asserts on it.
Run under ``xvfb-run`` with ``QT_QPA_PLATFORM=xcb``.
"""

from __future__ import annotations

import json
import sys
import time
import functools
import inspect
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

OUT = Path(sys.argv[1])
RUN_A, RUN_B, FOLLOW = sys.argv[2], sys.argv[3], sys.argv[4]
results: dict = {}


SCENARIOS: list = []  # (name, function whose parameters name the shared helpers of main), run in order, one window


def scenario(name):
    """Register a scenario; its result (or its traceback) is stored under ``name`` in results.json."""
    def deco(fn):
        SCENARIOS.append((name, fn))
        return fn
    return deco


def _grab(native, widget=None, name=None):
    """The widget (the canvas by default) as an RGB array; saved as ``name`` under OUT when given."""
    from PyQt6 import QtGui

    img = (widget or native).grabFramebuffer() if hasattr(widget or native, "grabFramebuffer") else \
        (widget or native).grab().toImage()
    img = img.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    ptr = img.constBits()
    ptr.setsize(img.sizeInBytes())
    arr = np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine())[:, :img.width() * 3]
    arr = arr.reshape(img.height(), img.width(), 3).copy()
    if name:
        img.save(str(OUT / name))
    return arr


def _mouse(native, kind, pos, button=None, buttons=None, mods=None):
    """Send one mouse event (press, release, move, double) at canvas pixel ``pos``."""
    from PyQt6 import QtCore, QtGui, QtWidgets

    button = QtCore.Qt.MouseButton.LeftButton if button is None else button
    mods = QtCore.Qt.KeyboardModifier.NoModifier if mods is None else mods
    types = {"press": QtCore.QEvent.Type.MouseButtonPress, "release": QtCore.QEvent.Type.MouseButtonRelease,
             "move": QtCore.QEvent.Type.MouseMove, "double": QtCore.QEvent.Type.MouseButtonDblClick}
    if buttons is None:
        buttons = button if kind in ("press", "move", "double") and button != QtCore.Qt.MouseButton.NoButton \
            else QtCore.Qt.MouseButton.NoButton
    lp = QtCore.QPointF(float(pos[0]), float(pos[1]))
    gp = QtCore.QPointF(native.mapToGlobal(lp.toPoint()))
    ev = QtGui.QMouseEvent(types[kind], lp, gp, button, buttons, mods)
    QtWidgets.QApplication.sendEvent(native, ev)


def main() -> None:
    from PyQt6 import QtCore, QtGui, QtWidgets
    from PyQt6.QtTest import QTest

    from gda_gl.explorer.app import build_window
    from gda_gl.explorer.animation import ANIMATION_S

    w = build_window([RUN_A, RUN_B])
    w.show((1500, 850))
    c, cv = w.ctrl, w.canvas
    native = cv.native

    def wait(ms=60):
        QTest.qWait(ms)

    def settle(timeout=8.0):
        """Process events until the animation has ended and the last frame is drawn."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            wait(30)
            if not c.animating and not cv.pending_redraw:
                wait(30)
                if not c.animating and not cv.pending_redraw:
                    return True
        return False

    grab = functools.partial(_grab, native)
    mouse = functools.partial(_mouse, native)

    def hover_at(pos):
        mouse("move", pos, button=QtCore.Qt.MouseButton.NoButton)

    def wheel(pos, steps, mods=QtCore.Qt.KeyboardModifier.NoModifier):
        lp = QtCore.QPointF(float(pos[0]), float(pos[1]))
        gp = QtCore.QPointF(native.mapToGlobal(lp.toPoint()))
        ev = QtGui.QWheelEvent(lp, gp, QtCore.QPoint(0, 0), QtCore.QPoint(0, int(120 * steps)),
                               QtCore.Qt.MouseButton.NoButton, mods, QtCore.Qt.ScrollPhase.NoScrollPhase, False)
        QtWidgets.QApplication.sendEvent(native, ev)

    def key(text):
        special = {"Home": QtCore.Qt.Key.Key_Home, "Escape": QtCore.Qt.Key.Key_Escape}
        native.setFocus()
        if text in special:
            QTest.keyClick(native, special[text])
        else:
            QTest.keyClicks(native, text)

    settle()
    wait(300)

    full = c.full_x_range()
    env = {"w": w, "c": c, "cv": cv, "native": native, "full": full, "wait": wait, "settle": settle, "grab": grab,
           "mouse": mouse, "hover_at": hover_at, "wheel": wheel, "key": key, "build_window": build_window,
           "ANIMATION_S": ANIMATION_S, "QtCore": QtCore, "QtGui": QtGui, "QtWidgets": QtWidgets, "QTest": QTest}
    for name, fn in SCENARIOS:
        try:  # a scenario names the helpers it uses as its parameters, like pytest fixtures
            results[name] = fn(**{p: env[p] for p in inspect.signature(fn).parameters})
        except Exception:
            results[name] = {"error": traceback.format_exc()}

    (OUT / "results.json").write_text(json.dumps(results, indent=1, default=str))


@scenario("widgets_follow_state")
def _widgets_follow_state(w, c, wait, settle, key):
    out = {}
    key("h")
    wait()
    out["highlight_state"], out["highlight_combo"] = c.state.highlight, w.panel.highlight.currentText()
    key("c")
    wait()
    out["color_state"], out["color_combo"] = c.state.color_by, w.panel.color.currentText()
    key("l")
    wait()
    out["log_state"], out["log_check"] = c.state.log_y, w.panel.checks["log_y"].isChecked()
    key("+")
    settle()
    out["x_range"] = list(c.state.x_range)
    out["it_spin"] = [w.panel.it_lo.value(), w.panel.it_hi.value()]
    # the combo box edits the state too (both directions)
    w.panel.highlight.setCurrentText("none")
    w.panel.color.setCurrentText("none")
    key("l")
    key("Home")
    settle()
    out["after_reset"] = [c.state.highlight, c.state.color_by, c.state.log_y]
    return out


@scenario("pick_two_runs")
def _pick_two_runs(w, c, wait, settle, mouse, hover_at):
    # zoom where both runs' arcs are drawn; click within 2 px of run a's or b's arc
    c.set_x_range((60.0, 75.0))
    settle()
    v = c.drawn_view
    rng = np.random.default_rng(1)
    trials, ok = [], 0
    runs = c.runs
    for i in range(24):
        ri = i % 2
        run = runs[ri]
        k = int(rng.integers(61, 73))
        row = run.data.row_of(k)
        a = float(rng.uniform(0.15, 0.85))
        t = float(run.data["taken_alpha"][row])
        phi = float(np.interp(a, run.alphas, run.data.phi[row]))
        px, py = v.data_to_px(k + a / t, phi)
        # skip points where the other run's arc passes within 5 px (ambiguous by construction)
        other = runs[1 - ri]
        orow = other.data.row_of(k)
        ophi = float(np.interp(a, other.alphas, other.data.phi[orow]))
        if abs(v.data_to_px(k + a / t, ophi)[1] - py) < 6:
            continue
        dy = float(rng.uniform(-2.0, 2.0))
        mouse("press", (px, py + dy))
        mouse("release", (px, py + dy))
        wait(20)
        got = (c.selected_run, c.state.selected)
        trials.append({"want": [ri, k], "got": list(got)})
        ok += got == (ri, k)
    # hover names the run and step under the cursor
    run = runs[1]
    row = run.data.row_of(66)
    phi = float(np.interp(0.5, run.alphas, run.data.phi[row]))
    pos = v.data_to_px(66.5, phi)
    hover_at(pos)
    wait(700)
    status_b = w.win.statusBar().currentMessage()
    return {"trials": trials, "ok": ok, "status_b": status_b, "tooltip": w.tooltip_text}


@scenario("status_after_zoom")
def _status_after_zoom(w, c, wait, settle, hover_at, key):
    c.set_x_range((100.0, 140.0))
    settle()
    lay = c.layout
    pos = (int(lay.left + 0.2 * lay.plot[2]), int(c.size[1] / 2))  # whole pixels, as events carry
    hover_at(pos)
    wait(150)
    before = w.win.statusBar().currentMessage()
    key("+")
    settle()
    wait(250)
    after = w.win.statusBar().currentMessage()
    x_now = c.drawn_view.px_to_data(*pos)[0]
    v = c.drawn_view
    return {"before": before, "after": after, "x_now": x_now, "y_range_data": list(v.y_range_data),
            "hover_loss": c.hover_info["loss"] if c.hover_info else None}


@scenario("box_zoom")
def _box_zoom(c, wait, settle, grab, mouse, key, QtCore):
    key("Home")
    settle()
    lay = c.layout
    p0 = (lay.left + 200, 120)
    p1 = (lay.left + 420, 300)
    sh = QtCore.Qt.KeyboardModifier.ShiftModifier
    mouse("press", p0, mods=sh)
    mouse("move", ((p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2), mods=sh)
    mouse("move", p1, mods=sh)
    wait(150)
    img = grab(name="box_zoom_drag.png")
    expect = c.drawn_view.px_to_data(*p0)[0], c.drawn_view.px_to_data(*p1)[0]
    mouse("release", p1, mods=sh)
    settle()
    edge = img[int(p0[1]), int(p0[0]) + 5:int(p1[0]) - 5].astype(int)
    outline = np.all(np.abs(edge - np.array([53, 96, 192])) < 60, axis=1).mean()
    inside = img[int(p0[1]) + 5:int(p1[1]) - 5, int(p0[0]) + 5:int(p1[0]) - 5].astype(int)
    return {"outline_fraction": float(outline), "x_range": list(c.state.x_range), "expect": list(expect),
            "y_range": c.state.y_range, "inside_mean": inside.reshape(-1, 3).mean(axis=0).tolist()}


@scenario("y_zoom_autofit")
def _y_zoom_autofit(w, c, settle, wheel, key, QtCore):
    key("Home")
    settle()
    h0 = c.drawn_view.y1 - c.drawn_view.y0
    lay = c.layout
    wheel((lay.left + 300, 200), 2, mods=QtCore.Qt.KeyboardModifier.ControlModifier)
    settle()
    h1 = c.drawn_view.y1 - c.drawn_view.y0
    fixed, check_off = c.state.y_range is not None, not w.panel.autofit.isChecked()
    key("a")
    settle()
    return {"h0": h0, "h1": h1, "fixed": fixed, "autofit_check_off": check_off,
            "auto_again": c.state.y_range is None and w.panel.autofit.isChecked()}


@scenario("zoom_out_bound")
def _zoom_out_bound(c, full, wait, settle, wheel, key):
    key("Home")
    settle()
    for _ in range(8):
        key("-")
        wait(20)
    for _ in range(6):
        wheel((c.layout.left + 50, 200), -3)
        wait(20)
    settle()
    return {"width": c.state.x_range[1] - c.state.x_range[0], "full": full[1] - full[0],
            "drawn": [c.drawn_view.x0, c.drawn_view.x1]}


@scenario("help_overlay")
def _help_overlay(c, settle, grab, key, QtWidgets):
    key("Home")
    settle()
    blue = lambda im: int(np.sum(np.all(np.abs(im.astype(int) - [31, 120, 181]) < 40, axis=2)))  # noqa: E731
    base = blue(grab())
    key("?")
    settle()
    img = grab(name="help_overlay.png")
    shown = c.show_help
    modal = QtWidgets.QApplication.activeModalWidget() is not None
    # the panel hides most of the plot
    covered = blue(img)
    key("Escape")
    settle()
    return {"shown": shown, "modal": modal, "blue_before": base, "blue_with_help": covered,
            "closed": not c.show_help, "blue_after": blue(grab())}


@scenario("double_click_flight")
def _double_click_flight(c, cv, settle, mouse, key):
    key("Home")
    settle()
    drawn = []
    orig = cv.on_draw

    def spy(event=None):
        orig(event)
        drawn.append((c.drawn_view.x0, c.drawn_view.x1))

    cv.events.draw.disconnect(cv.on_draw)
    cv.events.draw.connect(spy)
    try:
        run = c.runs[0]
        k = 237
        row = run.data.row_of(k)
        v = c.drawn_view
        px, py = v.data_to_px(k + 0.5, float(np.interp(0.5, run.alphas, run.data.phi[row])))
        drawn.clear()
        mouse("double", (px, py))
        settle()
    finally:
        cv.events.draw.disconnect(spy)
        cv.events.draw.connect(cv.on_draw)
    return {"k": k, "selected": c.state.selected, "frames": drawn, "target": list(c.state.x_range)}


@scenario("slow_frames")
def _slow_frames(c, cv, settle, wheel, key, ANIMATION_S):
    # every frame takes twice the animation: each zoom must still end with its target on screen
    r = cv.renderer
    orig = r.draw

    def slow(*a, **kw):
        out = orig(*a, **kw)
        time.sleep(2 * ANIMATION_S)
        return out

    r.draw = slow
    misses = []
    try:
        lay = c.layout
        actions = [lambda: key("+"), lambda: key("+"), lambda: wheel((lay.left + 100, 200), 2),
                   lambda: key("-"), lambda: key("Home"), lambda: key("+"), lambda: key("Home"),
                   lambda: key("Home")]
        for i, act in enumerate(actions):
            act()
            settle(timeout=10)
            d = (c.drawn_view.x0, c.drawn_view.x1)
            if d != tuple(c.state.x_range):
                misses.append([i, list(d), list(c.state.x_range)])
    finally:
        r.draw = orig
    return {"misses": misses, "n": len(actions)}


@scenario("details_layout")
def _details_layout(w, c, wait, settle, grab):
    out = {}
    for size in ((1500, 850), (900, 560)):
        w.win.resize(*size)
        wait(300)
        c.select(0, 120)
        settle()
        wait(300)
        d = w.detail.native
        img = grab(d, name=f"details_{size[0]}x{size[1]}.png")
        blue = int(np.sum(np.all(np.abs(img.astype(int) - [31, 120, 181]) < 40, axis=2)))
        out[f"{size[0]}x{size[1]}"] = {"visible": d.isVisible(), "height": d.height(), "width": d.width(),
                                       "blue_px": blue, "drawn": list(w.detail.drawn or []),
                                       "window": [w.win.width(), w.win.height()]}
    w.win.resize(1500, 850)
    wait(200)
    return out


@scenario("screenshots")
def _screenshots(w, c, wait, settle, key):
    w.win.resize(1500, 850)
    c.select(None, None)
    key("Home")
    settle()
    wait(200)
    w.win.grab().save(str(OUT / "window_overview.png"))
    c.set_x_range((40.0, 100.0))
    settle()
    wait(200)
    w.win.grab().save(str(OUT / "window_zoom.png"))
    c.select(0, 61)
    c.zoom_to_iteration(61)
    settle()
    wait(300)
    w.win.grab().save(str(OUT / "window_step.png"))
    return {"ok": True}


@scenario("save_view_state")
def _save_view_state(w, c, wait, settle, key):
    """Issue 17.1: S without --state saves beside the first run and says where; ctrl+S with --state."""
    out = {}
    c.set_x_range((40.0, 90.0))
    settle()
    beside = Path(RUN_A).with_name(Path(RUN_A).stem + ".view.json")
    key("s")
    wait(300)
    out["beside_exists"] = beside.exists()
    out["beside_path"] = str(beside)
    out["status_beside"] = w.win.statusBar().currentMessage()
    out["beside_x"] = json.loads(beside.read_text())["x_range"] if beside.exists() else None
    explicit = OUT / "explicit.view.json"
    w.state_file = str(explicit)
    save = next(a for a in w.win.menuBar().actions()[0].menu().actions() if a.text() == "Save view state")
    out["save_shortcut"] = save.shortcut().toString()
    save.trigger()  # File > Save view state (ctrl+S)
    wait(300)
    out["explicit_exists"] = explicit.exists()
    out["status_explicit"] = w.win.statusBar().currentMessage()
    out["x_range"] = list(c.state.x_range)
    w.state_file = None
    return out


@scenario("panel_across_runs")
def _panel_across_runs(w, c, wait, settle, mouse):
    """Issue 17.2: the same step of another run: the side panel must switch with the details canvas."""
    c.set_x_range((60.0, 75.0))
    settle()
    v = c.drawn_view

    def arc_px(ri, k):
        run = c.runs[ri]
        row = run.data.row_of(k)
        t = float(run.data["taken_alpha"][row])
        return v.data_to_px(k + 0.5 / t, float(np.interp(0.5, run.alphas, run.data.phi[row])))

    k = next(k for k in range(61, 73) if abs(arc_px(0, k)[1] - arc_px(1, k)[1]) > 12)
    out = {"k": k, "panels": []}
    for ri in (0, 1, 0):
        pos = arc_px(ri, k)
        mouse("press", pos)
        mouse("release", pos)
        settle()
        wait(150)
        out["panels"].append({"want": c.runs[ri].name, "selected": [c.selected_run, c.state.selected],
                              "panel": w.panel.numbers.text(), "detail": list(w.detail.drawn or []),
                              "train_loss": float(c.runs[ri].data["train_loss"][c.runs[ri].data.row_of(k)])})
    return out


@scenario("readout_after_view_moves")
def _readout_after_view_moves(w, c, wait, settle, hover_at, key):
    """Issue 17.6: status and tooltip must follow the view when it moves without the mouse (Home, L)."""
    from PyQt6.QtWidgets import QToolTip

    out = {}
    for name, act in (("home", lambda: key("Home")), ("log", lambda: key("l")), ("zoom", lambda: key("+"))):
        if c.state.log_y:
            key("l")
        c.set_x_range((100.0, 140.0))
        settle()
        run = c.runs[0]
        row = run.data.row_of(120)
        t = float(run.data["taken_alpha"][row])
        pos = c.drawn_view.data_to_px(120 + 0.5 / t, float(np.interp(0.5, run.alphas, run.data.phi[row])))
        pos = (int(round(pos[0])), int(round(pos[1])))
        hover_at(pos)
        wait(700)
        before = {"status": w.win.statusBar().currentMessage(), "tooltip": w.tooltip_text,
                  "tip_visible": QToolTip.isVisible(), "tip": QToolTip.text()}
        act()
        settle()
        wait(700)
        expect = c.hover(*pos)  # what is under the resting cursor in the view drawn now
        out[name] = {"before": before, "status": w.win.statusBar().currentMessage(),
                     "tooltip": w.tooltip_text, "tip_visible": QToolTip.isVisible(), "tip": QToolTip.text(),
                     "expect_step": expect.get("iteration") if expect else None,
                     "expect_run": expect.get("run") if expect else None,
                     "expect_near": bool(expect and expect.get("dist_px", 99) <= 14),
                     "expect_bucket": bool(expect and "bucket" in expect),
                     "expect_table": bool(expect and expect.get("table")),
                     "x_range": list(c.state.x_range)}
    if c.state.log_y:
        key("l")
    return out


@scenario("readouts_in_range")
def _readouts_in_range(w, c, wait, settle, mouse, hover_at, key, QtCore):
    """Issue 17.3: status lines over the whole run, in log y and during a box zoom name drawn points only."""
    import re

    out = {"grid_max": float(max(max(r.alphas) for r in c.runs)), "lines": []}
    lay = c.layout
    for log_y in (False, True):
        if c.state.log_y != log_y:
            key("l")
        key("Home")
        settle()
        for fx in np.linspace(0.02, 0.98, 9):
            for fy in (0.2, 0.5, 0.8):
                hover_at((int(lay.left + fx * lay.plot[2]), int(c.size[1] - lay.bottom - fy * lay.plot[3])))
                wait(40)
                out["lines"].append(w.canvas.status)
    if c.state.log_y:
        key("l")
    c.set_x_range((100.0, 104.0))
    settle()
    sh = QtCore.Qt.KeyboardModifier.ShiftModifier
    p0 = (int(lay.left + 0.1 * lay.plot[2]), int(c.size[1] / 2))
    mouse("press", p0, mods=sh)
    for fx in np.linspace(0.15, 0.95, 9):
        mouse("move", (int(lay.left + fx * lay.plot[2]), int(c.size[1] / 2 + 40)), mods=sh)
        wait(40)
        out["lines"].append(w.canvas.status)
    mouse("release", p0, mods=sh)
    settle()
    out["alphas"] = [float(a) for line in out["lines"] for a in re.findall(r"alpha (-?[0-9.e+-]+)", line)]
    return out


@scenario("keys_after_panel_and_esc")
def _keys_after_panel_and_esc(w, c, native, wait, settle, key, QtCore, QTest):
    """Issue 17.7: keys reach the plot after typing into the epoch box; Esc clears the help's status."""

    def focused():  # the widget keys go to in this window
        return w.win.focusWidget()

    out = {}
    key("Home")
    settle()
    box = w.panel.ep_hi
    range_before = c.state.x_range
    box.setFocus()
    box.selectAll()
    QTest.keyClicks(box, "1")
    QTest.keyClick(box, QtCore.Qt.Key.Key_Return)
    wait(100)
    settle()
    out["enter_applied"] = c.state.x_range != range_before  # issue 28: Enter applies, as the button does
    focus = focused()
    out["focus_is_plot"] = focus is native
    log_before = c.state.log_y
    QTest.keyClick(focus, QtCore.Qt.Key.Key_L)
    wait(100)
    out["l_toggled"] = c.state.log_y != log_before
    c.set_x_range((40.0, 60.0))
    settle()
    QTest.keyClick(focused(), QtCore.Qt.Key.Key_Home)
    settle()
    out["home_whole"] = list(c.state.x_range) == list(c.full_x_range())
    if c.state.log_y:
        key("l")
    # the colour combo: after choosing, letters go to the plot, not to the combo's search
    w.panel.color.setFocus()
    w.panel.color.activated.emit(1)
    wait(100)
    out["focus_after_combo_is_plot"] = focused() is native
    # issue 28: after ticking a series in the list, keys (U, S, ...) go to the plot again
    lst = w.panel.series.widget
    out["series_items"] = lst.count()
    if lst.count():
        lst.setFocus()
        item = lst.item(lst.count() - 1)
        item.setCheckState(QtCore.Qt.CheckState.Checked if item.checkState() != QtCore.Qt.CheckState.Checked
                           else QtCore.Qt.CheckState.Unchecked)
        wait(100)
        out["focus_after_series_is_plot"] = focused() is native
        item = lst.item(lst.count() - 1)  # the list was refilled: untick it again (later scenarios see no panel)
        item.setCheckState(QtCore.Qt.CheckState.Checked if item.checkState() != QtCore.Qt.CheckState.Checked
                           else QtCore.Qt.CheckState.Unchecked)
        wait(100)
        settle()
    w.panel.color.setCurrentText("none")
    key("?")
    wait(150)
    out["status_help"] = w.win.statusBar().currentMessage()
    key("Escape")
    wait(250)
    out["status_after_esc"] = w.win.statusBar().currentMessage()
    return out


@scenario("numbers_at_scale")
def _numbers_at_scale(wait, build_window, QtCore, QtGui, QtWidgets):
    """Issues 17.4, 17.5, 17.7 in a window on a run at 7.6 million iterations with SGD's constant lr 0.05."""
    from gda_gl.compose import textlayer
    from recorder.store import RecordingWriter

    path = OUT / "sgd-7m.gda"
    grid = np.linspace(0.0, 2.0, 16)
    with RecordingWriter(path, grid, {"name": "sgd-7m"}, overwrite=True) as wr:
        for i in range(7_646_500, 7_646_560):
            wr.append(i, 1.0 + 0.2 * (grid - 1.0) ** 2 + 0.001 * (i % 5), train_loss=1.0, taken_alpha=1.0,
                      lr=np.float32(0.05))
    g = build_window([str(path)])
    g.show((1200, 760))
    gc, gcv = g.ctrl, g.canvas
    labels = []
    orig = textlayer.TextLayer.add

    def spy(self, text, *a, **kw):
        labels.append(str(text))
        return orig(self, text, *a, **kw)

    def drawn_labels():
        labels.clear()
        textlayer.TextLayer.add = spy
        try:
            gcv.request_redraw()
            t0 = time.time()
            while time.time() - t0 < 5 and (not labels or gc.animating or gcv.pending_redraw):
                wait(40)
            wait(100)
        finally:
            textlayer.TextLayer.add = orig
        return list(labels)

    out = {}
    try:
        wait(600)
        out["overview_labels"] = drawn_labels()
        gc.set_x_range((7_646_519.15, 7_646_520.35), animate=False)  # one step: ticks 0.2 apart
        out["step_labels"] = drawn_labels()
        v = gc.drawn_view
        row = gc.runs[0].data.row_of(7_646_519)
        pos = v.data_to_px(7_646_519.4, float(np.interp(0.4, gc.runs[0].alphas, gc.runs[0].data.phi[row])))
        gcv.native.setFocus()
        ev = QtGui.QMouseEvent(QtCore.QEvent.Type.MouseMove, QtCore.QPointF(*pos),
                               QtCore.QPointF(gcv.native.mapToGlobal(QtCore.QPointF(*pos).toPoint())),
                               QtCore.Qt.MouseButton.NoButton, QtCore.Qt.MouseButton.NoButton,
                               QtCore.Qt.KeyboardModifier.NoModifier)
        QtWidgets.QApplication.sendEvent(gcv.native, ev)
        wait(300)
        out["status"] = g.win.statusBar().currentMessage()
        out["x_range"] = list(gc.state.x_range)
        gc.select(0, 7_646_519)
        wait(200)
        out["panel"] = g.panel.numbers.text()
        g.panel.color.setCurrentText("lr")
        out["lr_labels"] = drawn_labels()
    finally:
        g.win.close()
        g.close_recordings()
    return out


@scenario("findings_fly")
def _findings_fly(w, c, wait, settle, key, QtCore):
    """Issue 30: the side panel lists the findings of gda-gl diagnose; J / K and a click fly to one."""
    c.home()
    settle()
    lst = w.panel.findings.widget
    out = {"items": [lst.item(i).text() for i in range(lst.count())], "flights": []}

    def shown(how):
        settle()
        wait(100)
        v = c.drawn_view
        out["flights"].append({"how": how, "current": c.findings.current, "drawn": [v.x0, v.x1],
                               "selected": c.state.selected, "axis": c.state.x_axis})

    key("j")
    shown("J")
    key("j")
    shown("J")
    key("k")
    shown("K")
    last = lst.item(lst.count() - 1)
    lst.itemClicked.emit(last)
    shown("click")
    return out


@scenario("follow_missing_file")
def _follow_missing_file(w, wait, build_window):
    from recorder.store import RecordingWriter
    from conftest import parabola_phi

    w.win.close()
    f = build_window([FOLLOW], follow=True)
    f.show((1000, 700))
    fc = f.ctrl
    wait(800)
    out = {"runs_before": len(fc.runs), "title_before": f.win.windowTitle()}
    grid = np.linspace(0.0, 2.0, 16)
    phi = parabola_phi(100, grid)
    wr = RecordingWriter(FOLLOW, grid, {"name": "follow"}, overwrite=True, commit_interval=0.05)
    for i in range(50):
        wr.append(i, phi[i], train_loss=float(phi[i, 0]), taken_alpha=1.0)
    wr.flush()
    t0 = time.time()
    while time.time() - t0 < 6 and not (fc.runs and len(fc.runs[0].data) >= 50):
        wait(100)
    wait(400)
    out["runs_after"] = len(fc.runs)
    out["rows_1"] = len(fc.runs[0].data) if fc.runs else 0
    out["x_1"] = list(fc.state.x_range)
    out["spin_max_1"] = f.panel.it_hi.maximum()
    for i in range(50, 100):
        wr.append(i, phi[i], train_loss=float(phi[i, 0]), taken_alpha=1.0)
    wr.flush()
    t0 = time.time()
    while time.time() - t0 < 6 and not (len(fc.runs[0].data) >= 100):
        wait(100)
    wait(500)
    out["rows_2"] = len(fc.runs[0].data)
    out["x_2"] = list(fc.state.x_range)
    out["drawn_2"] = [f.canvas.controller.drawn_view.x0, f.canvas.controller.drawn_view.x1]
    out["spin_max_2"] = f.panel.it_hi.maximum()
    wr.close()
    f.win.close()
    return out


if __name__ == "__main__":
    try:
        main()
    except Exception:
        results["fatal"] = traceback.format_exc()
        (OUT / "results.json").write_text(json.dumps(results, indent=1, default=str))
    sys.exit(0)
