"""What to draw for a view: one composition step from (runs, view state, layout) to (View, Frame). Compute only.

:func:`compose` is the one place that decides what is drawn.  It resolves the
view (x from the state, y fitted to what is visible), asks each run's
:class:`~recorder.window.RunWindows` for exactly the window it needs, and
returns the :class:`~gda_gl.view.View` with a :class:`Frame`: flat arrays of
line segments, rectangles and markers relative to the view origin (float64
here, float32 on the GPU, so precision does not depend on how far out the
iterations are), plus the legend, epoch marks and colour range.  The renderer
draws a Frame and knows nothing of recordings or view states.

Per-frame work is bounded by pixels and visible rows, never by the run:

* zoomed out (at least :data:`recorder.pyramid.BASE_ROWS` rows per pixel
  column) a run is drawn from pyramid buckets at the level with one to four
  buckets per column, merged to one per column: the envelope of phi (min..max
  of every visible step), the classic curve phi_k(0), colour-by from each
  bucket's mean, highlight from its counts;
* in between, from the visible rows reduced the same way (each row a bucket
  of one);
* zoomed in (at most one row per two pixel columns) every step is its own arc
  (Becker et al. 2019): segment k draws phi_k over alpha in [0, taken] on x in
  [k, k+1]; segments are never joined, so a change of mini-batch shows as a
  jump; the part beyond the taken step dangles past k+1 in a lighter style;
  trial points are markers; batch changes are faint vertical rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from recorder import pyramid, schema, stats
from recorder.codec import Iterations
from recorder.window import RunWindows

from .growable import Growable
from .state import ViewState
from .view import View

__all__ = ["RunData", "Frame", "compose", "build_frame", "resolve_view", "fit_y_range", "RUN_COLORS",
           "CLASS_COLORS", "stat_colors", "parse_filter", "stat_color_range", "highlight_mask", "highlight_buckets", "transform_y"]

RUN_COLORS = np.array([
    [0.12, 0.47, 0.71, 1.0], [0.84, 0.15, 0.16, 1.0], [0.17, 0.63, 0.17, 1.0], [0.58, 0.40, 0.74, 1.0],
    [1.00, 0.50, 0.05, 1.0], [0.55, 0.34, 0.29, 1.0], [0.89, 0.47, 0.76, 1.0], [0.09, 0.75, 0.81, 1.0],
], np.float32)
CLASS_COLORS = {schema.CLASS_UNKNOWN: (0.55, 0.55, 0.55, 1.0), schema.CLASS_UNDERSHOOT: (0.19, 0.39, 0.80, 1.0),
                schema.CLASS_NEAR_OPTIMAL: (0.10, 0.62, 0.25, 1.0), schema.CLASS_OVERSHOOT: (0.85, 0.20, 0.15, 1.0)}
LOOSE_COLOR = (0.95, 0.55, 0.10, 1.0)
NONFINITE_COLOR = (0.85, 0.05, 0.05, 1.0)
TRIAL_COLOR = (0.15, 0.15, 0.15, 0.9)
NAN_COLOR = (0.6, 0.6, 0.6, 1.0)
#: alpha multiplier of rows/buckets that do not match the highlight filter
FADE = 0.15
#: rows in view per pixel column at most for drawing every step as its own arc
DETAIL_ROWS_PER_PX = 0.5


def _taken(data: Iterations) -> np.ndarray:
    """Accepted alphas (values <= 0 or NaN, a step that did not move, count as 1)."""
    t = data["taken_alpha"].astype(np.float64)
    return np.where(np.isfinite(t) & (t > 0), t, 1.0)


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
        self._whole: Iterations | None = None  # all rows of a recording-backed run, loaded on first use of .data
        if isinstance(source, RunWindows):
            self.windows = source
            self._grow = None
        else:
            self._alpha = np.asarray(source.alpha_grid, np.float64)
            self._grow = ({k: Growable(v) for k, v in source.columns.items()}, Growable(source.phi),
                          Growable(source.trial_offsets), {k: Growable(v) for k, v in source.trials.items()})
            self.windows = RunWindows.from_iterations(self._publish(), name)
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
            return self.windows._mem
        if self._whole is None or len(self._whole) != len(self):
            if len(self) > self.MAX_WHOLE_ROWS:
                raise MemoryError(f"{self.name}: {len(self):,} rows are too many to load whole; use windows")
            self._whole = self.windows.rows(-math.inf, math.inf)
        return self._whole

    @property
    def x_span(self) -> tuple[float, float]:
        s = self.windows.span()
        return (0.0, 1.0) if s is None else s

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
        self.windows._mem = self._publish()
        self.windows.chunks.add(new.columns, new.phi, np.diff(new.trial_offsets), new.trials["alpha"])

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


def _ikey(v: float) -> int:
    return int(max(min(v, 2 ** 62), -(2 ** 62)))


@dataclass
class Frame:
    """Primitives of one frame, positions relative to ``origin`` (y in display units: log10 when log).

    Besides geometry a frame carries everything the renderer writes as text: the title, the legend,
    epoch marks, the colour bar's statistic and range, and how many rows match the highlight.
    """

    origin: tuple[float, float]
    mode: str = "overview"
    seg_p0: list = field(default_factory=list)
    seg_p1: list = field(default_factory=list)
    seg_color: list = field(default_factory=list)
    loose_p0: list = field(default_factory=list)
    loose_p1: list = field(default_factory=list)
    loose_color: list = field(default_factory=list)
    smooth_p0: list = field(default_factory=list)       # the EMA-smoothed classic curve (state.smoothing)
    smooth_p1: list = field(default_factory=list)
    smooth_color: list = field(default_factory=list)
    env_rects: list = field(default_factory=list)
    env_color: list = field(default_factory=list)
    classic_rects: list = field(default_factory=list)
    classic_color: list = field(default_factory=list)
    rules_x: list = field(default_factory=list)
    marker_xy: list = field(default_factory=list)
    marker_color: list = field(default_factory=list)
    marker_shape: list = field(default_factory=list)
    flag_xy: list = field(default_factory=list)
    stat_range: tuple[float, float] | None = None
    color_by: str | None = None
    legend: list = field(default_factory=list)          # (name, rgba)
    epoch_marks: list = field(default_factory=list)     # (x relative to origin, epoch)
    match_count: int | None = None                      # rows matching the highlight (None: no filter)
    match_exact: bool = True                            # False: an upper bound (threshold filters zoomed out)
    title: str = ""
    levels: dict = field(default_factory=dict)          # run name -> pyramid level drawn (None: rows)
    # what other kinds of frames (the details view) set; the curve's frames keep the defaults
    rule_color: list = field(default_factory=list)      # per rule RGBA (empty: the faint batch-change colour)
    rule_min_px: float = 1.0
    marker_size: list = field(default_factory=list)     # per marker, pixels (empty: 6 for all)
    seg_width: float | None = None                      # None: by zoom (2 px when a step is wide, else 1.5)
    x_tick_px: int = 110                                # pixels per x tick
    font_size: int | None = None                        # None: by canvas width
    axis_titles: bool = True                            # False: titles and axis labels come in ``texts``
    texts: list = field(default_factory=list)           # (text, x, y, anchor, size, rgba, bold, rotate) in px

    def cat(self, name: str, width: int) -> np.ndarray:
        parts = getattr(self, name)
        if not parts:
            return np.empty((0, width), np.float64)
        return np.concatenate([np.asarray(p, np.float64).reshape(-1, width) for p in parts])


def transform_y(y: np.ndarray, log: bool) -> np.ndarray:
    y = np.asarray(y, np.float64)
    if not log:
        return y
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(y > 0, np.log10(np.where(y > 0, y, 1.0)), np.nan)


# --------------------------------------------------------------------------- colours and filters

def stat_color_range(name: str, values: list[np.ndarray]) -> tuple[float, float]:
    """Colour range of a statistic: its declared range, else the 2nd..98th percentile of ``values``."""
    st = stats.STAT_BY_NAME[name]
    if st.color_range is not None:
        return st.color_range
    v = np.concatenate([np.asarray(a, np.float64).ravel() for a in values]) if values else np.empty(0)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return (0.0, 1.0)
    lo, hi = np.percentile(v, [2, 98])
    if not hi > lo:
        hi = lo + max(1.0, abs(lo)) * 1e-6 if lo else 1.0
    return float(lo), float(hi)


def stat_colors(values: np.ndarray, name: str, rng: tuple[float, float]) -> np.ndarray:
    """RGBA per value: class colours for code statistics, the declared colormap otherwise (grey for NaN)."""
    v = np.asarray(values, np.float64)
    st = stats.STAT_BY_NAME[name]
    if st.colormap == "classes":
        out = np.empty((len(v), 4), np.float32)
        out[:] = NAN_COLOR
        for code, c in CLASS_COLORS.items():
            out[v == code] = c
        return out
    from vispy.color import get_colormap

    t = np.clip((v - rng[0]) / (rng[1] - rng[0]), 0.0, 1.0)
    out = get_colormap(st.colormap or "viridis").map(np.nan_to_num(t, nan=0.0)[:, None]).astype(np.float32)
    out[~np.isfinite(v)] = NAN_COLOR
    return out


def bucket_stat(recs: dict, name: str) -> np.ndarray:
    """Per-bucket value of a statistic for colouring: the mean of its finite values, the most frequent code."""
    st = stats.STAT_BY_NAME[name]
    if st.aggregate == "codes":
        counts = np.stack([recs[f"{name}:{c}"] for c, _ in st.codes], axis=1)
        codes = np.array([c for c, _ in st.codes], np.float64)
        return np.where(counts.sum(axis=1) > 0, codes[np.argmax(counts, axis=1)], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        cnt = recs[f"{name}:count"].astype(np.float64)
        return np.where(cnt > 0, recs[f"{name}:sum"] / np.where(cnt > 0, cnt, 1.0), np.nan)


_CLASS_FILTERS = {"overshoot": schema.CLASS_OVERSHOOT, "undershoot": schema.CLASS_UNDERSHOOT,
                  "near-optimal": schema.CLASS_NEAR_OPTIMAL}
_OPS = ("<=", ">=", "<", ">")
FILTER_HELP = "overshoot, undershoot, near-optimal, failed, nonfinite, STAT<VALUE, STAT>VALUE"


def parse_filter(cond: str):
    c = cond.replace(" ", "")
    if c in _CLASS_FILTERS:
        return ("class", _CLASS_FILTERS[c])
    if c == "failed":
        return ("status", schema.STATUS_FAILED)
    if c in ("nonfinite", "non-finite"):
        return ("status", schema.STATUS_NONFINITE)
    for op in _OPS:
        if op in c:
            name, val = c.split(op, 1)
            if name not in stats.STAT_BY_NAME:
                raise ValueError(f"unknown statistic {name!r} in filter {cond!r}")
            try:
                v = float(val)
            except ValueError:
                raise ValueError(f"filter {cond!r}: {val!r} is not a number") from None
            if math.isnan(v):
                raise ValueError(f"filter {cond!r}: the value is NaN")
            return ("cmp", (name, op, v))
    raise ValueError(f"unknown filter {cond!r} ({FILTER_HELP})")


def highlight_mask(data: Iterations, cond: str | None) -> np.ndarray | None:
    """Rows matching a filter condition (others are faded), or None for no filter."""
    if not cond:
        return None
    kind, arg = parse_filter(cond)
    if kind == "class":
        return data["step_class"] == arg
    if kind == "status":
        if arg == schema.STATUS_NONFINITE:
            return (data["status"] == schema.STATUS_NONFINITE) | ~np.all(np.isfinite(data.phi), axis=1) & \
                (data["status"] != schema.STATUS_SKIPPED)
        return data["status"] == arg
    name, op, v = arg
    x = data[name].astype(np.float64)
    return {"<": x < v, ">": x > v, "<=": x <= v, ">=": x >= v}[op]


#: identity columns whose bucket extremes the pyramid keeps under other names
_SPAN_FIELDS = {"epoch": ("epoch_first", "epoch_last"), "iteration": ("first_it", "last_it")}


def highlight_buckets(recs: dict, cond: str | None) -> tuple[np.ndarray | None, int | None, bool]:
    """Buckets that contain a matching row, the number of matching rows, and whether that number is exact.

    Code filters (step class, probe status) count exactly; threshold filters only know from a bucket's
    min and max whether some row may match, so their count is the rows of such buckets (an upper bound).
    """
    if not cond:
        return None, None, True
    kind, arg = parse_filter(cond)
    if kind in ("class", "status"):
        col = recs[f"{'step_class' if kind == 'class' else 'status'}:{arg}"].astype(np.int64)
        return col > 0, int(col.sum()), True
    name, op, v = arg
    if f"{name}:min" in recs:
        lo, hi = recs[f"{name}:min"], recs[f"{name}:max"]
    elif name in _SPAN_FIELDS:
        lo, hi = (recs[f].astype(np.float64) for f in _SPAN_FIELDS[name])
    else:  # not aggregated (batch ids, ...): every bucket may match
        m = np.ones(len(recs["rows"]), bool)
        return m, int(recs["rows"].sum()), bool(np.all(recs["rows"] == 1))
    with np.errstate(invalid="ignore"):
        m = {"<": lo < v, ">": hi > v, "<=": lo <= v, ">=": hi >= v}[op]
    exact = bool(np.all((recs["rows"] == 1) | ~m))
    return m, int(recs["rows"][m].sum()), exact


# --------------------------------------------------------------------------- composition

@dataclass
class _Window:
    """What one run contributes to a frame: pyramid buckets or visible rows."""

    run: RunData
    level: int | None
    recs: dict | None = None        # buckets (level >= 0) or rows as buckets of one (level None, overview)
    rows: Iterations | None = None  # visible rows (level None)


def _needed_stats(state: ViewState | None) -> set:
    """Statistics a frame reads from rows drawn as buckets: colour-by, the highlight's, the probe status."""
    need = {"status"}
    if state is None:
        return need
    if state.color_by not in (None, "none"):
        need.add(state.color_by)
    if state.highlight:
        kind, arg = parse_filter(state.highlight)
        need.add({"class": "step_class", "status": "status"}.get(kind) or arg[0])
    return need


