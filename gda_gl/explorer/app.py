"""The desktop window of ``gda-gl view``: the curve canvas, the details canvas below it, a control panel (Qt).

Why Qt (PyQt6, the ``gui`` extra) and not glfw: the panels need real widgets
(combo boxes, spin boxes, check boxes, a run list, a status bar); glfw only
gives a GL surface and key/mouse callbacks.  VisPy embeds its canvases in Qt
natively.  Every widget edits the one :class:`~gda_gl.compose.state.ViewState`; the
panel (:mod:`.panel`) observes it (and the controller's growth of live runs), so
keys, mouse and widgets never drift apart.

Ownership: :func:`build_window` opens the recordings, builds the controller
(which gets the runs, never opens files) and, with ``--follow``, the live-source
:class:`~gda_gl.session.follow.Follower`; the window owns the follower and the
recordings and closes them.

Layout: a horizontal splitter with [main canvas over details canvas] on the
left and the control panel (in a scroll area, so nothing is lost in a small
window) on the right.  The details canvas takes about a third of the height
and scales with the window.
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

from gda_gl.session.files import load_state, save_state

log = logging.getLogger(__name__)

__all__ = ["run_viewer", "build_window", "ExplorerWindow"]


def _qt():
    from PyQt6 import QtCore, QtGui, QtWidgets

    return QtCore, QtGui, QtWidgets


def _detail_canvas(controller, parent):
    """Second canvas: the selected line search (details on demand), drawn by :func:`gda_gl.gl.detail.draw_detail`."""
    from vispy import app, gloo

    from gda_gl.gl.detail import draw_detail
    from gda_gl.gl.render import CurveRenderer
    from gda_gl.compose.layout import Layout

    ctrl = controller

    class DetailCanvas(app.Canvas):
        def __init__(self):
            super().__init__(size=(600, 260), parent=parent, keys=None)
            self.renderer = None
            self.drawn = None  # (run name, iteration) last drawn
            self.last_numbers = None

        def on_draw(self, event):
            if self.renderer is None:
                self.renderer = CurveRenderer()
            w, h = self.physical_size
            run = ctrl.selected_run_data()
            k = ctrl.state.selected
            gloo.set_viewport(0, 0, w, h)
            if run is None:
                from gda_gl.compose.textlayer import TextLayer

                gloo.set_clear_color("white")
                gloo.clear(color=True)
                gloo.set_state(blend=True, blend_func=("src_alpha", "one_minus_src_alpha", "one",
                                                       "one_minus_src_alpha"))
                text = TextLayer(int(w), int(h))
                text.add("click a step (or press D over it) to see its line search here", w / 2, h / 2, "mm", 12,
                         color=(120, 120, 120, 255))
                self.renderer.overlay.set(text.rasterize())  # drawn rarely: no cache by content needed
                self.renderer.overlay.draw(u_resolution=(float(w), float(h)))
                self.drawn = None
                return
            lay = Layout(int(w), int(h), left=56, right=18, bottom=44, top=26)
            try:
                self.last_numbers = draw_detail(self.renderer, run, k, lay, log_y=ctrl.state.log_y)
                self.drawn = (run.name, k)
            except Exception as exc:  # iteration not in this run
                log.info("details: %s", exc)

    canvas = DetailCanvas()
    controller.state.observe(lambda st, changed: canvas.update() if changed & {"selected", "log_y"} else None)
    controller.on_redraw(canvas.update)
    return canvas


def _tooltip_text(info: dict | None, max_px: float = 14.0) -> str | None:
    """The tooltip for a hover readout: run, step, alpha and phi of the drawn point near the cursor, then with
    several runs the table of every run at the cursor's x by its loss (:mod:`.runtable`); None for neither."""
    from .runtable import table_text

    if not info:
        return None
    parts = []
    if "iteration" in info and info.get("dist_px", math.inf) <= max_px:
        parts.append(f"{info['run']}\nstep {info['iteration']:,}\nalpha {info['alpha']:.4g}\nphi {info['phi']:.6g}")
    table = info.get("table") or []
    if len(table) > 1:  # several runs under the cursor: which is which, by the loss
        parts.append(f"runs at x {info['x']:,.4g}, by loss:\n" + table_text(table, info.get("run_index")))
    return "\n\n".join(parts) or None


def _ResizeFilter(callback):
    """A Qt event filter calling ``callback`` after its object was resized."""
    from PyQt6 import QtCore

    class Filter(QtCore.QObject):
        def eventFilter(self, obj, event):
            if event.type() == QtCore.QEvent.Type.Resize:
                callback()
            return False

    return Filter()


