"""Many runs under the cursor: which run's line is hovered, and the table of every run at the cursor's x.

Read from the drawn Frame (what can be named is what was drawn), as :mod:`.picking` does for arcs:

* :func:`line_at`: the run line (the sweep style's ``lines`` batch, :mod:`gda_gl.compose.manyruns`)
  nearest the cursor within a few pixels: hovering names its run, a click focuses it (drawn in full);
* :func:`runs_at`: every run drawn at the cursor's x with its loss there (its line, its classic curve
  zoomed out, its arc zoomed in), sorted by the value: the hover table of a sweep (the window's
  tooltip, the notebook's readout), like the tooltip TensorBoard and W&B show over many curves;
* :func:`table_text`: that table as lines of text, the hovered run marked;
* :func:`filter_visibility` / :func:`solo_visibility`: which runs a filter box or a solo button leaves
  visible (the window's panel and the notebook's run list).
"""

from __future__ import annotations

import numpy as np

from gda_gl.compose.frame import Frame
from gda_gl.compose.view import View

__all__ = ["line_at", "runs_at", "table_text", "TABLE_ROWS", "LINE_PX", "filter_visibility", "solo_visibility",
           "FILTER_PLACEHOLDER"]

#: what a run filter box takes (the window's and the notebook's)
FILTER_PLACEHOLDER = "filter: regex, or config.lr<0.1"

#: a run line within this many pixels of the cursor is hovered (and picked by a click)
LINE_PX = 6.0
#: the hover table lists at most this many runs (the nearest ones in value around the cursor, then "+N")
TABLE_ROWS = 12


def _segment_distance(p0: np.ndarray, p1: np.ndarray, px: float, py: float) -> np.ndarray:
    d = p1 - p0
    len2 = (d ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        u = np.clip(((px - p0[:, 0]) * d[:, 0] + (py - p0[:, 1]) * d[:, 1]) / np.where(len2 > 0, len2, 1.0), 0, 1)
    dist = np.hypot(p0[:, 0] + u * d[:, 0] - px, p0[:, 1] + u * d[:, 1] - py)
    return np.where(np.isfinite(dist), dist, np.inf)


def _to_px(view: View, frame: Frame, p: np.ndarray) -> np.ndarray:
    """Frame positions (relative to its origin) as canvas pixels, origin bottom-left."""
    lx, ly, pw, ph = view.plot
    x = lx + (p[:, 0] + frame.origin[0] - view.x0) * pw / (view.x1 - view.x0)
    y = ly + (p[:, 1] + frame.origin[1] - view.y0) * ph / (view.y1 - view.y0)
    return np.stack([x, y], axis=1)


def line_at(frame: Frame, view: View, px: float, py: float, max_px: float = LINE_PX) -> int | None:
    """The run index of the run line nearest canvas pixel (px, py) (origin top-left), within ``max_px``."""
    b = frame.merged("lines")
    if b is None or b.ids is None or not len(b):
        return None
    gy = view.size[1] - py
    dist = _segment_distance(_to_px(view, frame, b.p0), _to_px(view, frame, b.p1), px, gy)
    j = int(np.argmin(dist))
    return int(b.ids.run[j]) if dist[j] <= max_px else None


def _values_at(kind_batch, xr: float) -> dict[int, float]:
    """run index -> y (frame units) where the segments of a batch cross ``xr`` (the first segment per run)."""
    p0, p1, run = kind_batch.p0, kind_batch.p1, kind_batch.ids.run
    lo, hi = np.minimum(p0[:, 0], p1[:, 0]), np.maximum(p0[:, 0], p1[:, 0])
    hit = np.nonzero((lo <= xr) & (xr <= hi))[0]
    out: dict[int, float] = {}
    for j in hit:
        r = int(run[j])
        if r in out:
            continue
        span = p1[j, 0] - p0[j, 0]
        u = (xr - p0[j, 0]) / span if span != 0 else 0.0
        out[r] = float(p0[j, 1] + u * (p1[j, 1] - p0[j, 1]))
    return out


def _classic_at(batch, xr: float) -> dict[int, float]:
    """run index -> the middle of the classic curve's rectangle at ``xr`` (zoomed out, few runs)."""
    r = batch.rects
    hit = np.nonzero((r[:, 0] <= xr) & (xr <= r[:, 2]))[0]
    out: dict[int, float] = {}
    for j in hit:
        out.setdefault(int(batch.ids.run[j]), float(0.5 * (r[j, 1] + r[j, 3])))
    return out


def runs_at(runs, frame: Frame, view: View, px: float) -> list[tuple[int, str, float]]:
    """(run index, name, loss) of every run drawn at the cursor's canvas x ``px``, sorted by the loss."""
    lx, _, pw, _ = view.plot
    xr = view.x0 + (px - lx) * (view.x1 - view.x0) / max(pw, 1) - frame.origin[0]
    values: dict[int, float] = {}
    for kind in ("lines", "arcs"):
        b = frame.merged(kind)
        if b is not None and b.ids is not None:
            for k, v in _values_at(b, xr).items():
                values.setdefault(k, v)
    b = frame.merged("classic")
    if b is not None and b.ids is not None:
        for k, v in _classic_at(b, xr).items():
            values.setdefault(k, v)
    out = []
    for k, y in values.items():
        yd = y + frame.origin[1]
        loss = 10.0 ** yd if view.log_y else yd
        if k < len(runs) and np.isfinite(loss):
            out.append((k, runs[k].name, float(loss)))
    return sorted(out, key=lambda t: t[2])


def table_text(rows: list[tuple[int, str, float]], hovered: int | None = None, limit: int = TABLE_ROWS) -> str:
    """The hover table: one run per line, ``name  loss``, the hovered run marked; at most ``limit`` lines
    (around the hovered run when it is far down), the rest counted."""
    if not rows:
        return ""
    start = 0
    idx = next((i for i, r in enumerate(rows) if r[0] == hovered), None)
    if idx is not None and idx >= limit:
        start = min(idx - limit // 2, len(rows) - limit)
    shown = rows[start:start + limit]
    width = max(len(name) for _, name, _ in shown)
    lines = [f"{'>' if k == hovered else ' '} {name:<{width}}  {v:.5g}" for k, name, v in shown]
    if len(rows) > len(shown):
        lines.append(f"  ({len(rows) - len(shown)} more runs)")
    return "\n".join(lines)


def filter_visibility(runs, text: str) -> list[bool]:
    """Which runs a filter box shows: a regular expression on names, or ``--where`` conditions
    (:func:`gda_gl.session.select.filter_text`).

    Raises
    ------
    ValueError : a bad expression, or no run left (one line)
    """
    from gda_gl.session.select import filter_text

    keep = filter_text([r.name for r in runs], [str(getattr(r, "path", r.name)) for r in runs],
                       [r.params for r in runs], text)
    if not any(keep):
        raise ValueError(f"filter {text!r}: no run matches")
    return keep


def solo_visibility(runs, i: int) -> list[bool]:
    """Run ``i`` alone; every run when it already is alone."""
    alone = [j == i for j in range(len(runs))]
    now = [bool(getattr(r, "visible", True)) for r in runs]
    return [True] * len(runs) if now == alone else alone