def _gather(runs: list[RunData], x0: float, x1: float, width_px: int, state: ViewState | None = None
            ) -> tuple[list[_Window], str]:
    """Ask each run for the window it must draw; decide overview or detail for the frame."""
    runs = [r for r in runs if r.visible and len(r)]
    counts = [r.windows.rows_in_range(x0 - r.reach, x1) for r in runs]
    mode = "detail" if sum(counts) <= width_px * DETAIL_ROWS_PER_PX else "overview"
    out = []
    for r, count in zip(runs, counts):
        env = None if mode == "detail" else r.windows.envelope(x0 - r.reach, x1, width_px, rows=count)
        if env is not None:
            out.append(_Window(r, env.level, env.recs))
            continue
        rows = r.rows_reaching(x0, x1)
        w = _Window(r, None, None, rows)
        if mode == "overview":
            prev = None
            w.recs = pyramid.row_records(r.alphas, rows.columns, rows.phi, prev, None, None,
                                         with_stats=_needed_stats(state))
        out.append(w)
    return out, mode


def _merge_columns(recs: dict, x0: float, x1: float, width_px: int) -> dict:
    """Merge buckets that start in the same pixel column (one rectangle per column at most)."""
    n = len(recs["rows"])
    if n <= 1:
        return recs
    col = np.floor((recs["first_it"].astype(np.float64) - x0) / max(x1 - x0, 1e-300) * width_px)
    col = np.clip(col, -1, width_px)
    starts = np.concatenate([[0], np.nonzero(np.diff(col))[0] + 1])
    if len(starts) == n:
        return recs
    ends = np.concatenate([starts[1:], [n]]) - 1
    out = {}
    for name, dt, op in pyramid.BUCKET_FIELDS:
        v = recs.get(name)
        if v is None:
            continue
        if op == "first":
            out[name] = v[starts]
        elif op == "last":
            out[name] = v[ends]
        elif op == "min":
            out[name] = np.fmin.reduceat(v, starts)
        elif op == "max":
            out[name] = np.fmax.reduceat(v, starts)
        else:
            out[name] = np.add.reduceat(v, starts).astype(dt, copy=False)
    return out


