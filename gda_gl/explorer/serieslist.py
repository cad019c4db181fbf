"""The series list of the control panel (Qt): one check box per series the runs hold.

A ticked series is drawn (:mod:`gda_gl.compose.seriesview`: names with "loss" on the curve's axes, the
others in a panel each below it); double-clicking a series switches its panel's y axis between
linear and log.  The list edits the view state through the controller
(:meth:`~gda_gl.explorer.controller.ExplorerController.show_series`,
:meth:`~gda_gl.explorer.controller.ExplorerController.toggle_series_log`) and follows it in
:meth:`SeriesList.fill`, which the panel calls when the state changes or runs grow.
"""

from __future__ import annotations

__all__ = ["SeriesList"]


class SeriesList:
    """A checkable list of series names wired to the controller."""

    def __init__(self, ctrl):
        from PyQt6 import QtWidgets

        self.ctrl = ctrl
        self.widget = QtWidgets.QListWidget()
        self.widget.setToolTip("tick: draw the series (names with 'loss' on the curve's axes, the others in a "
                               "panel below it); double-click: log y of its panel")
        self.fill()
        self.widget.itemChanged.connect(self._toggled)
        self.widget.itemDoubleClicked.connect(self._log)

    def fill(self, *_) -> None:
        """One item per series, ticked when drawn (signals blocked: filling never edits the state)."""
        from PyQt6 import QtCore, QtWidgets

        names, shown = self.ctrl.series_shown()
        log = set(self.ctrl.state.series_log)
        self.widget.blockSignals(True)
        self.widget.clear()
        for name in names:
            item = QtWidgets.QListWidgetItem(name + ("  (log)" if name in log else ""))
            item.setData(QtCore.Qt.ItemDataRole.UserRole, name)
            item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(QtCore.Qt.CheckState.Checked if name in shown else QtCore.Qt.CheckState.Unchecked)
            self.widget.addItem(item)
        self.widget.setMaximumHeight(20 * max(2, min(6, len(names) + 1)))
        self.widget.blockSignals(False)

    def _name(self, item) -> str:
        from PyQt6 import QtCore

        return str(item.data(QtCore.Qt.ItemDataRole.UserRole))

    def _toggled(self, item) -> None:
        from PyQt6 import QtCore

        self.ctrl.show_series(self._name(item), item.checkState() == QtCore.Qt.CheckState.Checked)

    def _log(self, item) -> None:
        self.ctrl.toggle_series_log(self._name(item))
