"""The explorer's control panel (Qt widgets): runs, colour-by, toggles, highlight, ranges, the selected step.

Every widget edits the one :class:`~gda_gl.compose.state.ViewState` through the
controller, and :meth:`ControlPanel.sync` sets every widget from the state
(signals blocked, so it never feeds back).  The panel observes the state and
the controller's growth of live runs.  Labels name the keys of the input map
(:mod:`gda_gl.explorer.inputmap`).
"""

from __future__ import annotations

import logging
import math
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["ControlPanel", "format_details"]

#: (state field, check box label) of the toggles.
TOGGLES = (("log_y", "log y (L)"), ("show_loose", "beyond the step, light arcs (O)"),
           ("show_trials", "trial points and loose ends (T)"), ("show_rules", "batch changes (B)"),
           ("show_envelope", "envelope (E)"), ("follow", "follow newest (F)"),
           ("normalize", "each run over its first loss (Y)"))


def _value(v) -> str:
    """One number as the details table writes it (``gda_gl.compose.detail``): "n/a" for NaN, else 6 digits."""
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.6g}"
    return str(v)


def format_details(d: dict | None) -> str:
    """The selected step's numbers as rich text for the side panel."""
    if d is None:
        return ""
    return "<br>".join(f"{k}: <b>{_value(v)}</b>" for k, v in d.items())


