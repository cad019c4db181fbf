"""The x-axis choice of the control panel (Qt): iteration, epoch, samples seen, wall time, forward passes.

Axes a visible run cannot provide (no wall time, no samples per step: :func:`gda_gl.compose.xaxis.unavailable`)
are greyed out, with the reason as their tooltip.  Choosing an axis calls
:meth:`~gda_gl.explorer.navigation.Navigator.set_x_axis` (the whole run on the new axis).
"""

from __future__ import annotations

from typing import Callable

__all__ = ["AxisChoice"]


class AxisChoice:
    """A combo box of the x axes, wired to the controller."""

    def __init__(self, ctrl, message: Callable[[str | None], None]):
        from PyQt6 import QtWidgets

        self.ctrl = ctrl
        self.message = message
        self.widget = QtWidgets.QComboBox()
        self.fill()
        self.widget.currentIndexChanged.connect(self._chosen)

    def fill(self, *_) -> None:
        """One item per axis; unavailable ones disabled with their reason (signals blocked)."""
        from PyQt6 import QtCore

        from gda_gl.compose.xaxis import AXES, AXIS_TITLES, unavailable

        self.axes = list(AXES)
        self.widget.blockSignals(True)
        self.widget.clear()
        model = self.widget.model()
        for i, axis in enumerate(AXES):
            self.widget.addItem(AXIS_TITLES[axis])
            why = next((w for w in (unavailable(r, axis) for r in self.ctrl.visible_runs()) if w), None)
            if why:
                model.item(i).setEnabled(False)
                self.widget.setItemData(i, why, QtCore.Qt.ItemDataRole.ToolTipRole)
        self.widget.setCurrentIndex(self.axes.index(self.ctrl.state.x_axis))
        self.widget.blockSignals(False)

    def show(self, axis: str) -> None:
        """Select ``axis`` without acting on it (the caller blocks signals)."""
        self.widget.setCurrentIndex(self.axes.index(axis))

    def disabled(self) -> dict[str, str]:
        """Axis -> the reason it is greyed out."""
        from PyQt6 import QtCore

        model = self.widget.model()
        return {a: str(self.widget.itemData(i, QtCore.Qt.ItemDataRole.ToolTipRole)) for i, a in enumerate(self.axes)
                if not model.item(i).isEnabled()}

    def _chosen(self, i: int) -> None:
        try:
            self.ctrl.set_x_axis(self.axes[i])
        except ValueError as exc:
            self.message(str(exc))