def fit_y_range(windows: list[_Window], x0: float, x1: float, log: bool) -> tuple[float, float]:
    """y range (display units) fitted to what is visible in [x0, x1], 5 % padding."""
    lo, hi = np.inf, -np.inf
    for w in windows:
        if w.recs is not None:
            keep = (w.recs["last_it"] + 1 > x0) & (w.recs["first_it"] < x1)
            tl, th = transform_y(w.recs["env_lo"][keep], log), transform_y(w.recs["env_hi"][keep], log)
        else:
            d = w.rows
            if not len(d):
                continue
            classic = pyramid.classic_values(w.run.alphas, d.phi, d["train_loss"])
            elo, ehi = pyramid.row_envelope(w.run.alphas, d.phi, d["taken_alpha"].astype(np.float64), classic)
            keep = (d.iteration + 1 > x0) & (d.iteration < x1)
            tl, th = transform_y(elo[keep], log), transform_y(ehi[keep], log)
        tl, th = tl[np.isfinite(tl)], th[np.isfinite(th)]
        if len(tl):
            lo = min(lo, float(tl.min()))
        if len(th):
            hi = max(hi, float(th.max()))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return (-1.0, 1.0) if log else (0.0, 1.0)
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        pad = 0.5 if log else max(abs(hi) * 0.05, 1e-6)
        return lo - pad, hi + pad
    pad = 0.05 * (hi - lo)
    return lo - pad, hi + pad


