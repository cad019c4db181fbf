"""The view that was drawn: axis ranges plus the pixel layout, and the mapping between them.

A :class:`View` is produced by the composition step (:func:`gda_gl.compose.scene.compose`)
together with the :class:`~gda_gl.compose.frame.Frame` it describes, and handed to the
renderer (:mod:`gda_gl.gl.render`), which draws exactly that.  Everything that maps pixels back to data
(hover readouts, clicks, box zoom, the details panel) uses the ``View`` that was
*last drawn*, never the target of an animation, so what the user points at is
what is on screen.

Coordinates: canvas pixels have their origin at the top-left (Qt/VisPy events);
the plot rectangle in :class:`~gda_gl.compose.layout.Layout` has its origin at the
bottom-left (GL).  ``y`` is in display units: ``log10(loss)`` when ``log_y``.

x is in the units of the view's axis (:attr:`View.axis`); what each run shows of its own steps is
:meth:`View.iterations_of` (an :class:`~gda_gl.compose.xaxis.IterRange` per run, set by the
composition): on any axis but the iteration axis the two differ, and per run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .xaxis import AxisRange, IterRange

__all__ = ["View", "transform_y"]


def transform_y(y, log: bool) -> np.ndarray:
    """Loss to display units: itself, or log10 on a log axis (NaN for values <= 0). The one display transform."""
    y = np.asarray(y, np.float64)
    if not log:
        return y
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(y > 0, np.log10(np.where(y > 0, y, 1.0)), np.nan)


@dataclass(frozen=True)
class View:
    """Axis ranges and pixel geometry of one drawn plot.

    Attributes
    ----------
    x0, x1 : float
        the x range in the units of ``axis`` (alpha in the details view)
    y0, y1 : float
        y range in display units (log10 of the loss when ``log_y``)
    log_y : bool
        whether y is logarithmic
    plot : (x, y, w, h)
        plot rectangle in pixels, origin bottom-left of the canvas
    size : (width, height)
        canvas size in pixels
    axis : str
        the x axis (``iteration``, ``epoch``, ...; ``alpha`` in the details view)
    iterations : tuple of IterRange or None
        per run (the composition's run list, by index): the iterations of that run in view (None: not drawn)
    """

    x0: float
    x1: float
    y0: float
    y1: float
    log_y: bool
    plot: tuple[int, int, int, int]
    size: tuple[int, int]
    axis: str = "iteration"
    iterations: tuple = ()

    @property
    def x_range(self) -> AxisRange:
        """The x range in the axis's units."""
        return AxisRange(self.x0, self.x1)

    def iterations_of(self, index: int) -> IterRange | None:
        """The iterations of run ``index`` in view (None: that run is not drawn)."""
        if self.axis == "iteration" and not self.iterations:
            return IterRange(self.x0, self.x1)
        return self.iterations[index] if 0 <= index < len(self.iterations) else None

    @property
    def y_range(self) -> tuple[float, float]:
        """y range in display units."""
        return (self.y0, self.y1)

    @property
    def y_range_data(self) -> tuple[float, float]:
        """y range in data units (loss), undoing the log."""
        if self.log_y:
            return (10.0 ** self.y0, 10.0 ** self.y1)
        return (self.y0, self.y1)

    @property
    def px_per_x(self) -> float:
        return self.plot[2] / (self.x1 - self.x0)

    def contains_px(self, px: float, py: float) -> bool:
        """Whether canvas pixel (origin top-left) lies inside the plot rectangle."""
        lx, ly, pw, ph = self.plot
        gy = self.size[1] - py
        return lx <= px <= lx + pw and ly <= gy <= ly + ph

    def to_display_y(self, y: float) -> float:
        """Loss to display units (NaN for non-positive values on a log axis)."""
        return float(transform_y(y, self.log_y))

    def px_to_data(self, px: float, py: float) -> tuple[float, float]:
        """Canvas pixel (origin top-left) to (x, loss) in data units."""
        lx, ly, pw, ph = self.plot
        gy = self.size[1] - py
        x = self.x0 + (px - lx) / pw * (self.x1 - self.x0)
        yd = self.y0 + (gy - ly) / ph * (self.y1 - self.y0)
        return x, (10.0 ** yd if self.log_y else yd)

    def data_to_px(self, x: float, y: float) -> tuple[float, float]:
        """(x, loss) in data units to canvas pixels (origin top-left)."""
        lx, ly, pw, ph = self.plot
        yd = self.to_display_y(y)
        return (lx + (x - self.x0) / (self.x1 - self.x0) * pw,
                self.size[1] - (ly + (yd - self.y0) / (self.y1 - self.y0) * ph))
