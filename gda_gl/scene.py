"""What to draw for a view: the enhanced training error curve as primitives. Compute only, no GL.

:class:`RunData` holds one run's iterations, per-row envelopes and its LOD
pyramid (extended incrementally for a live run).  :func:`build_frame` turns a
list of runs and a :class:`~gda_gl.state.ViewState` into a :class:`Frame`:
flat arrays of line segments, rectangles and markers whose positions are
relative to the view origin (float64 arithmetic here, float32 on the GPU), so
precision does not depend on how far out the iterations are.

The picture (Becker et al. 2019): segment k draws phi_k over alpha in
[0, taken] on x in [k, k+1]; segments are never joined to each other, so a
change of mini-batch shows as a jump; the part beyond the taken step (loose
end) dangles past k+1 in a lighter style; trial points are markers; batch
changes are faint vertical rules.  Zoomed out (more than one iteration per two
pixel columns) the frame uses envelope buckets instead: min..max of every
segment in the bucket, plus the classic curve phi_k(0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recorder import schema
from recorder.store import Iterations

from .growable import Growable
from .lod import EnvelopePyramid, row_envelope
from .state import ViewState

__all__ = ["RunData", "Frame", "build_frame", "fit_y_range", "RUN_COLORS", "CLASS_COLORS", "stat_colors"]

RUN_COLORS = np.array([
    [0.12, 0.47, 0.71, 1.0], [0.84, 0.15, 0.16, 1.0], [0.17, 0.63, 0.17, 1.0], [0.58, 0.40, 0.74, 1.0],
    [1.00, 0.50, 0.05, 1.0], [0.55, 0.34, 0.29, 1.0], [0.89, 0.47, 0.76, 1.0], [0.09, 0.75, 0.81, 1.0],
], np.float32)
CLASS_COLORS = {schema.CLASS_UNKNOWN: (0.55, 0.55, 0.55, 1.0), schema.CLASS_UNDERSHOOT: (0.19, 0.39, 0.80, 1.0),
                schema.CLASS_NEAR_OPTIMAL: (0.10, 0.62, 0.25, 1.0), schema.CLASS_OVERSHOOT: (0.85, 0.20, 0.15, 1.0)}
LOOSE_COLOR = (0.95, 0.55, 0.10, 1.0)
NONFINITE_COLOR = (0.85, 0.05, 0.05, 1.0)
TRIAL_COLOR = (0.15, 0.15, 0.15, 0.9)


def _taken(data: Iterations, r0: int = 0, r1: int | None = None) -> np.ndarray:
    """Accepted alphas of rows r0..r1 (values <= 0 or NaN, a step that did not move, count as 1)."""
    t = data["taken_alpha"][r0:r1].astype(np.float64)
    return np.where(np.isfinite(t) & (t > 0), t, 1.0)


class RunData:
    """One run prepared for drawing: rows, envelopes, LOD pyramid, batch boundaries."""

    def __init__(self, data: Iterations, name: str = "run", color=None):
        self.name = name
        self.color = np.asarray(color if color is not None else RUN_COLORS[0], np.float32)
        self.data = data
        self.alphas = data.alpha_grid
        self._prepare(data)

    def _rows(self, data: Iterations):
        lo, hi = row_envelope(self.alphas, data.phi, _taken(data))
        j0 = np.nonzero(self.alphas == 0.0)[0]
        classic = data.phi[:, j0[0]].astype(np.float32) if len(j0) else np.full(len(data), np.nan, np.float32)
        classic = np.where(np.isfinite(classic), classic, data["train_loss"].astype(np.float32))
        # a skipped/failed probe still shows the training loss on the classic curve
        lo = np.fmin(lo, classic)
        hi = np.fmax(hi, classic)
        return lo, hi, classic

    def _prepare(self, data: Iterations) -> None:
        lo, hi, classic = self._rows(data)
        # growable storage: a live run's new rows are copied in place (amortised), never the whole run
        self._cols = {k: Growable(v) for k, v in data.columns.items()}
        self._phi = Growable(data.phi)
        self._toff = Growable(data.trial_offsets)
        self._trials = {k: Growable(v) for k, v in data.trials.items()}
        self._env = [Growable(lo), Growable(hi), Growable(classic)]
        self.pyramid = EnvelopePyramid(data.iteration, lo, hi, classic)
        self._starts = [Growable(np.empty(0)), Growable(np.empty(0)), Growable(np.empty(0, np.int32)),
                        Growable(np.empty(0))]
        self._publish()
        self._boundaries(0)

    def _publish(self) -> None:
        """Refresh the public views after a change."""
        self.data = Iterations(self.alphas, {k: g.view for k, g in self._cols.items()}, self._phi.view,
                               self._toff.view, {k: g.view for k, g in self._trials.items()})
        self.env_lo, self.env_hi, self.classic = (g.view for g in self._env)

    def _boundaries(self, first: int) -> None:
        """Append batch/epoch starts and non-finite rows found from row ``first`` on."""
        d = self.data
        lo = max(0, first - 1)
        b, e, it = d["batch"][lo:], d["epoch"][lo:], d.iteration[lo:]
        idx = np.nonzero(np.diff(b) != 0)[0] + 1
        self._starts[0].append(it[idx].astype(np.float64))
        idx = np.nonzero(np.diff(e) != 0)[0] + 1
        self._starts[1].append(it[idx].astype(np.float64))
        self._starts[2].append(e[idx].astype(np.int32))
        st = d["status"][first:]
        self._starts[3].append(d.iteration[first:][st == schema.STATUS_NONFINITE].astype(np.float64) + 0.5)
        self.batch_starts, self.epoch_starts, self.epoch_of_start, self.nonfinite_x = (g.view for g in self._starts)

    def extend(self, new: Iterations) -> None:
        """Append rows committed since the last read (live runs): O(new rows), the pyramid grows in place."""
        if len(new) == 0:
            return
        n_old = len(self.data)
        lo, hi, classic = self._rows(new)
        for k, g in self._cols.items():
            g.append(new.columns[k])
        self._phi.append(new.phi)
        t_old = int(self._toff.view[-1])
        self._toff.set_tail(n_old, new.trial_offsets + t_old)
        for k, g in self._trials.items():
            g.append(new.trials[k])
        for g, a in zip(self._env, (lo, hi, classic)):
            g.append(a)
        self.pyramid.extend(new.iteration, lo, hi, classic)
        self._publish()
        self._boundaries(n_old)

    @property
    def x_span(self) -> tuple[float, float]:
        it = self.data.iteration
        if len(it) == 0:
            return (0.0, 1.0)
        return float(it[0]), float(it[-1]) + 1.0

    def rows_in(self, x0: float, x1: float) -> tuple[int, int]:
        """Row range whose segments (including loose ends) can reach [x0, x1]."""
        it = self.data.iteration
        reach = float(self.alphas.max()) if len(self.alphas) else 1.0
        # integer keys: a float key would make numpy convert the whole int64 column (O(n) per frame)
        r0 = int(np.searchsorted(it, _int_key(np.floor(x0 - max(reach, 1.0))), side="left"))
        r1 = int(np.searchsorted(it, _int_key(np.floor(x1)), side="right"))
        return r0, r1


def _int_key(v: float) -> int:
    return int(max(min(v, 2 ** 62), -(2 ** 62)))


@dataclass
class Frame:
    """Primitives of one frame, positions relative to ``origin`` (y in display units: log10 when log)."""

    origin: tuple[float, float]
    mode: str = "overview"
    seg_p0: list = field(default_factory=list)
    seg_p1: list = field(default_factory=list)
    seg_color: list = field(default_factory=list)
    loose_p0: list = field(default_factory=list)
    loose_p1: list = field(default_factory=list)
    loose_color: list = field(default_factory=list)
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


def stat_values(data: Iterations, name: str) -> np.ndarray:
    return data[name].astype(np.float64)


def stat_range(runs: list[RunData], name: str) -> tuple[float, float]:
    """Colour range of a statistic over all rows of all runs (2nd..98th percentile)."""
    if name == "efficiency":
        return (0.0, 1.0)
    if name == "cockpit_alpha":
        return (-1.0, 1.0)
    vals = np.concatenate([stat_values(r.data, name) for r in runs]) if runs else np.empty(0)
    vals = vals[np.isfinite(vals)]
    if len(vals) == 0:
        return (0.0, 1.0)
    lo, hi = np.percentile(vals, [2, 98])
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def stat_colors(values: np.ndarray, name: str, rng: tuple[float, float]) -> np.ndarray:
    """RGBA per value: class colours for ``step_class``, viridis otherwise (grey for NaN)."""
    v = np.asarray(values, np.float64)
    if name == "step_class":
        out = np.empty((len(v), 4), np.float32)
        for code, c in CLASS_COLORS.items():
            out[v == code] = c
        return out
    from vispy.color import get_colormap

    t = np.clip((v - rng[0]) / (rng[1] - rng[0]), 0.0, 1.0)
    out = get_colormap("viridis").map(np.nan_to_num(t, nan=0.0)[:, None]).astype(np.float32)
    out[~np.isfinite(v)] = (0.6, 0.6, 0.6, 1.0)
    return out


def fit_y_range(runs: list[RunData], x0: float, x1: float, log: bool, columns: int = 512) -> tuple[float, float]:
    """y range (display units) fitted to the envelopes visible in [x0, x1], 5 % padding."""
    lo, hi = np.inf, -np.inf
    for r in runs:
        b = r.pyramid.query(x0, x1, columns)
        keep = (b.x1 > x0) & (b.x0 < x1)
        tl = transform_y(b.env_lo[keep], log)
        th = transform_y(b.env_hi[keep], log)
        tl, th = tl[np.isfinite(tl)], th[np.isfinite(th)]
        if len(tl):
            lo = min(lo, float(tl.min()))
        if len(th):
            hi = max(hi, float(th.max()))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return (0.0, 1.0) if not log else (-1.0, 1.0)
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        pad = 0.5 if log else max(abs(hi) * 0.05, 1e-6)
        return lo - pad, hi + pad
    pad = 0.05 * (hi - lo)
    return lo - pad, hi + pad


def highlight_mask(data: Iterations, cond: str | None) -> np.ndarray | None:
    """Rows matching a filter condition (others are faded), or None for no filter."""
    if not cond:
        return None
    c = cond.replace(" ", "")
    if c in ("overshoot", "undershoot", "near-optimal"):
        code = {"overshoot": schema.CLASS_OVERSHOOT, "undershoot": schema.CLASS_UNDERSHOOT,
                "near-optimal": schema.CLASS_NEAR_OPTIMAL}[c]
        return data["step_class"] == code
    if c == "failed":
        return data["status"] == schema.STATUS_FAILED
    if c in ("nonfinite", "non-finite"):
        return (data["status"] == schema.STATUS_NONFINITE) | ~np.all(np.isfinite(data.phi), axis=1) & \
            (data["status"] != schema.STATUS_SKIPPED)
    for op in ("<=", ">=", "<", ">"):
        if op in c:
            name, val = c.split(op, 1)
            if name not in data.columns:
                raise ValueError(f"unknown statistic {name!r} in filter {cond!r}")
            x = data[name].astype(np.float64)
            v = float(val)
            return {"<": x < v, ">": x > v, "<=": x <= v, ">=": x >= v}[op]
    raise ValueError(f"unknown filter {cond!r} (overshoot, undershoot, near-optimal, failed, nonfinite, "
                     "STAT<VALUE, STAT>VALUE)")


def build_frame(runs: list[RunData], state: ViewState, x_range: tuple[float, float],
                y_range: tuple[float, float], plot_px: tuple[int, int]) -> Frame:
    """Primitives for the view ``x_range`` x ``y_range`` (y in display units) on ``plot_px`` pixels."""
    x0, x1 = x_range
    ox, oy = x0, y_range[0]
    frame = Frame(origin=(ox, oy))
    width_px = max(1, plot_px[0])
    rows_in_view = sum(max(0, r.rows_in(x0, x1)[1] - r.rows_in(x0, x1)[0]) for r in runs)
    frame.mode = "detail" if rows_in_view <= width_px / 2 else "overview"
    color_by = state.color_by if state.color_by != "none" else None
    if color_by:
        frame.stat_range = stat_range(runs, color_by)
    for run in runs:
        d = run.data
        if len(d) == 0:
            continue
        fade = highlight_mask(d, state.highlight)
        if frame.mode == "overview":
            _overview(frame, run, state, x0, x1, width_px, ox, oy)
        else:
            _detail(frame, run, state, x0, x1, ox, oy, color_by, fade)
        # batch boundaries as faint rules, when they are few enough to tell apart
        if state.show_rules:
            bs = run.batch_starts
            sel = bs[np.searchsorted(bs, x0):np.searchsorted(bs, x1, side="right")]
            if 0 < len(sel) <= width_px / 4:
                frame.rules_x.append(sel - ox)
    return frame


def _overview(frame: Frame, run: RunData, state: ViewState, x0, x1, width_px, ox, oy) -> None:
    b = run.pyramid.query(x0, x1, width_px)
    keep = (b.x1 > x0) & (b.x0 < x1)
    xs0, xs1 = b.x0[keep] - ox, b.x1[keep] - ox
    lo, hi = transform_y(b.env_lo[keep], state.log_y), transform_y(b.env_hi[keep], state.log_y)
    ok = np.isfinite(lo) & np.isfinite(hi)
    if state.show_envelope:
        rects = np.stack([xs0, lo - oy, xs1, hi - oy], axis=1)[ok]
        frame.env_rects.append(rects)
        c = run.color.copy()
        c[3] = 0.40
        frame.env_color.append(np.broadcast_to(c, (len(rects), 4)))
    clo, chi = transform_y(b.classic_lo[keep], state.log_y), transform_y(b.classic_hi[keep], state.log_y)
    if len(clo) > 1:  # join each bucket's bar to its neighbour's so the classic curve reads as a line
        clo[1:], chi[1:] = np.fmin(clo[1:], chi[:-1]), np.fmax(chi[1:], clo[:-1])
    okc = np.isfinite(clo) & np.isfinite(chi)
    rects = np.stack([xs0, clo - oy, xs1, chi - oy], axis=1)[okc]
    frame.classic_rects.append(rects)
    frame.classic_color.append(np.broadcast_to(run.color, (len(rects), 4)))
    # non-finite flags: at most one per pixel column
    nf = run.nonfinite_x
    xs = nf[np.searchsorted(nf, x0):np.searchsorted(nf, x1)]
    if len(xs):
        px = np.unique(np.floor((xs - x0) / max(x1 - x0, 1e-12) * width_px))
        frame.flag_xy.append(np.stack([px / width_px * (x1 - x0), np.full(len(px), np.nan)], axis=1))


def _detail(frame: Frame, run: RunData, state: ViewState, x0, x1, ox, oy, color_by, fade) -> None:
    d = run.data
    r0, r1 = run.rows_in(x0, x1)
    if r1 <= r0:
        return
    a = run.alphas
    k = len(a)
    it = d.iteration[r0:r1].astype(np.float64)
    t = _taken(d, r0, r1)
    phi = d.phi[r0:r1]
    X = it[:, None] + a[None, :] / t[:, None] - ox
    Y = transform_y(phi, state.log_y) - oy
    if color_by:
        colors = stat_colors(stat_values(d, color_by)[r0:r1], color_by, frame.stat_range)
    else:
        colors = np.broadcast_to(run.color, (r1 - r0, 4)).copy()
    if fade is not None:
        colors[~fade[r0:r1], 3] *= 0.15
    if k >= 2:
        fin = np.isfinite(Y)
        pair_ok = fin[:, :-1] & fin[:, 1:]
        main = (a[None, 1:] <= t[:, None] * (1 + 1e-9))
        p0 = np.stack([X[:, :-1], Y[:, :-1]], axis=2)
        p1 = np.stack([X[:, 1:], Y[:, 1:]], axis=2)
        rowc = np.broadcast_to(colors[:, None, :], (r1 - r0, k - 1, 4))
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
    # non-finite samples: flag at their x on the top edge
    bad = ~np.isfinite(phi) & (d["status"][r0:r1] != schema.STATUS_SKIPPED)[:, None]
    if bad.any():
        frame.flag_xy.append(np.stack([X[bad], np.full(int(bad.sum()), np.nan)], axis=1))
    if state.show_trials:
        off = d.trial_offsets
        ta, tb = int(off[r0]), int(off[r1])
        if tb > ta:
            counts = np.diff(off[r0:r1 + 1])
            rows = np.repeat(np.arange(r1 - r0), counts)
            alpha = d.trials["alpha"][ta:tb]
            tx = it[rows] + alpha / t[rows] - ox
            ty = transform_y(d.trials["loss"][ta:tb], state.log_y) - oy
            ok = np.isfinite(tx) & np.isfinite(ty)
            loose = alpha > t[rows] * (1 + 1e-9)
            col = np.where(loose[:, None], np.asarray(LOOSE_COLOR, np.float32), np.asarray(TRIAL_COLOR, np.float32))
            if fade is not None:
                col[~fade[r0:r1][rows], 3] *= 0.15
            frame.marker_xy.append(np.stack([tx, ty], axis=1)[ok])
            frame.marker_color.append(col[ok])
            frame.marker_shape.append(np.where(loose, 2.0, 0.0)[ok])