def resolve_x(runs: list[RunData], state: ViewState) -> tuple[float, float]:
    """The x range (iterations) to draw: the state's, or the whole run."""
    if state.x_range is not None:
        x0, x1 = (float(v) for v in state.x_range)
    elif state.iteration_range is not None:
        x0, x1 = float(state.iteration_range[0]), float(state.iteration_range[1])
    else:
        spans = [r.x_span for r in runs if len(r)]
        x0 = min((s[0] for s in spans), default=0.0)
        x1 = max((s[1] for s in spans), default=1.0)
    if not (math.isfinite(x0) and math.isfinite(x1)):
        x0, x1 = 0.0, 1.0
    if x1 <= x0:
        x1 = x0 + 1.0
    return x0, x1


def resolve_view(runs: list[RunData], state: ViewState, plot_w: int):
    """(x range, y range in display units) to draw: the state's, or fitted to what is visible."""
    x0, x1 = resolve_x(runs, state)
    wins, _ = _gather(runs, x0, x1, max(1, plot_w))
    return (x0, x1), _resolve_y(wins, state, x0, x1)


def _resolve_y(wins, state: ViewState, x0: float, x1: float) -> tuple[float, float]:
    if state.y_range is not None:
        y0, y1 = (float(v) for v in transform_y(np.asarray(state.y_range, np.float64), state.log_y))
        if math.isfinite(y0) and math.isfinite(y1) and y1 > y0:
            return y0, y1
    return fit_y_range(wins, x0, x1, state.log_y)