class ExplorerWindow:
    """The window and its parts (tests drive them with QTest).

    Parameters
    ----------
    ctrl : the explorer's controller
    fps : show the frame-time readout from the start
    state_file : where S / ctrl+S saves the view state (``--state``); without it, S saves to
        ``default_state_file`` (``NAME.view.json`` beside the first run) and keeps saving there
    default_state_file : where S saves without ``--state``
    follower : the live sources (:class:`~gda_gl.session.follow.Follower`); the window owns and closes it
    """

    def __init__(self, ctrl, fps: bool = False, state_file: str | None = None, follower=None,
                 default_state_file: str | None = None):
        from vispy import app

        from .canvas import ExplorerCanvas
        from .panel import ControlPanel

        self.ctrl = ctrl
        self.state_file = state_file
        self.default_state_file = default_state_file
        self.follower = follower
        self.open_recordings: list = []
        self.tooltip_text = ""
        self.application = app.use_app()
        QtCore, _, QtWidgets = _qt()
        self.win = QtWidgets.QMainWindow()
        self.split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self.win.setCentralWidget(self.split)
        self.left = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.canvas = ExplorerCanvas(ctrl, parent=self.left, fps=fps, follower=follower)
        self.canvas.commands["save_state"] = self.save_state
        self.detail = _detail_canvas(ctrl, self.left)
        self._title()
        self._build_plots()
        self.panel = ControlPanel(ctrl, self._message, done=self.canvas.native.setFocus)
        self._build_scroll()
        self._build_menu()
        self.status_timer = QtCore.QTimer()
        self.status_timer.timeout.connect(self._show_status)
        self.status_timer.start(100)
        ctrl.on_grow(self._title)

    def _build_plots(self) -> None:
        """The curve canvas over the details canvas; the details keep their share of the height."""
        left = self.left
        left.addWidget(self.canvas.native)
        left.addWidget(self.detail.native)
        left.setStretchFactor(0, 2)
        left.setStretchFactor(1, 1)
        self.canvas.native.setMinimumHeight(200)
        self.detail.native.setMinimumHeight(170)
        left.setChildrenCollapsible(False)
        self.split.addWidget(left)
        # the details keep their share of the height when the window is resized (not the canvas' size hint)
        self.detail_share = 0.36
        left.splitterMoved.connect(self._detail_moved)
        self._resize_filter = _ResizeFilter(self._apply_share)
        left.installEventFilter(self._resize_filter)

    def _build_scroll(self) -> None:
        """The panel in a scroll area right of the plots (nothing is lost in a small window)."""
        QtCore, _, QtWidgets = _qt()
        scroll = self.scroll = QtWidgets.QScrollArea()
        scroll.setWidget(self.panel.widget)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(250)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.split.addWidget(scroll)
        self.split.setStretchFactor(0, 5)
        self.split.setStretchFactor(1, 1)
        self.split.setChildrenCollapsible(False)
        self._fit_panel()

    def _build_menu(self) -> None:
        _, QtGui, _ = _qt()
        menu = self.win.menuBar().addMenu("&File")
        act = menu.addAction("Export view (PNG) and visible rows (CSV) to the current folder")
        act.setShortcut(QtGui.QKeySequence("Ctrl+E"))
        act.triggered.connect(lambda: self._message(self.canvas.export(Path.cwd())))
        act = menu.addAction("Save view state")
        act.setShortcut(QtGui.QKeySequence("Ctrl+S"))
        act.triggered.connect(lambda: self.save_state())

    def _fit_panel(self) -> None:
        """The panel never scrolls sideways: the scroll area is as wide as the controls want."""
        panel = self.scroll.widget()
        self.scroll.setMinimumWidth(max(250, panel.sizeHint().width()
                                        + self.scroll.verticalScrollBar().sizeHint().width() + 6))

    def _detail_moved(self, pos: int, index: int) -> None:
        sizes = self.left.sizes()
        if sum(sizes) > 0:
            self.detail_share = sizes[1] / sum(sizes)

    def _apply_share(self) -> None:
        h = self.left.height()
        d = max(self.detail.native.minimumHeight(), int(round(h * self.detail_share)))
        self.left.blockSignals(True)
        self.left.setSizes([max(1, h - d), d])
        self.left.blockSignals(False)

    def _message(self, text: str | None) -> None:
        if text:
            self.canvas.message = text
            self.canvas.refresh_status()

    def _show_status(self) -> None:
        if self.canvas.status:
            self.win.statusBar().showMessage(self.canvas.status)
        else:
            self.win.statusBar().clearMessage()
        self._tooltip()

    def _tooltip(self) -> None:
        """A tooltip naming the run and the step under a resting cursor (native, no redraw).

        It follows the hover readout, which the canvas recomputes after every frame: when the view
        moves under a resting cursor (Home, L, a key zoom, following a live run) a visible tooltip
        is rewritten at once, and hidden when no arc is under the cursor any more.
        """
        from PyQt6 import QtCore, QtWidgets

        info, mouse = self.ctrl.hover_info, self.canvas.mouse
        text = _tooltip_text(info) if mouse is not None else None
        shown = QtWidgets.QToolTip.isVisible() and self.tooltip_text != ""
        if text is None:
            self._tip = (None, 0)
            if shown:
                QtWidgets.QToolTip.hideText()
            self.tooltip_text = ""
            return
        key = (text, int(mouse[0]), int(mouse[1]))
        last, n = getattr(self, "_tip", (None, 0))
        self._tip = (key, n + 1 if key == last else 1)
        if self._tip[1] == 4 or (shown and text != self.tooltip_text):  # resting ~0.3 s, or the view moved
            r = self.canvas.pixel_scale
            pos = self.canvas.native.mapToGlobal(QtCore.QPoint(int(mouse[0] / r), int(mouse[1] / r)))
            QtWidgets.QToolTip.showText(pos, text, self.canvas.native)
            self.tooltip_text = text

    def _title(self) -> None:
        pending = self.follower.pending if self.follower is not None else []
        names = [r.name for r in self.ctrl.runs] + [Path(p).name + " (waiting)" for p in pending]
        self.win.setWindowTitle("gda_gl - " + ", ".join(names))

    def close_recordings(self) -> None:
        followed = self.follower.recordings if self.follower is not None else []
        for rec in {id(r): r for r in [*self.open_recordings, *followed]}.values():
            try:
                rec.close()
            except Exception as exc:  # closing never hides the window's own exit status
                log.debug("close: %s", exc)

    def save_state(self, on_close: bool = False) -> str | None:
        """Save the view state (S, ctrl+S, and on close); returns the status message.

        To ``state_file`` (``--state``); without one, S saves to ``default_state_file`` (beside the
        first run), else into the current folder, and from then on that file is the state file.
        On close, only an existing state file is written.  Failures are said, never raised.
        """
        targets = [self.state_file] if self.state_file else [] if on_close else \
            [p for p in (self.default_state_file, str(Path.cwd() / "gda_gl.view.json")) if p]
        msg = None
        for path in targets:
            try:
                saved = save_state(self.ctrl.state, path)
            except OSError as exc:
                msg = f"cannot save the view state to {path}: {exc}"
                log.warning("%s", msg)
                continue
            self.state_file = str(saved)
            msg = f"view saved to {saved}"
            log.info("%s", msg)
            break
        if not on_close:
            self._message(msg)
        return msg

    def show(self, size=(1500, 850)) -> None:
        self.win.resize(*size)
        self.win.show()
        self._fit_panel()  # again: sizes are final once the widgets are polished
        self.canvas.show()
        self.canvas.native.setFocus()