class ControlPanel:
    """The widgets of the panel on the right of the window, wired to the controller.

    Parameters
    ----------
    ctrl : the explorer's controller
    message : shows a status message (the window's status line)
    done : gives the keyboard back to the plot; called once a widget has been used (Enter in a spin
        box, a button, a combo box choice, a check box), so that keys such as Home or L act on the plot
    """

    def __init__(self, ctrl, message: Callable[[str | None], None], done: Callable[[], None] | None = None):
        from PyQt6 import QtWidgets

        self.ctrl = ctrl
        self.message = message
        self.done = done
        self.widget = QtWidgets.QWidget()
        self._make_widgets()
        self._lay_out(QtWidgets.QVBoxLayout(self.widget))
        self.update_ranges()
        ctrl.state.observe(self.sync)
        ctrl.on_grow(self.update_ranges)
        ctrl.on_grow(self.fill_runs)
        ctrl.on_grow(self.series.fill)
        ctrl.on_grow(self.findings.fill)
        ctrl.on_grow(self.axis.fill)
        ctrl.on_select(self.show_details)  # the state does not change when only the run does
        self.sync()
        self._connect()

    # -- building ------------------------------------------------------------------------
    def _make_widgets(self) -> None:
        from PyQt6 import QtCore, QtWidgets

        from gda_gl.compose.scene import FILTER_HELP, RUN_COLORS
        from gda_gl.compose.state import COLOR_BY_CHOICES
        from .filters import HIGHLIGHTS
        from .axischoice import AxisChoice
        from .findingslist import FindingsList
        from .serieslist import SeriesList

        from .runtable import FILTER_PLACEHOLDER

        self.runs_list = QtWidgets.QListWidget()
        self.runs_list.setToolTip("tick: show the run; double-click: next colour")
        self.run_filter = QtWidgets.QLineEdit()
        self.run_filter.setPlaceholderText(FILTER_PLACEHOLDER)
        self.solo_b = QtWidgets.QPushButton("solo the selected run")
        self._colors = RUN_COLORS
        self.fill_runs()
        self.series = SeriesList(self.ctrl)
        self.findings = FindingsList(self.ctrl, self.message)
        self.color = QtWidgets.QComboBox()
        self.color.addItems(COLOR_BY_CHOICES)
        self.axis = AxisChoice(self.ctrl, self.message)
        self.x_axis = self.axis.widget
        self.checks = {name: QtWidgets.QCheckBox(label) for name, label in TOGGLES}
        self.autofit = QtWidgets.QCheckBox("y auto-fit (A)")
        self.highlight = QtWidgets.QComboBox()
        self.highlight.addItems([h or "none" for h in HIGHLIGHTS])
        self.highlight.setEditable(True)
        self.highlight.setToolTip(FILTER_HELP)
        self.prev_b, self.next_b = QtWidgets.QPushButton("< previous (P)"), QtWidgets.QPushButton("next (N) >")
        self.it_lo, self.it_hi = QtWidgets.QSpinBox(), QtWidgets.QSpinBox()
        self.ep_lo, self.ep_hi = QtWidgets.QSpinBox(), QtWidgets.QSpinBox()
        for sb in self.spin_boxes:
            sb.setKeyboardTracking(False)
            sb.setGroupSeparatorShown(True)
        self.it_apply, self.ep_apply = QtWidgets.QPushButton("show"), QtWidgets.QPushButton("show")
        self.home_b, self.help_b = QtWidgets.QPushButton("whole run (Home)"), QtWidgets.QPushButton("help (?)")
        self.numbers = QtWidgets.QLabel()
        self.numbers.setWordWrap(True)
        self.numbers.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)

    @property
    def spin_boxes(self) -> tuple:
        return (self.it_lo, self.it_hi, self.ep_lo, self.ep_hi)

    def _lay_out(self, form) -> None:
        from PyQt6 import QtWidgets

        def row(*widgets):
            r = QtWidgets.QHBoxLayout()
            for w in widgets:
                r.addWidget(w)
            form.addLayout(r)

        form.addWidget(QtWidgets.QLabel("runs"))
        if len(self.ctrl.runs) > 1:
            form.addWidget(self.run_filter)
        self.runs_list.setMaximumHeight(22 * max(2, min(6, len(self.ctrl.runs) + 1)))
        form.addWidget(self.runs_list)
        if len(self.ctrl.runs) > 1:
            form.addWidget(self.solo_b)
        form.addWidget(QtWidgets.QLabel("series (double-click: log y)"))
        form.addWidget(self.series.widget)
        form.addWidget(QtWidgets.QLabel("x axis (U)"))
        form.addWidget(self.x_axis)
        form.addWidget(QtWidgets.QLabel("colour by (C)"))
        form.addWidget(self.color)
        for cb in self.checks.values():
            form.addWidget(cb)
        form.addWidget(self.autofit)
        form.addWidget(QtWidgets.QLabel("highlight, others faded (H)"))
        form.addWidget(self.highlight)
        row(self.prev_b, self.next_b)
        for label, lo, hi, btn in (("iterations", self.it_lo, self.it_hi, self.it_apply),
                                   ("epochs", self.ep_lo, self.ep_hi, self.ep_apply)):
            form.addWidget(QtWidgets.QLabel(label))
            row(lo, hi, btn)
        row(self.home_b, self.help_b)
        form.addWidget(QtWidgets.QLabel("findings (J / K; click: fly to it)"))
        form.addWidget(self.findings.widget)
        form.addWidget(QtWidgets.QLabel("selected step"))
        form.addWidget(self.numbers)
        form.addStretch(1)

    def _connect(self) -> None:
        ctrl = self.ctrl
        self.runs_list.itemChanged.connect(self._run_toggled)
        self.runs_list.itemDoubleClicked.connect(self._run_recolour)
        self.run_filter.editingFinished.connect(lambda: self._visibility(self._filtered))
        self.solo_b.clicked.connect(lambda: self._visibility(self._solo))
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
        self.prev_b.clicked.connect(lambda: self.message(ctrl.key("p")))
        self.next_b.clicked.connect(lambda: self.message(ctrl.key("n")))
        self.it_apply.clicked.connect(lambda: ctrl.set_iteration_range(self.it_lo.value(), self.it_hi.value() + 1))
        self.ep_apply.clicked.connect(lambda: ctrl.set_epoch_range(self.ep_lo.value(), self.ep_hi.value()))
        self.home_b.clicked.connect(ctrl.home)
        self.help_b.clicked.connect(lambda: ctrl.key("?"))
        self._give_back_keys()

    def _give_back_keys(self) -> None:
        """After a widget was used, the keyboard goes back to the plot (unless the user moved on to
        another widget: focus that went elsewhere is left alone)."""
        from PyQt6 import QtCore

        def back(widget):
            def check():
                focus = widget.window().focusWidget()  # where keys go in this window (active or not)
                if self.done is not None and (focus is None or focus is widget or widget.isAncestorOf(focus)):
                    self.done()
            return lambda *_: QtCore.QTimer.singleShot(0, check)

        for sb in self.spin_boxes:
            sb.editingFinished.connect(back(sb))
        for b in (self.prev_b, self.next_b, self.it_apply, self.ep_apply, self.home_b, self.help_b):
            b.clicked.connect(back(b))
        for combo in (self.color, self.highlight, self.x_axis):
            combo.activated.connect(back(combo))
        for cb in (*self.checks.values(), self.autofit):
            cb.clicked.connect(back(cb))
        self.series.widget.itemChanged.connect(back(self.series.widget))  # ticking a series: keys go back too
        self.series.widget.itemDoubleClicked.connect(back(self.series.widget))
        for boxes, btn in (((self.it_lo, self.it_hi), self.it_apply), ((self.ep_lo, self.ep_hi), self.ep_apply)):
            for sb in boxes:  # Enter in a range box applies the range, as the button does
                sb.lineEdit().returnPressed.connect(btn.click)

    # -- widgets follow the state ------------------------------------------------------------
    def sync(self, st=None, changed=None) -> None:
        """Set every widget from the state (signals blocked, so this never feeds back)."""
        s = self.ctrl.state
        widgets = [self.color, self.highlight, self.autofit, self.x_axis, *self.spin_boxes, *self.checks.values()]
        for w in widgets:
            w.blockSignals(True)
        try:
            self.color.setCurrentText(s.color_by)
            self.axis.show(s.x_axis)
            self.highlight.setCurrentText(s.highlight or "none")
            for name, cb in self.checks.items():
                cb.setChecked(bool(getattr(s, name)))
            self.autofit.setChecked(s.y_range is None)
            shown = self.ctrl.iterations_shown()  # the x range in iterations, whatever the x axis
            if shown is not None:
                self.it_lo.setValue(int(math.floor(max(shown[0], self.it_lo.minimum()))))
                self.it_hi.setValue(int(math.ceil(min(shown[1], self.it_hi.maximum() + 1))) - 1)
            ep = s.epoch_range or self._epochs_in_view()
            if ep is not None:
                self.ep_lo.setValue(int(ep[0]))
                self.ep_hi.setValue(int(ep[1]))
        finally:
            for w in widgets:
                w.blockSignals(False)
        if changed is None or changed & {"series", "series_log"}:
            self.series.fill()
        self.show_details()

    def show_details(self) -> None:
        """The selected step's numbers (of the selected run) in the side panel."""
        self.numbers.setText(format_details(self.ctrl.details()))

    def _epochs_in_view(self):
        for run in self.ctrl.visible_runs():
            if len(run) == 0:
                continue
            x0, x1 = self.ctrl.iterations_of(run)  # this run's own steps in view
            # epochs never decrease: the first and the last row in view are enough
            first = run.windows.rows(math.floor(x0), x1, max_rows=1)
            last = run.row_at(min(x1, run.x_span[1]) - 0.5)
            if len(first) and last is not None and len(last):
                return int(first["epoch"][0]), int(last["epoch"][-1])
        return None

    def update_ranges(self) -> None:
        """Spin box ranges follow the data (a live run grows)."""
        full = self.ctrl.full_iterations()  # iterations, whatever the x axis
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

    # -- the run list ------------------------------------------------------------------------
    def fill_runs(self) -> None:
        from PyQt6 import QtCore, QtGui, QtWidgets

        self.runs_list.blockSignals(True)
        self.runs_list.clear()
        for run in self.ctrl.runs:
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

    def _filtered(self) -> list[bool]:
        from .runtable import filter_visibility

        return filter_visibility(self.ctrl.runs, self.run_filter.text())

    def _solo(self) -> list[bool]:
        from .runtable import solo_visibility

        return solo_visibility(self.ctrl.runs, max(0, self.runs_list.currentRow()))

    def _visibility(self, choose) -> None:
        """Show the runs ``choose()`` keeps (a filter, solo); a bad filter is one status line."""
        try:
            keep = choose()
        except ValueError as exc:
            self.message(str(exc))
            return
        row = self.runs_list.currentRow()
        for i, (run, k) in enumerate(zip(self.ctrl.runs, keep)):
            if bool(getattr(run, "visible", True)) != k:
                self.ctrl.set_run_visible(i, k)
        self.fill_runs()
        self.runs_list.setCurrentRow(row)  # solo again on the same run shows every run

    def _run_recolour(self, item) -> None:
        i = self.runs_list.row(item)
        cur = self.ctrl.runs[i].color
        j = next((k for k, c in enumerate(self._colors) if np.allclose(c, cur)), -1)
        self.ctrl.set_run_color(i, self._colors[(j + 1) % len(self._colors)])
        self.fill_runs()

    def _set_highlight(self, text: str) -> None:
        try:
            self.ctrl.state.update(highlight=None if text in ("", "none") else text)
        except ValueError as exc:
            self.message(str(exc))