def compose(runs: list[RunData], state: ViewState, plot: tuple[int, int, int, int], size: tuple[int, int]
            ) -> tuple[View, Frame]:
    """The one composition step: what to draw for ``state`` on a plot rectangle of a canvas.

    Parameters
    ----------
    runs : the runs (invisible ones are skipped)
    state : the view state (x range, filters, colour-by, ...)
    plot : (x, y, w, h) of the plot rectangle in pixels (origin bottom-left)
    size : canvas size in pixels
    """
    x0, x1 = resolve_x(runs, state)
    width_px = max(1, int(plot[2]))
    wins, mode = _gather(runs, x0, x1, width_px, state)
    y0, y1 = _resolve_y(wins, state, x0, x1)
    view = View(x0, x1, y0, y1, bool(state.log_y), tuple(int(v) for v in plot), tuple(int(v) for v in size))
    frame = build_frame(wins, mode, state, view)
    return view, frame


def build_frame(wins: list[_Window], mode: str, state: ViewState, view: View) -> Frame:
    """Primitives for ``view`` from the gathered windows."""
    x0, x1, y0 = view.x0, view.x1, view.y0
    width_px = max(1, view.plot[2])
    frame = Frame(origin=(x0, y0), mode=mode)
    frame.title = " vs ".join(w.run.name for w in wins)
    frame.legend = [(w.run.name, w.run.color) for w in wins]
    color_by = state.color_by if state.color_by not in (None, "none") else None
    frame.color_by = color_by
    # merge per pixel column first: colour range and highlight counts then see what is drawn
    for w in wins:
        if w.recs is not None:
            w.recs = _merge_columns(w.recs, x0, x1, width_px)
        frame.levels[w.run.name] = w.level
    if color_by:
        vals = []
        for w in wins:
            if w.recs is not None:
                keep = (w.recs["last_it"] + 1 > x0) & (w.recs["first_it"] < x1)
                vals.append(bucket_stat(w.recs, color_by)[keep])
            elif w.rows is not None and len(w.rows):
                vals.append(w.rows[color_by].astype(np.float64))
        frame.stat_range = stat_color_range(color_by, vals)
    counts, exact = [], True
    for w in wins:
        if w.recs is not None:
            c, ex = _overview(frame, w, state, view, color_by)
        else:
            c, ex = _detail(frame, w, state, view, color_by)
        if c is not None:
            counts.append(c)
            exact &= ex
        _epochs_and_rules(frame, w, state, view, width_px)
        if state.smoothing > 0:
            _smoothed(frame, w, state, view)
    if state.highlight:
        frame.match_count, frame.match_exact = sum(counts), exact
    return frame