def build_window(paths: list[str], follow: bool = False, state_file: str | None = None,
                 fps: bool = False, watch=None) -> ExplorerWindow:
    """Open the recordings and build the window (not shown).  With ``follow``, missing files are waited for;
    ``watch`` (a :class:`~gda_gl.session.select.FolderWatch`): recordings appearing in folders are opened."""
    from gda_gl.gl.backend import use_backend

    use_backend(offscreen=False)
    from vispy import app

    from recorder.store import Recording

    from gda_gl.compose.scene import RunData
    from gda_gl.compose.style import run_color
    from gda_gl.compose.state import ViewState
    from .controller import ExplorerController
    from gda_gl.session.follow import Follower

    app.use_app().create()
    recs, pending = [], []
    try:
        for p in paths:
            if follow and not Path(p).exists():
                pending.append(p)
                log.info("waiting for %s to appear", p)
                continue
            recs.append(Recording(p))
    except BaseException:
        for r in recs:
            r.close()
        raise
    # windows onto the recordings: nothing is read until a frame asks for it (runs of any length)
    runs = [RunData.from_recording(rec, color=run_color(i)) for i, rec in enumerate(recs)]
    state = load_state(state_file) if state_file and Path(state_file).exists() else ViewState()
    if follow:
        state.follow = True
    ctrl = ExplorerController(runs, state)
    follower = Follower(ctrl, recs, pending, watch=watch) if follow or watch is not None else None
    first = Path(paths[0]) if paths else None
    w = ExplorerWindow(ctrl, fps=fps, state_file=state_file, follower=follower,
                       default_state_file=str(first.with_name(first.stem + ".view.json")) if first else None)
    w.open_recordings = recs
    return w


def run_viewer(paths: list[str], follow: bool = False, state_file: str | None = None,
               exit_after: float | None = None, screenshot: str | None = None, fps: bool = False, watch=None) -> int:
    """Open the explorer window on ``paths`` (and the recordings ``watch`` finds later); returns the exit status."""
    QtCore, _, _ = _qt()
    w = build_window(paths, follow=follow, state_file=state_file, fps=fps, watch=watch)
    w.show()
    rc = {"code": 0}
    if exit_after is not None:
        def finish():
            if screenshot:
                ok = w.win.grab().save(screenshot)
                if not ok or w.canvas.frames == 0:
                    rc["code"] = 1
            w.win.close()
            w.application.quit()

        QtCore.QTimer.singleShot(int(exit_after * 1000), finish)
    w.application.run()
    w.save_state(on_close=True)
    w.close_recordings()
    log.info("viewer closed after %d frames", w.canvas.frames)
    return rc["code"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_viewer(sys.argv[1:]))
