"""The desktop window of ``gda-gl view``: the curve canvas, the details canvas below it, a control panel (Qt).

Why Qt (PyQt6, the ``gui`` extra) and not glfw: the panels need real widgets
(combo boxes, spin boxes, check boxes, a run list, a status bar); glfw only
gives a GL surface and key/mouse callbacks.  VisPy embeds its canvases in Qt
natively.  Every widget edits the one :class:`~gda_gl.state.ViewState`; the
panel observes it (and the controller's growth of live runs), so keys, mouse
and widgets never drift apart.

Layout: a horizontal splitter with [main canvas over details canvas] on the
left and the control panel (in a scroll area, so nothing is lost in a small
window) on the right.  The details canvas takes about a third of the height
and scales with the window.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["run_viewer", "build_window", "ExplorerWindow"]


def _qt():
    from PyQt6 import QtCore, QtGui, QtWidgets

    return QtCore, QtGui, QtWidgets


def _detail_canvas(controller, parent):
    """Second canvas: the selected line search (details on demand), drawn by :func:`gda_gl.detail.draw_detail`."""
    from vispy import app, gloo

    from ..detail import draw_detail
    from ..render import CurveRenderer, Layout

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
                from ..textlayer import TextLayer

                gloo.set_clear_color("white")
                gloo.clear(color=True)
                gloo.set_state(blend=True, blend_func=("src_alpha", "one_minus_src_alpha", "one",
                                                       "one_minus_src_alpha"))
                text = TextLayer(int(w), int(h))
                text.add("click a step (or press D over it) to see its line search here", w / 2, h / 2, "mm", 12,
                         color=(120, 120, 120, 255))
                self.renderer._set_text(text)
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
    """The window and its parts (tests drive them with QTest)."""

    def __init__(self, ctrl, fps: bool = False, state_file: str | None = None):
        from vispy import app

        from ..scene import RUN_COLORS
        from ..state import COLOR_BY_CHOICES
        from .canvas import ExplorerCanvas
        from .controller import HIGHLIGHTS

        QtCore, QtGui, QtWidgets = _qt()
        self.ctrl = ctrl
        self.state_file = state_file
        self.open_recordings: list = []
        self.tooltip_text = ""
        self.application = app.use_app()
        win = self.win = QtWidgets.QMainWindow()
        self._title()
        split = self.split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        win.setCentralWidget(split)
        left = self.left = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.canvas = ExplorerCanvas(ctrl, parent=left, fps=fps)
        self.detail = _detail_canvas(ctrl, left)
        left.addWidget(self.canvas.native)
        left.addWidget(self.detail.native)
        left.setStretchFactor(0, 2)
        left.setStretchFactor(1, 1)
        self.canvas.native.setMinimumHeight(200)
        self.detail.native.setMinimumHeight(170)
        left.setChildrenCollapsible(False)
        split.addWidget(left)
        # the details keep their share of the height when the window is resized (not the canvas' size hint)
        self.detail_share = 0.36
        left.splitterMoved.connect(self._detail_moved)
        self._resize_filter = _ResizeFilter(self._apply_share)
        left.installEventFilter(self._resize_filter)

        panel = QtWidgets.QWidget()
        scroll = self.scroll = QtWidgets.QScrollArea()
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(250)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        split.addWidget(scroll)
        split.setStretchFactor(0, 5)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        form = QtWidgets.QVBoxLayout(panel)

        self.runs_list = QtWidgets.QListWidget()
        self.runs_list.setToolTip("tick: show the run; double-click: next colour")
        self._fill_runs()
        self.runs_list.itemChanged.connect(self._run_toggled)
        self.runs_list.itemDoubleClicked.connect(self._run_recolour)
        self._colors = RUN_COLORS

        self.color = QtWidgets.QComboBox()
        self.color.addItems(COLOR_BY_CHOICES)
        self.checks = {name: QtWidgets.QCheckBox(label) for name, label in
                       (("log_y", "log y (L)"), ("show_loose", "beyond the step, light arcs (O)"),
                        ("show_trials", "trial points and loose ends (T)"), ("show_rules", "batch changes (B)"),
                        ("show_envelope", "envelope (E)"), ("follow", "follow newest (F)"))}
        self.autofit = QtWidgets.QCheckBox("y auto-fit (A)")
        self.highlight = QtWidgets.QComboBox()
        self.highlight.addItems([h or "none" for h in HIGHLIGHTS])
        self.highlight.setEditable(True)
        self.highlight.setToolTip("overshoot, undershoot, near-optimal, failed, nonfinite, STAT<VALUE, STAT>VALUE")
        prev_b, next_b = QtWidgets.QPushButton("< previous (P)"), QtWidgets.QPushButton("next (N) >")
        self.it_lo, self.it_hi = QtWidgets.QSpinBox(), QtWidgets.QSpinBox()
        self.ep_lo, self.ep_hi = QtWidgets.QSpinBox(), QtWidgets.QSpinBox()
        for sb in (self.it_lo, self.it_hi, self.ep_lo, self.ep_hi):
            sb.setKeyboardTracking(False)
            sb.setGroupSeparatorShown(True)
        it_apply, ep_apply = QtWidgets.QPushButton("show"), QtWidgets.QPushButton("show")
        home_b, help_b = QtWidgets.QPushButton("whole run (Home)"), QtWidgets.QPushButton("help (?)")
        self.numbers = QtWidgets.QLabel()
        self.numbers.setWordWrap(True)
        self.numbers.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)

        form.addWidget(QtWidgets.QLabel("runs"))
        self.runs_list.setMaximumHeight(22 * max(2, min(6, len(ctrl.runs) + 1)))
        form.addWidget(self.runs_list)
        form.addWidget(QtWidgets.QLabel("colour by (C)"))
        form.addWidget(self.color)
        for cb in self.checks.values():
            form.addWidget(cb)
        form.addWidget(self.autofit)
        form.addWidget(QtWidgets.QLabel("highlight, others faded (H)"))
        form.addWidget(self.highlight)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(prev_b)
        row.addWidget(next_b)
        form.addLayout(row)
        for label, lo, hi, btn in (("iterations", self.it_lo, self.it_hi, it_apply),
                                   ("epochs", self.ep_lo, self.ep_hi, ep_apply)):
            form.addWidget(QtWidgets.QLabel(label))
            row = QtWidgets.QHBoxLayout()
            row.addWidget(lo)
            row.addWidget(hi)
            row.addWidget(btn)
            form.addLayout(row)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(home_b)
        row.addWidget(help_b)
        form.addLayout(row)
        form.addWidget(QtWidgets.QLabel("selected step"))
        form.addWidget(self.numbers)
        form.addStretch(1)
        self._fit_panel()

        self.update_ranges()
        ctrl.state.observe(self.sync)
        ctrl.on_grow(self.update_ranges)
        ctrl.on_grow(self._fill_runs)
        self.sync()
        self.color.currentTextChanged.connect(lambda t: ctrl.state.update(color_by=t))
        for name, cb in self.checks.items():
            if name == "follow":
                cb.toggled.connect(lambda on: ctrl.key("f") if on else ctrl.state.update(follow=False))
            else:
                cb.toggled.connect(lambda on, n=name: ctrl.state.update(
                    **{n: on, **({"y_range": None} if n == "log_y" else {})}))
        self.autofit.toggled.connect(lambda on: ctrl.toggle_autofit() if on != (ctrl.state.y_range is None)
                                     else None)
        self.highlight.currentTextChanged.connect(self._set_highlight)
        prev_b.clicked.connect(lambda: self._message(ctrl.key("p")))
        next_b.clicked.connect(lambda: self._message(ctrl.key("n")))
        it_apply.clicked.connect(lambda: ctrl.set_iteration_range(self.it_lo.value(), self.it_hi.value() + 1))
        ep_apply.clicked.connect(lambda: ctrl.set_epoch_range(self.ep_lo.value(), self.ep_hi.value()))
        home_b.clicked.connect(ctrl.home)
        help_b.clicked.connect(lambda: ctrl.key("?"))

        menu = win.menuBar().addMenu("&File")
        act = menu.addAction("Export view (PNG) and visible rows (CSV) to the current folder")
        act.setShortcut(QtGui.QKeySequence("Ctrl+E"))
        act.triggered.connect(lambda: self._message(self.canvas.export(Path.cwd())))
        act = menu.addAction("Save view state")
        act.setShortcut(QtGui.QKeySequence("Ctrl+S"))
        act.triggered.connect(self.save_state)
        QtGui.QShortcut(QtGui.QKeySequence("S"), win, activated=self.save_state)
        self.status_timer = QtCore.QTimer()
        self.status_timer.timeout.connect(self._show_status)
        self.status_timer.start(100)
        ctrl.on_grow(self._title)

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

    # -- widgets follow the state --------------------------------------------------
    def sync(self, st=None, changed=None) -> None:
        """Set every widget from the state (signals blocked, so this never feeds back)."""
        ctrl = self.ctrl
        s = ctrl.state
        widgets = [self.color, self.highlight, self.autofit, self.it_lo, self.it_hi, self.ep_lo, self.ep_hi,
                   *self.checks.values()]
        for w in widgets:
            w.blockSignals(True)
        try:
            self.color.setCurrentText(s.color_by)
            self.highlight.setCurrentText(s.highlight or "none")
            for name, cb in self.checks.items():
                cb.setChecked(bool(getattr(s, name)))
            self.autofit.setChecked(s.y_range is None)
            if s.x_range is not None:
                import math

                self.it_lo.setValue(int(math.floor(max(s.x_range[0], self.it_lo.minimum()))))
                self.it_hi.setValue(int(math.ceil(min(s.x_range[1], self.it_hi.maximum() + 1))) - 1)
            ep = s.epoch_range or self._epochs_in_view()
            if ep is not None:
                self.ep_lo.setValue(int(ep[0]))
                self.ep_hi.setValue(int(ep[1]))
        finally:
            for w in widgets:
                w.blockSignals(False)
        d = ctrl.details()
        self.numbers.setText("" if d is None else "<br>".join(
            f"{k}: <b>{v:.6g}</b>" if isinstance(v, float) else f"{k}: <b>{v}</b>" for k, v in d.items()))

    def _epochs_in_view(self):
        import math

        s = self.ctrl.state
        x0, x1 = s.x_range
        for run in self.ctrl.visible_runs():
            if len(run) == 0:
                continue
            # epochs never decrease: the first and the last row in view are enough
            first = run.windows.rows(math.floor(x0), x1, max_rows=1)
            last = run.row_at(min(x1, run.x_span[1]) - 0.5)
            if len(first) and last is not None and len(last):
                return int(first["epoch"][0]), int(last["epoch"][-1])
        return None

    def update_ranges(self) -> None:
        """Spin box ranges follow the data (a live run grows)."""
        full = self.ctrl.full_x_range()
        for sb in (self.it_lo, self.it_hi):
            sb.blockSignals(True)
            sb.setRange(int(full[0]), max(int(full[0]), int(full[1]) - 1))
            sb.blockSignals(False)
        me = self.ctrl.max_epoch()
        for sb in (self.ep_lo, self.ep_hi):
            sb.blockSignals(True)
            sb.setRange(0, me)
            sb.blockSignals(False)
        self.sync()

    def _fill_runs(self) -> None:
        from PyQt6 import QtCore, QtGui, QtWidgets

        self.runs_list.blockSignals(True)
        self.runs_list.clear()
        for i, run in enumerate(self.ctrl.runs):
            item = QtWidgets.QListWidgetItem(f"{run.name}  ({len(run):,} steps)")
            item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(QtCore.Qt.CheckState.Checked if getattr(run, "visible", True)
                               else QtCore.Qt.CheckState.Unchecked)
            c = run.color
            item.setForeground(QtGui.QBrush(QtGui.QColor(int(255 * c[0]), int(255 * c[1]), int(255 * c[2]))))
            self.runs_list.addItem(item)
        self.runs_list.blockSignals(False)

    def _run_toggled(self, item) -> None:
        from PyQt6 import QtCore

        i = self.runs_list.row(item)
        self.ctrl.set_run_visible(i, item.checkState() == QtCore.Qt.CheckState.Checked)

    def _run_recolour(self, item) -> None:
        import numpy as np

        i = self.runs_list.row(item)
        cur = self.ctrl.runs[i].color
        j = next((k for k, c in enumerate(self._colors) if np.allclose(c, cur)), -1)
        self.ctrl.set_run_color(i, self._colors[(j + 1) % len(self._colors)])
        self._fill_runs()

    def _set_highlight(self, text: str) -> None:
        try:
            self.ctrl.state.update(highlight=None if text in ("", "none") else text)
        except ValueError as exc:
            self._message(str(exc))

    def _message(self, text: str | None) -> None:
        if text:
            self.canvas.message = text
            self.canvas._refresh_status()

    def _show_status(self) -> None:
        if self.canvas.status:
            self.win.statusBar().showMessage(self.canvas.status)
        else:
            self.win.statusBar().clearMessage()
        self._tooltip()

    def _tooltip(self) -> None:
        """A tooltip naming the run and the step under a resting cursor (native, no redraw)."""
        from PyQt6 import QtCore, QtWidgets

        info, mouse = self.ctrl.hover_info, self.canvas._mouse
        key = None if not info or "iteration" not in info or mouse is None else \
            (info["run"], info["iteration"], int(mouse[0]), int(mouse[1]))
        if key is None or info.get("dist_px", 99) > 14:
            self._tip = (None, 0)
            return
        last, n = getattr(self, "_tip", (None, 0))
        self._tip = (key, n + 1 if key == last else 1)
        if self._tip[1] == 4:  # resting for ~0.3 s
            r = self.canvas.pixel_scale
            pos = self.canvas.native.mapToGlobal(QtCore.QPoint(int(mouse[0] / r), int(mouse[1] / r)))
            text = (f"{info['run']}\nstep {info['iteration']:,}\nalpha {info['alpha']:.4g}\n"
                    f"phi {info['phi']:.6g}")
            QtWidgets.QToolTip.showText(pos, text, self.canvas.native)
            self.tooltip_text = text

    def _title(self) -> None:
        names = [r.name for r in self.ctrl.runs] + [Path(p).name + " (waiting)" for p in self.ctrl.pending]
        self.win.setWindowTitle("gda_gl - " + ", ".join(names))

    def close_recordings(self) -> None:
        for rec in {id(r): r for r in [*self.open_recordings, *self.ctrl.recordings]}.values():
            try:
                rec.close()
            except Exception as exc:  # closing never hides the window's own exit status
                log.debug("close: %s", exc)

    def save_state(self) -> None:
        if self.state_file:
            self.ctrl.state.save(self.state_file)
            self.win.statusBar().showMessage(f"view saved to {self.state_file}")

    def show(self, size=(1500, 850)) -> None:
        self.win.resize(*size)
        self.win.show()
        self._fit_panel()  # again: sizes are final once the widgets are polished
        self.canvas.show()
        self.canvas.native.setFocus()


def build_window(paths: list[str], follow: bool = False, state_file: str | None = None,
                 fps: bool = False) -> ExplorerWindow:
    """Open the recordings and build the window (not shown).  With ``follow``, missing files are waited for."""
    from ..gl.backend import use_backend

    use_backend(offscreen=False)
    from vispy import app

    from recorder.store import Recording

    from ..scene import RUN_COLORS, RunData
    from ..state import ViewState
    from .controller import ExplorerController

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
    runs = [RunData.from_recording(rec, color=RUN_COLORS[i % len(RUN_COLORS)]) for i, rec in enumerate(recs)]
    state = ViewState.load(state_file) if state_file and Path(state_file).exists() else ViewState()
    if follow:
        state.follow = True
    ctrl = ExplorerController(runs, state)
    if follow:
        ctrl.attach_recordings(recs, pending)
    w = ExplorerWindow(ctrl, fps=fps, state_file=state_file)
    w.open_recordings = recs
    return w


def run_viewer(paths: list[str], follow: bool = False, state_file: str | None = None,
               exit_after: float | None = None, screenshot: str | None = None, fps: bool = False) -> int:
    """Open the explorer window on ``paths``; returns the exit status."""
    QtCore, _, _ = _qt()
    w = build_window(paths, follow=follow, state_file=state_file, fps=fps)
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
    w.save_state()
    w.close_recordings()
    log.info("viewer closed after %d frames", w.canvas.frames)
    return rc["code"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_viewer(sys.argv[1:]))