def _overview(frame: Frame, w: _Window, state: ViewState, view: View, color_by) -> tuple[int | None, bool]:
    recs = w.recs
    x0, x1, oy = view.x0, view.x1, view.y0
    keep = (recs["last_it"] + 1 > x0) & (recs["first_it"] < x1)
    recs = {k: v[keep] for k, v in recs.items()}
    xs0 = recs["first_it"].astype(np.float64) - x0
    xs1 = recs["last_it"].astype(np.float64) + 1.0 - x0
    lo, hi = transform_y(recs["env_lo"], state.log_y), transform_y(recs["env_hi"], state.log_y)
    n = len(xs0)
    if color_by:
        colors = stat_colors(bucket_stat(recs, color_by), color_by, frame.stat_range)
    else:
        colors = np.broadcast_to(w.run.color, (n, 4)).copy()
    match, count, exact = highlight_buckets(recs, state.highlight)
    if match is not None:
        colors[~match, 3] *= FADE
    ok = np.isfinite(lo) & np.isfinite(hi)
    if state.show_envelope:
        frame.env_rects.append(np.stack([xs0, lo - oy, xs1, hi - oy], axis=1)[ok])
        c = colors[ok].copy()
        c[:, 3] *= 0.40
        frame.env_color.append(c)
    clo, chi = transform_y(recs["cl_lo"], state.log_y), transform_y(recs["cl_hi"], state.log_y)
    clast = transform_y(recs["cl_last"], state.log_y)
    if n > 1:  # join each bucket to the previous one's last value so the curve reads as a line
        clo[1:] = np.fmin(clo[1:], clast[:-1])
        chi[1:] = np.fmax(chi[1:], clast[:-1])
    okc = np.isfinite(clo) & np.isfinite(chi)
    frame.classic_rects.append(np.stack([xs0, clo - oy, xs1, chi - oy], axis=1)[okc])
    frame.classic_color.append(colors[okc])
    # non-finite flags: one per bucket holding a non-finite probe
    nf = recs[f"status:{schema.STATUS_NONFINITE}"] > 0
    if nf.any():
        frame.flag_xy.append(np.stack([0.5 * (xs0 + xs1)[nf], np.full(int(nf.sum()), np.nan)], axis=1))
    return count, exact


