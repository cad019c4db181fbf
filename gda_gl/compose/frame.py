"""What one frame draws: typed batches of primitives plus the text the renderer writes. Plain data.

:func:`gda_gl.compose.scene.compose` (the curve) and :func:`gda_gl.compose.detail.compose_detail` (one line
search) fill a :class:`Frame`; :meth:`gda_gl.gl.render.CurveRenderer.draw_frame` draws it by looping
over :data:`gda_gl.gl.render.DRAW_TABLE` (batch kind -> GL program and its settings), and picking
(:mod:`gda_gl.explorer.picking`) reads the same batches, so what can be picked is what was drawn.

Positions are relative to ``Frame.origin`` (float64 here, float32 on the GPU, so precision does
not depend on how far out the iterations are); y is in display units (log10 when the view is log).

Batch kinds (:data:`KINDS`), in draw order:

===========  =========  ==============================================================
kind         type       what
===========  =========  ==============================================================
rules        Rects      batch-change rules (details view: accepted alpha and alpha=0)
envelope     Rects      min..max of the arcs per bucket (zoomed out)
classic      Rects      the classic curve phi_k(0) per bucket (zoomed out)
beyond       Segments   phi_k past the accepted step (lighter)
arcs         Segments   phi_k over [0, accepted step]: the enhanced curve
smooth       Segments   the EMA-smoothed classic curve
lines        Segments   many runs zoomed out: each run's training loss as one thin line (gda_gl.manyruns)
series_band  Rects      a logged series zoomed out: min..max of its points per bucket
series       Segments   a logged series: the line through its points (or bucket means)
series_marks Markers    a logged series' points when few are visible
trials       Markers    line-search trial points and loose ends
flags        Markers    non-finite losses (pinned to the top edge)
owner        Segments   owner lines of loose ends beyond the grid (drawn dotted by the overlays)
===========  =========  ==============================================================

Segments and rects that stand for steps carry :class:`Ids` (run, iteration, alpha at both ends,
or the bucket's first and last iteration), which is all picking needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

__all__ = ["Ids", "Segments", "Rects", "Markers", "Frame", "KINDS"]

KINDS = ("rules", "envelope", "classic", "beyond", "arcs", "smooth", "lines", "series_band", "series", "series_marks",
         "trials", "flags", "owner")


def _f64(a, width: int) -> np.ndarray:
    return np.asarray(a, np.float64).reshape(-1, width)


def _rgba(c, n: int) -> np.ndarray:
    c = np.asarray(c, np.float32)
    return np.broadcast_to(c, (n, 4)) if c.ndim == 1 else c.reshape(-1, 4)


@dataclass
class Ids:
    """What each primitive of a batch stands for (picking, readouts).

    Attributes
    ----------
    run : (n,) index of the run in the composed list
    first, last : (n,) iteration of the step (both equal) or a bucket's first and last iteration
    a0, a1 : (n,) alpha at the primitive's two ends (NaN for buckets)
    """

    run: np.ndarray
    first: np.ndarray
    last: np.ndarray
    a0: np.ndarray
    a1: np.ndarray

    @classmethod
    def steps(cls, run: int, iteration, a0, a1) -> "Ids":
        it = np.asarray(iteration, np.int64)
        return cls(np.full(len(it), run, np.int32), it, it, np.asarray(a0, np.float64), np.asarray(a1, np.float64))

    @classmethod
    def buckets(cls, run: int, first, last) -> "Ids":
        f = np.asarray(first, np.int64)
        nan = np.full(len(f), np.nan)
        return cls(np.full(len(f), run, np.int32), f, np.asarray(last, np.int64), nan, nan)

    @classmethod
    def concat(cls, parts: list["Ids"]) -> "Ids | None":
        if not parts:
            return None
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("run", "first", "last", "a0", "a1")))


class _Batch:
    """What every batch shares: positions normalised to float64 rows of :attr:`WIDTHS` columns, one RGBA per
    primitive, ``len()`` the primitive count, and :attr:`ARRAYS` (the per-primitive arrays, concatenated by
    :meth:`Frame.merged`)."""

    WIDTHS: ClassVar[dict[str, int]] = {}
    ARRAYS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        for name, width in self.WIDTHS.items():
            setattr(self, name, _f64(getattr(self, name), width))
        self.color = _rgba(self.color, len(self))

    def __len__(self) -> int:
        return len(getattr(self, next(iter(self.WIDTHS))))


@dataclass
class Segments(_Batch):
    """Line segments p0 -> p1 with a colour each."""

    WIDTHS: ClassVar[dict[str, int]] = {"p0": 2, "p1": 2}
    ARRAYS: ClassVar[tuple[str, ...]] = ("p0", "p1", "color")

    kind: str
    p0: np.ndarray
    p1: np.ndarray
    color: np.ndarray
    ids: Ids | None = None
    label: str = ""            # what a line stands for (a series: "run: name"), for readouts


@dataclass
class Rects(_Batch):
    """Axis-aligned rectangles (x0, y0, x1, y1) with a colour each."""

    WIDTHS: ClassVar[dict[str, int]] = {"rects": 4}
    ARRAYS: ClassVar[tuple[str, ...]] = ("rects", "color")

    kind: str
    rects: np.ndarray
    color: np.ndarray
    ids: Ids | None = None


@dataclass
class Markers(_Batch):
    """Markers: centre, colour, size in pixels and shape code (0 disc, 2 triangle, ...)."""

    WIDTHS: ClassVar[dict[str, int]] = {"xy": 2}
    ARRAYS: ClassVar[tuple[str, ...]] = ("xy", "color", "size", "shape")

    kind: str
    xy: np.ndarray
    color: np.ndarray
    size: np.ndarray | float = 6.0
    shape: np.ndarray | float = 0.0

    def __post_init__(self):
        super().__post_init__()
        n = len(self)
        self.size = np.broadcast_to(np.asarray(self.size, np.float64), (n,))
        self.shape = np.broadcast_to(np.asarray(self.shape, np.float64), (n,))


@dataclass
class Frame:
    """Primitives of one frame, positions relative to ``origin`` (y in display units: log10 when log).

    Besides geometry a frame carries everything the renderer writes as text: the title, the legend,
    epoch marks, the colour bar's statistic and range, and how many rows match the highlight; and
    what the explorer's overlays draw from it (``owner`` lines, the highlight ``rug``).
    """

    origin: tuple[float, float]
    mode: str = "overview"
    batches: list = field(default_factory=list)          # Segments / Rects / Markers, any order
    stat_range: tuple[float, float] | None = None
    color_by: str | None = None
    legend: list = field(default_factory=list)          # (name, rgba)
    epoch_marks: list = field(default_factory=list)     # (x relative to origin, epoch, run row, run rgba)
    x_axis: str = "iteration"                           # the x axis (gda_gl.compose.xaxis.AXES)
    y_title: str = "loss"                               # the y axis's title
    xmaps: dict = field(default_factory=dict)           # run index -> AxisMap of this frame (not iteration axis)
    match_count: int | None = None                      # rows matching the highlight (None: no filter)
    match_exact: bool = True                            # False: an upper bound (threshold filters zoomed out)
    rug: np.ndarray | None = None                       # pixel columns (from the plot's left) holding matches
    x_span: tuple[float, float] = (0.0, 1.0)            # the runs' whole x extent (zoom limits, Home)
    title: str = ""
    levels: dict = field(default_factory=dict)          # run name -> pyramid level drawn (None: rows)
    # what other kinds of frames (the details view) set; the curve's frames keep the defaults
    rule_min_px: float = 1.0
    seg_width: float | None = None                      # None: by zoom (2 px when a step is wide, else 1.5)
    x_tick_px: int = 110                                # pixels per x tick
    y_tick_px: int = 60                                 # pixels per y tick
    font_size: int | None = None                        # None: by canvas width
    axis_titles: bool = True                            # False: titles and axis labels come in ``texts``
    runs: int = 0                                       # runs drawn (the title counts runs, not legend entries)
    log_x: bool = False                                 # x positions are log10 of the values (ticks in values)
    color_scale: object = None                          # runs coloured by a hyperparameter: its ParamScale
    texts: list = field(default_factory=list)           # (text, x, y, anchor, size, rgba, bold, rotate) in px

    def add(self, batch) -> None:
        """Append a batch (empty ones are dropped)."""
        if batch.kind not in KINDS:
            raise ValueError(f"unknown batch kind {batch.kind!r} (known: {', '.join(KINDS)})")
        if len(batch):
            self.batches.append(batch)

    def of(self, kind: str) -> list:
        """The batches of one kind, in the order they were added."""
        return [b for b in self.batches if b.kind == kind]

    def merged(self, kind: str):
        """All batches of ``kind`` as one batch (None when there are none); ids kept when all have them."""
        parts = self.of(kind)
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        cls = type(parts[0])
        arrays = {name: np.concatenate([np.asarray(getattr(p, name)) for p in parts]) for name in cls.ARRAYS}
        out = cls(kind, **arrays)
        if cls is not Markers and all(p.ids is not None for p in parts):
            out.ids = Ids.concat([p.ids for p in parts])
        return out

    def count(self, kind: str) -> int:
        """Primitives of one kind."""
        return sum(len(b) for b in self.of(kind))
