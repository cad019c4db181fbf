"""One run prepared for drawing: windowed access to its rows and pyramid, a name and a colour.

A :class:`RunData` never loads a long recording whole: the composition asks its
:class:`~recorder.window.RunWindows` for exactly the rows or pyramid buckets a frame needs.
In-memory runs (tests, live training in the same process) grow with :meth:`RunData.extend`.
"""

from __future__ import annotations

import math

import numpy as np

from recorder.codec import Iterations
from recorder.window import RunWindows

from .growable import Growable
from .style import RUN_COLORS
from .xaxis import AxisMap, AxisRange, IterRange, build_map, window_map

__all__ = ["RunData"]


class RunData:
    """One run prepared for drawing: windowed access to its rows and pyramid, a name and a colour.

    Parameters
    ----------
    source : an in-memory :class:`~recorder.codec.Iterations` (grows with :meth:`extend`) or a
        :class:`~recorder.window.RunWindows` onto a recording (grows with :meth:`refresh`)
    name, color : legend entry
    """

    #: recordings longer than this are never loaded whole through :attr:`data` (use the windows)
    MAX_WHOLE_ROWS = 1_000_000

    def __init__(self, source, name: str = "run", color=None):
        self.name = name
        self.color = np.asarray(color if color is not None else RUN_COLORS[0], np.float32)
        self.visible = True
        self._params: dict | None = None  # hyperparameters, read from the recording on first use
        self._whole: Iterations | None = None  # all rows of a recording-backed run, loaded on first use of .data
        if isinstance(source, RunWindows):
            self.windows = source
            self._grow = None
        else:
            self._alpha = np.asarray(source.alpha_grid, np.float64)
            self._grow = ({k: Growable(v) for k, v in source.columns.items()}, Growable(source.phi),
                          Growable(source.trial_offsets), {k: Growable(v) for k, v in source.trials.items()})
            self.windows = RunWindows.from_iterations(self._publish(), name)
        self._axis_maps: dict[tuple[str, int], AxisMap] = {}  # (axis, rows) -> the whole-run map
        self.alphas = self.windows.alpha_grid
        self.reach = max(1.0, float(self.alphas.max())) if len(self.alphas) else 1.0

    @classmethod
    def from_recording(cls, rec, name: str | None = None, color=None) -> "RunData":
        """A run backed by an open recording: nothing is read until a window asks for it."""
        return cls(RunWindows.from_recording(rec), name or rec.name, color)

    def _publish(self) -> Iterations:
        cols, phi, off, trials = self._grow
        return Iterations(self._alpha, {k: g.view for k, g in cols.items()}, phi.view, off.view,
                          {k: g.view for k, g in trials.items()})

    @property
    def params(self) -> dict:
        """The run's hyperparameters (:func:`gda_gl.compare.hyperparameters`: ``config.NAME``, ``lr``, ...);
        an in-memory run has those assigned to it (none by default)."""
        if self._params is None:
            from .compare import hyperparameters

            rec = getattr(self.windows, "recording", None)
            self._params = hyperparameters(rec.run, len(self.alphas)) if rec is not None else {}
        return self._params

    @params.setter
    def params(self, value: dict) -> None:
        self._params = dict(value)

    # -- size ------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.windows.n_rows

    @property
    def in_memory(self) -> bool:
        return self._grow is not None

    @property
    def data(self) -> Iterations:
        """All rows (in-memory runs, or recordings of at most :attr:`MAX_WHOLE_ROWS` rows)."""
        if self._grow is not None:
            return self.windows.rows_in_memory
        if self._whole is None or len(self._whole) != len(self):
            if len(self) > self.MAX_WHOLE_ROWS:
                raise MemoryError(f"{self.name}: {len(self):,} rows are too many to load whole; use windows")
            self._whole = self.windows.rows(-math.inf, math.inf)
        return self._whole

    @property
    def x_span(self) -> IterRange:
        """The run's whole extent in iterations: [first iteration, last iteration + 1]."""
        s = self.windows.span()
        return IterRange(0.0, 1.0) if s is None else IterRange(*s)

    # -- x axes ----------------------------------------------------------------------
    def axis_map(self, axis: str) -> AxisMap | None:
        """This run's whole-run map from iterations to ``axis`` (None on the iteration axis or for no rows);
        built once per axis and length (a growing run rebuilds it)."""
        if axis == "iteration" or not len(self):
            return None
        key = (axis, len(self))
        if key not in self._axis_maps:
            self._axis_maps.clear()
            self._axis_maps[key] = build_map(self, axis)
        return self._axis_maps[key]

    def to_iterations(self, axis: str, r: AxisRange) -> IterRange:
        """A range on ``axis`` as this run's iterations, exact to the row (see :meth:`_exact`)."""
        gmap = self.axis_map(axis)
        if gmap is None:
            return IterRange(float(r[0]), float(r[1]))
        return IterRange(*(self._exact(axis, gmap, float(gmap.to_iter(v)), v, to_axis=False) for v in r))

    def to_axis(self, axis: str, r: IterRange) -> AxisRange:
        """A range of this run's iterations on ``axis``, exact to the row (see :meth:`_exact`)."""
        gmap = self.axis_map(axis)
        if gmap is None:
            return AxisRange(float(r[0]), float(r[1]))
        return AxisRange(*(self._exact(axis, gmap, float(u), float(u), to_axis=True) for u in r))

    def _exact(self, axis: str, gmap: AxisMap, u: float, value: float, to_axis: bool) -> float:
        """``value`` (an iteration when ``to_axis``, else an axis value near iteration ``u``) through the map made
        exact over the knot interval holding ``u``: the whole-run map is exact at its knots only (a knot per
        pyramid bucket), its rows are read for the interval (at most one global bucket of them)."""
        j = int(np.searchsorted(gmap.u, u, side="right")) - 1
        if axis == "epoch" or j < 0 or j >= len(gmap.u) - 1 or gmap.u[j + 1] - gmap.u[j] <= 1.0:
            # epochs are located to the row already; outside the run linear; a knot per row: exact
            return float(gmap.to_axis(value) if to_axis else gmap.to_iter(value))
        rows = self.rows(float(gmap.u[j]), float(gmap.u[j + 1]))
        local = window_map(self, axis, gmap, rows=rows) if len(rows) else gmap
        return float(local.to_axis(value) if to_axis else local.to_iter(value))

    def axis_span(self, axis: str) -> AxisRange:
        """The run's whole extent on ``axis``."""
        return self.to_axis(axis, self.x_span)

    # -- growth ----------------------------------------------------------------------
    def extend(self, new: Iterations) -> None:
        """Append rows (in-memory live runs): O(new rows); the pyramid grows in place."""
        if len(new) == 0:
            return
        if self._grow is None:
            raise TypeError("a recording-backed run grows with refresh()")
        cols, phi, off, trials = self._grow
        n_old = phi.n
        for k, g in cols.items():
            g.append(new.columns[k])
        phi.append(new.phi)
        off.set_tail(n_old, new.trial_offsets + int(off.view[-1]))
        for k, g in trials.items():
            g.append(new.trials[k])
        self.windows.grow_in_memory(self._publish(), new)

    def refresh(self) -> int:
        """Pick up rows a writer committed since the last call (recording-backed runs)."""
        return 0 if self._grow is not None else self.windows.refresh()

    # -- windows ---------------------------------------------------------------------
    def rows(self, x0: float, x1: float) -> Iterations:
        """Rows with iteration in ``[x0, x1)``."""
        return self.windows.rows(x0, x1)

    def rows_reaching(self, x0: float, x1: float) -> Iterations:
        """Rows whose segments (loose ends included) can reach ``[x0, x1]``."""
        return self.windows.rows(math.floor(x0 - self.reach), math.floor(x1) + 1)

    def row_at(self, x: float) -> Iterations | None:
        """The row whose segment [k, k+1) contains x, or None."""
        if not math.isfinite(x):
            return None
        return self.windows.row_of(int(math.floor(x)))