def _detail(frame: Frame, w: _Window, state: ViewState, view: View, color_by) -> tuple[int | None, bool]:
    d = w.rows
    if d is None or not len(d):
        return (0 if state.highlight else None), True
    ox, oy = view.x0, view.y0
    a = w.run.alphas
    k = len(a)
    n = len(d)
    it = d.iteration.astype(np.float64)
    t = _taken(d)
    phi = d.phi
    fade = highlight_mask(d, state.highlight)
    X = it[:, None] + a[None, :] / t[:, None] - ox
    Y = transform_y(phi, state.log_y) - oy
    if color_by:
        colors = stat_colors(d[color_by].astype(np.float64), color_by, frame.stat_range)
    else:
        colors = np.broadcast_to(w.run.color, (n, 4)).copy()
    if fade is not None:
        colors[~fade, 3] *= FADE
    if k >= 2:
        fin = np.isfinite(Y)
        pair_ok = fin[:, :-1] & fin[:, 1:]
        main = (a[None, 1:] <= t[:, None] * (1 + 1e-9))
        p0 = np.stack([X[:, :-1], Y[:, :-1]], axis=2)
        p1 = np.stack([X[:, 1:], Y[:, 1:]], axis=2)
        rowc = np.broadcast_to(colors[:, None, :], (n, k - 1, 4))
        sel = pair_ok & main
        frame.seg_p0.append(p0[sel])
        frame.seg_p1.append(p1[sel])
        frame.seg_color.append(rowc[sel])
        if state.show_loose:
            sel = pair_ok & ~main
            lc = rowc[sel].copy()
            lc[:, 3] *= 0.35
            frame.loose_p0.append(p0[sel])
            frame.loose_p1.append(p1[sel])
            frame.loose_color.append(lc)
    bad = ~np.isfinite(phi) & (d["status"] != schema.STATUS_SKIPPED)[:, None]
    if bad.any():
        frame.flag_xy.append(np.stack([X[bad], np.full(int(bad.sum()), np.nan)], axis=1))
    if state.show_trials:
        off = d.trial_offsets
        if off[-1] > off[0]:
            counts = np.diff(off)
            rows = np.repeat(np.arange(n), counts)
            alpha = d.trials["alpha"]
            tx = it[rows] + alpha / t[rows] - ox
            ty = transform_y(d.trials["loss"], state.log_y) - oy
            ok = np.isfinite(tx) & np.isfinite(ty)
            loose = alpha > t[rows] * (1 + 1e-9)
            col = np.where(loose[:, None], np.asarray(LOOSE_COLOR, np.float32), np.asarray(TRIAL_COLOR, np.float32))
            if fade is not None:
                col[~fade[rows], 3] *= FADE
            frame.marker_xy.append(np.stack([tx, ty], axis=1)[ok])
            frame.marker_color.append(col[ok])
            frame.marker_shape.append(np.where(loose, 2.0, 0.0)[ok])
    if fade is None:
        return None, True
    vis = (d.iteration + 1 > view.x0) & (d.iteration < view.x1)
    return int(np.count_nonzero(fade & vis)), True


