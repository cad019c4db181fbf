"""The desktop window of ``gda-gl view``: the curve canvas, a control panel and a details canvas (Qt).

Why Qt (PyQt6, the ``gui`` extra) and not glfw: the panels need real widgets
(combo boxes, spin boxes, check boxes, a status bar, a help dialog); glfw only
gives a GL surface and key/mouse callbacks.  VisPy embeds its canvases in Qt
natively.  Every widget edits the one :class:`~gda_gl.state.ViewState`; the
panel observes it too, so keys, mouse and widgets stay in sync.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["run_viewer"]


def _qt():
    from PyQt6 import QtCore, QtGui, QtWidgets

    return QtCore, QtGui, QtWidgets


class _DetailCanvas:
    """Second canvas: the selected line search (details on demand)."""

    def __init__(self, controller, parent):
        from vispy import app

        from ..detail import draw_detail
        from ..render import CurveRenderer, Layout

        ctrl = controller

        class Canvas(app.Canvas):
            def __init__(self):
                super().__init__(size=(420, 320), parent=parent, keys=None)
                self.renderer = None

            def on_draw(self, event):
                from vispy import gloo

                if self.renderer is None:
                    self.renderer = CurveRenderer()
                w, h = self.physical_size
                k = ctrl.state.selected
                hit = None
                if k is not None:
                    for run in ctrl.runs:
                        if len(run.data) and run.data.iteration[0] <= k <= run.data.iteration[-1]:
                            hit = run
                            break
                if hit is None:
                    gloo.set_viewport(0, 0, w, h)
                    gloo.clear(color="white")
                    return
                lay = Layout(int(w), int(h), left=56, right=18, bottom=44, top=26)
                try:
                    draw_detail(self.renderer, hit, k, lay, log_y=ctrl.state.log_y)
                except Exception as exc:  # iteration not in this run
                    log.info("details: %s", exc)

        self.canvas = Canvas()
        controller.state.observe(lambda st, changed: self.canvas.update()
                                 if changed & {"selected", "log_y"} else None)


def run_viewer(paths: list[str], follow: bool = False, state_file: str | None = None,
               exit_after: float | None = None, screenshot: str | None = None) -> int:
    """Open the explorer window on ``paths``; returns the exit status."""
    from ..gl.backend import use_backend

    use_backend(offscreen=False)
    from vispy import app

    from recorder.store import open_recordings

    from ..scene import RUN_COLORS, RunData
    from ..state import COLOR_BY_CHOICES, ViewState
    from .canvas import ExplorerCanvas
    from .controller import HELP, HIGHLIGHTS, ExplorerController

    QtCore, QtGui, QtWidgets = _qt()
    application = app.use_app()
    application.create()

    recs = open_recordings(paths)
    runs = []
    for i, rec in enumerate(recs):
        data = rec.read()
        runs.append(RunData(data, name=rec.name, color=RUN_COLORS[i % len(RUN_COLORS)]))
    state = ViewState.load(state_file) if state_file and Path(state_file).exists() else ViewState()
    if follow:
        state.follow = True
    ctrl = ExplorerController(runs, state)
    if follow:
        ctrl.attach_recordings(recs)
    else:
        for rec in recs:
            rec.close()

    win = QtWidgets.QMainWindow()
    win.setWindowTitle("gda_gl - " + ", ".join(r.name for r in runs))
    split = QtWidgets.QSplitter()
    win.setCentralWidget(split)
    canvas = ExplorerCanvas(ctrl, parent=split)
    panel = QtWidgets.QWidget()
    split.addWidget(canvas.native)
    split.addWidget(panel)
    split.setStretchFactor(0, 4)
    form = QtWidgets.QVBoxLayout(panel)

    color = QtWidgets.QComboBox()
    color.addItems(COLOR_BY_CHOICES)
    checks = {name: QtWidgets.QCheckBox(label) for name, label in
              (("log_y", "log y (L)"), ("show_loose", "loose ends (O)"), ("show_trials", "trial points (T)"),
               ("show_rules", "batch rules (B)"), ("show_envelope", "envelope (E)"), ("follow", "follow newest (F)"))}
    highlight = QtWidgets.QComboBox()
    highlight.addItems([h or "none" for h in HIGHLIGHTS])
    highlight.setEditable(True)
    prev_b, next_b = QtWidgets.QPushButton("< previous (P)"), QtWidgets.QPushButton("next (N) >")
    it_lo, it_hi = QtWidgets.QSpinBox(), QtWidgets.QSpinBox()
    ep_lo, ep_hi = QtWidgets.QSpinBox(), QtWidgets.QSpinBox()
    full = ctrl.full_x_range()
    for sb in (it_lo, it_hi):
        sb.setRange(int(full[0]), int(full[1]))
    it_hi.setValue(int(full[1]))
    max_epoch = max(int(r.data["epoch"].max()) for r in runs if len(r.data)) if runs else 0
    for sb in (ep_lo, ep_hi):
        sb.setRange(0, max_epoch)
    ep_hi.setValue(max_epoch)
    it_apply, ep_apply = QtWidgets.QPushButton("show iterations"), QtWidgets.QPushButton("show epochs")
    home_b, help_b = QtWidgets.QPushButton("whole run (Home)"), QtWidgets.QPushButton("help (?)")
    numbers = QtWidgets.QLabel()
    numbers.setWordWrap(True)
    numbers.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)

    form.addWidget(QtWidgets.QLabel("colour by"))
    form.addWidget(color)
    for cb in checks.values():
        form.addWidget(cb)
    form.addWidget(QtWidgets.QLabel("highlight (others faded)"))
    form.addWidget(highlight)
    row = QtWidgets.QHBoxLayout()
    row.addWidget(prev_b)
    row.addWidget(next_b)
    form.addLayout(row)
    for lo, hi, btn in ((it_lo, it_hi, it_apply), (ep_lo, ep_hi, ep_apply)):
        row = QtWidgets.QHBoxLayout()
        row.addWidget(lo)
        row.addWidget(hi)
        row.addWidget(btn)
        form.addLayout(row)
    form.addWidget(home_b)
    form.addWidget(help_b)
    detail = _DetailCanvas(ctrl, panel)
    form.addWidget(detail.canvas.native, stretch=1)
    form.addWidget(numbers)

    def sync(st=None, changed=None):
        color.blockSignals(True)
        color.setCurrentText(ctrl.state.color_by)
        color.blockSignals(False)
        for name, cb in checks.items():
            cb.blockSignals(True)
            cb.setChecked(bool(getattr(ctrl.state, name)))
            cb.blockSignals(False)
        d = ctrl.details()
        numbers.setText("" if d is None else "<br>".join(f"{k}: <b>{v:.6g}</b>" if isinstance(v, float)
                                                         else f"{k}: <b>{v}</b>" for k, v in d.items()))

    state.observe(sync)
    sync()
    color.currentTextChanged.connect(lambda t: ctrl.state.update(color_by=t))
    for name, cb in checks.items():
        if name == "follow":
            cb.toggled.connect(lambda on: ctrl.key("f") if on else ctrl.state.update(follow=False))
        else:
            cb.toggled.connect(lambda on, n=name: ctrl.state.update(**{n: on, **({"y_range": None} if n == "log_y"
                                                                                  else {})}))

    def set_highlight(text):
        try:
            ctrl.state.update(highlight=None if text in ("", "none") else text)
        except ValueError as exc:
            win.statusBar().showMessage(str(exc))

    highlight.currentTextChanged.connect(set_highlight)
    prev_b.clicked.connect(lambda: win.statusBar().showMessage(ctrl.key("p") or ""))
    next_b.clicked.connect(lambda: win.statusBar().showMessage(ctrl.key("n") or ""))
    it_apply.clicked.connect(lambda: ctrl.set_iteration_range(it_lo.value(), it_hi.value()))
    ep_apply.clicked.connect(lambda: ctrl.set_epoch_range(ep_lo.value(), ep_hi.value()))
    home_b.clicked.connect(ctrl.home)

    def show_help():
        QtWidgets.QMessageBox.information(win, "gda_gl help", HELP)

    help_b.clicked.connect(show_help)
    QtGui.QShortcut(QtGui.QKeySequence("F1"), win, activated=show_help)
    QtGui.QShortcut(QtGui.QKeySequence("?"), win, activated=show_help)

    def save_state():
        if state_file:
            ctrl.state.save(state_file)
            win.statusBar().showMessage(f"view saved to {state_file}")

    QtGui.QShortcut(QtGui.QKeySequence("S"), win, activated=save_state)
    status_timer = QtCore.QTimer()
    status_timer.timeout.connect(lambda: win.statusBar().showMessage(canvas.status) if canvas.status else None)
    status_timer.start(100)
    win.resize(1500, 850)
    win.show()
    canvas.show()
    rc = {"code": 0}
    if exit_after is not None:
        def finish():
            if screenshot:
                ok = win.grab().save(screenshot)
                if not ok or canvas.frames == 0:
                    rc["code"] = 1
            win.close()
            application.quit()

        QtCore.QTimer.singleShot(int(exit_after * 1000), finish)
    application.run()
    save_state()
    for rec in ctrl.recordings:
        rec.close()
    log.info("viewer closed after %d frames", canvas.frames)
    return rc["code"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_viewer(sys.argv[1:]))
