"""The findings list of the control panel (Qt): one line per finding of ``gda-gl diagnose``.

Clicking a finding flies the view to it (:meth:`gda_gl.explorer.findings.FindingsNav.show`, the
same flight as keys J / K); the list follows the runs as they grow (:meth:`FindingsList.fill`).
"""

from __future__ import annotations

from typing import Callable

__all__ = ["FindingsList"]


class FindingsList:
    """A list of the runs' findings wired to the controller.

    Parameters
    ----------
    ctrl : the explorer's controller
    message : shows a status message (the window's status line)
    """

    def __init__(self, ctrl, message: Callable[[str | None], None]):
        from PyQt6 import QtWidgets

        self.ctrl = ctrl
        self.message = message
        self.widget = QtWidgets.QListWidget()
        self.widget.setToolTip("what gda-gl diagnose says about the runs; click: fly to it (J / K: next / previous)")
        self.widget.setWordWrap(True)
        self.fill()
        self.widget.itemClicked.connect(self._clicked)

    def fill(self, *_) -> None:
        """One item per finding (its number kept with it)."""
        from PyQt6 import QtCore, QtWidgets

        try:
            found = self.ctrl.findings.all()
        except Exception as exc:  # a damaged file: the list says so, the window stays usable
            found = []
            self.message(f"findings: {exc}")
        self.widget.blockSignals(True)
        self.widget.clear()
        for f in found:
            item = QtWidgets.QListWidgetItem(f.line)
            item.setData(QtCore.Qt.ItemDataRole.UserRole, f.number)
            self.widget.addItem(item)
        self.widget.setMaximumHeight(22 * max(2, min(8, len(found) + 1)))
        self.widget.blockSignals(False)

    def _clicked(self, item) -> None:
        from PyQt6 import QtCore

        self.message(self.ctrl.findings.show(int(item.data(QtCore.Qt.ItemDataRole.UserRole))))