def ema(values: np.ndarray, weights: np.ndarray, smoothing: float) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing) of ``values``, one point of weight
    ``weights[i]`` rows each: a point standing for n rows decays the history by ``smoothing ** n``.
    NaN points keep the previous average (and are NaN in the result)."""
    out = np.full(len(values), np.nan)
    acc, norm = 0.0, 0.0
    for i, (v, n) in enumerate(zip(values.tolist(), weights.tolist())):
        if not math.isfinite(v):
            continue
        d = smoothing ** n
        acc = d * acc + (1.0 - d) * v
        norm = d * norm + (1.0 - d)
        out[i] = acc / norm
    return out


def _smoothed(frame: Frame, w: _Window, state: ViewState, view: View) -> None:
    """The classic curve smoothed with an EMA, from the first visible point on (bounded by pixels).

    Zoomed out, a bucket contributes the middle of its classic min..max with the weight of its rows;
    with rows, every step contributes phi_k(0).
    """
    x0, x1, oy = view.x0, view.x1, view.y0
    if w.recs is not None:
        keep = (w.recs["last_it"] + 1 > x0) & (w.recs["first_it"] < x1)
        r = {k: v[keep] for k, v in w.recs.items()}
        xs = 0.5 * (r["first_it"].astype(np.float64) + r["last_it"].astype(np.float64) + 1.0)
        vals = 0.5 * (r["cl_lo"].astype(np.float64) + r["cl_hi"].astype(np.float64))
        weights = r["rows"].astype(np.float64)
    else:
        d = w.rows
        if d is None or not len(d):
            return
        sel = (d.iteration + 1 > x0) & (d.iteration < x1)
        xs = d.iteration[sel].astype(np.float64)
        vals = pyramid.classic_values(w.run.alphas, d.phi, d["train_loss"])[sel].astype(np.float64)
        weights = np.ones(len(xs))
    if len(xs) > 20_000:  # more points than a frame can show: they are rows of a very wide window
        step = len(xs) // 20_000 + 1
        xs, vals, weights = xs[::step], vals[::step], weights[::step] * step
    sm = transform_y(ema(vals, weights, state.smoothing), state.log_y) - oy
    ok = np.isfinite(sm)
    xs, sm = xs[ok] - x0, sm[ok]
    if len(xs) < 2:
        return
    p = np.stack([xs, sm], axis=1)
    frame.smooth_p0.append(p[:-1])
    frame.smooth_p1.append(p[1:])
    c = np.asarray(w.run.color, np.float32) * np.array([0.55, 0.55, 0.55, 1.0], np.float32)
    frame.smooth_color.append(np.broadcast_to(c, (len(p) - 1, 4)))


def _epochs_and_rules(frame: Frame, w: _Window, state: ViewState, view: View, width_px: int) -> None:
    """Epoch marks (first run only) and batch-change rules (when they are few enough to tell apart)."""
    x0, x1 = view.x0, view.x1
    if w.recs is not None and w.level is not None:
        ef, el = w.recs["epoch_first"], w.recs["epoch_last"]
        idx = np.nonzero(ef[1:] != el[:-1])[0] + 1
        xs = w.recs["first_it"][idx].astype(np.float64)
        eps = ef[idx]
    else:
        d = w.rows
        if d is None or len(d) < 2:
            return
        e = d["epoch"]
        idx = np.nonzero(np.diff(e) != 0)[0] + 1
        xs, eps = d.iteration[idx].astype(np.float64), e[idx]
        if state.show_rules:
            b = d["batch"]
            bi = np.nonzero(np.diff(b) != 0)[0] + 1
            bx = d.iteration[bi].astype(np.float64)
            bx = bx[(bx >= x0) & (bx <= x1)]
            if 0 < len(bx) <= width_px / 4:
                frame.rules_x.append(bx - x0)
    if not frame.epoch_marks:
        sel = (xs >= x0) & (xs <= x1)
        frame.epoch_marks = [(float(x - x0), int(e)) for x, e in zip(xs[sel], eps[sel])]
